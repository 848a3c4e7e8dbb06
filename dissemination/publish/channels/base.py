"""The channel contract: one class per channel kind (in the manner of Apprise), found by its kind.

Every channel declares what it can do (`Capabilities`) and implements `preflight()` and
`publish(claim) -> Receipt`; its other hooks have defaults (`Channel`). A channel raises
`PublishError` to say how a failure must be treated; anything else it raises is treated as an
outcome-unknown retry.
"""

from __future__ import annotations

import abc
import datetime as dt
import email.utils
import functools
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from dissemination.contained import OutsideRoot, inside
from dissemination.load.models import IMAGE_TYPES as IMAGE_FILE_TYPES
from dissemination.load.models import ChannelSettings, EnvName, Stakeholder
from dissemination.publish.channels.text import grapheme_length
from dissemination.publish.credentials import (CredentialStore, CredentialStoreError, Token, auth_command, default_store,
                                                token_for)
from dissemination.records import Claim, LiveLimits, Receipt, Snapshot
from dissemination.redact import redact

UTC = dt.timezone.utc

if TYPE_CHECKING:
    from dissemination.ledger import Ledger


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for all HTTP clients of the channels (httpx's default: certifi's CA
    bundle): loading the bundle takes ~70 ms each time, and a publish run makes a client per
    channel (the collector one per worker thread)."""
    import httpx

    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Metric:
    """A figure a channel reads (`fetch_metrics` stores it under `name`) and what the report
    counts it as: "reach", "reactions", "comments", "shares", "quotes", "clicks", or "rejected"
    (taken off the reach: e-mail messages refused after they were sent)."""

    name: str
    counts_as: str


@dataclass(frozen=True)
class Capabilities:
    """What a channel accepts and how it is read: one declaration that `check`, rendering,
    `preview`, publishing and measuring all read (the channel's `capabilities_of(settings)`)."""

    kind: str
    label: str  # how reports name the channel's kind ("Mastodon", "E-mail")
    medium: str = "social"  # utm_medium of its links
    markup: str = "plain"  # "plain", "little" (LinkedIn's escaped text) or "html"
    max_length: int | None = None  # None: no limit
    unit: str = "characters"  # what `max_length` counts, as messages name it
    url_weight: int | None = None  # characters a URL counts for, where the channel fixes it
    max_images: int = 0  # images a post may carry (0: none are sent)
    image_bytes: int | None = None  # the largest image file it takes
    image_types: tuple[str, ...] = ()  # MIME types of the images it takes (empty: any `check` allows)
    alt_length: int | None = None  # the longest alt text it takes
    max_html_bytes: int | None = None  # a newsletter's HTML (Gmail clips longer ones)
    newsletter: bool = False  # rendered as a newsletter issue (subject, text and HTML), not a post
    link_card: bool = False  # a post's link is shown as a card with a title and description
    rate_per_minute: int | None = None  # publications (e-mail: messages) sent per minute at most
    # A repeat with the same idempotency key cannot make a second publication (what the retries
    # of a publish run rely on; the contract test holds every channel that says so to it).
    idempotent: bool = False
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


def wait_seconds(headers: dict[str, str]) -> float | None:
    """How long a 429 asks us to wait, by the server's own clock: Retry-After (seconds or an
    HTTP date), else the reset of the rate-limit window (Mastodon's X-RateLimit-Reset in
    ISO-8601, a PDS's RateLimit-Reset in epoch seconds) less the server's Date. None: not said."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        server_now = email.utils.parsedate_to_datetime(lower["date"]) if "date" in lower else dt.datetime.now(UTC)
    except (TypeError, ValueError):
        server_now = dt.datetime.now(UTC)
    retry_after = lower.get("retry-after", "").strip()
    if retry_after:
        if retry_after.isdigit():
            return float(retry_after)
        try:
            return (email.utils.parsedate_to_datetime(retry_after) - server_now).total_seconds()
        except (TypeError, ValueError):
            pass
    reset = (lower.get("x-ratelimit-reset") or lower.get("ratelimit-reset") or "").strip()
    if reset:
        try:
            moment = (dt.datetime.fromtimestamp(float(reset), UTC) if reset.replace(".", "", 1).isdigit()
                      else dt.datetime.fromisoformat(reset.replace("Z", "+00:00")))
        except ValueError:
            return None
        return (moment - server_now).total_seconds()
    return None


class ReadBackError(Exception):
    """Read-back could not say whether the publication exists (the read failed or was refused)."""


def content_file(root: Path, relative: str) -> Path:
    """A file the content names (an image to upload), checked again at publish time: it may have
    become a link to outside the content root since `check`."""
    try:
        return inside(root, relative, "image")
    except OutsideRoot as exc:
        raise PublishError(f"{exc} (run `dissemination check`)", permanent=True) from None


@dataclass(frozen=True)
class OpenedChannel:
    channel: "Channel"
    note: str | None  # said plainly to the user when a channel falls back to the outbox


# The images `check` lets through (by file name: .jpg, .png, .gif, .webp), as MIME types.
IMAGE_TYPES = tuple(sorted(set(IMAGE_FILE_TYPES.values())))


# --- the channel classes, by kind ------------------------------------------------------------------

_REGISTRY: dict[str, type["Channel"]] = {}
_PACKAGE = "dissemination.publish.channels"
# Modules of the package that hold shared code, not a channel kind.
SHARED_MODULES = frozenset({"base", "text"})


@functools.cache
def kinds() -> tuple[str, ...]:
    """Every channel kind: the modules of `dissemination/publish/channels/` (a module per kind,
    named after it). Listed without importing them."""
    import importlib
    import pkgutil

    package = importlib.import_module(_PACKAGE)
    return tuple(sorted(name for _, name, _ in pkgutil.iter_modules(package.__path__)
                        if name not in SHARED_MODULES and not name.startswith("_")))


def channel_class(kind: str) -> type["Channel"] | None:
    """The channel class of a kind, its module imported on first use; None for an unknown kind."""
    found = _REGISTRY.get(kind)
    if found is None and kind in kinds():
        import importlib

        importlib.import_module(f"{_PACKAGE}.{kind}")
        found = _REGISTRY.get(kind)
    return found


def class_of(config: ChannelSettings) -> type["Channel"]:
    """The channel class of settings read from channels.yaml (whose kind is known by then)."""
    found = channel_class(config.kind)
    if found is None:
        raise ValueError(f"unknown channel kind '{config.kind}'")
    return found


def settings_model(kind: str) -> type[ChannelSettings] | None:
    found = channel_class(kind)
    return found.settings if found is not None else None


def capabilities_of(config: ChannelSettings) -> Capabilities:
    return class_of(config).capabilities_of(config)


class Channel(abc.ABC):
    """One kind of channel: its settings, what it accepts, how its text is counted and escaped,
    what it sends, how it opens itself, and the adapter that publishes and reads engagement.

    A subclass that sets `kind` is registered for that kind when its module is imported; its
    module is `dissemination/publish/channels/<kind>.py` (see docs/channels.md). Keep the module
    quick to import: heavy client libraries are imported inside the methods that use them, since
    `check` and `plan` import the module of every kind channels.yaml names.
    """

    kind: ClassVar[str]
    settings: ClassVar[type[ChannelSettings]]
    # What `fetch_metrics` reads, whatever the settings (the report needs every kind's, configured or not).
    metrics: ClassVar[tuple[Metric, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            _REGISTRY[kind] = cls

    def __init__(self, channel_id: str, config: ChannelSettings, root: Path, token: Token | None = None,
                 transport: Any = None) -> None:
        """The one constructor of every adapter. `token`: what `open` found to publish with (for
        channels signed in to); `transport`: where requests go instead of the network (a test
        server's, or the outbox's)."""
        self.id = channel_id
        self.config = config
        self.root = root
        self.token = token
        self.transport = transport
        self.capabilities = self.capabilities_of(config)
        self.live: LiveLimits | None = None  # limits a preflight read from the server, if it reads any

    # --- what the kind is (no adapter needed) ----------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def capabilities_of(cls, config: ChannelSettings) -> Capabilities:
        """What a channel with these settings accepts (its server's limits, once read, are in
        `config`: see load.project.apply_live_limits)."""

    @classmethod
    def text(cls, plain: str, capabilities: Capabilities) -> tuple[str, int]:
        """A rendered post as it is sent, and its length as the platform counts it."""
        return plain, grapheme_length(plain)

    @classmethod
    def mention(cls, stakeholder: Stakeholder) -> str | None:
        """A stakeholder named in the channel's own syntax; None: by plain name. By default the
        account the stakeholder map gives for this kind under `accounts:`, as written."""
        return stakeholder.accounts.get(cls.kind)

    @classmethod
    def outbox_request(cls, claim: Claim, config: ChannelSettings) -> dict[str, Any]:
        """What the outbox writes for a claim: the request that would have been made."""
        return {"json": claim.payload}

    @classmethod
    def with_live_limits(cls, config: ChannelSettings, limits: LiveLimits) -> ChannelSettings | None:
        """The settings with the limits the channel's server reported (kept in the ledger by a
        preflight: `live`) in place of the declared ones; None when they do not apply (another
        server, or a kind whose server reports none)."""
        return None

    @classmethod
    def limits_text(cls, config: ChannelSettings) -> str | None:
        """The limits `check` names for a kind whose server reports its own (see `with_live_limits`)."""
        return None

    @classmethod
    def open(cls, channel_id: str, config: ChannelSettings, root: Path,
             credentials: CredentialStore | None = None) -> OpenedChannel:
        """The adapter when it has what it needs to publish, else the outbox with a note saying
        what is missing. `credentials`: the store `dissemination auth` wrote to (default: the
        user's). The default: secrets from the environment variables the settings name."""
        missing = [n for n in config.secret_envs() if not os.environ.get(n)]
        if missing:
            return cls.fallback(channel_id, config, root, f"{', '.join(missing)} not set")
        return OpenedChannel(cls(channel_id, config, root), None)

    @classmethod
    def fallback(cls, channel_id: str, config: ChannelSettings, root: Path, why: str) -> OpenedChannel:
        """The outbox standing in for this channel, with a note saying why."""
        outbox = channel_class("outbox")
        assert outbox is not None
        return OpenedChannel(outbox(channel_id, config, root),
                             f"{channel_id}: {why}, so nothing is published to {config.kind}; writing what "
                             f"would be sent to outbox/{channel_id}/")

    # --- the adapter -------------------------------------------------------------------------------

    def bind(self, ledger: Ledger, clock: Callable[[], dt.datetime] | None = None,
             lease: dt.timedelta | None = None, progress: Callable[[str, int, int], None] | None = None) -> None:
        """The run's ledger, clock, lease and progress callback, before `preflight`. Channels that
        keep state in the ledger (e-mail: per-recipient rows, the suppression list) use it."""

    @abc.abstractmethod
    def preflight(self) -> Health:
        """Whether the channel can publish now (credentials, settings, the server's limits)."""

    @abc.abstractmethod
    def publish(self, claim: Claim) -> Receipt: ...

    def read_back(self, claim: Claim, since: dt.datetime) -> Receipt | None:
        """Look for the claim's publication among the account's own posts since `since`: its
        receipt if found, None when the channel proves it absent; raises ReadBackError when it
        cannot tell. Needed by channels with a `key_retention`."""
        raise ReadBackError(f"{self.kind} cannot look up earlier publications")

    def prepare_reads(self) -> None:
        """Called by the collector before it lets a read go: make clients here, outside the
        rate-limited part."""

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Readings for published items (item id -> receipt); unavailable ones carry the reason."""
        return [Snapshot.unavailable(item, "engagement", now, f"{self.kind}:{self.id}",
                                     f"{self.kind}: engagement is not read") for item in receipts]


class TokenSettings(ChannelSettings):
    # When set in the environment this token is used; otherwise the one `dissemination auth` stored.
    token_env: EnvName | None = None


class TokenChannel(Channel):
    """A channel that publishes with a token: the environment variable `token_env` names, else the
    one `dissemination auth <kind> <channel>` stored for the same server (`config.endpoint()`)."""

    @classmethod
    def open(cls, channel_id: str, config: ChannelSettings, root: Path,
             credentials: CredentialStore | None = None) -> OpenedChannel:
        assert isinstance(config, TokenSettings)
        # An environment token wins (token_for), so the keyring (~0.2 s to import and probe) is
        # only opened when there is none.
        if credentials is None and not (config.token_env and os.environ.get(config.token_env)):
            try:
                credentials = default_store(root)
            except CredentialStoreError as exc:
                return cls.fallback(channel_id, config, root, str(exc))
        token, why = token_for(channel_id, config.endpoint(), config.token_env, credentials)
        if token is None:
            how = f"`{auth_command(config.kind, channel_id)}`" + (f" or set {config.token_env}" if config.token_env else "")
            opened = cls.fallback(channel_id, config, root, str(why))
            return OpenedChannel(opened.channel, f"{opened.note} (to publish: {how})")
        return OpenedChannel(cls(channel_id, config, root, token), None)

