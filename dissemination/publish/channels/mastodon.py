"""Mastodon through Mastodon.py (see /work/shared/platform_apis.md §1, §2).

Every status is posted with the claim's idempotency key as `Idempotency-Key`: the server keeps it
for an hour per account and answers a repeat with the original status (200), so a retry within
that hour after a timeout or a 5xx cannot post twice. Later, the key is forgotten: an unknown item
is then read back (`read_back`: the account's own statuses since the first attempt, matched on the
exact text sent and the media) before it is sent again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from dissemination.load import models as m
from dissemination.publish.channels.base import (IMAGE_TYPES, Capabilities, Health, Metric, PublishError, ReadBackError,
                                                    TokenChannel, TokenSettings, content_file, tls_context,
                                                    wait_seconds)
from dissemination.publish.channels.text import grapheme_length, replace_url_tokens
from dissemination.publish.credentials import Credential, Token, auth_command
from dissemination.records import Claim, LiveLimits, Receipt, Snapshot

if TYPE_CHECKING:  # Mastodon.py and requests take ~0.5 s to import: only when publishing or reading
    from mastodon import Mastodon, MastodonAPIError

UTC = dt.timezone.utc
REQUEST_TIMEOUT = 20  # seconds; the library's default of 300 would stall a whole publish run
KEY_RETENTION = dt.timedelta(hours=1)  # how long the server keeps an Idempotency-Key (§1.2)
CLOCK_SKEW = dt.timedelta(minutes=5)  # read-back looks this much before our first attempt
READ_BACK_PAGES = 10  # of 40 statuses: an account posting more in the window is not ours to guess


@functools.cache
def _session_class() -> type:
    import requests

    class _Session(requests.Session):
        """Mastodon.py's session, keeping the last answer's headers: the library reads
        X-RateLimit-Reset but neither Retry-After nor the server's Date beside it."""

        last_headers: dict[str, str] = {}

        def request(self, *args, **kwargs):
            response = super().request(*args, **kwargs)
            self.last_headers = dict(response.headers)
            return response

    return _Session


def _snowflake(moment: dt.datetime) -> str:
    """The smallest Mastodon id of that moment (milliseconds since the epoch, shifted 16 bits)."""
    return str(int(moment.timestamp() * 1000) << 16)


@dataclass(frozen=True)
class InstanceLimits:
    max_characters: int
    characters_reserved_per_url: int
    image_types: frozenset[str]  # empty: the server does not say
    image_size_limit: int | None
    description_limit: int | None
    version: str  # x.y.z, for Mastodon.py's version checks
    max_media: int | None = None


def _version(reported: object) -> str:
    """The server's x.y.z. A server that answers /api/v2/instance has the 4.0 API (v2 media came in
    3.1.4), so that is the floor when the string is a fork's own (e.g. GoToSocial's)."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", str(reported or ""))
    parts = tuple(int(p) for p in match.groups()) if match else (0, 0, 0)
    return ".".join(map(str, max(parts, (4, 0, 0))))


# Instance limits per base URL: they change only when the server is reconfigured, so one
# GET /api/v2/instance per process is enough (serve runs publish every few minutes).
_limits: dict[str, InstanceLimits] = {}
_limits_lock = threading.Lock()


def _api_message(exc: MastodonAPIError) -> str:
    # Mastodon.py raises ('Mastodon API returned error', status, reason, message). The message is
    # localized to the account's language, so it is reported as is and never branched on.
    args = exc.args
    status = args[1] if len(args) > 1 else "?"
    message = args[3] if len(args) > 3 and args[3] else (args[2] if len(args) > 2 else str(exc))
    return f"HTTP {status}: {message}"


def _status(exc: MastodonAPIError) -> int | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


# --- the kind: settings, capabilities, text ---------------------------------------------------------

class MastodonSettings(TokenSettings):
    kind: Literal["mastodon"]
    base_url: m.HttpUrl
    # Declared limits (Mastodon's defaults), used until a publish run or `status` has read the
    # instance's own (`configuration.statuses`, `configuration.media_attachments`).
    max_characters: Annotated[int, Field(ge=1)] = 500
    characters_reserved_per_url: Annotated[int, Field(ge=1)] = 23
    description_limit: Annotated[int, Field(ge=1)] = 1500  # alt text of an image
    visibility: Literal["public", "unlisted", "private"] = "public"
    language: str = "nl"
    # How long a publish run may wait for a rate limit to reset; a later reset leaves the item
    # planned for the next run instead.
    rate_limit_wait: m.Duration = dt.timedelta(seconds=30)
    # How long to wait for the server to process an uploaded image (202) before trying later.
    media_wait: m.Duration = dt.timedelta(seconds=60)
    scopes: str = "read:accounts read:statuses write:statuses write:media"

    def endpoint(self) -> str:
        return str(self.base_url).rstrip("/")


@functools.cache
def _mastodon_url_rule() -> re.Pattern[str]:
    """The URL rule Mastodon's server uses (twitter-text's), as shipped in Mastodon.py.

    Loaded from its module file on its own: importing the `mastodon` package would pull in
    `requests` and half a second of imports that `check` does not need."""
    import importlib.util

    spec = importlib.util.find_spec("mastodon")
    assert spec is not None and spec.submodule_search_locations
    file = Path(next(iter(spec.submodule_search_locations))) / "_url_regex.py"
    module_spec = importlib.util.spec_from_file_location("dissemination_mastodon_url_regex", file)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.url_regex


_COUNTED_TOKENS: dict[tuple[str, int], str] = {}  # the URL rule is slow; tokens repeat across renders
_REMOTE_MENTION = re.compile(r"(^|[^/\w])@(([a-z0-9_]+)@[a-z0-9.\-]+[a-z0-9]+)", re.IGNORECASE)


def mastodon_length(text: str, url_weight: int = 23, spoiler_text: str = "") -> int:
    """The length Mastodon's server computes for a status (server `StatusLengthValidator`):
    grapheme clusters, every URL as `url_weight` characters, a remote mention `@user@domain` as
    `@user`."""
    def counted(token: str) -> str:
        key = (token, url_weight)
        found = _COUNTED_TOKENS.get(key)
        if found is None:
            if len(_COUNTED_TOKENS) > 20_000:
                _COUNTED_TOKENS.clear()
            found = _COUNTED_TOKENS[key] = _mastodon_url_rule().sub(
                lambda u: u.group(2) + "x" * url_weight, token)
        return found

    if "://" in text:  # URLs never contain white space: run the big URL rule on candidates only
        text = replace_url_tokens(text, counted)
    if "@" in text:
        text = _REMOTE_MENTION.sub(r"\1@\3", text)
    return grapheme_length(text) + grapheme_length(spoiler_text)


def mastodon_status(claim: Claim, config: MastodonSettings) -> dict[str, Any]:
    """The status a claim is posted as (the outbox writes the same)."""
    body: dict[str, Any] = {
        "status": claim.payload["text"],
        "visibility": config.visibility,
        "language": config.language,
    }
    if claim.payload.get("image"):  # uploaded first (POST /api/v2/media), then sent as media_ids[]
        body["media"] = [{"file": claim.payload["image"], "description": claim.payload.get("image_alt")}]
    return body


# --- signing in (`dissemination auth mastodon <channel>`) -------------------------------------------

OOB = "urn:ietf:wg:oauth:2.0:oob"  # the authorization page shows the code, to paste at the prompt


@dataclass
class MastodonSignIn:
    """One sign-in: the app registration and the authorization URL to open."""

    channel: str
    config: MastodonSettings
    client_id: str
    client_secret: str
    url: str

    @property
    def base_url(self) -> str:
        return str(self.config.base_url).rstrip("/")

    @classmethod
    def start(cls, channel: str, config: MastodonSettings, previous: Credential | None) -> "MastodonSignIn":
        from mastodon import Mastodon
        from mastodon.errors import MastodonError

        from dissemination.publish.oauth import CLIENT_NAME, TIMEOUT, OAuthError, loopback

        base_url = str(config.base_url).rstrip("/")
        scopes = config.scopes.split()
        if previous and previous.client_id and previous.client_secret and previous.endpoint == base_url \
                and set(scopes) <= set((previous.scope or "").split()):
            client_id, client_secret = previous.client_id, previous.client_secret  # registered before
        else:
            try:
                client_id, client_secret = Mastodon.create_app(
                    CLIENT_NAME, scopes=scopes, redirect_uris=OOB, api_base_url=base_url,
                    request_timeout=TIMEOUT, user_agent=CLIENT_NAME)
            except (MastodonError, KeyError, ValueError) as exc:
                # create_app returns the error body as if it were the app; KeyError means refused
                raise OAuthError(f"{base_url} did not register the app ({type(exc).__name__}); check "
                                 f"base_url of channel '{channel}'") from None
        api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base_url,
                       request_timeout=TIMEOUT, user_agent=CLIENT_NAME)
        url = api.auth_request_url(redirect_uris=OOB, scopes=scopes, allow_http=loopback(base_url))
        return cls(channel, config, client_id, client_secret, url)

    def finish(self, code: str, now: dt.datetime) -> Credential:
        from mastodon import Mastodon
        from mastodon.errors import MastodonError

        from dissemination.publish.oauth import CLIENT_NAME, TIMEOUT, OAuthError, loopback

        scopes = self.config.scopes.split()
        api = Mastodon(client_id=self.client_id, client_secret=self.client_secret, api_base_url=self.base_url,
                       request_timeout=TIMEOUT, user_agent=CLIENT_NAME, ratelimit_method="throw")
        try:
            token = api.log_in(code=code.strip(), redirect_uri=OOB, scopes=scopes,
                               allow_http=loopback(self.base_url))
        except MastodonError as exc:
            # Mastodon.py's message may quote the request; ours names only what went wrong.
            what = "the code was not accepted" if "Invalid" in str(exc) else "not all scopes were granted"
            raise OAuthError(f"{self.base_url}: {what} ({type(exc).__name__}); run the command again "
                             "and paste the code the page shows") from None
        try:
            account = api.account_verify_credentials()
        except MastodonError as exc:
            raise OAuthError(f"{self.base_url} refused the new token ({type(exc).__name__})") from None
        return Credential(self.channel, "mastodon", self.base_url, token, obtained_at=now,
                          scope=" ".join(scopes), account=f"@{account.get('acct')}",
                          client_id=self.client_id, client_secret=self.client_secret)


# --- the adapter ---------------------------------------------------------------------------------

class MastodonChannel(TokenChannel):
    kind = "mastodon"
    settings = MastodonSettings
    metrics = (Metric("followers", "reach"), Metric("favourites", "reactions"), Metric("replies", "comments"),
               Metric("reblogs", "shares"), Metric("quotes", "quotes"))
    # The token's budget is 300 requests / 5 min for every endpoint (§1.6): reads take at most
    # 50 a minute, so publishing keeps 10 a minute.
    READS_PER_MINUTE = 50
    BATCH = 20  # ids per GET /api/v1/statuses?id[]=…

    @classmethod
    def capabilities_of(cls, config: m.ChannelSettings) -> Capabilities:
        assert isinstance(config, MastodonSettings)
        return Capabilities(
            "mastodon", "Mastodon", max_length=config.max_characters, url_weight=config.characters_reserved_per_url,
            max_images=4, image_bytes=m.MAX_IMAGE_BYTES, alt_length=config.description_limit,
            image_types=IMAGE_TYPES,
            read_batch=cls.BATCH, read_concurrency=config.metrics_concurrency,
            read_per_minute=config.metrics_per_minute or cls.READS_PER_MINUTE, key_retention=KEY_RETENTION,
            idempotent=True)

    @classmethod
    def with_live_limits(cls, config: m.ChannelSettings, limits: LiveLimits) -> m.ChannelSettings | None:
        if not isinstance(config, MastodonSettings) or config.endpoint() != limits.server:
            return None
        update = {k: v for k, v in (("max_characters", limits.max_characters),
                                    ("characters_reserved_per_url", limits.characters_per_url),
                                    ("description_limit", limits.description_limit)) if v}
        return config.model_copy(update=update)

    @classmethod
    def limits_text(cls, config: m.ChannelSettings) -> str | None:
        assert isinstance(config, MastodonSettings)
        return (f"{config.max_characters} characters, URLs as {config.characters_reserved_per_url}, "
                f"alt text {config.description_limit}")

    @classmethod
    def text(cls, plain: str, capabilities: Capabilities) -> tuple[str, int]:
        return plain, mastodon_length(plain, capabilities.url_weight or 23)

    @classmethod
    def mention(cls, stakeholder: m.Stakeholder) -> str | None:
        return stakeholder.mastodon

    @classmethod
    def outbox_request(cls, claim: Claim, config: m.ChannelSettings) -> dict[str, Any]:
        assert isinstance(config, MastodonSettings)
        return {"method": "POST", "url": f"{config.endpoint()}/api/v1/statuses",
                "headers": {"Idempotency-Key": claim.idempotency_key}, "json": mastodon_status(claim, config)}

    def __init__(self, channel_id: str, config: m.ChannelSettings, root: Path, token: Token | None = None,
                 transport: Any = None) -> None:
        from mastodon import Mastodon

        super().__init__(channel_id, config, root, token, transport)
        assert isinstance(config, MastodonSettings) and token is not None
        self.config: MastodonSettings = config
        self.token: Token = token
        self.base_url = config.endpoint()
        self._broken: str | None = None
        self._account_id: str | None = None
        self._session = _session_class()()
        self._single_reads = False  # the server refused the batch read: one GET per status
        self._media_api: Mastodon | None = None
        self._reader = None  # httpx client for engagement reads, made on first use
        # The token is held only by the clients: it never enters a message.
        self.api = Mastodon(
            access_token=token.value, api_base_url=self.base_url,
            # "throw": the default "wait" sleeps up to 5 minutes in-thread per 429 (§2.2).
            ratelimit_method="throw", request_timeout=REQUEST_TIMEOUT,
            # "none": no method refuses on its own version table ("changed" refuses status_post on
            # 4.5 servers). Uploads use a client that knows the version (`_media`).
            version_check_mode="none", user_agent="dissemination", session=self._session)

    def _refused(self, exc: MastodonAPIError) -> str:
        self._broken = _api_message(exc)
        self.token.refused(self._broken)
        fix = "create a new one" if self.token.from_environment else f"run `{auth_command('mastodon', self.id)}`"
        return f"{self.token.source} was refused by {self.base_url} ({self._broken}); {fix}"

    def preflight(self) -> Health:
        from mastodon import MastodonError, MastodonUnauthorizedError

        try:
            account = self.api.account_verify_credentials()
            self._account_id = str(account["id"])
        except MastodonUnauthorizedError as exc:
            return Health(False, self._refused(exc), credential_broken=True)
        except MastodonError as exc:
            return Health(False, f"{self.base_url} cannot be reached: {type(exc).__name__}")
        try:
            limits = self._limits()
        except MastodonError as exc:
            return Health(False, f"{self.base_url}: cannot read the instance limits: {type(exc).__name__}")
        self.capabilities = dataclasses.replace(
            self.capabilities, max_length=limits.max_characters, url_weight=limits.characters_reserved_per_url)
        # kept in the ledger by the caller, for `check`, rendering and `preview`
        self.live = LiveLimits(self.id, self.base_url, limits.max_characters, limits.characters_reserved_per_url,
                               limits.description_limit, limits.max_media, limits.image_size_limit,
                               dt.datetime.now(UTC))
        return Health(True, f"{self.base_url}: {self.token.source} accepted (@{account.get('acct', '?')}); "
                            f"statuses up to {limits.max_characters} characters")

    def _limits(self) -> InstanceLimits:
        with _limits_lock:
            if self.base_url not in _limits:
                instance = self._instance()
                configuration = instance["configuration"]
                statuses = configuration["statuses"]
                media = configuration.get("media_attachments") or {}
                _limits[self.base_url] = InstanceLimits(
                    int(statuses["max_characters"]), int(statuses["characters_reserved_per_url"]),
                    frozenset(t for t in media.get("supported_mime_types") or () if t.startswith("image/")),
                    media.get("image_size_limit"), media.get("description_limit"), _version(instance.get("version")),
                    statuses.get("max_media_attachments"))
            return _limits[self.base_url]

    def _instance(self) -> dict:
        """The instance configuration. Mastodon.py asks for /api/v2/instance/ with a trailing
        slash, which some servers (and proxies) answer 404: then without it, then the v1 read
        (deprecated, but it carries `configuration.statuses` since 3.4.2)."""
        from mastodon import MastodonNetworkError, MastodonNotFoundError

        try:
            return dict(self.api.instance_v2())
        except MastodonNotFoundError:
            pass
        import httpx

        for path in ("/api/v2/instance", "/api/v1/instance"):
            try:
                response = self.prepare_reads().get(path)
            except httpx.HTTPError as exc:
                raise MastodonNetworkError(type(exc).__name__) from None
            if response.status_code == 200:
                body = response.json()
                if isinstance(body, dict) and isinstance(body.get("configuration"), dict):
                    return body
        raise MastodonNotFoundError("Mastodon API returned error", 404, "Not Found", "no instance configuration")

    def publish(self, claim: Claim) -> Receipt:
        if self._broken:
            raise PublishError(f"credential refused earlier in this run ({self._broken})")
        from mastodon import (MastodonAPIError, MastodonError, MastodonNetworkError, MastodonRatelimitError,
                              MastodonServerError, MastodonUnauthorizedError)

        body = mastodon_status(claim, self.config)
        media_ids: list[str] | None = None
        waited = False
        while True:
            try:
                if media_ids is None:
                    media_ids = [self._upload(claim, media) for media in body.get("media", [])]
                status = self.api.status_post(body["status"], visibility=body["visibility"],
                                              language=body["language"], media_ids=media_ids or None,
                                              idempotency_key=claim.idempotency_key)
                return Receipt(remote_id=str(status["id"]), url=status.get("url"))
            except MastodonRatelimitError:
                delay = self._until_reset()
                # Wait once within the budget (same key, so the repeat is safe); a longer wait
                # would hold the whole run, so the item goes back to planned for the next one.
                if not waited and delay <= self.config.rate_limit_wait.total_seconds():
                    time.sleep(delay)
                    waited = True
                    continue
                raise PublishError(f"rate limited by {self.base_url} for {delay:.0f} s",
                                   retry_after=dt.timedelta(seconds=max(delay, 1)),
                                   outcome_unknown=False) from None
            except MastodonUnauthorizedError as exc:
                raise PublishError(self._refused(exc)) from None
            except MastodonServerError as exc:
                raise PublishError(f"{_api_message(exc)}; will retry with the same key",
                                   outcome_unknown=True) from None
            except MastodonAPIError as exc:
                status_code = _status(exc)
                if status_code is not None and 400 <= status_code < 500:  # 403, 422: this text, never again
                    raise PublishError(f"{self.base_url} refused the status: {_api_message(exc)}",
                                       permanent=True) from None
                raise PublishError(_api_message(exc), outcome_unknown=True) from None
            except MastodonNetworkError:
                # Possibly created: the retry carries the same Idempotency-Key. The library's
                # message is not repeated, as it quotes the full request URL.
                raise PublishError(f"no answer from {self.base_url}; will retry with the same key",
                                   outcome_unknown=True) from None
            except MastodonError as exc:  # e.g. the image file could not be read
                raise PublishError(f"{self.base_url}: {type(exc).__name__}; will retry",
                                   outcome_unknown=claim.attempt_count > 1) from None

    def _upload(self, claim: Claim, media: dict) -> str:
        """Upload one image with its alt text through /api/v2/media and wait (bounded) until the
        server has processed it: a status naming unprocessed media is refused (422 not_ready).

        A retry uploads again: the earlier attachment, if any, is never attached to a status and
        the server deletes such media after a day. The status itself is protected by its key."""
        from mastodon import MastodonAPIError

        path = content_file(self.root, media["file"])
        mime = m.IMAGE_TYPES.get(path.suffix.lower())
        alt = media.get("description") or ""
        limits = self._limits()
        problem = None
        if not path.is_file():
            problem = f"image file '{media['file']}' not found (run `dissemination check`)"
        elif mime is None or (limits.image_types and mime not in limits.image_types):
            problem = (f"{self.base_url} does not take {mime or path.suffix} images "
                       f"(it takes {', '.join(sorted(limits.image_types)) or 'no images'})")
        elif limits.image_size_limit and path.stat().st_size > limits.image_size_limit:
            problem = (f"image '{media['file']}' is {path.stat().st_size} bytes, over the "
                       f"{limits.image_size_limit} bytes {self.base_url} accepts")
        elif limits.description_limit and len(alt) > limits.description_limit:
            problem = f"image_alt is {len(alt)} characters, over the {limits.description_limit} {self.base_url} accepts"
        if problem:
            raise PublishError(problem, permanent=True)
        api = self._media(limits)
        try:
            attachment = api.media_post(str(path), mime_type=mime, description=alt)
        except MastodonAPIError as exc:
            status_code = _status(exc)
            if status_code is not None and 400 <= status_code < 500 and status_code not in (401, 429):
                raise PublishError(f"{self.base_url} refused the upload of image '{media['file']}': "
                                   f"{_api_message(exc)}", permanent=True) from None
            raise
        deadline = time.monotonic() + self.config.media_wait.total_seconds()
        delay = 0.2
        while attachment.get("url") is None:  # 202: processing in the background
            if time.monotonic() + delay > deadline:
                raise PublishError(f"{self.base_url} was still processing the image after "
                                   f"{self.config.media_wait.total_seconds():.0f} s; trying again later",
                                   outcome_unknown=claim.attempt_count > 1)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            attachment = api.media(attachment["id"])  # 206 while processing, 200 when done
        return str(attachment["id"])

    def _media(self, limits: InstanceLimits) -> Mastodon:
        """A client told the server's version. Left to itself, media_post looks the version up
        through the deprecated /api/v1/instance and, when that fails, silently assumes 1.0.0 and
        uploads to the deprecated /api/v1/media; a version given with the default
        version_check_mode "none" is ignored the same way (platform_apis.md §2.3). So: the version
        from our own /api/v2/instance read, with "created" (which checks only that an endpoint
        exists in that version)."""
        if self._media_api is None:
            from mastodon import Mastodon

            self._media_api = Mastodon(
                access_token=self.token.value, api_base_url=self.base_url, ratelimit_method="throw",
                request_timeout=REQUEST_TIMEOUT, mastodon_version=limits.version, version_check_mode="created",
                user_agent="dissemination", session=self._session)
        return self._media_api

    def _until_reset(self) -> float:
        wait = wait_seconds(self._session.last_headers)
        if wait is None:
            return 60.0  # no usable Retry-After or reset header: try again in a minute
        return max(0.0, wait)

    def read_back(self, claim: Claim, since: dt.datetime) -> Receipt | None:
        """Our status among the account's own since `since` (less the clock skew): the same text
        as this claim sends, with as many images carrying the same alt texts. Statuses are
        listed newest first, 40 a page; each candidate's exact source text is read
        (GET /api/v1/statuses/:id/source), since `content` is the server's HTML."""
        import httpx

        body = mastodon_status(claim, self.config)
        alts = sorted(m.get("description") or "" for m in body.get("media", []))
        if self._account_id is None:
            raise ReadBackError(f"{self.base_url}: the account is not known (preflight did not pass)")
        client = self.prepare_reads()
        params: dict[str, str | int] = {"limit": 40, "since_id": _snowflake(since - CLOCK_SKEW)}

        def get(path: str, **query):
            try:
                response = client.get(path, params=query)
            except httpx.HTTPError as exc:
                raise ReadBackError(f"{self.base_url} cannot be reached: {type(exc).__name__}") from None
            if response.status_code == 429:
                wait = wait_seconds(dict(response.headers)) or 60.0
                raise PublishError(f"rate limited by {self.base_url} while reading back for {wait:.0f} s",
                                   retry_after=dt.timedelta(seconds=max(wait, 1)))
            if response.status_code != 200:
                raise ReadBackError(f"{self.base_url} answered HTTP {response.status_code} to {path}")
            try:
                return response.json()
            except ValueError:
                raise ReadBackError(f"{self.base_url} answered {path} with something other than JSON") from None

        for _ in range(READ_BACK_PAGES):
            page = get(f"/api/v1/accounts/{self._account_id}/statuses", **params)
            if not isinstance(page, list):
                raise ReadBackError(f"{self.base_url} answered the account's statuses unexpectedly")
            for status in page:
                attached = sorted((a.get("description") or "") for a in status.get("media_attachments") or [])
                if attached != alts or status.get("reblog"):
                    continue
                source = get(f"/api/v1/statuses/{status['id']}/source")
                if isinstance(source, dict) and source.get("text") == body["status"]:
                    return Receipt(remote_id=str(status["id"]), url=status.get("url"))
            if len(page) < 40:
                return None  # every status since the first attempt was looked at: absent
            params = {**params, "max_id": str(page[-1]["id"])}
        raise ReadBackError(f"{self.base_url}: more than {READ_BACK_PAGES * 40} statuses since the first "
                            "attempt; not all could be compared")

    METRICS = {"favourites": "favourites_count", "reblogs": "reblogs_count", "replies": "replies_count",
               "quotes": "quotes_count"}

    def prepare_reads(self):
        """The HTTP client for engagement reads (made once; its TLS setup takes a while)."""
        import httpx

        if self._reader is None:
            # The client's own token and address, however it was set up.
            self._reader = httpx.Client(base_url=self.api.api_base_url, timeout=REQUEST_TIMEOUT, verify=tls_context(),
                                        headers={"Authorization": f"Bearer {self.api.access_token}",
                                                 "User-Agent": "dissemination"})
        return self._reader

    def _read_statuses(self, ids: list[str]) -> list[dict] | tuple[list[dict], str] | str:
        """GET /api/v1/statuses?id[]=… as plain JSON, or why not. Read with httpx rather than
        Mastodon.py, which turns every status into typed objects: ~45 ms of CPU per 20 statuses,
        under the interpreter lock, which would cap a refresh at ~20 reads a second whatever the
        concurrency (see BENCHMARKS.md, bench/metrics.py)."""
        import httpx

        if self._single_reads:
            return self._read_each(ids)
        try:
            response = self.prepare_reads().get("/api/v1/statuses", params=[("id[]", i) for i in ids])
        except httpx.HTTPError as exc:
            return f"{self.base_url} cannot be reached: {type(exc).__name__}"
        if response.status_code in (404, 405, 501):
            # No batch read before Mastodon 4.3 (nor on GoToSocial, Takahē): one GET per status.
            self._single_reads = True
            return self._read_each(ids)
        if response.status_code == 429:
            return f"rate limited by {self.base_url}; read again at the next run"
        if response.status_code != 200:
            try:
                message = response.json().get("error", "")
            except ValueError:
                message = ""
            return f"{self.base_url} refused the read: HTTP {response.status_code}: {message}".rstrip(": ")
        try:
            body = response.json()
        except ValueError:
            return f"{self.base_url} answered the read with something other than JSON"
        return body if isinstance(body, list) else f"{self.base_url} answered the read with an unexpected body"

    # Single reads stop while the token has fewer requests than this left in its window: they are
    # for publishing (and the next run reads the rest).
    KEEP_FOR_PUBLISHING = 30

    def _read_each(self, ids: list[str]) -> list[dict] | tuple[list[dict], str] | str:
        """GET /api/v1/statuses/:id for each id (a 404 is a deleted status, left out), within the
        token's budget as the server reports it in X-RateLimit-Remaining."""
        import httpx

        found = []
        for status_id in ids:
            try:
                response = self.prepare_reads().get(f"/api/v1/statuses/{status_id}")
            except httpx.HTTPError as exc:
                return f"{self.base_url} cannot be reached: {type(exc).__name__}"
            if response.status_code == 429:
                return f"rate limited by {self.base_url}; read again at the next run"
            if response.status_code == 200:
                found.append(response.json())
            elif response.status_code != 404:
                return f"{self.base_url} refused the read: HTTP {response.status_code}"
            remaining = response.headers.get("X-RateLimit-Remaining", "")
            if remaining.isdigit() and int(remaining) < self.KEEP_FOR_PUBLISHING and status_id != ids[-1]:
                # what was read counts; the rest is unavailable for this reason, not deleted
                return found, f"{self.base_url}: the rate budget is spent for now; read again at the next run"
        return found

    def reblogged_by(self, remote_id: str) -> list[str] | str:
        """The accounts that boosted one of our statuses, as `user@domain` (GET
        /api/v1/statuses/:id/reblogged_by, an array of Account, 80 a page, the next page in the
        Link header), or why they cannot be read. A local account's `acct` has no domain: ours
        is added, so it compares with a full handle."""
        import httpx

        domain = httpx.URL(self.base_url).host
        found: list[str] = []
        url: str | None = f"/api/v1/statuses/{remote_id}/reblogged_by?limit=80"
        while url is not None:
            try:
                response = self.prepare_reads().get(url)
            except httpx.HTTPError as exc:
                return f"{self.base_url} cannot be reached: {type(exc).__name__}"
            if response.status_code == 404:
                return "deleted: the server no longer returns this status"
            if response.status_code == 429:
                return f"rate limited by {self.base_url}; read again at the next run"
            if response.status_code != 200:
                return f"{self.base_url} refused the read of boosts: HTTP {response.status_code}"
            try:
                accounts = response.json()
            except ValueError:
                return f"{self.base_url} answered the read of boosts with something other than JSON"
            if not isinstance(accounts, list):
                return f"{self.base_url} answered the read of boosts with an unexpected body"
            for account in accounts:
                acct = str(account.get("acct") or "") if isinstance(account, dict) else ""
                if acct:
                    found.append((acct if "@" in acct else f"{acct}@{domain}").lower())
            url = response.links.get("next", {}).get("url")
        return found

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Counts of our own statuses (authoritative on our own server), read in batches.
        A status the server no longer returns was deleted (or made invisible)."""
        source = f"mastodon:{self.base_url}"
        by_remote = {r.remote_id: item for item, r in receipts.items()}
        found: dict[str, dict] = {}
        failure = None
        remote_ids = list(by_remote)
        for start in range(0, len(remote_ids), self.BATCH):
            answer = self._read_statuses(remote_ids[start:start + self.BATCH])
            if isinstance(answer, tuple):  # some read, then the budget stopped the reads
                answer, failure = answer
            if isinstance(answer, str):
                failure = answer
            else:
                found.update({str(s.get("id")): s for s in answer if isinstance(s, dict)})
        rows = []
        for remote_id, item in by_remote.items():
            status = found.get(remote_id)
            for metric, field in self.METRICS.items():
                if status is None:
                    reason = failure or "deleted: the server no longer returns this status"
                    rows.append(Snapshot.unavailable(item, metric, now, source, reason))
                elif status.get(field) is None:  # quotes_count only exists from Mastodon 4.5
                    rows.append(Snapshot.unavailable(item, metric, now, source, f"{field} not reported by this server"))
                else:
                    rows.append(Snapshot(item, metric, float(status[field]), now, source))
            # Mastodon counts no views: the account's followers at the time of reading stand in
            # for the reach of the post (see the report's footnotes).
            followers = (status or {}).get("account", {}).get("followers_count")
            if status is not None and followers is not None:
                rows.append(Snapshot(item, "followers", float(followers), now, source))
            elif status is not None:
                rows.append(Snapshot.unavailable(item, "followers", now, source,
                                                 "followers_count not reported by this server"))
        return rows
