"""Prefect flow `report`: write the stuurgroep report and show it in the Prefect UI as a Markdown
and a table artifact."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from dissemination.periods import current_quarter, parse_period
from dissemination.report import figure_rows, make_report, markdown_summary
from flows._common import content_root, ledger_for, notify_failure, run_name, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only, cache_policy=NO_CACHE,
      timeout_seconds=30 * 60)
def write(root: str | None, period: str | None, out: str | None) -> dict:
    logger = get_run_logger()
    now = dt.datetime.now(dt.timezone.utc)
    chosen = parse_period(period) if period else current_quarter(now)
    base = content_root(root)
    ledger = ledger_for(root)
    try:
        report, files = make_report(base, ledger, chosen, Path(out) if out else None, now)
    finally:
        ledger.close()
    key = f"stuurgroep-{chosen.label.lower().replace('..', '-to-')}"
    create_markdown_artifact(markdown_summary(report, files), key=key,
                             description=f"Verspreidingsrapport {chosen.dutch()}")
    create_table_artifact(figure_rows(report), key=f"{key}-cijfers",
                          description=f"Cijfers {chosen.dutch()} (leeg = n.b., zie kolom reden)")
    logger.info("report %s written to %s", chosen.label, files.html)
    return {"html": str(files.html), "figures_csv": str(files.figures_csv),
            "publications": int(report.totals.current["publications"].value)}


@flow(name="report", flow_run_name=partial(run_name, "report"), timeout_seconds=45 * 60,
      on_failure=[notify_failure])
def report_flow(root: str | None = None, period: str | None = None, out: str | None = None) -> dict:
    return write(root, period, out)


if __name__ == "__main__":
    report_flow()
