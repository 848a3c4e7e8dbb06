"""Prefect flow `bounces`: apply the bounce mailbox's reports (DSNs, complaints) to the ledger."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from dissemination.publish.bouncebox import read_bounces
from flows._common import ledger_for, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
def apply_reports(root: str) -> dict:
    """One task: a report is marked read once applied, and applying one twice changes nothing."""
    logger = get_run_logger()
    ledger = ledger_for(root)
    try:
        reports = read_bounces(Path(root).resolve(), ledger)
    finally:
        ledger.close()
    out = {}
    for report in reports:
        if report.run is None:
            logger.error("bounces: %s: %s", report.channel, report.error)
            out[report.channel] = {"error": report.error}
            continue
        run = report.run
        for line in run.sender:  # our sending setup is refused: a person must act
            logger.error("bounces: %s: the receiving server refuses our mail: %s", report.channel, line)
        out[report.channel] = {"messages": run.messages, "hard": len(run.hard), "soft": len(run.soft),
                               "complaints": len(run.complaints), "refused_us": len(run.sender)}
    return out


@flow(name="bounces")
def bounces_flow(root: str = ".") -> dict:
    return apply_reports(root)


if __name__ == "__main__":
    bounces_flow()
