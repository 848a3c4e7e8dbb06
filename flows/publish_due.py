"""Prefect flow `publish_due`: publish every due item exactly once, in batches."""

from __future__ import annotations

from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from dissemination.notify import notify
from dissemination.pipeline import run_once
from flows._common import (RunFailed, content_root, credential_store, ledger_for, notify_failure, run_moment,
                           run_name, secrets_into_environment, transient_only)

# One hung SMTP or API call must not hold the run (and with it the next runs) forever; a newsletter
# to a few thousand recipients takes minutes, not half an hour. The lease (5 minutes per batch of
# claims) hands an abandoned item to the next run.
TIMEOUT = 30 * 60


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only, cache_policy=NO_CACHE,
      timeout_seconds=TIMEOUT)
def publish_batch(root: str | None, batch: int, now: str | None = None) -> dict:
    """One task for the whole run: items are claimed in batches under leases, so a retried or
    parallel task can never send an item twice. Never cached: every call must look for due items."""
    logger = get_run_logger()
    for name in secrets_into_environment(content_root(root)):
        logger.info("%s from its Prefect Secret block", name)  # the name only, never the value
    ledger = ledger_for(root)
    try:
        run = run_once(content_root(root), ledger, run_moment(now) if now else None, steps=("publish",), batch=batch,
                       credentials=credential_store())
    finally:
        ledger.close()
    if run.stopped:
        raise run.stopped
    report = run.publish
    assert report is not None
    for note in report.notes:
        logger.warning("outbox: %s", note)
    for warning in report.warnings:
        logger.warning("%s", warning)
    for item in report.missed:
        logger.warning("missed (past its late tolerance, not posted late): %s", item)
    for item in report.failed:
        logger.error("failed permanently: %s (see `dissemination status`)", item)
    for item in report.waiting:
        logger.error("waiting for a person: %s may or may not be online; look at the account, then run "
                     "`dissemination resolve %s --published URL --by NAME` or `--absent --by NAME`", item, item)
    logger.info("publish: %d published, %d to retry, %d failed, %d missed", len(report.published),
                len(report.retried), len(report.failed), len(report.missed))
    return {"published": report.published, "retried": report.retried, "failed": report.failed,
            "missed": report.missed, "waiting": report.waiting, "unusable": report.unusable,
            "problems": run.problems}


@flow(name="publish_due", flow_run_name=partial(run_name, "publish_due"), timeout_seconds=TIMEOUT + 300,
      on_failure=[notify_failure])
def publish_due_flow(root: str | None = None, batch: int = 50, now: str | None = None) -> dict:
    """`root`: the content root (default: DISSEMINATION_HOME on the worker); `now`: rehearse as if
    it were that moment (ISO 8601 with offset). Ends Failed when an item failed permanently or a
    channel could not be used; missed items are reported (log and notification), the run completes."""
    result = publish_batch(root, batch, now)
    if result["missed"]:
        notify("dissemination: items missed",
               f"{len(result['missed'])} item(s) passed their late tolerance and were not posted: "
               + ", ".join(result["missed"]))
    problems = result["problems"]
    if problems:
        raise RunFailed("; ".join(problems) + " (see `dissemination status`)")
    return result


if __name__ == "__main__":
    publish_due_flow()
