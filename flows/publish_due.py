"""Prefect flow `publish_due`: publish every due item exactly once, in batches."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from dissemination.pipeline import publish_due
from flows._common import credential_store, ledger_for, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
def publish_batch(root: str, batch: int) -> dict:
    """One task for the whole run: items are claimed in batches under leases, so a retried or
    parallel task can never send an item twice."""
    logger = get_run_logger()
    ledger = ledger_for(root)
    try:
        report = publish_due(Path(root).resolve(), ledger, batch=batch, credentials=credential_store())
    finally:
        ledger.close()
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
            "missed": report.missed, "waiting": report.waiting}


@flow(name="publish_due")
def publish_due_flow(root: str = ".", batch: int = 50) -> dict:
    return publish_batch(root, batch)


if __name__ == "__main__":
    publish_due_flow()
