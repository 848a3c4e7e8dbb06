"""Prefect flow `collect_metrics`: read the engagement of recent publications into the ledger."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task

from dissemination.measure import collect_metrics
from flows._common import credential_store, ledger_for, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
def collect(root: str, max_age_days: int) -> dict:
    """One task: readings carry the run's minute, so a retried task adds nothing twice."""
    logger = get_run_logger()
    ledger = ledger_for(root)
    try:
        report = collect_metrics(Path(root).resolve(), ledger, max_age=dt.timedelta(days=max_age_days),
                                 credentials=credential_store())
    finally:
        ledger.close()
    for note in report.notes:
        logger.warning("metrics: %s", note)
    logger.info("metrics: %d publication(s) in %d read(s); %d reading(s) added (%d unavailable)",
                report.publications, report.reads, report.added, report.unavailable)
    return {"publications": report.publications, "reads": report.reads, "added": report.added,
            "unavailable": report.unavailable}


@flow(name="collect_metrics")
def collect_metrics_flow(root: str = ".", max_age_days: int = 30) -> dict:
    return collect(root, max_age_days)


if __name__ == "__main__":
    collect_metrics_flow()
