"""What signing in to the platforms (OAuth 2.0 authorization code) shares, for `dissemination auth`
and for renewing LinkedIn tokens before a publish run (platform_apis.md §1.1, §3.6). Each
channel's own sign-in is in its module: `channels.mastodon.MastodonSignIn`,
`channels.linkedin.LinkedInOAuth`.

Mastodon: the app is registered on the channel's instance (POST /api/v1/apps, kept in the store
for the next sign-in), the person opens the authorization page and pastes the code it shows
(urn:ietf:wg:oauth:2.0:oob), which is exchanged at /oauth/token. Mastodon tokens do not expire.

LinkedIn: the person's browser is sent to /oauth/v2/authorization and comes back to a listener on
127.0.0.1 (the redirect URL registered for the app) with a code and the state we sent; the code
is exchanged at /oauth/v2/accessToken. Tokens last 60 days; apps LinkedIn enabled for it also
get a refresh token (365 days), used by `LinkedInChannel.preflight`.

Nothing here puts a token, code or client secret into a message.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit


UTC = dt.timezone.utc
CLIENT_NAME = "dissemination"
TIMEOUT = 20.0


class OAuthError(Exception):
    """Signing in failed; the message says why and what to do (and holds no secret)."""


def loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


@dataclass
class Redirect:
    code: str | None
    state: str | None
    error: str | None

    def code_for(self, state: str, platform: str) -> str:
        """The authorization code, if this redirect answers the sign-in started with `state`
        (compared in constant time); OAuthError saying what to do otherwise."""
        if self.error:
            raise OAuthError(f"{platform} did not grant access: {self.error}")
        if not self.state or not secrets.compare_digest(self.state, state):
            raise OAuthError("the answer did not come from the sign-in started here (state does not match); "
                             "run the command again")
        if not self.code:
            raise OAuthError(f"{platform} sent no authorization code; run the command again")
        return self.code


class RedirectListener:
    """Waits on 127.0.0.1 for the browser coming back from the authorization page, once."""

    def __init__(self, port: int) -> None:
        self.result: Redirect | None = None
        self.done = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # the query holds the code: never logged
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/callback":
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                listener.result = Redirect(query.get("code"), query.get("state"),
                                           query.get("error_description") or query.get("error"))
                page = ("Signed in: you can close this window." if listener.result.code else
                        "Signing in failed; see the terminal.").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                listener.done.set()

        try:
            self.server = HTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise OAuthError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); free the port or pass --port") from None
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, timeout: float) -> Redirect:
        try:
            if not self.done.wait(timeout) or self.result is None:
                raise OAuthError(f"no answer from the browser within {timeout:.0f} s; run the command again")
            return self.result
        finally:
            self.server.shutdown()
            self.server.server_close()


def new_state() -> str:
    return secrets.token_urlsafe(24)


def browser_can_show() -> bool:
    """Whether opening a browser makes sense here: a console browser would fight the command
    for the terminal."""
    return bool(os.environ.get("BROWSER") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or sys.platform in ("darwin", "win32"))
