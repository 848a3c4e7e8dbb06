"""The reference Bluesky services on loopback for the tests: tests/pds/start.mjs starts a PLC
directory, the PDS (@atproto/pds) and the AppView (@atproto/bsky) through @atproto/dev-env, and
this module starts that script, waits for its JSON line and stops it at the end.

The npm packages are installed by scripts/install-test-tools (tests/pds/package-lock.json).
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PDS_DIR = Path(__file__).parent / "pds"
PG_URL = os.environ.get("DISSEMINATION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST = os.environ.get("DISSEMINATION_TEST_REDIS", "127.0.0.1:6379")
START_TIMEOUT = 180.0  # seconds; it takes ~10-20 s on a quiet machine


class PdsUnavailable(Exception):
    pass


@dataclass
class Account:
    handle: str
    did: str
    password: str  # the account password (for the test's own writes)
    app_password: str
    access: str


_shared: "BlueskyNetwork | None" = None


def shared() -> "BlueskyNetwork":
    """The one network of this test process (starting it takes 10-40 s): tests/test_bluesky.py and
    the contract harness (tests/contract/bluesky.py) use it with accounts of their own, and it stops
    when the process ends."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        import atexit

        _shared = BlueskyNetwork()
        atexit.register(_shared.close)
    return _shared


class BlueskyNetwork:
    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise PdsUnavailable("node is not installed (scripts/install-test-tools)")
        if not (PDS_DIR / "node_modules" / "@atproto" / "dev-env").is_dir():
            raise PdsUnavailable("the reference PDS is not installed: run scripts/install-test-tools")
        # The AppView and the moderation service each make a schema from this name (letters only).
        self.schema = "bsky_" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=10))
        self.started_at = time.monotonic()
        self._log = open(os.devnull, "w") if os.environ.get("BLUESKY_TEST_QUIET", "1") == "1" else None
        self.process = subprocess.Popen(
            [node, str(PDS_DIR / "start.mjs")], cwd=PDS_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True, bufsize=1,
            env={**os.environ, "DB_POSTGRES_URL": PG_URL, "REDIS_HOST": REDIS_HOST,
                 "BLUESKY_TEST_SCHEMA": self.schema,
                 # dev-env's services log every request unless told otherwise
                 "LOG_ENABLED": "false"})
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self._next(START_TIMEOUT)
        if line is None:
            self.close()
            raise PdsUnavailable(f"tests/pds/start.mjs ended without starting (exit {self.process.poll()})")
        info = json.loads(line)
        self.start_seconds = time.monotonic() - self.started_at
        self.pds_url: str = info["pds"]
        self.appview_url: str = info["appview"]
        self.plc_url: str = info["plc"]
        self.jwt_secret: str = info["jwt_secret"]
        self.http = httpx.Client(timeout=30)
        self._commands = threading.Lock()  # one command to start.mjs at a time: answers are read in turn
        self._synced: Any = None  # the server of synced_appview_url, once asked for

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def _next(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def sync(self) -> None:
        """Wait until the AppView has indexed everything the PDS has written."""
        assert self.process.stdin is not None
        with self._commands:
            self.process.stdin.write("sync\n")
            self.process.stdin.flush()
            answer = self._next(60)
        assert answer == "synced", f"the AppView did not catch up: {answer}"

    def synced_appview_url(self) -> str:
        """An address of the AppView where each read first waits until it has indexed everything
        the PDS wrote (`sync`): a read right after a post finds it, as on Bluesky a moment later.
        A loopback server in this process that forwards GET requests."""
        if self._synced is None:
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

            network = self

            class Forward(BaseHTTPRequestHandler):
                def log_message(self, *args) -> None:
                    pass

                def do_GET(self) -> None:
                    network.sync()
                    answer = network.http.get(f"{network.appview_url}{self.path}")
                    self.send_response(answer.status_code)
                    for name in ("Content-Type", "RateLimit-Reset", "Retry-After", "Date"):
                        if name in answer.headers:
                            self.send_header(name, answer.headers[name])
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)

            self._synced = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
            threading.Thread(target=self._synced.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._synced.server_address[1]}"

    def forget_limits(self, text: str) -> int:
        """The PDS's rate limits forget every count whose key contains `text` (an account's DID),
        as when their windows end. Returns how many counts were dropped."""
        assert self.process.stdin is not None
        with self._commands:
            self.process.stdin.write(f"forget {text}\n")
            self.process.stdin.flush()
            answer = self._next(30) or ""
        assert answer.startswith("forgotten "), f"the PDS did not forget: {answer}"
        return int(answer.split()[1])

    def xrpc(self, method: str, nsid: str, token: str | None = None, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, f"{self.pds_url}/xrpc/{nsid}", headers=headers, **kwargs)

    def create_account(self, name: str) -> Account:
        """An account on the PDS (handle <name>.test, registered with the local PLC) with an app
        password, as a user makes one in Bluesky's settings."""
        handle = f"{name}.test"
        password = f"{name}-account-password"
        created = self.xrpc("POST", "com.atproto.server.createAccount",
                            json={"handle": handle, "email": f"{name}@example.com", "password": password})
        assert created.status_code == 200, created.text
        access = created.json()["accessJwt"]
        app = self.xrpc("POST", "com.atproto.server.createAppPassword", token=access, json={"name": "dissemination"})
        assert app.status_code == 200, app.text
        return Account(handle, created.json()["did"], password, app.json()["password"], access)

    def close(self) -> None:
        if getattr(self, "_synced", None) is not None:
            self._synced.shutdown()
            self._synced.server_close()
        if self.process.poll() is None:
            try:
                if self.process.stdin:
                    self.process.stdin.close()  # start.mjs closes the network when stdin closes
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        if self._log:
            self._log.close()
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for prefix in ("appview_", "ozone_"):
                conn.execute(f"DROP SCHEMA IF EXISTS {prefix}{self.schema} CASCADE")
        if hasattr(self, "http"):
            self.http.close()
