"""A Mastodon server on loopback that behaves as documented (platform_apis.md §1), with response
shapes taken from the Mastodon.py cassettes recorded against a real 4.6.4 server.

Faults are switched on per test: `fail_after_store` (store the status, then answer 500),
`rate_limit_for` (answer 429 with an ISO-8601 reset that many seconds ahead), `reject_with`
(422 with a localized message). Only `token` (and tokens issued by /oauth/token) is accepted.

Media (§1.3): POST /api/v2/media stores the upload with its description and answers 202 with
`url: null` while `processing_polls` GET /api/v1/media/:id calls are still to come (206), then 200
with the url; 200 at once when it is 0 (images on a real server). A status naming unprocessed
media is refused with 422, as Mastodon does. The deprecated /api/v1/media is not served here, so
a client that falls into the version trap of §2.3 fails loudly.

OAuth (§1.1): POST /api/v1/apps registers an app; the person's approval is simulated by
`approve(code)`, after which POST /oauth/token exchanges that code for a new token.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from fakes import LoopbackServer

UTC = dt.timezone.utc


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        self.followers = 250  # the account's followers_count, as embedded in every status
        self.latency = 0.0  # seconds each answer is delayed (the metrics benchmark)
        self.reads_started: list[float] = []  # monotonic start of each batch read
        self.in_flight = 0
        self.max_in_flight = 0  # most batch reads answered at the same time
        self.read_connections: set[tuple[str, int]] = set()  # client (address, port) of each batch read
        self._next_id = 117020585924712638
        self.tokens = {token}
        self.media: dict[str, dict] = {}  # id -> attachment, plus the uploaded bytes under "_data"
        self.processing_polls = 0  # GET /api/v1/media/:id calls answered 206 before one is done
        self.image_size_limit = 16777216
        self.apps: dict[str, dict] = {}  # client_id -> app
        self.approved: dict[str, str] = {}  # code -> scopes the person granted
        self._listen()

    def approve(self, code: str) -> None:
        """The person approved the app on /oauth/authorize; the page showed `code`."""
        self.approved[code] = "pending"

    def _status(self, text: str, visibility: str, language: str) -> dict:
        self._next_id += 1
        sid = str(self._next_id)
        return {"id": sid, "created_at": _iso(dt.datetime.now(UTC)), "in_reply_to_id": None,
                "in_reply_to_account_id": None, "sensitive": False, "spoiler_text": "",
                "visibility": visibility, "language": language,
                "uri": f"{self.url}/ap/users/117020565966271181/statuses/{sid}",
                "url": f"{self.url}/@roadmap/{sid}", "replies_count": 0, "reblogs_count": 0,
                "favourites_count": 0, "quotes_count": 0, "edited_at": None, "favourited": False,
                "reblogged": False, "muted": False, "bookmarked": False, "pinned": False,
                "content": f"<p>{text}</p>", "filtered": [], "reblog": None,
                "application": {"name": "dissemination", "website": None},
                "account": {"id": "117020565966271181", "username": "roadmap", "acct": "roadmap",
                            "followers_count": self.followers},
                "media_attachments": [], "mentions": [], "tags": [], "emojis": [], "quote": None,
                "card": None, "poll": None}

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

            def _send(self, code: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                due = getattr(self, "_due", None)
                if due is not None and (remaining := due - time.monotonic()) > 0:
                    time.sleep(remaining)
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                header = self.headers.get("Authorization") or ""
                if header.startswith("Bearer ") and header[7:] in fake.tokens:
                    return True
                self._send(401, {"error": "The access token is invalid"},
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

            def _get(self, url) -> None:
                path = url.path.rstrip("/")
                fake.requests.append(("GET", path))
                if path == "/api/v2/instance":
                    return self._send(200, {"domain": "127.0.0.1", "version": "4.6.4",
                                            "api_versions": {"mastodon": 11},
                                            "configuration": {"statuses": {
                                                "max_characters": fake.max_characters,
                                                "max_media_attachments": 4, "characters_reserved_per_url": 23},
                                                "media_attachments": {
                                                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif",
                                                                             "image/webp", "video/mp4"],
                                                    "description_limit": 1500,
                                                    "image_size_limit": fake.image_size_limit,
                                                    "image_matrix_limit": 33177600,
                                                    "video_size_limit": 103809024}}})
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
                    return self._send(200, {"uri": "127.0.0.1", "version": "4.6.4",
                                            "configuration": {"statuses": {
                                                "max_characters": fake.max_characters,
                                                "max_media_attachments": 4, "characters_reserved_per_url": 23}}},
                                      {"Deprecation": "@1668211200"})
                if not self._authorized():
                    return None
                if path == "/api/v1/accounts/verify_credentials":
                    return self._send(200, {"id": "117020565966271181", "username": "roadmap", "acct": "roadmap"})
                if path == "/api/v1/statuses":  # batch: missing ids are silently left out
                    ids = parse_qs(url.query).get("id[]", [])
                    return self._send(200, [{**fake.statuses[i], "account": {
                        **fake.statuses[i]["account"], "followers_count": fake.followers}}
                        for i in ids if i in fake.statuses])
                if path.startswith("/api/v1/statuses/"):
                    status = fake.statuses.get(path.rsplit("/", 1)[1])
                    return self._send(200, status) if status else self._send(404, {"error": "Not Found"})
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
                parts = self._multipart(body)
                mime, data = parts.get("file", (None, None))
                if data is None:
                    return self._send(422, {"error": "Validation failed: File can't be blank"})
                if not mime.startswith("image/") or len(data) > fake.image_size_limit:
                    return self._send(422, {"error": "Validation failed: File content type is invalid, File is invalid"})
                description = parts["description"][1].decode() if "description" in parts else None
                with fake.lock:
                    fake._next_id += 1
                    mid = str(fake._next_id)
                    done = fake.processing_polls == 0
                    attachment = fake._attachment(mid, description, done)
                    fake.media[mid] = {"attachment": attachment, "_data": data, "_mime": mime,
                                       "_polls_left": fake.processing_polls}
                return self._send(200 if done else 202, attachment,
                                  {"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "29"})

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
                                        "created_at": int(dt.datetime.now(UTC).timestamp())})

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
                now = dt.datetime.now(UTC)
                with fake.lock:
                    if fake.rate_limit_for is not None:
                        fake.rate_limited_until = now + dt.timedelta(seconds=fake.rate_limit_for)
                        fake.rate_limit_for = None
                    if fake.rate_limited_until and now < fake.rate_limited_until:
                        return self._send(429, {"error": "Too many requests"}, {
                            "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": _iso(fake.rate_limited_until)})
                    key = self.headers.get("Idempotency-Key")
                    if key and key in fake.idempotency:  # replay: the original status, 200
                        return self._send(200, fake.statuses[fake.idempotency[key]])
                    if fake.reject_with:  # a failed request stores no key
                        return self._send(422, {"error": fake.reject_with})
                    media = [fake.media.get(i) for i in fields.get("media_ids[]", [])]
                    if None in media:
                        return self._send(422, {"error": "Validation failed: Media attachments are invalid"})
                    if any(m["attachment"]["url"] is None for m in media):  # media_attachments.validations.not_ready
                        return self._send(422, {"error": "Cannot attach files that have not finished processing. "
                                                         "Try again in a moment!"})
                    status = fake._status(form.get("status", ""), form.get("visibility", "public"),
                                          form.get("language", "en"))
                    status["media_attachments"] = [m["attachment"] for m in media]
                    fake.statuses[status["id"]] = status
                    if key:
                        fake.idempotency[key] = status["id"]
                    if fake.fail_after_store:
                        fake.fail_after_store -= 1
                        return self._send(500, {"error": "There was a temporary problem serving your "
                                                         "request, please try again"})
                reset = _iso(now.replace(second=0, microsecond=0) + dt.timedelta(minutes=5))
                return self._send(200, status, {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299",
                                                "X-RateLimit-Reset": reset})

        return Handler
