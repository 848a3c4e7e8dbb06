"""LinkedIn through its versioned REST API with httpx (platform_apis.md §3).

LinkedIn has no idempotency key. A post whose answer was lost (timeout, 5xx) is retried with the
identical body; LinkedIn then answers 422 DUPLICATE_POST naming the existing post, which is
recorded as the publication. How long LinkedIn detects duplicates is not documented: an unknown
item first sent longer ago than DUPLICATE_WINDOW is read back first (the author's posts, which
needs r_organization_social or r_member_social; without it the item waits for a person).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal
from urllib.parse import quote, urlencode

from pydantic import Field

from dissemination.load import models as m
from dissemination.publish.channels.base import (IMAGE_TYPES, Capabilities, Health, Metric, PublishError, ReadBackError,
                                                    TokenChannel, TokenSettings, content_file, tls_context)
from dissemination.publish.channels.text import find_urls, grapheme_length
from dissemination.publish.credentials import Credential, Token, auth_command
from dissemination.records import Claim, Receipt, Snapshot
from dissemination.redact import register

if TYPE_CHECKING:  # httpx takes ~0.3 s to import: only when publishing or reading
    import httpx

_DUPLICATE_URN = re.compile(r"duplicate of (urn:li:(?:share|ugcPost):\d+)")
# LinkedIn's limits are per day and reset at midnight UTC (§3.7); its 429 carries no reset time,
# so without a Retry-After the item waits for the next midnight.
DUPLICATE_WINDOW = dt.timedelta(hours=1)  # assumed: undocumented (see the module docstring)
READ_BACK_PAGES = 5  # of 50 posts, newest first
CLOCK_SKEW = dt.timedelta(minutes=5)
RENEW_BEFORE = dt.timedelta(days=7)  # renew (or warn) this long before a token expires
UTC = dt.timezone.utc
log = logging.getLogger("dissemination")


def _days(left: dt.timedelta) -> str:
    days = left.days
    return "less than a day" if days < 1 else f"{days} day{'s' if days != 1 else ''}"


def _error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of a LinkedIn error body; either may be empty."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    codes = [d.get("code", "") for d in (body.get("errorDetails") or {}).get("inputErrors", [])]
    return body.get("code") or (codes[0] if codes else ""), str(body.get("message", ""))


# --- the kind: settings, capabilities, text ---------------------------------------------------------

class LinkedInSettings(TokenSettings):
    kind: Literal["linkedin"]
    author: m.LinkedInUrn
    api_version: Annotated[str, Field(pattern=r"^\d{6}(\.\d{2})?$")]
    max_characters: Annotated[int, Field(ge=1, le=3000)] = 3000
    api_base: m.HttpUrl = "https://api.linkedin.com"  # changed only to test against a local server
    oauth_base: m.HttpUrl = "https://www.linkedin.com"  # likewise
    # The app's client id and secret (for `dissemination auth` and refreshing tokens) come from
    # these environment variables.
    client_id_env: m.EnvName | None = None
    client_secret_env: m.EnvName | None = None
    # Must be registered as a redirect URL of the app in LinkedIn's developer portal.
    redirect_port: Annotated[int, Field(ge=0, le=65535)] = 8765
    scopes: str | None = None  # default: what posting as `author` needs, plus openid profile
    # LinkedIn has no idempotency key: a timed-out post is retried and recognised as a duplicate.
    request_timeout: m.Duration = dt.timedelta(seconds=20)
    # How long to wait for LinkedIn to process an uploaded image before trying later.
    media_wait: m.Duration = dt.timedelta(seconds=60)

    def endpoint(self) -> str:
        return str(self.oauth_base).rstrip("/")


# LinkedIn's `commentary` is in the "little" text format: reserved characters must be
# backslash-escaped or LinkedIn silently cuts the post at the first one. Hashtags, URLs and
# mentions are kept as they are so they still work.
LITTLE_RESERVED = "\\|{}@[]()<>#*_~"


def _escape_reserved(text: str) -> str:
    # '\\' first, so the backslashes added for the others are not escaped again
    for char in LITTLE_RESERVED:
        if char in text:
            text = text.replace(char, "\\" + char)
    return text

# Tokens kept as they are: mentions `@[Name](urn:li:organization:1)` and hashtags `#word`.
_LITTLE_MENTION = re.compile(r"@\[[^\[\]()\\]+\]\(urn:li:(?:person|organization):[A-Za-z0-9_-]+\)")
_HASHTAG = re.compile(r"#\w+")


def _little_keep(text: str) -> list[tuple[int, int]]:
    """Spans of mentions and of hashtags that start a word. Two literal-led patterns and a look at
    the character before: one pattern with a look-behind alternative is tried at every position."""
    spans = [m.span() for m in _LITTLE_MENTION.finditer(text)] if "@[" in text else []
    if "#" in text:
        for match in _HASHTAG.finditer(text):
            before = text[match.start() - 1] if match.start() else " "
            if not (before.isalnum() or before in "_#"):  # what `\w` and '#' match, as (?<![\w#])
                spans.append(match.span())
    return spans


def escape_little(text: str) -> str:
    """Escape LinkedIn's reserved characters, keeping URLs, hashtags and mentions working."""
    keep = find_urls(text) if "://" in text else []
    if "#" in text or "@" in text:
        keep = sorted(keep + _little_keep(text))
    out, pos = [], 0
    for start, end in keep:
        if start < pos:
            continue  # a hashtag inside a URL's fragment: the URL is kept whole
        out.append(_escape_reserved(text[pos:start]))
        out.append(text[start:end])
        pos = end
    out.append(_escape_reserved(text[pos:]))
    return "".join(out)


def linkedin_post(claim: Claim, config: LinkedInSettings, image_urn: str | None = None) -> dict[str, Any]:
    """`image_urn`: the uploaded image (Images API); the outbox, which uploads nothing, names the file."""
    body: dict[str, Any] = {
        "author": config.author,
        "commentary": claim.payload["text"],
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    link = claim.payload.get("link")
    image = claim.payload.get("image")
    if image:
        image_urn = image_urn or f"(urn:li:image of {image}, uploaded first)"
    if link:  # a post has one content: the image becomes the link's thumbnail
        # The card's title and description: the knowledge item's (or the post's), set when planned.
        article = {"source": link, "title": claim.payload.get("link_title") or link}
        if claim.payload.get("link_description"):
            article["description"] = claim.payload["link_description"]
        body["content"] = {"article": article}
        if image:
            body["content"]["article"] |= {"thumbnail": image_urn, "thumbnailAltText": claim.payload.get("image_alt")}
    elif image:
        body["content"] = {"media": {"id": image_urn, "altText": claim.payload.get("image_alt")}}
    return body


# --- signing in -----------------------------------------------------------------------------------

def linkedin_scopes(config: LinkedInSettings) -> str:
    if config.scopes:
        return config.scopes
    if config.author.startswith("urn:li:organization:"):
        return "openid profile w_organization_social r_organization_social rw_organization_admin"
    return "openid profile w_member_social"


class LinkedInOAuth:
    """Signing in (`dissemination auth linkedin <channel>`) and renewing a token with its refresh token."""

    def __init__(self, channel: str, config: LinkedInSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self.config = config
        self.base = str(config.oauth_base).rstrip("/")
        self.transport = transport

    def client(self) -> tuple[str, str]:
        from dissemination.publish.oauth import OAuthError

        id_env, secret_env = self.config.client_id_env, self.config.client_secret_env
        if not id_env or not secret_env:
            raise OAuthError(f"channel '{self.channel}' names no client_id_env and client_secret_env in "
                             "channels.yaml: add the names of the environment variables that hold the "
                             "LinkedIn app's client id and secret")
        missing = [n for n in (id_env, secret_env) if not os.environ.get(n)]
        if missing:
            raise OAuthError(f"{' and '.join(missing)} not set: set the LinkedIn app's client id and secret")
        register(os.environ[secret_env])
        return os.environ[id_env], os.environ[secret_env]

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        client_id, _ = self.client()
        query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                           "state": state, "scope": linkedin_scopes(self.config)})
        return f"{self.base}/oauth/v2/authorization?{query}"

    def _token(self, form: dict[str, str], now: dt.datetime, previous: Credential | None) -> Credential:
        import httpx

        from dissemination.publish.oauth import TIMEOUT, OAuthError

        client_id, client_secret = self.client()
        try:
            with httpx.Client(timeout=TIMEOUT, transport=self.transport) as http:
                response = http.post(f"{self.base}/oauth/v2/accessToken",
                                     data={**form, "client_id": client_id, "client_secret": client_secret})
        except httpx.HTTPError as exc:
            raise OAuthError(f"cannot reach {self.base}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error", "") if isinstance(body, dict) else ""
            detail = body.get("error_description", "") if isinstance(body, dict) else ""
            raise OAuthError(f"LinkedIn refused the {form['grant_type'].replace('_', ' ')}: HTTP "
                             f"{response.status_code} {error} {detail}".rstrip())
        expires_in = body.get("expires_in")
        refresh_in = body.get("refresh_token_expires_in")
        return Credential(
            self.channel, "linkedin", self.base, body["access_token"], obtained_at=now,
            expires_at=now + dt.timedelta(seconds=int(expires_in)) if expires_in else None,
            refresh_token=body.get("refresh_token") or (previous.refresh_token if previous else None),
            # LinkedIn does not extend a refresh token's life when it is used (§3.6)
            refresh_expires_at=(now + dt.timedelta(seconds=int(refresh_in)) if refresh_in
                                else previous.refresh_expires_at if previous else None),
            scope=body.get("scope") or (previous.scope if previous else None),
            account=previous.account if previous else None)

    def exchange(self, code: str, redirect_uri: str, now: dt.datetime) -> Credential:
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
                           now, None)

    def refresh(self, credential: Credential, now: dt.datetime) -> Credential:
        assert credential.refresh_token
        return self._token({"grant_type": "refresh_token", "refresh_token": credential.refresh_token},
                           now, credential)

    def who(self, credential: Credential) -> Credential:
        """The signed-in member's name from OpenID userinfo, when the token has that scope."""
        import httpx

        from dissemination.publish.oauth import TIMEOUT

        api = str(self.config.api_base).rstrip("/")
        try:
            with httpx.Client(timeout=TIMEOUT, transport=self.transport) as http:
                response = http.get(f"{api}/v2/userinfo",
                                    headers={"Authorization": f"Bearer {credential.access_token}"})
        except httpx.HTTPError:
            return credential
        if response.status_code != 200:
            return credential
        body = response.json()
        return replace(credential, account=f"{body.get('name', '?')} (urn:li:person:{body.get('sub', '?')})")


# --- the adapter ---------------------------------------------------------------------------------

class LinkedInChannel(TokenChannel):
    kind = "linkedin"
    settings = LinkedInSettings
    metrics = (Metric("impressions", "reach"), Metric("clicks", "clicks"), Metric("reactions", "reactions"),
               Metric("likes", "reactions"), Metric("comments", "comments"), Metric("shares", "shares"))
    # Posts read per minute (2 requests each for an organisation, 4 for a member): LinkedIn's
    # daily per-app quotas are not published; this keeps a day's refresh far below any of them.
    READS_PER_MINUTE = 30

    @classmethod
    def capabilities_of(cls, config: m.ChannelSettings) -> Capabilities:
        assert isinstance(config, LinkedInSettings)
        return Capabilities(
            "linkedin", "LinkedIn", markup="little", max_length=config.max_characters, max_images=20,
            image_types=IMAGE_TYPES,
            link_card=True, read_concurrency=config.metrics_concurrency,
            read_per_minute=config.metrics_per_minute or cls.READS_PER_MINUTE, key_retention=DUPLICATE_WINDOW,
            idempotent=True)  # LinkedIn refuses a duplicate post (422) within its window, then read-back

    @classmethod
    def text(cls, plain: str, capabilities: Capabilities) -> tuple[str, int]:
        # The 3,000 limit applies to the text as readers see it, before escaping.
        return escape_little(plain), grapheme_length(plain)

    @classmethod
    def mention(cls, stakeholder: m.Stakeholder) -> str | None:
        if not stakeholder.linkedin:
            return None
        name = "".join(c for c in stakeholder.name if c not in "[]()\\")
        return f"@[{name}]({stakeholder.linkedin})"

    @classmethod
    def outbox_request(cls, claim: Claim, config: m.ChannelSettings) -> dict[str, Any]:
        assert isinstance(config, LinkedInSettings)
        return {"method": "POST", "url": f"{config.api_base.rstrip('/')}/rest/posts",
                "headers": {"LinkedIn-Version": config.api_version, "X-Restli-Protocol-Version": "2.0.0"},
                "json": linkedin_post(claim, config)}

    def __init__(self, channel_id: str, config: m.ChannelSettings, root: Path, token: Token | None = None,
                 transport: Any = None) -> None:
        """`transport`: an httpx transport standing in for LinkedIn (tests)."""
        import httpx

        super().__init__(channel_id, config, root, token, transport)
        assert isinstance(config, LinkedInSettings) and token is not None
        self.config: LinkedInSettings = config
        self.token: Token = token
        self.base_url = config.api_base.rstrip("/")
        self._clock = lambda: dt.datetime.now(UTC)
        self._stop: str | None = None  # a refused token or an inactive version: no use trying more
        # The token lives only in the client's default headers, never in a message.
        self.client = httpx.Client(
            base_url=self.base_url, timeout=config.request_timeout.total_seconds(), transport=transport,
            verify=tls_context(),
            headers={"Authorization": f"Bearer {token.value}",
                     "LinkedIn-Version": config.api_version, "X-Restli-Protocol-Version": "2.0.0"})

    def bind(self, ledger: Any, clock: Callable[[], dt.datetime] | None = None, lease: dt.timedelta | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> None:
        """The run's clock: a daily limit waits until the next midnight UTC of that clock."""
        if clock is not None:
            self._clock = clock

    def _until_reset(self, response: httpx.Response) -> dt.timedelta:
        retry_after = response.headers.get("Retry-After", "").strip()
        if retry_after.isdigit():
            return dt.timedelta(seconds=max(int(retry_after), 1))
        now = self._clock()
        midnight = dt.datetime.combine(now.astimezone(UTC).date() + dt.timedelta(days=1), dt.time(), UTC)
        return midnight - now

    def read_back(self, claim: Claim, since: dt.datetime) -> Receipt | None:
        """Our post among the author's since `since`: the same commentary (as sent, escaped) by the
        same author. GET /rest/posts?q=author, newest first."""
        import httpx

        body = linkedin_post(claim, self.config, None)
        oldest_ms = int((since - CLOCK_SKEW).timestamp() * 1000)
        for page in range(READ_BACK_PAGES):
            try:
                response = self.client.get("/rest/posts", params={
                    "q": "author", "author": self.config.author, "count": 50, "start": page * 50,
                    "sortBy": "CREATED"}, headers={"X-RestLi-Method": "FINDER"})
            except httpx.HTTPError as exc:
                raise ReadBackError(f"cannot reach {self.base_url}: {type(exc).__name__}") from None
            if response.status_code == 429:
                raise PublishError("rate limited by LinkedIn while reading back", retry_after=self._until_reset(response))
            if response.status_code != 200:
                code, message = _error(response)
                raise ReadBackError(f"LinkedIn answered HTTP {response.status_code} {code} to the author's posts: "
                                    f"{message}".rstrip(": "))
            elements = response.json().get("elements") or []
            for post in elements:
                if post.get("author") == body["author"] and post.get("commentary") == body["commentary"] \
                        and int(post.get("createdAt") or 0) >= oldest_ms:
                    return self._receipt(str(post["id"]))
            if len(elements) < 50 or min(int(p.get("createdAt") or 0) for p in elements) < oldest_ms:
                return None  # every post since the first attempt was looked at: absent
        raise ReadBackError(f"more than {READ_BACK_PAGES * 50} posts since the first attempt; not all compared")

    def _sign_in_again(self) -> str:
        return f"run `{auth_command('linkedin', self.id)}`"

    def _refused(self, code: str, message: str) -> str:
        self.token.refused(f"{code} {message}".strip())
        fix = "sign in again" if self.token.from_environment else self._sign_in_again()
        return f"{self.token.source} was refused by LinkedIn ({code}: {message}); {fix}"

    def preflight(self, now: dt.datetime | None = None) -> Health:
        """Renew a stored token that expires within a week when there is a refresh token, warn a
        week ahead when there is none, and ask LinkedIn whether the token is still accepted."""
        import httpx

        now = now or dt.datetime.now(UTC)
        credential = self.token.credential
        warning = None
        if credential is not None and credential.expires_at is not None:
            warning, failure = self._renew(credential, now)
            if failure:
                return Health(False, failure, credential_broken=True, expires_at=credential.expires_at)
            credential = self.token.credential
        try:
            response = self.client.get("/v2/userinfo")
        except httpx.HTTPError as exc:
            return Health(False, f"cannot reach {self.base_url}: {type(exc).__name__}")
        if response.status_code == 401:
            code, message = _error(response)
            self._stop = self._refused(code or "401", message)
            return Health(False, self._stop, credential_broken=True)
        expires_at = credential.expires_at if credential else None
        if response.status_code == 200:
            who = response.json().get("name") or "?"
            checked = f"{self.token.source} accepted (signed in as {who})"
        elif credential is not None and credential.broken:
            return Health(False, f"{self.token.source} was refused earlier ({credential.broken}); "
                                 f"{self._sign_in_again()}", credential_broken=True)
        else:  # 403: a posting-only token without openid; the first post will tell
            checked = f"{self.token.source} (not checkable without the openid scope)"
        until = f", valid until {expires_at:%Y-%m-%d}" if expires_at else ""
        return Health(True, f"posting as {self.config.author} with LinkedIn-Version {self.config.api_version}; "
                            f"{checked}{until}", expires_at=expires_at, warning=warning)

    def _renew(self, credential: Credential, now: dt.datetime) -> tuple[str | None, str | None]:
        """(warning, failure): renew with the refresh token when the access token expires within
        RENEW_BEFORE; without one, warn until it expires, then fail."""
        assert credential.expires_at is not None
        left = credential.expires_at - now
        refreshable = credential.refresh_token and (
            credential.refresh_expires_at is None or credential.refresh_expires_at > now)
        warning = None
        if left <= RENEW_BEFORE and refreshable:
            from dissemination.publish.oauth import OAuthError

            try:
                renewed = LinkedInOAuth(self.id, self.config, self.transport).refresh(credential, now)
            except OAuthError as exc:
                if left <= dt.timedelta(0):
                    return None, f"{self.token.source} expired on {credential.expires_at:%Y-%m-%d} and could " \
                                 f"not be renewed ({exc}); {self._sign_in_again()}"
                warning = f"{self.token.source} expires on {credential.expires_at:%Y-%m-%d} and could not be " \
                          f"renewed ({exc}); {self._sign_in_again()} before then"
            else:
                self.token.renewed(renewed)
                self.client.headers["Authorization"] = f"Bearer {renewed.access_token}"
                log.info("%s: renewed the LinkedIn token; valid until %s", self.id, renewed.expires_at)
                credential = renewed
                left = credential.expires_at - now if credential.expires_at else dt.timedelta.max
        if left <= dt.timedelta(0):
            return None, (f"{self.token.source} expired on {credential.expires_at:%Y-%m-%d} and there is no "
                          f"refresh token; {self._sign_in_again()}")
        if warning is None and left <= RENEW_BEFORE:
            warning = (f"{self.token.source} expires on {credential.expires_at:%Y-%m-%d} (in {_days(left)}) and "
                       f"LinkedIn gave no refresh token: {self._sign_in_again()} before then")
        elif warning is None and credential.refresh_expires_at and \
                credential.refresh_expires_at - now <= RENEW_BEFORE:
            warning = (f"the refresh token of channel '{self.id}' expires on "
                       f"{credential.refresh_expires_at:%Y-%m-%d}: {self._sign_in_again()} before then")
        return warning, None

    def publish(self, claim: Claim) -> Receipt:
        if self._stop:
            raise PublishError(self._stop)
        import httpx

        image_urn = self._upload(claim) if claim.payload.get("image") else None
        try:
            response = self.client.post("/rest/posts", json=linkedin_post(claim, self.config, image_urn))
        except httpx.TimeoutException:
            raise PublishError("LinkedIn did not answer in time; the post may exist, the retry will tell",
                               outcome_unknown=True) from None
        except httpx.TransportError as exc:
            raise PublishError(f"cannot reach {self.base_url}: {type(exc).__name__}", outcome_unknown=True) from None
        if response.status_code == 201:
            urn = response.headers.get("x-restli-id")
            if not urn:
                raise PublishError("LinkedIn answered 201 without x-restli-id", outcome_unknown=True)
            return self._receipt(urn)
        code, message = _error(response)
        status = response.status_code
        if status == 422 and code == "DUPLICATE_POST":
            match = _DUPLICATE_URN.search(message)
            if match and claim.attempt_count > 1:  # published before, by an attempt whose answer was lost
                return self._receipt(match.group(1))
            # On a first attempt the duplicate is another post with the same text (e.g. a series
            # whose occurrences read alike): recording its URN would claim a post we never made.
            raise PublishError(f"LinkedIn refuses this text as a duplicate of an earlier post ({message}); "
                               "make this post's text differ, e.g. name the featured item", permanent=True)
        raise self._failure(response, "the post", outcome_unknown=True)

    def _failure(self, response: httpx.Response, what: str, outcome_unknown: bool) -> PublishError:
        """How a refused request is treated (401, 426 and 429 alike for every endpoint)."""
        code, message = _error(response)
        status = response.status_code
        if status == 401:
            self._stop = self._refused(code or str(status), message)
            return PublishError(self._stop)
        if status == 426:
            self._stop = (f"LinkedIn-Version {self.config.api_version} is no longer active ({message}); set a "
                          f"recent api_version (YYYYMM) for channel '{self.id}' in channels.yaml")
            return PublishError(self._stop)
        if status == 429:
            wait = self._until_reset(response)
            return PublishError(f"rate limited by LinkedIn: {message}; trying again in {wait.total_seconds():.0f} s",
                                retry_after=wait)
        if status >= 500:
            return PublishError(f"LinkedIn answered {status}" + (
                "; the post may exist, the retry will tell" if outcome_unknown else f" to {what}; will retry"),
                outcome_unknown=outcome_unknown)
        return PublishError(f"LinkedIn refused {what}: HTTP {status} {code}: {message}".replace("  ", " "),
                            permanent=True)

    def _upload(self, claim: Claim) -> str:
        """Upload the post's image through the Images API (initializeUpload, then PUT the bytes)
        and wait (bounded) until LinkedIn has processed it. A retry uploads again; the earlier
        image is never referenced by a post."""
        import httpx

        path = content_file(self.root, claim.payload["image"])
        if not path.is_file():
            raise PublishError(f"image file '{claim.payload['image']}' not found (run `dissemination check`)",
                               permanent=True)
        unknown = claim.attempt_count > 1  # an earlier attempt may have posted
        try:
            response = self.client.post("/rest/images", params={"action": "initializeUpload"},
                                        json={"initializeUploadRequest": {"owner": self.config.author}})
            if response.status_code != 200:
                raise self._failure(response, "the image upload", outcome_unknown=unknown)
            value = response.json().get("value") or {}
            upload_url, urn = value.get("uploadUrl"), value.get("image")
            if not upload_url or not urn:
                raise PublishError("LinkedIn's initializeUpload answer has no uploadUrl or image", outcome_unknown=unknown)
            # The bearer token goes only to LinkedIn itself (the upload URL is LinkedIn's, normally).
            host = httpx.URL(upload_url).host
            trusted = host == httpx.URL(self.base_url).host or host == "linkedin.com" or host.endswith(".linkedin.com")
            if trusted:
                response = self.client.put(upload_url, content=path.read_bytes())
            else:
                with httpx.Client(timeout=self.client.timeout, transport=self.transport) as bare:
                    response = bare.put(upload_url, content=path.read_bytes())
            if response.status_code not in (200, 201):
                raise self._failure(response, "the image upload", outcome_unknown=unknown)
            deadline = time.monotonic() + self.config.media_wait.total_seconds()
            delay = 0.2
            while True:
                response = self.client.get(f"/rest/images/{quote(urn, safe='')}")
                if response.status_code != 200:
                    raise self._failure(response, "the image status", outcome_unknown=unknown)
                status = response.json().get("status")
                if status == "AVAILABLE":
                    return urn
                if status in ("PROCESSING_FAILED", "FAILED"):
                    raise PublishError(f"LinkedIn could not process image '{claim.payload['image']}' ({status})",
                                       permanent=True)
                if time.monotonic() + delay > deadline:
                    raise PublishError(f"LinkedIn was still processing the image after "
                                       f"{self.config.media_wait.total_seconds():.0f} s; trying again later",
                                       outcome_unknown=unknown)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        except httpx.HTTPError as exc:
            raise PublishError(f"cannot upload the image to LinkedIn: {type(exc).__name__}; will retry",
                               outcome_unknown=unknown) from None

    def _receipt(self, urn: str) -> Receipt:
        return Receipt(remote_id=urn, url=f"https://www.linkedin.com/feed/update/{urn}/")

    # metric -> field of totalShareStatistics (organization posts)
    SHARE_STATISTICS = {"impressions": "impressionCount", "clicks": "clickCount", "likes": "likeCount",
                        "comments": "commentCount", "shares": "shareCount"}
    # metric -> queryType of memberCreatorPostAnalytics (member posts)
    MEMBER_ANALYTICS = {"impressions": "IMPRESSION", "reactions": "REACTION", "comments": "COMMENT",
                        "shares": "RESHARE"}

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Every metric needs a scope a posting-only app lacks; a refusal is stored as unavailable
        with the scope named, never as 0 (§3.5)."""
        rows: list[Snapshot] = []
        organization = self.config.author.startswith("urn:li:organization:")
        for item, receipt in receipts.items():
            urn = receipt.remote_id
            if organization:
                rows += self._share_statistics(item, urn, now)
                rows += self._social_metadata(item, urn, now)
            else:
                rows += self._member_analytics(item, urn, now)
        return rows

    def _get(self, path: str) -> httpx.Response | str:
        """The response, or why there is none."""
        import httpx

        try:
            return self.client.get(path)
        except httpx.HTTPError as exc:
            return f"cannot reach {self.base_url}: {type(exc).__name__}"

    @staticmethod
    def _refusal(response: httpx.Response | str, scope: str) -> str | None:
        if isinstance(response, str):
            return response
        if response.status_code == 200:
            return None
        code, message = _error(response)
        if response.status_code == 403:
            return f"needs the {scope} scope (LinkedIn: 403 {code} {message})".replace("  ", " ")
        return f"LinkedIn answered {response.status_code} {code} {message}".strip()

    def _share_statistics(self, item: str, urn: str, now: dt.datetime) -> list[Snapshot]:
        source = "linkedin:organizationalEntityShareStatistics"
        kind = "ugcPosts" if urn.startswith("urn:li:ugcPost:") else "shares"
        # Rest.li wants the URNs inside List(...) encoded, and the parentheses themselves not.
        response = self._get(f"/rest/organizationalEntityShareStatistics?q=organizationalEntity"
                             f"&organizationalEntity={quote(self.config.author, safe='')}"
                             f"&{kind}=List({quote(urn, safe='')})")
        refusal = self._refusal(response, "rw_organization_admin")
        if refusal is None and not isinstance(response, str):
            elements = [e for e in response.json().get("elements", []) if urn in (e.get("share"), e.get("ugcPost"))]
            if not elements:
                refusal = "no statistics for this post (LinkedIn keeps them for 12 months)"
        if refusal is not None:
            return [Snapshot.unavailable(item, metric, now, source, refusal) for metric in self.SHARE_STATISTICS]
        totals = elements[0].get("totalShareStatistics", {})
        return [Snapshot(item, metric, float(totals[field]), now, source) if field in totals
                else Snapshot.unavailable(item, metric, now, source, f"{field} not reported")
                for metric, field in self.SHARE_STATISTICS.items()]

    def _social_metadata(self, item: str, urn: str, now: dt.datetime) -> list[Snapshot]:
        source = "linkedin:socialMetadata"
        response = self._get(f"/rest/socialMetadata/{quote(urn, safe='')}")
        refusal = self._refusal(response, "r_organization_social")
        if refusal is not None or isinstance(response, str):
            return [Snapshot.unavailable(item, "reactions", now, source, refusal or str(response))]
        body = response.json()
        reactions = sum(r.get("count", 0) for r in (body.get("reactionSummaries") or {}).values())
        return [Snapshot(item, "reactions", float(reactions), now, source)]

    def _member_analytics(self, item: str, urn: str, now: dt.datetime) -> list[Snapshot]:
        source = "linkedin:memberCreatorPostAnalytics"
        union = "ugc" if urn.startswith("urn:li:ugcPost:") else "share"
        rows = []
        for metric, query_type in self.MEMBER_ANALYTICS.items():
            response = self._get(f"/rest/memberCreatorPostAnalytics?q=entity&entity=({union}:{quote(urn, safe='')})"
                                 f"&queryType={query_type}&aggregation=TOTAL")
            refusal = self._refusal(response, "r_member_postAnalytics")
            if refusal is None and not isinstance(response, str):
                counts = [e.get("count") for e in response.json().get("elements", []) if e.get("count") is not None]
                if counts:
                    rows.append(Snapshot(item, metric, float(sum(counts)), now, source))
                    continue
                refusal = f"no {query_type} count returned"
            rows.append(Snapshot.unavailable(item, metric, now, source, refusal or str(response)))
        return rows
