"""What `status` shows: the items by state, overdue and waiting first, and the next post to go out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dissemination.ledger import Ledger

UTC = dt.timezone.utc


OVERDUE_AFTER = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class NextSlot:
    """The next moment something goes out: every planned item of one post at that slot."""
    slot: dt.datetime  # UTC
    timezone: str
    campaign: str
    post: str
    channels: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"slot": self.slot.isoformat().replace("+00:00", "Z"), "timezone": self.timezone,
                "local": self.slot.astimezone(ZoneInfo(self.timezone)).isoformat(), "campaign": self.campaign,
                "post": self.post, "channels": list(self.channels)}

    def describe(self) -> str:
        local = self.slot.astimezone(ZoneInfo(self.timezone))
        return (f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} {self.campaign}/{self.post} "
                f"({', '.join(self.channels)})")


def next_slot(ledger: Ledger, now: dt.datetime) -> NextSlot | None:
    """What will be published next after `now`, or None when nothing is planned (held items wait
    for approval and are not counted)."""
    rows = ledger.next_planned(now)
    if not rows:
        return None
    first = rows[0]
    channels = sorted({r["channel"] for r in rows if (r["campaign"], r["post"]) == (first["campaign"], first["post"])})
    return NextSlot(first["slot_utc"].replace(tzinfo=UTC), first["timezone"], first["campaign"], first["post"],
                    tuple(channels))


def status_rows(ledger: Ledger, now: dt.datetime) -> list[dict]:  # type: ignore[type-arg]
    """Items for `status`: overdue and waiting for a person first, then held, then the rest by slot."""
    rows = []
    for row in ledger.items():
        slot = row["slot_utc"].replace(tzinfo=UTC)
        lease = row["lease_expires"].replace(tzinfo=UTC) if row["lease_expires"] else None
        overdue = (row["state"] in ("planned", "unknown") and slot + OVERDUE_AFTER < now) or (
            row["state"] == "claimed" and lease is not None and lease < now)
        rows.append({
            "id": row["id"], "campaign": row["campaign"], "post": row["post"], "audience": row["audience"],
            "channel": row["channel"], "slot": slot.isoformat().replace("+00:00", "Z"),
            "timezone": row["timezone"], "state": row["state"], "overdue": overdue, "reason": row["reason"],
            "attempts": row["attempt_count"], "remote_id": row["remote_id"], "url": row["url"],
        })
    order = {"waiting": 0, "held": 1}  # waiting: a person must look (`dissemination resolve`)
    rows.sort(key=lambda r: (0 if r["overdue"] else order.get(r["state"], 2), r["slot"], r["id"]))
    return rows
