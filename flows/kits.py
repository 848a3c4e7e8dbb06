"""Prefect flow `kits`: write every partner's content kit for a period (default: the next
quarter) and, with send, queue each for its partner's contact (the publish flow sends it, once)."""

from __future__ import annotations

import datetime as dt
from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from dissemination.partners.kits import make_kits, next_quarter
from dissemination.periods import parse_period
from dissemination.publish.tokens import Signer, secret_from_env
from flows._common import content_root, ledger_for, notify_failure, run_name, transient_only


@task(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only, cache_policy=NO_CACHE,
      timeout_seconds=10 * 60)
def build(root: str | None, period: str | None, send: bool) -> dict:
    logger = get_run_logger()
    now = dt.datetime.now(dt.timezone.utc)
    chosen = parse_period(period) if period else next_quarter(now)
    ledger = ledger_for(root)
    try:
        kits, queued = make_kits(content_root(root), ledger, chosen, None, now, Signer(secret_from_env()),
                                 send=send)
    finally:
        ledger.close()
    for line in queued:
        logger.info("kit %s: %s", chosen.label, line)
    logger.info("kits %s written for %d partner(s)", chosen.label, len(kits))
    return {"period": chosen.label, "kits": {k.partner.id: str(k.path) for k in kits},
            "entries": {k.partner.id: len(k.entries) for k in kits}, "queued": queued}


@flow(name="kits", flow_run_name=partial(run_name, "kits"), on_failure=[notify_failure])
def kits_flow(root: str | None = None, period: str | None = None, send: bool = False) -> dict:
    """`root`: the content root (default: DISSEMINATION_HOME on the worker)."""
    return build(root, period, send)


if __name__ == "__main__":
    kits_flow()
