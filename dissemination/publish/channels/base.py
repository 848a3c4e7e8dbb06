"""The channel contract, one plugin class per channel kind (in the manner of Apprise).

Every channel declares what it can do (`Capabilities`) and implements `preflight()` and
`publish(claim) -> Receipt`. A channel raises `PublishError` to say how a failure must be
treated; anything else it raises is treated as an outcome-unknown retry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from dissemination.ledger import Claim, Receipt, Snapshot


@dataclass(frozen=True)
class Capabilities:
    max_length: int | None  # in the channel's own unit of counting
    url_weight: int | None  # characters a URL counts for, where the channel fixes it
    media: bool
    rate_per_minute: int | None
    idempotent: bool  # a repeat with the same key cannot create a second publication
    # Reading engagement: publications per `fetch_metrics` call (one request where the platform
    # batches), calls in flight at once, and calls started per minute (None: unlimited).
    read_batch: int = 1
    read_concurrency: int = 1
    read_per_minute: int | None = None


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str
    credential_broken: bool = False
    expires_at: dt.datetime | None = None
    warning: str | None = None  # ok for now, but someone must act (e.g. sign in again before expiry)


class PublishError(Exception):
    """How a failed publication must be treated.

    permanent: never retry (e.g. 422: the text is rejected); the item is failed with `reason`.
    outcome_unknown: the request may have been carried out (timeout, 5xx after sending).
    retry_after: when to try again (rate limits).
    bounded: the channel ends the retries itself (a newsletter's deferred recipients, until the
    edition expires), so the pipeline's cap on attempts does not apply.
    """

    def __init__(self, reason: str, *, permanent: bool = False, outcome_unknown: bool = False,
                 retry_after: dt.timedelta | None = None, bounded: bool = False) -> None:
        super().__init__(reason)
        self.bounded = bounded
        self.reason = reason
        self.permanent = permanent
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class Channel(Protocol):
    id: str
    kind: str
    capabilities: Capabilities

    def preflight(self) -> Health: ...

    def publish(self, claim: Claim) -> Receipt: ...

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Readings for published items (item id -> receipt); unavailable ones carry the reason.
        A channel may also offer `prepare_reads()`, which the collector calls before it lets a
        read go (to make clients outside the rate-limited part)."""
        ...
