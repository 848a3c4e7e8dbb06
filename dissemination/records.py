"""What flows between the steps: a planned item, the claim a channel publishes, its receipt, and
the engagement snapshots read back. Plain records with no database behind them, so the channel
contract (`dissemination.publish.channels.base`) does not depend on the ledger's SQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

from dissemination.redact import redact


@dataclass(frozen=True)
class PlannedItem:
    """One publication the plan wants: (campaign, post, audience, channel, occurrence)."""

    campaign: str
    post: str
    audience: str
    channel: str
    occurrence: int
    slot_utc: dt.datetime
    timezone: str
    payload: dict[str, Any]
    knowledge: str | None = None
    state: str = "planned"  # or "held"
    reason: str | None = None
    # The audiences the item serves; for a shared social item (audience '*') all of them.
    audiences: tuple[str, ...] = ()

    @property
    def served(self) -> tuple[str, ...]:
        return self.audiences or ((self.audience,) if self.audience != "*" else ())

    @property
    def idempotency_key(self) -> str:
        # Identity only: never the slot time or the text, so an edited or rescheduled post keeps
        # its key and a published one is never sent again.
        identity = "\x1f".join([self.campaign, self.post, self.audience, self.channel, str(self.occurrence)])
        return hashlib.sha256(identity.encode()).hexdigest()[:40]

    @property
    def id(self) -> str:
        return self.idempotency_key[:16]


@dataclass(frozen=True)
class Claim:
    id: str
    idempotency_key: str
    campaign: str
    post: str
    audience: str
    channel: str
    slot_utc: dt.datetime
    payload: dict[str, Any]
    attempt_id: int
    attempt_count: int
    worker: str
    # Set when the item was published before: a newsletter whose `unknown` recipients an operator
    # re-opened (`dissemination resend-unknown`). Its audience was fixed at that publication.
    published_at: dt.datetime | None = None
    # When the item was first sent (with this key), and whether an earlier attempt may have
    # reached the channel (it ended `unknown`, or its run crashed holding the lease): such an item
    # stays unknown until the channel says what happened (see pipeline.publish_due, read-back).
    first_claimed_at: dt.datetime | None = None
    outcome_unknown: bool = False


@dataclass(frozen=True)
class LiveLimits:
    """A channel's limits as its server reported them (see schema.channel_limits)."""
    channel: str
    server: str
    max_characters: int | None
    characters_per_url: int | None
    description_limit: int | None
    max_media: int | None
    image_size_limit: int | None
    read_at: dt.datetime


@dataclass(frozen=True)
class Receipt:
    remote_id: str
    url: str | None = None


class Snapshot(NamedTuple):
    """One reading of one metric of a published item; `value` is None when not `available`.
    A named tuple rather than a frozen dataclass: a refresh makes one per metric per publication
    in its reader threads, and a tuple is made in a third of the time (bench/metrics.py)."""
    item_id: str
    metric: str
    value: float | None
    fetched_at: dt.datetime
    source: str
    available: bool = True
    reason: str | None = None

    @classmethod
    def unavailable(cls, item_id: str, metric: str, fetched_at: dt.datetime, source: str,
                    reason: str) -> "Snapshot":
        return cls(item_id, metric, None, fetched_at, source, False, redact(reason))
