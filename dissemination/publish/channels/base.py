"""The channel contract, one plugin class per channel kind (in the manner of Apprise).

Every channel declares what it can do (`Capabilities`) and implements `preflight()` and
`publish(claim) -> Receipt`. A channel raises `PublishError` to say how a failure must be
treated; anything else it raises is treated as an outcome-unknown retry.
"""

from __future__ import annotations

import datetime as dt
import functools
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dissemination.contained import OutsideRoot, inside
from dissemination.records import Claim, Receipt, Snapshot
from dissemination.redact import redact


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for all HTTP clients of the channels (httpx's default: certifi's CA
    bundle): loading the bundle takes ~70 ms each time, and a publish run makes a client per
    channel (the collector one per worker thread)."""
    import httpx

    return httpx.create_ssl_context()


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
    # How long the platform recognises a repeat of the same publication (Mastodon keeps an
    # Idempotency-Key for an hour). An unknown item first sent longer ago than this (less a
    # margin) is read back before it is sent again (`Channel.read_back`). None: forever.
    key_retention: dt.timedelta | None = None


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str
    credential_broken: bool = False
    expires_at: dt.datetime | None = None
    warning: str | None = None  # ok for now, but someone must act (e.g. sign in again before expiry)

    def __post_init__(self) -> None:
        # What a server answered may quote a token: redacted before anyone stores or prints it.
        object.__setattr__(self, "message", redact(self.message))
        object.__setattr__(self, "warning", redact(self.warning))


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
        reason = redact(reason)  # a server's answer may quote a token (see dissemination.redact)
        super().__init__(reason)
        self.bounded = bounded
        self.reason = reason
        self.permanent = permanent
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class ReadBackError(Exception):
    """Read-back could not say whether the publication exists (the read failed or was refused)."""


def content_file(root: Path, relative: str) -> Path:
    """A file the content names (an image to upload), checked again at publish time: it may have
    become a link to outside the content root since `check`."""
    try:
        return inside(root, relative, "image")
    except OutsideRoot as exc:
        raise PublishError(f"{exc} (run `dissemination check`)", permanent=True) from None


class Channel(Protocol):
    id: str
    kind: str
    capabilities: Capabilities

    def preflight(self) -> Health: ...

    def publish(self, claim: Claim) -> Receipt: ...

    def read_back(self, claim: Claim, since: dt.datetime) -> Receipt | None:
        """Look for the claim's publication among the account's own posts since `since`: its
        receipt if found, None when the channel proves it absent; raises ReadBackError when it
        cannot tell. Only channels with a `key_retention` offer it."""
        ...

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Readings for published items (item id -> receipt); unavailable ones carry the reason.
        A channel may also offer `prepare_reads()`, which the collector calls before it lets a
        read go (to make clients outside the rate-limited part)."""
        ...
