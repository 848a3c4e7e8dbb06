"""Prefect flow `plan`: expand approved campaigns into ledger items."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task

from dissemination.pipeline import ContentErrors, plan
from flows._common import ledger_for, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
def plan_ledger(root: str) -> dict:
    logger = get_run_logger()
    ledger = ledger_for(root)
    try:
        report = plan(Path(root).resolve(), ledger, dt.datetime.now(dt.timezone.utc))
    except ContentErrors as exc:
        for problem in exc.problems:
            logger.error(str(problem))
        raise
    finally:
        ledger.close()
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


@flow(name="plan")
def plan_flow(root: str = ".") -> dict:
    return plan_ledger(root)


if __name__ == "__main__":
    plan_flow()
