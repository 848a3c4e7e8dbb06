"""What `status` shows: the items by state, overdue and waiting first, and the next post to go out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
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


def status_rows(ledger: Ledger, now: dt.datetime) -> list[dict]:
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


# Missed in the last day: marked missed (updated) within it, so an e-mail's day of tolerance does
# not hide it. Like overdue items, they call for attention even outside the window shown.
MISSED_RECENTLY = dt.timedelta(days=1)


@dataclass
class StatusView:
    """`status` at a moment: the items in the window asked for, and what calls for a person."""
    rows: list[dict[str, Any]]  # the items from `first` to `last`
    every: list[dict[str, Any]]  # all items
    missed_recently: set[str]
    liveness: list[str]  # the heartbeat's problems (dissemination/liveness.py)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        return counts

    @property
    def overdue(self) -> int:
        return sum(r["overdue"] for r in self.every)

    @property
    def summary(self) -> dict[str, Any]:
        return {"states": self.counts, "overdue": self.overdue, "missed_last_day": len(self.missed_recently),
                "shown": len(self.rows), "total": len(self.every)}

    @property
    def needs_attention(self) -> bool:
        """Something overdue, waiting for a person or missed in the last day, in the window or
        not, or `serve` stopped beating: `status` exits 2."""
        return bool(self.liveness or self.overdue or self.missed_recently
                    or any(row["state"] == "waiting" for row in self.every))


def status_view(ledger: Ledger, now: dt.datetime, first: dt.datetime | None = None,
                last: dt.datetime | None = None) -> StatusView:
    """The items with a slot in [first, last) (either open), and everything that calls for a person."""
    from dissemination.liveness import problems

    every = status_rows(ledger, now)
    marked = {row["id"]: row["updated_at"] for row in ledger.items(["missed"])}
    recent = {i for i, at in marked.items() if at.replace(tzinfo=UTC) >= now - MISSED_RECENTLY}

    def slot(row: dict[str, Any]) -> dt.datetime:
        return dt.datetime.fromisoformat(row["slot"].replace("Z", "+00:00"))

    rows = [r for r in every if (first is None or slot(r) >= first) and (last is None or slot(r) < last)]
    return StatusView(rows, every, recent, problems(ledger, now))
