"""Prefect flow `plan`: expand approved campaigns into ledger items."""

from __future__ import annotations

from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from dissemination.pipeline import run_once
from dissemination.problems import ContentErrors
from flows._common import content_root, ledger_for, notify_failure, run_moment, run_name, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only, cache_policy=NO_CACHE,
      timeout_seconds=10 * 60)
def plan_ledger(root: str | None, now: str | None = None) -> dict:
    logger = get_run_logger()
    ledger = ledger_for(root)
    try:
        run = run_once(content_root(root), ledger, run_moment(now), steps=("plan",))
    finally:
        ledger.close()
    if run.stopped:
        for problem in run.stopped.problems:
            logger.error(str(problem))
        raise run.stopped
    report = run.plan
    assert report is not None
    s = report.stats
    logger.info("plan: %d added, %d updated, %d unchanged, %d cancelled, %d held",
                s.added, s.updated, s.unchanged, s.cancelled, s.held)
    for held in report.held:
        logger.warning("held: campaign %s: %s", held.campaign, held.reason)
    if report.failed:
        # The rest is planned; the run still fails, so the errors are seen.
        for problem in report.failed_problems:
            logger.error(str(problem))
        raise ContentErrors(report.failed_problems)
    return {"added": s.added, "updated": s.updated, "unchanged": s.unchanged, "cancelled": s.cancelled,
            "held": s.held}


@flow(name="plan", flow_run_name=partial(run_name, "plan"), timeout_seconds=15 * 60,
      on_failure=[notify_failure])
def plan_flow(root: str | None = None, now: str | None = None) -> dict:
    """`root`: the content root (default: DISSEMINATION_HOME on the worker); `now`: plan as if it
    were that moment (ISO 8601 with offset), for rehearsals."""
    return plan_ledger(root, now)


if __name__ == "__main__":
    plan_flow()
