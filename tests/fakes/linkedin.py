"""LinkedIn's versioned REST API on loopback, as documented (platform_apis.md §3): 201 with the URN
in `x-restli-id` and an empty body, 422 DUPLICATE_POST naming the existing post, 426 for an
inactive version, 429 and 401 with LinkedIn's error bodies.

Faults per test: `hang_after_store` (store the post, then answer only after the client gave up),
`rate_limited`. Only `token` is accepted; only versions in `active_versions` are served.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FakeLinkedIn:
    def __init__(self, token: str = "AQX-test-linkedin-token-51c3") -> None:
        self.token = token
        self.active_versions = {"202510", "202511"}
        self.posts: dict[str, dict] = {}  # urn -> body
        self.requests: list[tuple[str, str, int]] = []
        self.hang_after_store = 0
        self.rate_limited = False
        self.release = threading.Event()  # a hung answer waits for this (or 5 s)
        self.lock = threading.Lock()
        self._next = 7141138937766391808
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeLinkedIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
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

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if urlsplit(self.path).path != "/rest/posts":
                    return self._send(404, {"status": 404, "message": "Not Found"})
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"serviceErrorCode": 65600, "message": "Invalid access token",
                                            "status": 401})
                version = self.headers.get("LinkedIn-Version", "")
                if version not in fake.active_versions:
                    return self._send(426, {"status": 426, "code": "NONEXISTENT_VERSION",
                                            "message": f"Requested version {version} is not active"})
                if self.headers.get("X-Restli-Protocol-Version") != "2.0.0":
                    return self._send(400, {"status": 400, "code": "ILLEGAL_ARGUMENT",
                                            "message": "X-Restli-Protocol-Version 2.0.0 required"})
                if fake.rate_limited:
                    return self._send(429, {"serviceErrorCode": 101, "status": 429, "message":
                                            "Resource level throttle limit for calls to this resource is reached."})
                with fake.lock:
                    duplicate = next((urn for urn, post in fake.posts.items()
                                      if (post["author"], post["commentary"]) == (body["author"], body["commentary"])),
                                     None)
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
                    hang = fake.hang_after_store > 0
                    fake.hang_after_store -= 1 if hang else 0
                if hang:  # stored, but the client times out before this answer
                    fake.release.wait(5)
                return self._send(201, None, {"x-restli-id": urn})

        return Handler
