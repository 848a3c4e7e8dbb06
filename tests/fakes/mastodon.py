"""A Mastodon server on loopback that behaves as documented (platform_apis.md §1), with response
shapes taken from the Mastodon.py cassettes recorded against a real 4.6.4 server.

Faults are switched on per test: `fail_after_store` (store the status, then answer 500),
`rate_limit_for` (answer 429 with an ISO-8601 reset that many seconds ahead), `reject_with`
(422 with a localized message). Only `token` is accepted as a bearer token.
"""

from __future__ import annotations

import datetime as dt
import json
import time
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
        self._next_id = 117020585924712638
        self._listen()

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

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, code: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {fake.token}":
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
                        fake.in_flight += 1
                        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if fake.latency:
                        time.sleep(fake.latency)
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
                                                "max_media_attachments": 4, "characters_reserved_per_url": 23}}})
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
                return self._send(404, {"error": "Not Found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path.rstrip("/")
                fake.requests.append(("POST", path))
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
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
                    status = fake._status(form.get("status", ""), form.get("visibility", "public"),
                                          form.get("language", "en"))
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
