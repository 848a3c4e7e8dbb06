"""Is publishing alive? Answered from the ledger alone, so it works without Prefect: used by
`dissemination status` (exit 2) and `GET /health` of `dissemination web` (503).

Unhealthy when items are overdue (planned or unknown more than 10 minutes past their slot, or a
lease that expired), or when `serve` has beaten before but no beat is fresh: every running serve
beats at least once per publish period; none for STALE_PERIODS periods means the scheduler died
(killed, machine down) even while nothing is due. No heartbeat at all is not a problem: under
Prefect nothing beats here, and a serve that stopped cleanly removes its beat.
"""

from __future__ import annotations

import datetime as dt

from dissemination.ledger import Ledger
from dissemination.status import status_rows

STALE_PERIODS = 3


def problems(ledger: Ledger, now: dt.datetime) -> list[str]:
    """What is wrong, one sentence each; empty when publishing is alive."""
    found = []
    beats = ledger.heartbeats()
    if beats and not any(now - b["beat_at"] <= dt.timedelta(seconds=STALE_PERIODS * b["every_seconds"])
                         for b in beats):
        last = max(beats, key=lambda b: b["beat_at"])
        age = int((now - last["beat_at"]).total_seconds())
        found.append(f"serve heartbeat is stale: last beat {age}s ago at "
                     f"{last['beat_at'].isoformat(timespec='seconds').replace('+00:00', 'Z')} from {last['worker']} "
                     f"(it beats every {last['every_seconds']}s; is `dissemination serve` running?)")
    overdue = [row for row in status_rows(ledger, now) if row["overdue"]]
    if overdue:
        found.append(f"{len(overdue)} item(s) overdue, the oldest {overdue[0]['id']} due at {overdue[0]['slot']} "
                     f"(see `dissemination status`)")
    return found
