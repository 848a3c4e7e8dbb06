"""A webhook receiver on loopback: Apprise's `json://127.0.0.1:PORT` target posts each
notification here as JSON ({"title", "message", "type", ...}); the test reads `received`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

from fakes import LoopbackServer


class WebhookReceiver(LoopbackServer):
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.arrived = threading.Event()
        self._listen()
        self.url = self.url.replace("http://", "json://")  # the Apprise URL of this receiver

    def _handler(self):  # type: ignore[no-untyped-def]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(json.loads(body))
                receiver.arrived.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        return Handler
