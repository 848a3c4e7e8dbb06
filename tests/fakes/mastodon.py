"""A Mastodon server on loopback that behaves as documented (platform_apis.md §1), with response
shapes taken from the Mastodon.py cassettes recorded against a real 4.6.4 server.

Faults are switched on per test: `fail_after_store` (store the status, then answer 500),
`rate_limit_for` (answer 429 with an ISO-8601 reset that many seconds ahead), `reject_with`
(422 with a localized message), `echo_token` (quote the request's Authorization header in 401s and
refusals, as careless servers and proxies do). Only `token` (and tokens issued by /oauth/token) is accepted.

Media (§1.3): POST /api/v2/media stores the upload with its description and answers 202 with
`url: null` while `processing_polls` GET /api/v1/media/:id calls are still to come (206), then 200
with the url; 200 at once when it is 0 (images on a real server). A status naming unprocessed
media is refused with 422, as Mastodon does. The deprecated /api/v1/media is not served here, so
a client that falls into the version trap of §2.3 fails loudly.

OAuth (§1.1): POST /api/v1/apps registers an app; the person's approval is simulated by
`approve(code)`, after which POST /oauth/token exchanges that code for a new token.

As the recordings show (tests/fakes/recorded/, see its README): every authenticated answer carries
X-RateLimit-Limit/-Remaining/-Reset, the reset an ISO-8601 time with microseconds at the end of a
window aligned to its period: creating statuses 300 per 3 hours (the server's status limiter),
media uploads 30 per 30 minutes, everything else 300 per 5 minutes per token. A 429 carries them
too. Error messages are localized (`locale`: "ja" as the recorded account, "de", "en"); a status
over `max_characters` is refused 422; media already attached to a status cannot be attached again
(422). The server has its own clock (`now()`, moved with `advance()`), which the Date header,
created_at, snowflake ids, the rate-limit windows and the one-hour life of an Idempotency-Key
follow; a key older than an hour is forgotten, so a repeat then creates a second status.

Faults: `faults` is a queue consumed one per POST /api/v1/statuses: "stored-500"/"stored-502"
(store, then answer that), "stored-drop" (store, then close the connection unanswered), "502"
(a gateway error; nothing stored), ("429", seconds) (rate limited for that long).
`fail_after_store` (stored-500 that many times) and `rate_limit_for` are the older spellings.
Older servers: `batch_reads = False` answers the batch GET /api/v1/statuses?id[]= with 405 (before
Mastodon 4.3, GoToSocial, Takahē); `instance_slash_404 = True` answers /api/v2/instance/ (with the
slash Mastodon.py sends) with 404. `account_statuses_error` makes the account's status list (what
read-back uses) answer that HTTP status. The loopback server, like the real one for 127.0.0.1, does
not throttle reads unless `throttle_reads` is set.

Boosts (§1.4): `boost(status_id, handle)` makes an account boost a status; GET
/api/v1/statuses/:id/reblogged_by answers an array of Account objects shaped like the recorded
account (acct without a domain for a local account), paged with a Link header.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import secrets
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from email.utils import format_datetime
from pathlib import Path

from fakes import LoopbackServer

UTC = dt.timezone.utc
ACCOUNT_ID = "117020565966271181"
KEY_LIFE = dt.timedelta(hours=1)  # Idempotency-Key retention (post_status_service.rb: 3600 s)
RECORDED = json.loads((Path(__file__).parent / "recorded" / "mastodon-4.6.4.json").read_text())
# (limit, period) of the throttles whose headers the recorded answers carry
STATUS_LIMIT = (300, dt.timedelta(hours=3))
MEDIA_LIMIT = (30, dt.timedelta(minutes=30))
API_LIMIT = (300, dt.timedelta(minutes=5))
MESSAGES = {  # the recorded localized 422s (ja, de) and the English source strings
    "too_long": {"ja": "バリデーションに失敗しました: Text上限は{n}文字です",
                 "de": "Gültigkeitsprüfung ist fehlgeschlagen: Text Begrenzung von {n} Zeichen überschritten",
                 "en": "Validation failed: Text character limit of {n} exceeded"},
    "blank": {"ja": "バリデーションに失敗しました: Textを入力してください", "de": "Gültigkeitsprüfung ist fehlgeschlagen: "
              "Text muss ausgefüllt werden", "en": "Validation failed: Text can't be blank"},
    "media_not_found": {"ja": "メディア {ids} が見つからないか、すでに他の投稿に添付されています",
                        "de": "Medien {ids} nicht gefunden oder bereits an einen anderen Beitrag angehängt",
                        "en": "Media {ids} not found or already attached to another post"},
}
_URL = re.compile(r"https?://\S+")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _window_end(now: dt.datetime, period: dt.timedelta) -> dt.datetime:
    """The end of the fixed window `now` is in, aligned to the period as the server's limiters
    are (`now + (period - now.to_i % period)`, keeping the microseconds)."""
    seconds = int(period.total_seconds())
    return now + dt.timedelta(seconds=seconds - int(now.timestamp()) % seconds)


def _length(text: str) -> int:
    # Mastodon counts every URL as 23 characters (close enough for these tests' texts)
    return len(_URL.sub("x" * 23, text))


class FakeMastodon(LoopbackServer):
    def __init__(self, token: str = "test-mastodon-token-9f8e7d") -> None:
        self.token = token
        self.max_characters = 500
        self.statuses: dict[str, dict] = {}
        self.idempotency: dict[str, str] = {}  # key -> status id (per account: one account here)
        self.requests: list[tuple[str, str]] = []
        self.fail_after_store = 0  # number of posts to answer 500 after storing
        self.rate_limit_for: float | None = None  # seconds until reset on the next post
        self.rate_limited_until: dt.datetime | None = None
        self.reject_with: str | None = None
        self.malformed = False  # answer a new status with 200 and a body that is not a status
        self.echo_token = False  # quote the presented bearer token in 401s and refusals (careless servers do)
        self.followers = 250  # the account's followers_count, as embedded in every status
        self.latency = 0.0  # seconds each answer is delayed (the metrics benchmark)
        self.reads_started: list[float] = []  # monotonic start of each batch read
        self.in_flight = 0
        self.max_in_flight = 0  # most batch reads answered at the same time
        self.read_connections: set[tuple[str, int]] = set()  # client (address, port) of each batch read
        self.sources: dict[str, str] = {}  # status id -> the text as sent (GET …/source)
        self.tokens = {token}
        self.media: dict[str, dict] = {}  # id -> attachment, plus the uploaded bytes under "_data"
        self.processing_polls = 0  # GET /api/v1/media/:id calls answered 206 before one is done
        self.image_size_limit = 16777216
        self.description_limit = 1500
        self.version = "4.6.4"
        self.locale = "ja"  # the recorded account's language: its errors come in Japanese
        self.offset = dt.timedelta(0)  # this server's clock: real time moved by advance()
        self.key_stored_at: dict[str, dt.datetime] = {}
        self.faults: list = []
        self.batch_reads = True
        self.instance_slash_404 = False
        self.account_statuses_error: int | None = None
        self.throttle_reads = False
        self.refuse_media: str | None = None  # answer uploads 422 with this (e.g. a corrupt file)
        self.status_limit = STATUS_LIMIT[0]
        # status id -> boosts, newest last: (the boost's own status id, the booster's Account)
        self.boosts: dict[str, list[tuple[str, dict]]] = {}
        self._counts: dict[tuple[str, int], int] = {}  # (throttle, window number) -> requests
        self._seq = 0
        self.apps: dict[str, dict] = {}  # client_id -> app
        self.approved: dict[str, str] = {}  # code -> scopes the person granted
        self._listen()

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC) + self.offset

    def set_now(self, moment: dt.datetime) -> None:
        """Put this server's clock at `moment` (a test's pipeline time); it runs on from there."""
        self.offset = moment - dt.datetime.now(UTC)

    def remembers(self, key: str) -> bool:
        """Whether a repeat with this Idempotency-Key would still get the original status."""
        return key in self.idempotency and self.now() - self.key_stored_at[key] < KEY_LIFE

    def advance(self, **delta: float) -> None:
        """Move this server's clock (e.g. `advance(hours=2)`): keys expire, windows reset."""
        self.offset += dt.timedelta(**delta)

    def _snowflake(self) -> str:
        # Mastodon's ids: milliseconds since the epoch, shifted 16 bits, plus a sequence
        self._seq = (self._seq + 1) % 65536
        return str((int(self.now().timestamp() * 1000) << 16) + self._seq)

    def message(self, key: str, **values: str) -> str:
        return MESSAGES[key].get(self.locale, MESSAGES[key]["en"]).format(**values)

    def _count(self, throttle: str, limit_period: tuple[int, dt.timedelta], add: int = 1) -> tuple[dict, bool]:
        """Count a request against a throttle: (its headers, whether it is over the limit)."""
        limit, period = limit_period
        now = self.now()
        end = _window_end(now, period)  # shown with the microseconds of now, as the server does
        window = (throttle, int(now.timestamp()) // int(period.total_seconds()))
        used = self._counts.get(window, 0) + add
        self._counts[window] = used
        return ({"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(limit - used, 0)),
                 "X-RateLimit-Reset": _iso(end)}, used > limit)

    def approve(self, code: str) -> None:
        """The person approved the app on /oauth/authorize; the page showed `code`."""
        self.approved[code] = "pending"

    def _status(self, text: str, visibility: str, language: str) -> dict:
        sid = self._snowflake()
        return {"id": sid, "created_at": _iso(self.now())[:23] + "Z", "in_reply_to_id": None,
                "in_reply_to_account_id": None, "sensitive": False, "spoiler_text": "",
                "visibility": visibility, "language": language,
                "uri": f"{self.url}/ap/users/117020565966271181/statuses/{sid}",
                "url": f"{self.url}/@roadmap/{sid}", "replies_count": 0, "reblogs_count": 0,
                "favourites_count": 0, "quotes_count": 0, "edited_at": None, "favourited": False,
                "reblogged": False, "muted": False, "bookmarked": False, "pinned": False,
                "content": f"<p>{html.escape(text)}</p>", "filtered": [], "reblog": None,
                "application": {"name": "dissemination", "website": None},
                "account": {"id": "117020565966271181", "username": "roadmap", "acct": "roadmap",
                            "followers_count": self.followers},
                "media_attachments": [], "mentions": [], "tags": [], "emojis": [], "quote": None,
                "card": None, "poll": None}

    def boost(self, status_id: str, handle: str) -> None:
        """`handle` (@user or @user@domain; without a domain: a local account) boosts the status:
        its reblogs_count goes up and GET …/reblogged_by lists the account, newest first."""
        username, _, domain = handle.lstrip("@").partition("@")
        local = not domain or domain == "127.0.0.1"
        with self.lock:
            account = {**json.loads(json.dumps(RECORDED["status_get"]["body"]["account"])),
                       "id": self._snowflake(), "username": username,
                       "acct": username if local else f"{username}@{domain}", "display_name": username.upper(),
                       "url": f"{self.url if local else 'https://' + domain}/@{username}",
                       "uri": f"{self.url if local else 'https://' + domain}/users/{username}",
                       "locked": False, "created_at": _iso(self.now())[:23] + "Z"}
            self.boosts.setdefault(status_id, []).append((self._snowflake(), account))
            self.statuses[status_id]["reblogs_count"] += 1

    def _shown(self, status: dict) -> dict:
        """A status as the API shows it: the account with its current followers."""
        return {**status, "account": {**status["account"], "followers_count": self.followers}}

    def _attachment(self, mid: str, description: str | None, done: bool) -> dict:
        return {"id": mid, "type": "image", "url": f"{self.url}/system/media_attachments/{mid}.png" if done else None,
                "preview_url": f"{self.url}/system/media_attachments/small/{mid}.png", "remote_url": None,
                "preview_remote_url": None, "text_url": None, "meta": {"focus": {"x": 0.0, "y": 0.0}},
                "description": description, "blurhash": "UGC~-#M{0JfkNFofR%M{IURj%Mt7E0oM%MR*"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 with persistent connections, as the platform answers; http.server's
            # default, HTTP/1.0, closes every connection after one answer. Without Nagle: the
            # headers and the body are written separately, and the body would wait for the
            # client's delayed ACK (~40 ms).
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def date_time_string(self, timestamp=None) -> str:  # the Date header: this server's clock
                return format_datetime(fake.now(), usegmt=True)

            def _send(self, code: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                due = getattr(self, "_due", None)
                if due is not None and (remaining := due - time.monotonic()) > 0:
                    time.sleep(remaining)
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                headers = {**getattr(self, "_limits", {}), **(headers or {})}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self, throttle: str = "api") -> bool:
                header = self.headers.get("Authorization") or ""
                if header.startswith("Bearer ") and header[7:] in fake.tokens:
                    with fake.lock:
                        self._limits, over = fake._count(throttle, API_LIMIT)
                    if over and fake.throttle_reads:
                        self._send(429, {"error": "Too many requests"})
                        return False
                    return True
                said = f" ({header})" if fake.echo_token else ""
                self._send(401, {"error": "The access token is invalid" + said},
                           {"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'})
                return False

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                batch = url.path.rstrip("/") == "/api/v1/statuses"
                if batch:
                    with fake.lock:
                        fake.reads_started.append(time.monotonic())
                        fake.read_connections.add(self.client_address)
                        fake.in_flight += 1
                        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                # The answer leaves `latency` after the request came in, however long building it
                # took: the latency is the API's, not this fake's JSON encoding's.
                self._due = time.monotonic() + fake.latency if fake.latency else None
                try:
                    self._get(url)
                finally:
                    if batch:
                        with fake.lock:
                            fake.in_flight -= 1

            def _instance_v2(self):  # type: ignore[no-untyped-def]
                body = json.loads(json.dumps(RECORDED["instance_v2"]["body"]))
                body.update({"domain": "127.0.0.1", "version": fake.version})
                configuration = body["configuration"]
                configuration["statuses"]["max_characters"] = fake.max_characters
                configuration["media_attachments"]["image_size_limit"] = fake.image_size_limit
                configuration["media_attachments"]["description_limit"] = fake.description_limit
                return self._send(200, body)

            def _get(self, url) -> None:
                path = url.path.rstrip("/")
                fake.requests.append(("GET", path))
                if path == "/api/v2/instance":
                    if fake.instance_slash_404 and url.path.endswith("/"):
                        return self._send(404, {"error": "Not Found"})
                    return self._instance_v2()
                if path == "/.well-known/oauth-authorization-server":
                    return self._send(200, {
                        "issuer": f"{fake.url}/", "authorization_endpoint": f"{fake.url}/oauth/authorize",
                        "token_endpoint": f"{fake.url}/oauth/token", "revocation_endpoint": f"{fake.url}/oauth/revoke",
                        "scopes_supported": ["read", "write", "read:accounts", "read:statuses", "write:statuses",
                                             "write:media", "profile"],
                        "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
                        "grant_types_supported": ["authorization_code", "client_credentials"],
                        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]})
                if path == "/api/v1/instance":
                    return self._send(200, {"uri": "127.0.0.1", "version": fake.version,
                                            "configuration": {"statuses": {
                                                "max_characters": fake.max_characters,
                                                "max_media_attachments": 4, "characters_reserved_per_url": 23}}},
                                      {"Deprecation": "@1668211200"})
                if not self._authorized():
                    return None
                query = parse_qs(url.query)
                if path == "/api/v1/accounts/verify_credentials":
                    return self._send(200, {"id": ACCOUNT_ID, "username": "roadmap", "acct": "roadmap"})
                if path == "/api/v1/statuses":  # batch: missing ids are silently left out
                    if not fake.batch_reads:  # before 4.3 (and GoToSocial, Takahē): no such route
                        return self._send(405, {"error": "Method Not Allowed"})
                    ids = query.get("id[]", [])
                    return self._send(200, [fake._shown(fake.statuses[i]) for i in ids if i in fake.statuses])
                if path == f"/api/v1/accounts/{ACCOUNT_ID}/statuses":
                    return self._account_statuses(query)
                if path.startswith("/api/v1/statuses/") and path.endswith("/reblogged_by"):
                    return self._reblogged_by(path.split("/")[4], query)
                if path.startswith("/api/v1/statuses/") and path.endswith("/source"):
                    sid = path.split("/")[4]
                    if sid not in fake.statuses:
                        return self._send(404, {"error": "Record not found"})
                    return self._send(200, {"id": sid, "text": fake.sources[sid], "spoiler_text": ""})
                if path.startswith("/api/v1/statuses/"):
                    status = fake.statuses.get(path.rsplit("/", 1)[1])
                    return self._send(200, fake._shown(status)) if status else self._send(404, {"error": "Not Found"})
                if path.startswith("/api/v1/media/"):
                    with fake.lock:
                        media = fake.media.get(path.rsplit("/", 1)[1])
                        if media is None:
                            return self._send(404, {"error": "Record not found"})
                        if media["_polls_left"] > 0:
                            media["_polls_left"] -= 1
                            return self._send(206, media["attachment"])
                        media["attachment"]["url"] = fake._attachment(media["attachment"]["id"], None, True)["url"]
                        return self._send(200, media["attachment"])
                return self._send(404, {"error": "Not Found"})

            def _account_statuses(self, query: dict):  # type: ignore[no-untyped-def]
                """GET /api/v1/accounts/:id/statuses: newest first, at most `limit` (40), newer than
                `since_id`, older than `max_id`, with a Link header to the next page."""
                if fake.account_statuses_error:
                    return self._send(fake.account_statuses_error, {
                        "error": "There was a temporary problem serving your request, please try again"})
                limit = min(int(query.get("limit", ["20"])[0]), 40)
                since = int(query.get("since_id", ["0"])[0])
                before = int(query["max_id"][0]) if "max_id" in query else None
                ids = sorted((int(i) for i in fake.statuses), reverse=True)
                page = [i for i in ids if i > since and (before is None or i < before)][:limit]
                headers = {}
                if len(page) == limit:
                    headers["Link"] = (f'<{fake.url}/api/v1/accounts/{ACCOUNT_ID}/statuses?limit={limit}&'
                                       f'max_id={page[-1]}&since_id={since}>; rel="next"')
                return self._send(200, [fake._shown(fake.statuses[str(i)]) for i in page], headers)

            def _reblogged_by(self, sid: str, query: dict):  # type: ignore[no-untyped-def]
                """GET /api/v1/statuses/:id/reblogged_by: an array of Account, newest boost first,
                at most `limit` (default 40, max 80), paged by the boosts' own status ids in the
                Link header as Mastodon does (max_id = the last boost on this page)."""
                if sid not in fake.statuses:
                    return self._send(404, {"error": "Record not found"})
                limit = min(int(query.get("limit", ["40"])[0]), 80)
                before = int(query["max_id"][0]) if "max_id" in query else None
                boosts = sorted(fake.boosts.get(sid, []), key=lambda b: int(b[0]), reverse=True)
                page = [b for b in boosts if before is None or int(b[0]) < before][:limit]
                headers = {}
                if len(page) == limit:
                    headers["Link"] = (f'<{fake.url}/api/v1/statuses/{sid}/reblogged_by?limit={limit}&'
                                       f'max_id={page[-1][0]}>; rel="next", <{fake.url}/api/v1/statuses/{sid}/'
                                       f'reblogged_by?limit={limit}&since_id={page[0][0]}>; rel="prev"')
                return self._send(200, [account for _, account in page], headers)

            def _multipart(self, body: bytes) -> dict:
                message = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
                parts = {}
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    parts[name] = (part.get_content_type(), part.get_payload(decode=True))
                return parts

            def _media_post(self, body: bytes):  # type: ignore[no-untyped-def]
                if not self._authorized():
                    return None
                with fake.lock:
                    self._limits, _ = fake._count("media", MEDIA_LIMIT)
                parts = self._multipart(body)
                mime, data = parts.get("file", (None, None))
                if data is None:
                    return self._send(422, {"error": "Validation failed: File can't be blank"})
                if not mime.startswith("image/") or len(data) > fake.image_size_limit:
                    return self._send(422, {"error": "Validation failed: File content type is invalid, File is invalid"})
                if fake.refuse_media:
                    return self._send(422, {"error": fake.refuse_media})
                description = parts["description"][1].decode() if "description" in parts else None
                with fake.lock:
                    mid = fake._snowflake()
                    done = fake.processing_polls == 0
                    attachment = fake._attachment(mid, description, done)
                    fake.media[mid] = {"attachment": attachment, "_data": data, "_mime": mime,
                                       "_polls_left": fake.processing_polls, "status_id": None}
                return self._send(200 if done else 202, attachment)

            def _apps(self, form: dict):  # type: ignore[no-untyped-def]
                if not form.get("client_name") or not form.get("redirect_uris"):
                    return self._send(422, {"error": "Validation failed: Redirect URI must be an absolute URI."})
                app = {"id": str(len(fake.apps) + 563419), "name": form["client_name"],
                       "website": form.get("website"), "scopes": form.get("scopes", "read").split(),
                       "redirect_uri": form["redirect_uris"], "redirect_uris": form["redirect_uris"].split(),
                       "client_id": secrets.token_urlsafe(32), "client_secret": secrets.token_urlsafe(32),
                       "client_secret_expires_at": 0}
                fake.apps[app["client_id"]] = app
                return self._send(200, app)

            def _token(self, form: dict):  # type: ignore[no-untyped-def]
                app = fake.apps.get(form.get("client_id", ""))
                if app is None or app["client_secret"] != form.get("client_secret"):
                    return self._send(401, {"error": "invalid_client", "error_description":
                                            "Client authentication failed due to unknown client, no client "
                                            "authentication included, or unsupported authentication method."})
                scopes = form.get("scope", "read").split()
                if form.get("grant_type") != "authorization_code" or fake.approved.pop(form.get("code", ""), None) \
                        is None or form.get("redirect_uri") not in app["redirect_uris"]:
                    return self._send(400, {"error": "invalid_grant", "error_description":
                                            "The provided authorization grant is invalid, expired, revoked, does "
                                            "not match the redirection URI used in the authorization request, or "
                                            "was issued to another client."})
                if not set(scopes) <= set(app["scopes"]):
                    return self._send(400, {"error": "invalid_scope", "error_description":
                                            "The requested scope is invalid, unknown, or malformed."})
                token = secrets.token_urlsafe(32)
                fake.tokens.add(token)
                return self._send(200, {"access_token": token, "token_type": "Bearer", "scope": " ".join(scopes),
                                        "created_at": int(fake.now().timestamp())})

            def do_POST(self) -> None:
                self._due = time.monotonic() + fake.latency if fake.latency else None  # as do_GET
                path = urlsplit(self.path).path.rstrip("/")
                fake.requests.append(("POST", path))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if path == "/api/v2/media":
                    return self._media_post(raw)
                fields = parse_qs(raw.decode())
                form = {k: v[0] for k, v in fields.items()}
                if path == "/api/v1/apps":
                    return self._apps(form)
                if path == "/oauth/token":
                    return self._token(form)
                if path != "/api/v1/statuses":
                    return self._send(404, {"error": "Not Found"})
                if not self._authorized():
                    return None
                with fake.lock:
                    self._post_status(fields, form)

            def _post_status(self, fields: dict, form: dict):  # type: ignore[no-untyped-def]
                """POST /api/v1/statuses, under the fake's lock (the server's Redis lock on the key)."""
                now = fake.now()
                fault = fake.faults.pop(0) if fake.faults else None
                if fault is None and fake.fail_after_store:
                    fake.fail_after_store -= 1
                    fault = "stored-500"
                if fake.rate_limit_for is not None:
                    fault, fake.rate_limit_for = ("429", fake.rate_limit_for), None
                if isinstance(fault, tuple) and fault[0] == "429":
                    fake.rate_limited_until = now + dt.timedelta(seconds=fault[1])
                    fault = None
                status_limit = (fake.status_limit, STATUS_LIMIT[1])
                if fake.rate_limited_until and now < fake.rate_limited_until:
                    return self._send(429, {"error": "Too many requests"}, {
                        "X-RateLimit-Limit": str(fake.status_limit), "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": _iso(fake.rate_limited_until)})
                if fault == "502":  # the proxy in front found the application down: nothing stored
                    return self._send(502, {"error": "Bad Gateway"})
                key = self.headers.get("Idempotency-Key")
                if key and key in fake.idempotency and now - fake.key_stored_at[key] >= KEY_LIFE:
                    del fake.idempotency[key], fake.key_stored_at[key]  # Redis let it expire
                headers, over = fake._count("statuses", status_limit, add=0)
                self._limits = headers
                if key and key in fake.idempotency:  # replay: the original status, 200
                    return self._send(200, fake._shown(fake.statuses[fake.idempotency[key]]))
                if over or int(headers["X-RateLimit-Remaining"]) <= 0:
                    return self._send(429, {"error": "Too many requests"})
                text = form.get("status", "")
                if fake.malformed:
                    return self._send(200, ["this is not a status"])
                if fake.reject_with:  # a failed request stores no key
                    said = f" (request by {self.headers.get('Authorization')})" if fake.echo_token else ""
                    return self._send(422, {"error": fake.reject_with + said})
                media_ids = fields.get("media_ids[]", [])
                if not text.strip() and not media_ids:
                    return self._send(422, {"error": fake.message("blank")})
                if _length(text) > fake.max_characters:
                    return self._send(422, {"error": fake.message("too_long", n=str(fake.max_characters))})
                media = [fake.media.get(i) for i in media_ids]
                if None in media or any(m["status_id"] for m in media):  # unknown, or attached before
                    return self._send(422, {"error": fake.message("media_not_found", ids=", ".join(media_ids))})
                if any(m["attachment"]["url"] is None for m in media):  # media_attachments.validations.not_ready
                    return self._send(422, {"error": "Cannot attach files that have not finished processing. "
                                                     "Try again in a moment!"})
                status = fake._status(text, form.get("visibility", "public"), form.get("language", "en"))
                status["media_attachments"] = [m["attachment"] for m in media]
                for m in media:
                    m["status_id"] = status["id"]
                fake.statuses[status["id"]] = status
                fake.sources[status["id"]] = text
                self._limits, _ = fake._count("statuses", status_limit)
                if key:
                    fake.idempotency[key] = status["id"]
                    fake.key_stored_at[key] = now
                if fault in ("stored-500", "stored-502"):
                    code = int(fault[-3:])
                    return self._send(code, {"error": "There was a temporary problem serving your "
                                                      "request, please try again"} if code == 500 else
                                      {"error": "Bad Gateway"})
                if fault == "stored-drop":  # stored, then the connection is closed unanswered
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                return self._send(200, status)

        return Handler
