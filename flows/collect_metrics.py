"""Prefect flow `collect_metrics`: read the engagement of recent publications into the ledger."""

from __future__ import annotations

import datetime as dt
from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from dissemination.pipeline import run_once
from flows._common import (content_root, credential_store, ledger_for, notify_failure, run_name,
                           secrets_into_environment, transient_only)


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only, cache_policy=NO_CACHE,
      timeout_seconds=30 * 60)
def collect(root: str | None, max_age_days: int) -> dict:
    """One task: readings carry the run's minute, so a retried task adds nothing twice."""
    logger = get_run_logger()
    secrets_into_environment(content_root(root))
    ledger = ledger_for(root)
    try:
        run = run_once(content_root(root), ledger, steps=("measure",), max_age=dt.timedelta(days=max_age_days),
                       credentials=credential_store())
    finally:
        ledger.close()
    if run.unmeasured:
        raise run.unmeasured
    report = run.metrics
    assert report is not None
    for note in report.notes:
        logger.warning("metrics: %s", note)
    logger.info("metrics: %d publication(s) in %d read(s); %d reading(s) added (%d unavailable)",
                report.publications, report.reads, report.added, report.unavailable)
    return {"publications": report.publications, "reads": report.reads, "added": report.added,
            "unavailable": report.unavailable}


@flow(name="collect_metrics", flow_run_name=partial(run_name, "collect_metrics"), timeout_seconds=45 * 60,
      on_failure=[notify_failure])
def collect_metrics_flow(root: str | None = None, max_age_days: int = 30) -> dict:
    return collect(root, max_age_days)


if __name__ == "__main__":
    collect_metrics_flow()
