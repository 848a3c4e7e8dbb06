"""Bluesky: posts through the account's PDS, engagement through an AppView, over XRPC on httpx.

Why httpx and not the `atproto` package: this channel needs eight XRPC calls (createSession,
refreshSession, getSession, resolveHandle, uploadBlob, createRecord, getRecord, getPosts), each a
plain JSON request. `atproto` (0.0.73) imports models for every lexicon of the network (4.6 s for
`from atproto import Client` on the 2-core test machine under load, pydantic and httpx already
imported: at every CLI start), brings its own dependencies (among them `cryptography`,
`websockets`, `libipld`), and its client hides the HTTP status and the rate-limit headers behind
its own exceptions, which this module needs to tell a refusal from an outcome that may have
happened. httpx is already a dependency of the project. `atproto` has no OAuth client, so sign-in
here is with an app password.

Exactly once: each post is created with an explicit record key derived from the item's idempotency
key (`record_key`). A repository holds one record per key, so a repeated create cannot make a
second post: the PDS refuses it, and the existing record is read back by that key and taken as the
receipt when it is ours (the same text). Read-back after an uncertain outcome is the same read.

Everything that is platform knowledge (settings, text rules and facets, the record sent, sign-in,
errors, metric names) is in this module: the kind "bluesky" is this module (see base.kinds).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from pydantic import AfterValidator, Field

from dissemination.load import models as m
from dissemination.publish.channels.base import (IMAGE_TYPES, Capabilities, Channel, Health, Metric, PublishError,
                                                    ReadBackError, content_file, tls_context, wait_seconds)
from dissemination.publish.channels.text import grapheme_length
from dissemination.publish.credentials import Token
from dissemination.records import Claim, Receipt, Snapshot

UTC = dt.timezone.utc
KIND = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
REQUEST_TIMEOUT = 20.0  # seconds
MAX_IMAGES = 4  # app.bsky.embed.images#main: maxLength 4
MAX_IMAGE_BYTES = 1_000_000  # the lexicon's maxSize for an image blob (and an external card's thumb)
MAX_TEXT_BYTES = 3000  # app.bsky.feed.post: text maxLength (bytes), beside maxGraphemes 300
MAX_TAG_GRAPHEMES = 64  # app.bsky.richtext.facet#tag: maxGraphemes 64
# The lexicon sets no limit on alt text; Bluesky's app stops at 2000 graphemes, and a longer one
# could only be written by hand through the API.
MAX_ALT_GRAPHEMES = 2000
READ_BATCH = 25  # app.bsky.feed.getPosts: uris maxLength 25
# Metric name -> postView field (app.bsky.feed.defs#postView).
METRICS = {"likes": "likeCount", "reposts": "repostCount", "replies": "replyCount", "quotes": "quoteCount"}
LABEL = "Bluesky"


# --- settings ------------------------------------------------------------------------------------

def _handle(value: str) -> str:
    handle = value.lstrip("@").lower()
    if not re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?", handle):
        raise m.content_error(f"'{value}' is not a Bluesky handle", "write the full handle, e.g. name.bsky.social")
    return handle


Handle = Annotated[str, AfterValidator(_handle)]


class BlueskySettings(m.ChannelSettings):
    """A Bluesky account in channels.yaml. The app password (and, if it differs from the handle,
    the sign-in identifier) come from environment variables named here, never from the file."""

    kind: Literal["bluesky"]
    handle: Handle
    # The account's PDS; bsky.social's entryway serves every account hosted by Bluesky.
    pds_url: m.HttpUrl = "https://bsky.social"
    # Where engagement is read (app.bsky.feed.getPosts answers without signing in there).
    appview_url: m.HttpUrl = "https://public.api.bsky.app"
    identifier_env: m.EnvName | None = None  # default: sign in with the handle
    password_env: m.EnvName  # an app password (Settings > Privacy and security > App passwords)
    language: str = "nl"
    max_characters: Annotated[int, Field(ge=1, le=300)] = 300  # graphemes (app.bsky.feed.post)

    def endpoint(self) -> str:
        return self.pds_url.rstrip("/")

    def secret_envs(self) -> list[str]:
        return [n for n in (self.identifier_env, self.password_env) if n]


# --- record keys ---------------------------------------------------------------------------------

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable


def record_key(idempotency_key: str, slot_utc: dt.datetime) -> str:
    """A valid TID (the record key type of app.bsky.feed.post) that is the same for every attempt
    of one item: the slot's second as the timestamp (so posts sort by their slot), and the
    sub-second microseconds and the 10-bit clock id taken from the idempotency key's hash, so two
    items in the same slot get different keys (one chance in 2^30 of a clash, which publish then
    refuses rather than take another post as ours)."""
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
    slot = slot_utc if slot_utc.tzinfo else slot_utc.replace(tzinfo=UTC)
    micros = int(slot.timestamp()) * 1_000_000 + (digest >> 10) % 1_000_000
    clock_id = digest & 0x3FF
    value = ((micros & ((1 << 53) - 1)) << 10) | clock_id  # top bit stays 0
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def post_url(handle: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{rkey}"


# --- text rules: length and facets ---------------------------------------------------------------

def text_length(text: str) -> int:
    """Bluesky counts graphemes (300 a post) and, separately, at most 3000 UTF-8 bytes."""
    return grapheme_length(text)


_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
# A mention: @ then a handle (labels of letters, digits and hyphens, with a dot), not inside a word
# or an e-mail address.
_MENTION = re.compile(r"(?:^|(?<=[\s(\[]))@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
                      r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)")
_TAG = re.compile(r"(?:^|(?<=\s))[#\uFF03]([^\s#\uFF03\u00AD\u2060\u200A\u200B\u200C\u200D\u20E2]+)")


def _trim_punctuation(value: str, keep_closing_paren: bool) -> str:
    """Trailing sentence punctuation is not part of a link or tag ("zie https://x.nl/a.")."""
    while value and unicodedata.category(value[-1]).startswith("P"):
        if keep_closing_paren and value[-1] == ")" and value.count("(") >= value.count(")"):
            break
        value = value[:-1]
    return value


def _byte_slice(text: str, start: int, end: int) -> dict[str, int]:
    return {"byteStart": len(text[:start].encode("utf-8")), "byteEnd": len(text[:end].encode("utf-8"))}


def facets(text: str, resolve: Callable[[str], str | None] | None = None) -> list[dict[str, Any]]:
    """The rich-text facets of a post (app.bsky.richtext.facet): links, mentions and hashtags,
    indexed by UTF-8 byte offsets into the text, as the lexicon requires (not characters: an é is
    two bytes, an emoji four or more).

    `resolve` turns a handle into a DID (com.atproto.identity.resolveHandle); a mention whose
    handle does not resolve stays plain text, as in Bluesky's own app. Without `resolve` (the
    outbox form) the DID is named as a placeholder."""
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for match in _URL.finditer(text):
        url = _trim_punctuation(match.group(0), keep_closing_paren=True)
        start, end = match.start(), match.start() + len(url)
        taken.append((start, end))
        found.append({"index": _byte_slice(text, start, end),
                      "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}]})

    def inside_link(position: int) -> bool:
        return any(start <= position < end for start, end in taken)

    for match in _MENTION.finditer(text):
        if inside_link(match.start()):
            continue
        handle = match.group(1).lower()
        did = resolve(handle) if resolve else f"(DID of @{handle}, resolved when published)"
        if did is None:
            continue
        found.append({"index": _byte_slice(text, match.start(), match.end()),
                      "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]})
    for match in _TAG.finditer(text):
        if inside_link(match.start()):
            continue
        tag = _trim_punctuation(match.group(1), keep_closing_paren=False)
        # A tag of digits only is a number ("#1"), not a hashtag; over 64 graphemes is refused.
        if not tag or tag.isdigit() or grapheme_length(tag) > MAX_TAG_GRAPHEMES:
            continue
        start = match.start()
        found.append({"index": _byte_slice(text, start, start + 1 + len(tag)),
                      "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
    found.sort(key=lambda facet: facet["index"]["byteStart"])
    return found


# --- the record ----------------------------------------------------------------------------------

def images_of(claim: Claim) -> list[dict[str, str]]:
    """The images a claim attaches: {"file", "alt"}, from payload "image"/"image_alt" and, for
    more than one, "images" (a list of {"file", "alt"})."""
    images = []
    if claim.payload.get("image"):
        images.append({"file": str(claim.payload["image"]), "alt": str(claim.payload.get("image_alt") or "")})
    for extra in claim.payload.get("images") or []:
        images.append({"file": str(extra["file"]), "alt": str(extra.get("alt") or "")})
    return images


def post_record(claim: Claim, settings: BlueskySettings, *, resolve: Callable[[str], str | None] | None = None,
                blobs: list[dict[str, Any]] | None = None, created_at: dt.datetime | None = None) -> dict[str, Any]:
    """The app.bsky.feed.post record for a claim; also the outbox form (without `resolve` and
    `blobs`: mentions and images are then named, not resolved or uploaded).

    A link in the payload becomes a link card (app.bsky.embed.external, the first image as its
    thumbnail); otherwise images go as app.bsky.embed.images with their alt texts. A post has one
    embed, so a link card carries no further images."""
    text = str(claim.payload["text"])
    images = images_of(claim)
    if blobs is None:
        blobs = [{"(blob)": f"{image['file']}, uploaded first"} for image in images]
    record: dict[str, Any] = {
        "$type": POST_COLLECTION,
        "text": text,
        "createdAt": _iso(created_at or dt.datetime.now(UTC)),
        "langs": [settings.language],
    }
    found = facets(text, resolve)
    if found:
        record["facets"] = found
    link = claim.payload.get("link")
    if link:
        external: dict[str, Any] = {"uri": str(link), "title": str(claim.payload.get("link_title") or link),
                                    "description": str(claim.payload.get("link_description") or "")}
        if blobs:
            external["thumb"] = blobs[0]
        record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
    elif images:
        record["embed"] = {"$type": "app.bsky.embed.images",
                           "images": [{"image": blob, "alt": image["alt"]} for image, blob in zip(images, blobs)]}
    return record


def _iso(moment: dt.datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- the XRPC client -----------------------------------------------------------------------------

class XrpcError(Exception):
    """A non-2xx XRPC answer: its status, the lexicon's `error` name and the message."""

    def __init__(self, status: int, error: str, message: str, headers: dict[str, str]) -> None:
        super().__init__(f"HTTP {status} {error}: {message}".rstrip(": "))
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers


class NoAnswer(Exception):
    """The request may have been sent, but no answer came (timeout, connection dropped)."""


class SignInRefused(Exception):
    """The PDS refused the identifier and app password."""


# Sessions per (PDS, identifier, hash of the app password), kept for the life of the process:
# a PDS allows 30 sign-ins per 5 minutes and 300 a day per account, and `serve` publishes every
# few minutes, so each run reuses (and refreshes) the session of the one before.
_sessions: dict[tuple[str, str, str], dict[str, Any]] = {}
_sessions_lock = threading.Lock()


class Xrpc:
    """A signed-in session on one PDS. The access token lives minutes to hours (2 h on the
    reference PDS): an ExpiredToken answer refreshes it once with the refresh token, and a
    refused refresh signs in again with the app password."""

    def __init__(self, base_url: str, identifier: str, password: str, timeout: float = REQUEST_TIMEOUT) -> None:
        import httpx

        self.timeout = timeout
        self.base_url = base_url.rstrip("/")
        self._identifier = identifier
        self._password = password  # held here only: never in a message
        self._key = (self.base_url, identifier, hashlib.sha256(password.encode()).hexdigest())
        self._http = httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT, verify=tls_context(),
                                  headers={"User-Agent": "dissemination"})
        self._access: str | None = None
        self._refresh: str | None = None
        self.did: str | None = None
        self.handle: str | None = None
        self._lock = threading.Lock()

    @property
    def session(self) -> dict[str, Any] | None:
        """The session (tokens, DID, handle), to keep between processes; secret like a password."""
        if self._access is None:
            return None
        return {"accessJwt": self._access, "refreshJwt": self._refresh, "did": self.did, "handle": self.handle}

    def resume(self, session: dict[str, Any]) -> None:
        """Carry on with a session kept from earlier (expired tokens are renewed on first use)."""
        with self._lock:
            self._store(session)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, nsid: str, *, token: str | None = None, **kwargs: Any) -> Any:
        import httpx

        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.request(method, f"/xrpc/{nsid}", headers=headers, timeout=self.timeout, **kwargs)
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise NoAnswer(f"no answer from {self.base_url} to {nsid}: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:  # could not connect: nothing was sent
            raise XrpcError(0, type(exc).__name__, f"{self.base_url} cannot be reached", {}) from None
        if response.status_code >= 300:
            try:
                body = response.json()
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            raise XrpcError(response.status_code, str(body.get("error") or ""), str(body.get("message") or ""),
                            dict(response.headers))
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise XrpcError(response.status_code, "NotJson", f"{nsid} answered with something other than JSON",
                            dict(response.headers)) from None

    def sign_in(self) -> None:
        try:
            session = self._send("POST", "com.atproto.server.createSession",
                                 json={"identifier": self._identifier, "password": self._password})
        except XrpcError as exc:
            if exc.status == 401 or exc.error in ("AuthenticationRequired", "AccountTakedown", "AccountDeactivated"):
                with _sessions_lock:
                    _sessions.pop(self._key, None)
                raise SignInRefused(f"{self.base_url} refused the app password for {self._identifier} "
                                    f"({exc.error or exc.status}: {exc.message})") from None
            raise
        self._store(session)

    def _store(self, session: dict[str, Any]) -> None:
        self._access = session["accessJwt"]
        self._refresh = session["refreshJwt"]
        self.did = session["did"]
        self.handle = session.get("handle")
        with _sessions_lock:
            _sessions[self._key] = dict(session)

    def _renew(self) -> None:
        try:
            self._store(self._send("POST", "com.atproto.server.refreshSession", token=self._refresh))
        except XrpcError as exc:
            if exc.status in (400, 401):  # the refresh token expired or was revoked
                self.sign_in()
            else:
                raise

    def ensure(self) -> str:
        """Signed in (once; or the session this process already has): the account's DID."""
        with self._lock:
            if self._access is None:
                with _sessions_lock:
                    kept = _sessions.get(self._key)
                if kept is not None:
                    self._store(kept)
                else:
                    self.sign_in()
        assert self.did is not None
        return self.did

    def call(self, method: str, nsid: str, **kwargs: Any) -> Any:
        """An authenticated call; signs in first if needed and refreshes an expired token once."""
        self.ensure()
        try:
            return self._send(method, nsid, token=self._access, **kwargs)
        except XrpcError as exc:
            if not (exc.error in ("ExpiredToken", "InvalidToken") or exc.status == 401):
                raise
        with self._lock:
            self._renew()
        return self._send(method, nsid, token=self._access, **kwargs)

    def public(self, nsid: str, params: Any) -> Any:
        return self._send("GET", nsid, params=params)


# --- the channel ---------------------------------------------------------------------------------

class BlueskyChannel(Channel):
    kind = KIND
    settings = BlueskySettings
    # Bluesky counts no views of a post, so there is no reach to report.
    metrics = (Metric("likes", "reactions"), Metric("reposts", "shares"), Metric("replies", "comments"),
               Metric("quotes", "quotes"))
    # Bluesky documents 3000 API requests per 5 minutes per address: reads take half.
    READS_PER_MINUTE = 300

    @classmethod
    def capabilities_of(cls, config: m.ChannelSettings) -> Capabilities:
        assert isinstance(config, BlueskySettings)
        return Capabilities(
            KIND, LABEL, max_length=config.max_characters, max_images=MAX_IMAGES, image_bytes=MAX_IMAGE_BYTES,
            image_types=IMAGE_TYPES, alt_length=MAX_ALT_GRAPHEMES, link_card=True,
            read_batch=READ_BATCH, read_concurrency=config.metrics_concurrency,
            read_per_minute=config.metrics_per_minute or cls.READS_PER_MINUTE,
            # A record key derived from the item's key identifies the post for as long as it exists:
            # a second create under it is refused (see record_key).
            key_retention=None, idempotent=True)

    @classmethod
    def text(cls, plain: str, capabilities: Capabilities) -> tuple[str, int]:
        # The 3000-byte cap is met only by text of mostly 4-byte characters far under 300
        # graphemes (emoji sequences); publish refuses it before sending.
        return plain, text_length(plain)

    @classmethod
    def mention(cls, stakeholder: m.Stakeholder) -> str | None:
        """`@handle`, from the stakeholder map's `accounts: {bluesky: name.bsky.social}` (written
        with or without the @): published as a mention facet when the handle resolves."""
        handle = stakeholder.accounts.get(KIND)
        return f"@{handle.lstrip('@')}" if handle else None

    @classmethod
    def outbox_request(cls, claim: Claim, config: m.ChannelSettings) -> dict[str, Any]:
        assert isinstance(config, BlueskySettings)
        return {"method": "POST", "url": f"{config.endpoint()}/xrpc/com.atproto.repo.createRecord",
                "json": {"repo": config.handle, "collection": POST_COLLECTION,
                         "rkey": record_key(claim.idempotency_key, claim.slot_utc),
                         "record": post_record(claim, config, created_at=claim.slot_utc)}}

    def __init__(self, channel_id: str, config: m.ChannelSettings, root: Path, token: Token | None = None,
                 transport: Any = None) -> None:
        import os

        super().__init__(channel_id, config, root, token, transport)
        assert isinstance(config, BlueskySettings)
        self.config: BlueskySettings = config
        self.pds_url = config.pds_url.rstrip("/")
        self.appview_url = config.appview_url.rstrip("/")
        password = os.environ.get(config.password_env, "")
        identifier = os.environ.get(config.identifier_env, "") if config.identifier_env else config.handle
        self._missing = None
        if not password:
            self._missing = f"the app password is not set: environment variable {config.password_env} is empty"
        elif not identifier:
            self._missing = f"the sign-in identifier is not set: environment variable {config.identifier_env} is empty"
        self.xrpc = Xrpc(self.pds_url, identifier, password)
        self._broken: str | None = None
        self._reader: Any = None
        self._dids: dict[str, str | None] = {}

    # sign-in

    def preflight(self) -> Health:
        if self._missing:
            return Health(False, f"{self.id}: {self._missing}", credential_broken=True)
        try:
            # The session is checked (and renewed if expired); a new sign-in only when there is none.
            account = self.xrpc.call("GET", "com.atproto.server.getSession")
        except SignInRefused as exc:
            self._broken = str(exc)
            return Health(False, f"{exc}; create a new app password and set {self.config.password_env}",
                          credential_broken=True)
        except XrpcError as exc:
            if exc.status == 429:
                return Health(False, f"{self.pds_url}: rate limited ({exc})")
            return Health(False, f"{self.pds_url} cannot be reached or refused the session: {exc}")
        except NoAnswer as exc:
            return Health(False, f"{self.pds_url} cannot be reached: {exc}")
        return Health(True, f"{self.pds_url}: app password accepted (@{account.get('handle', self.xrpc.handle)}); "
                            f"posts up to {self.config.max_characters} graphemes")

    # publishing

    def rkey(self, claim: Claim) -> str:
        return record_key(claim.idempotency_key, claim.slot_utc)

    def _resolve(self, handle: str) -> str | None:
        if handle not in self._dids:
            try:
                answer = self.xrpc.public("com.atproto.identity.resolveHandle", {"handle": handle})
                self._dids[handle] = str(answer["did"])
            except XrpcError as exc:
                if exc.status == 400:  # no such handle: the mention stays plain text
                    self._dids[handle] = None
                else:
                    raise
        return self._dids[handle]

    def _check_text(self, claim: Claim) -> None:
        text = str(claim.payload["text"])
        length = text_length(text)
        if length > self.config.max_characters:
            raise PublishError(f"the text is {length} graphemes, over the {self.config.max_characters} a "
                               "Bluesky post takes", permanent=True)
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise PublishError(f"the text is over the {MAX_TEXT_BYTES} bytes a Bluesky post takes", permanent=True)

    def _upload(self, image: dict[str, str]) -> dict[str, Any]:
        path = content_file(self.root, image["file"])
        mime = m.IMAGE_TYPES.get(path.suffix.lower())
        if not path.is_file():
            raise PublishError(f"image file '{image['file']}' not found (run `dissemination check`)", permanent=True)
        if mime is None:
            raise PublishError(f"Bluesky takes no {path.suffix} images (jpeg, png, gif, webp)", permanent=True)
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise PublishError(f"image '{image['file']}' is {size} bytes, over the {MAX_IMAGE_BYTES} bytes a "
                               "Bluesky image may have; make it smaller", permanent=True)
        answer = self.xrpc.call("POST", "com.atproto.repo.uploadBlob", content=path.read_bytes(),
                                headers={"Content-Type": mime})
        return answer["blob"]

    def publish(self, claim: Claim) -> Receipt:
        if self._missing:
            raise PublishError(self._missing)
        if self._broken:
            raise PublishError(f"credential refused earlier in this run ({self._broken})")
        self._check_text(claim)
        images = images_of(claim)
        if len(images) > MAX_IMAGES:
            raise PublishError(f"{len(images)} images, over the {MAX_IMAGES} a Bluesky post takes", permanent=True)
        rkey = self.rkey(claim)
        sent = False  # whether the create went out: before it, no failure can have made a post
        try:
            did = self.xrpc.ensure()
            if claim.attempt_count > 1 or claim.outcome_unknown:
                # An earlier attempt may have got through: then nothing is uploaded again.
                existing = self._existing(claim, rkey)
                if existing is not None:
                    return existing
            blobs = [self._upload(image) for image in images[:1 if claim.payload.get("link") else MAX_IMAGES]]
            record = post_record(claim, self.config, resolve=self._resolve, blobs=blobs)
            sent = True
            answer = self.xrpc.call("POST", "com.atproto.repo.createRecord", json={
                "repo": did, "collection": POST_COLLECTION, "rkey": rkey, "record": record})
            return Receipt(remote_id=str(answer["uri"]), url=post_url(self._handle(), rkey))
        except SignInRefused as exc:
            self._broken = str(exc)
            raise PublishError(f"{exc}; create a new app password and set {self.config.password_env}") from None
        except NoAnswer as exc:
            if not sent:
                raise PublishError(f"{exc}; nothing was posted, will retry") from None
            return self._after_uncertain(claim, rkey, str(exc))
        except ReadBackError as exc:
            raise PublishError(f"{exc}; will look again before sending", outcome_unknown=True) from None
        except XrpcError as exc:
            if exc.status == 429:
                wait = wait_seconds(exc.headers)
                wait = 60.0 if wait is None else max(wait, 1.0)
                raise PublishError(f"rate limited by {self.pds_url} for {wait:.0f} s",
                                   retry_after=dt.timedelta(seconds=wait)) from None
            if exc.status == 401:  # still refused after a fresh sign-in
                raise PublishError(f"{self.pds_url} refused the session: {exc}") from None
            if exc.status == 0 or (not sent and exc.status >= 500):  # nothing was posted
                raise PublishError(f"{exc}; will retry") from None
            if not sent:  # an upload or a handle refused: this post cannot go as it is
                raise PublishError(f"{self.pds_url} refused a part of the post: {exc}", permanent=True) from None
            # A create refused because the key is taken (this PDS answers 500 for that, others
            # 400): the record by that key decides.
            return self._after_uncertain(claim, rkey, str(exc), refused=400 <= exc.status < 500)

    def _handle(self) -> str:
        return self.xrpc.handle or self.config.handle

    def _after_uncertain(self, claim: Claim, rkey: str, problem: str, refused: bool = False) -> Receipt:
        try:
            existing = self._existing(claim, rkey)
        except (ReadBackError, NoAnswer, XrpcError, SignInRefused):
            raise PublishError(f"{problem}; the post may exist: read back by its key later",
                               outcome_unknown=True) from None
        if existing is not None:
            return existing
        if refused:
            raise PublishError(f"{self.pds_url} refused the post: {problem}", permanent=True)
        # Absent now; a retry with the same record key cannot make a second post.
        raise PublishError(f"{problem}; will retry with the same record key", outcome_unknown=True)

    def _existing(self, claim: Claim, rkey: str) -> Receipt | None:
        """The post by this record key, if there is one: ours when it has the claim's text.
        Another text under our key is a clash of keys (or someone else's doing): refused."""
        record = self._get_record(rkey)
        if record is None:
            return None
        if record.get("value", {}).get("text") != claim.payload["text"]:
            raise PublishError(f"another post already has record key {rkey} ({record.get('uri')}); "
                               "not taken as this item's", permanent=True)
        return Receipt(remote_id=str(record["uri"]), url=post_url(self._handle(), rkey))

    def _get_record(self, rkey: str) -> dict[str, Any] | None:
        did = self.xrpc.ensure()
        try:
            return self.xrpc.public("com.atproto.repo.getRecord", {
                "repo": did, "collection": POST_COLLECTION, "rkey": rkey})
        except XrpcError as exc:
            if exc.status == 400 and exc.error == "RecordNotFound":
                return None
            if exc.status == 429:
                wait = wait_seconds(exc.headers) or 60.0
                raise PublishError(f"rate limited by {self.pds_url} while reading back for {wait:.0f} s",
                                   retry_after=dt.timedelta(seconds=max(wait, 1))) from None
            raise ReadBackError(f"{self.pds_url} answered the read of {rkey}: {exc}") from None
        except NoAnswer as exc:
            raise ReadBackError(str(exc)) from None

    def read_back(self, claim: Claim, since: dt.datetime) -> Receipt | None:
        """The item's post, found by its record key (the moment `since` does not matter: the key
        says where it is)."""
        try:
            return self._existing(claim, self.rkey(claim))
        except (SignInRefused, NoAnswer, XrpcError) as exc:  # signing in failed: cannot tell
            raise ReadBackError(str(exc)) from None

    # engagement

    def prepare_reads(self) -> Any:
        import httpx

        if self._reader is None:
            self._reader = httpx.Client(base_url=self.appview_url, timeout=REQUEST_TIMEOUT, verify=tls_context(),
                                        headers={"User-Agent": "dissemination"})
        return self._reader

    def _get_posts(self, uris: list[str]) -> list[dict[str, Any]] | str:
        import httpx

        try:
            response = self.prepare_reads().get("/xrpc/app.bsky.feed.getPosts", params=[("uris", u) for u in uris])
        except httpx.HTTPError as exc:
            return f"{self.appview_url} cannot be reached: {type(exc).__name__}"
        if response.status_code == 429:
            return f"rate limited by {self.appview_url}; read again at the next run"
        if response.status_code != 200:
            return f"{self.appview_url} refused the read: HTTP {response.status_code}"
        try:
            posts = response.json().get("posts")
        except (ValueError, AttributeError):
            posts = None
        if not isinstance(posts, list):
            return f"{self.appview_url} answered app.bsky.feed.getPosts with an unexpected body"
        return [p for p in posts if isinstance(p, dict)]

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Likes, reposts, replies and quotes of our posts through app.bsky.feed.getPosts, 25 a
        request. A post the AppView no longer returns was deleted (or taken down)."""
        source = f"bluesky:{self.appview_url}"
        by_uri = {r.remote_id: item for item, r in receipts.items()}
        found: dict[str, dict[str, Any]] = {}
        failure = None
        uris = list(by_uri)
        for start in range(0, len(uris), READ_BATCH):
            answer = self._get_posts(uris[start:start + READ_BATCH])
            if isinstance(answer, str):
                failure = answer
            else:
                found.update({str(p.get("uri")): p for p in answer})
        rows = []
        for uri, item in by_uri.items():
            post = found.get(uri)
            for metric, field in METRICS.items():
                if post is None:
                    rows.append(Snapshot.unavailable(item, metric, now, source,
                                                     failure or "deleted: the AppView no longer returns this post"))
                elif not isinstance(post.get(field), int):
                    rows.append(Snapshot.unavailable(item, metric, now, source, f"{field} not reported"))
                else:
                    rows.append(Snapshot(item, metric, float(post[field]), now, source))
        return rows
