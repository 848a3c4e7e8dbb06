"""Prefect flow `kits`: write every partner's content kit for a period (default: the next
quarter) and, with send, queue each for its partner's contact (the publish flow sends it, once)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task

from dissemination.partners.kits import make_kits, next_quarter
from dissemination.periods import parse_period
from dissemination.publish.tokens import Signer, secret_from_env
from flows._common import ledger_for, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
def build(root: str, period: str | None, send: bool) -> dict:
    logger = get_run_logger()
    now = dt.datetime.now(dt.timezone.utc)
    chosen = parse_period(period) if period else next_quarter(now)
    ledger = ledger_for(root)
    try:
        kits, queued = make_kits(Path(root).resolve(), ledger, chosen, None, now, Signer(secret_from_env()),
                                 send=send)
    finally:
        ledger.close()
    for line in queued:
        logger.info("kit %s: %s", chosen.label, line)
    logger.info("kits %s written for %d partner(s)", chosen.label, len(kits))
    return {"period": chosen.label, "kits": {k.partner.id: str(k.path) for k in kits},
            "entries": {k.partner.id: len(k.entries) for k in kits}, "queued": queued}


@flow(name="kits")
def kits_flow(root: str = ".", period: str | None = None, send: bool = False) -> dict:
    return build(root, period, send)


if __name__ == "__main__":
    kits_flow()
