"""LinkedIn's versioned REST API on loopback, as documented (platform_apis.md §3): 201 with the URN
in `x-restli-id` and an empty body, 422 DUPLICATE_POST naming the existing post, 426 for an
inactive version, 429 and 401 with LinkedIn's error bodies.

Faults per test: `hang_after_store` (store the post, then answer only after the client gave up),
`rate_limited`, and `faults`, a queue consumed one per POST /rest/posts: "stored-500"/"stored-504"
(store, then answer that), "504" (nothing stored), "hang" (= hang_after_store). Rate limits as
documented (§3.7): a daily member quota (`daily_limit` posts, 150 for Share on LinkedIn) that
resets at midnight UTC, answered 429 without rate-limit headers. The server has its own clock
(`now()`, `set_now()`, `advance()`) for createdAt, the quota's day and duplicate detection, which
LinkedIn does not document: assumed here to cover posts of the last `duplicate_window` (1 hour),
so a repeat later makes a second post. The author finder GET /rest/posts?q=author (read-back)
needs r_organization_social for an organization (r_member_social for a member), else 403;
`finder_error` makes it answer that HTTP status. Only `token` (and tokens issued by /oauth/v2/accessToken) is accepted; only
versions in `active_versions` are served.

OAuth (§3.6): GET /oauth/v2/authorization stands for the member's consent and redirects to the
redirect URL with a code and the state (`consent` = "deny" redirects with an error, "forge" with
another state); POST /oauth/v2/accessToken exchanges the code, or a refresh token, for a token
of `expires_in` seconds (with a refresh token when `refresh_tokens`). GET /v2/userinfo answers
for tokens with the openid scope.

Images API (§3.3): POST /rest/images?action=initializeUpload gives an upload URL (on this server)
and an image URN; PUT there stores the bytes; GET /rest/images/{urn} says PROCESSING for
`processing_polls` calls, then AVAILABLE. A post naming an image that is not AVAILABLE is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from fakes import LoopbackServer


class FakeLinkedIn(LoopbackServer):
    def __init__(self, token: str = "AQX-test-linkedin-token-51c3") -> None:
        self.token = token
        self.active_versions = {"202510", "202511"}
        self.posts: dict[str, dict] = {}  # urn -> body
        self.requests: list[tuple[str, str, int]] = []
        self.hang_after_store = 0
        self.rate_limited = False
        self.reject_with: str | None = None  # answer posts 422 with this message
        # what the token was granted; reads without the scope they need get 403 ACCESS_DENIED
        self.scopes = {"w_organization_social", "rw_organization_admin", "r_organization_social"}
        self.stats = {"impressionCount": 120, "clickCount": 7, "likeCount": 9, "commentCount": 2, "shareCount": 1,
                      "uniqueImpressionsCount": 100, "engagement": 0.158}
        self.release = threading.Event()  # a hung answer waits for this (or 5 s)
        self._next = 7141138937766391808
        self.tokens: dict[str, dict] = {token: {"expires": None, "scopes": self.scopes}}
        self.client_id, self.client_secret = "86test1inkedin", "WPL_AP1.test-client-secret.Zm9v"
        self.consent = "allow"  # or "deny", "forge"
        self.expires_in = 5184000  # 60 days
        self.refresh_tokens = False  # only apps LinkedIn enabled for it get one
        self.codes: dict[str, dict] = {}  # code -> redirect_uri, scope
        self.refreshes: dict[str, float] = {}  # refresh token -> when it expires
        self.images: dict[str, dict] = {}  # urn -> owner, data, polls left
        self.processing_polls = 0
        self.faults: list[str] = []
        self.daily_limit: int | None = 150
        self.duplicate_window = dt.timedelta(hours=1)
        self.finder_error: int | None = None
        self.offset = dt.timedelta(0)
        self.created: dict[str, dt.datetime] = {}  # urn -> when it was created (this server's clock)
        self._listen()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self.offset

    def set_now(self, moment: dt.datetime) -> None:
        self.offset = moment - dt.datetime.now(dt.timezone.utc)

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)

    def posts_today(self) -> int:
        today = self.now().date()
        return sum(1 for created in self.created.values() if created.date() == today)

    def stop(self) -> None:
        self.release.set()
        super().stop()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 with persistent connections, as the platform answers; http.server's
            # default, HTTP/1.0, closes every connection after one answer. Without Nagle: the
            # headers and the body are written separately, and the body would wait for the
            # client's delayed ACK (~40 ms).
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body=None, headers: dict | None = None) -> None:
                fake.requests.append((self.command, urlsplit(self.path).path, code))
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _denied(self, scope: str, resource: str) -> bool:
                if scope in fake.scopes:
                    return False
                self._send(403, {"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                                 "message": f"Not enough permissions to access: {resource}.GET.20251001"})
                return True

            def _token(self) -> dict | None:
                header = self.headers.get("Authorization") or ""
                grant = fake.tokens.get(header[7:]) if header.startswith("Bearer ") else None
                if grant is None or (grant["expires"] is not None and grant["expires"] < time.time()):
                    self._send(401, {"serviceErrorCode": 65600, "message": "Invalid access token", "status": 401})
                    return None
                return grant

            def _authorize(self, query: dict) -> None:
                if query.get("client_id") != fake.client_id or query.get("response_type") != "code":
                    return self._send(400, {"error": "invalid_request", "error_description": "Unknown client"})
                redirect = query["redirect_uri"]
                if fake.consent == "deny":
                    answer = {"error": "user_cancelled_authorize",
                              "error_description": "The user cancelled the authorization", "state": query["state"]}
                else:
                    code = secrets.token_urlsafe(24)
                    fake.codes[code] = {"redirect_uri": redirect, "scope": query.get("scope", "")}
                    answer = {"code": code, "state": query["state"] if fake.consent == "allow" else "forged"}
                self.send_response(302)
                self.send_header("Location", f"{redirect}?{urlencode(answer)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _access_token(self, form: dict) -> None:
                if (form.get("client_id"), form.get("client_secret")) != (fake.client_id, fake.client_secret):
                    return self._send(401, {"error": "invalid_client", "error_description":
                                            "Client authentication failed"})
                if form.get("grant_type") == "authorization_code":
                    grant = fake.codes.pop(form.get("code", ""), None)
                    if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                        return self._send(400, {"error": "invalid_request", "error_description":
                                                "Unable to retrieve access token: appid/redirect uri/code "
                                                "verifier does not match authorization code. Or authorization "
                                                "code expired."})
                    scopes, refresh_expires = set(grant["scope"].split()), time.time() + 31535999
                elif form.get("grant_type") == "refresh_token":
                    refresh_expires = fake.refreshes.get(form.get("refresh_token", ""))
                    if refresh_expires is None or refresh_expires < time.time():
                        return self._send(400, {"error": "invalid_request", "error_description":
                                                "The provided authorization grant or refresh token is invalid, "
                                                "expired or revoked."})
                    scopes = fake.scopes | {"openid", "profile"}
                else:
                    return self._send(400, {"error": "unsupported_grant_type"})
                token = "AQX" + secrets.token_urlsafe(40)
                fake.tokens[token] = {"expires": time.time() + fake.expires_in, "scopes": scopes}
                body = {"access_token": token, "expires_in": fake.expires_in, "scope": ",".join(sorted(scopes)),
                        "token_type": "Bearer"}
                if fake.refresh_tokens:
                    refresh = "AQW" + secrets.token_urlsafe(40)
                    fake.refreshes[refresh] = refresh_expires  # a refresh keeps the original lifetime
                    body |= {"refresh_token": refresh, "refresh_token_expires_in": int(refresh_expires - time.time())}
                return self._send(200, body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/oauth/v2/authorization":
                    return self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
                grant = self._token()
                if grant is None:
                    return None
                if url.path.startswith("/rest/images/"):
                    image = fake.images.get(unquote(url.path.rsplit("/", 1)[1]))
                    if image is None:
                        return self._send(404, {"status": 404, "message": "Not Found"})
                    ready = image["data"] is not None and image["polls_left"] == 0
                    image["polls_left"] = max(0, image["polls_left"] - 1)
                    return self._send(200, {"id": image["urn"], "owner": image["owner"],
                                            "status": "AVAILABLE" if ready else "PROCESSING"})
                if url.path == "/v2/userinfo":
                    if "openid" not in grant["scopes"]:
                        return self._send(403, {"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                                                "message": "Not enough permissions to access: userinfo.GET.NO_VERSION"})
                    return self._send(200, {"sub": "782bbtaQ", "name": "Roos Redacteur", "given_name": "Roos",
                                            "family_name": "Redacteur", "locale": {"country": "NL", "language": "nl"},
                                            "email_verified": True})
                if url.path == "/rest/organizationalEntityShareStatistics":
                    if self._denied("rw_organization_admin", "organizationalEntityShareStatistics"):
                        return None
                    query = parse_qs(url.query)
                    urns = [unquote(u) for u in query.get("shares", ["List()"])[0][5:-1].split(",") if u]
                    return self._send(200, {"paging": {"count": 10, "start": 0, "links": []}, "elements": [
                        {"organizationalEntity": unquote(query["organizationalEntity"][0]), "share": urn,
                         "totalShareStatistics": fake.stats} for urn in urns if urn in fake.posts]})
                if url.path.startswith("/rest/socialMetadata/"):
                    if self._denied("r_organization_social", "socialMetadata"):
                        return None
                    urn = unquote(url.path.rsplit("/", 1)[1])
                    if urn not in fake.posts:
                        return self._send(404, {"status": 404, "message": "Not Found"})
                    return self._send(200, {"reactionSummaries": {
                        "LIKE": {"reactionType": "LIKE", "count": 6}, "PRAISE": {"reactionType": "PRAISE", "count": 3}},
                        "commentsState": "OPEN", "commentSummary": {"count": 2, "topLevelCount": 2}, "entity": urn})
                if url.path == "/rest/posts":
                    return self._find_posts(parse_qs(url.query))
                if url.path == "/rest/memberCreatorPostAnalytics":
                    if self._denied("r_member_postAnalytics", "memberCreatorPostAnalytics"):
                        return None
                return self._send(404, {"status": 404, "message": "Not Found"})

            def _find_posts(self, query: dict) -> None:
                """FINDER q=author: the author's posts, newest first, `count` from `start`."""
                author = unquote(query.get("author", [""])[0])
                scope = "r_organization_social" if author.startswith("urn:li:organization:") else "r_member_social"
                if query.get("q") != ["author"] or not author:
                    return self._send(400, {"status": 400, "code": "ILLEGAL_ARGUMENT", "message": "q=author required"})
                if self._denied(scope, "posts"):
                    return None
                if fake.finder_error:
                    return self._send(fake.finder_error, {"status": fake.finder_error, "message": "Internal Server Error"})
                start, count = int(query.get("start", ["0"])[0]), min(int(query.get("count", ["10"])[0]), 100)
                mine = sorted((urn for urn, post in fake.posts.items() if post["author"] == author),
                              key=lambda urn: fake.created[urn], reverse=True)
                elements = [{**fake.posts[urn], "id": urn, "createdAt": int(fake.created[urn].timestamp() * 1000),
                             "publishedAt": int(fake.created[urn].timestamp() * 1000)}
                            for urn in mine[start:start + count]]
                return self._send(200, {"elements": elements, "paging": {"start": start, "count": count,
                                                                          "total": len(mine), "links": []}})

            def do_PUT(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                image = next((i for i in fake.images.values() if i["upload"] == urlsplit(self.path).path), None)
                if self._token() is None:
                    return None
                if image is None:
                    return self._send(404, {"status": 404, "message": "Not Found"})
                image["data"] = data
                return self._send(201, None)

            def _initialize_upload(self, body: dict) -> None:
                if self._token() is None:
                    return None
                owner = (body.get("initializeUploadRequest") or {}).get("owner")
                if not owner:
                    return self._send(422, {"status": 422, "message": "ERROR :: /initializeUploadRequest/owner :: "
                                                                      "field is required but not found"})
                with fake.lock:
                    fake._next += 1
                    urn = f"urn:li:image:D4E10AQE{fake._next}"
                    fake.images[urn] = {"urn": urn, "owner": owner, "data": None, "upload": f"/dms-uploads/{fake._next}",
                                        "polls_left": fake.processing_polls}
                return self._send(200, {"value": {"uploadUrlExpiresAt": int(time.time() * 1000) + 86400000,
                                                  "uploadUrl": f"{fake.url}/dms-uploads/{fake._next}", "image": urn}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                if url.path == "/oauth/v2/accessToken":
                    return self._access_token({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                body = json.loads(raw or b"{}")
                if url.path == "/rest/images" and parse_qs(url.query).get("action") == ["initializeUpload"]:
                    return self._initialize_upload(body)
                if url.path != "/rest/posts":
                    return self._send(404, {"status": 404, "message": "Not Found"})
                if self._token() is None:
                    return None
                content = body.get("content") or {}
                image = (content.get("media") or {}).get("id") or (content.get("article") or {}).get("thumbnail")
                if image and (image not in fake.images or fake.images[image]["data"] is None):
                    return self._send(422, {"status": 422, "message": f"ERROR :: /content :: {image} is not available"})
                version = self.headers.get("LinkedIn-Version", "")
                if version not in fake.active_versions:
                    return self._send(426, {"status": 426, "code": "NONEXISTENT_VERSION",
                                            "message": f"Requested version {version} is not active"})
                if self.headers.get("X-Restli-Protocol-Version") != "2.0.0":
                    return self._send(400, {"status": 400, "code": "ILLEGAL_ARGUMENT",
                                            "message": "X-Restli-Protocol-Version 2.0.0 required"})
                fault = fake.faults.pop(0) if fake.faults else None
                if fake.rate_limited or (fake.daily_limit is not None and fake.posts_today() >= fake.daily_limit):
                    return self._send(429, {"serviceErrorCode": 101, "status": 429, "message":
                                            "Resource level throttle limit for calls to this resource is reached."})
                if fault == "504":
                    return self._send(504, {"status": 504, "message": "Gateway Timeout"})
                if fake.reject_with:
                    return self._send(422, {"message": fake.reject_with, "status": 422})
                with fake.lock:
                    now = fake.now()
                    duplicate = next((urn for urn, post in fake.posts.items()
                                      if (post["author"], post["commentary"]) == (body["author"], body["commentary"])
                                      and now - fake.created[urn] < fake.duplicate_window), None)
                    if duplicate:
                        return self._send(422, {
                            "errorDetailType": "com.linkedin.common.error.BadRequest",
                            "message": "com.linkedin.content.common.exception.BadRequestResponseException: "
                                       f"Content is a duplicate of {duplicate}",
                            "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected",
                                                              "input": {}, "code": "DUPLICATE_POST"}]},
                            "status": 422})
                    fake._next += 1
                    urn = f"urn:li:share:{fake._next}"
                    fake.posts[urn] = body
                    fake.created[urn] = now
                    hang = fake.hang_after_store > 0 or fault == "hang"
                    fake.hang_after_store -= 1 if fake.hang_after_store > 0 else 0
                if hang:  # stored, but the client times out before this answer
                    fake.release.wait(5)
                if fault in ("stored-500", "stored-504"):
                    return self._send(int(fault[-3:]), {"status": int(fault[-3:]), "message": "Internal Server Error"})
                return self._send(201, None, {"x-restli-id": urn})

        return Handler
