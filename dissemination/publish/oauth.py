"""Signing in to the platforms (OAuth 2.0 authorization code), for `dissemination auth` and for
renewing LinkedIn tokens before a publish run (platform_apis.md §1.1, §3.6).

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
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from dissemination.load import models as m
from dissemination.publish.credentials import Credential
from dissemination.redact import register

UTC = dt.timezone.utc
OOB = "urn:ietf:wg:oauth:2.0:oob"
CLIENT_NAME = "dissemination"
TIMEOUT = 20.0


class OAuthError(Exception):
    """Signing in failed; the message says why and what to do (and holds no secret)."""


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


# --- Mastodon ------------------------------------------------------------------------------------

@dataclass
class MastodonSignIn:
    """One sign-in: the app registration and the authorization URL to open."""

    channel: str
    config: m.MastodonChannel
    client_id: str
    client_secret: str
    url: str

    @property
    def base_url(self) -> str:
        return str(self.config.base_url).rstrip("/")

    @classmethod
    def start(cls, channel: str, config: m.MastodonChannel, previous: Credential | None) -> "MastodonSignIn":
        from mastodon import Mastodon
        from mastodon.errors import MastodonError

        base_url = str(config.base_url).rstrip("/")
        scopes = config.scopes.split()
        if previous and previous.client_id and previous.client_secret and previous.endpoint == base_url \
                and set(scopes) <= set((previous.scope or "").split()):
            client_id, client_secret = previous.client_id, previous.client_secret  # registered before
        else:
            try:
                client_id, client_secret = Mastodon.create_app(
                    CLIENT_NAME, scopes=scopes, redirect_uris=OOB, api_base_url=base_url,
                    request_timeout=TIMEOUT, user_agent=CLIENT_NAME)
            except (MastodonError, KeyError, ValueError) as exc:
                # create_app returns the error body as if it were the app; KeyError means refused
                raise OAuthError(f"{base_url} did not register the app ({type(exc).__name__}); check "
                                 f"base_url of channel '{channel}'") from None
        api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base_url,
                       request_timeout=TIMEOUT, user_agent=CLIENT_NAME)
        url = api.auth_request_url(redirect_uris=OOB, scopes=scopes, allow_http=_loopback(base_url))
        return cls(channel, config, client_id, client_secret, url)

    def finish(self, code: str, now: dt.datetime) -> Credential:
        from mastodon import Mastodon
        from mastodon.errors import MastodonError

        scopes = self.config.scopes.split()
        api = Mastodon(client_id=self.client_id, client_secret=self.client_secret, api_base_url=self.base_url,
                       request_timeout=TIMEOUT, user_agent=CLIENT_NAME, ratelimit_method="throw")
        try:
            token = api.log_in(code=code.strip(), redirect_uri=OOB, scopes=scopes,
                               allow_http=_loopback(self.base_url))
        except MastodonError as exc:
            # Mastodon.py's message may quote the request; ours names only what went wrong.
            what = "the code was not accepted" if "Invalid" in str(exc) else "not all scopes were granted"
            raise OAuthError(f"{self.base_url}: {what} ({type(exc).__name__}); run the command again "
                             "and paste the code the page shows") from None
        try:
            account = api.account_verify_credentials()
        except MastodonError as exc:
            raise OAuthError(f"{self.base_url} refused the new token ({type(exc).__name__})") from None
        return Credential(self.channel, "mastodon", self.base_url, token, obtained_at=now,
                          scope=" ".join(scopes), account=f"@{account.get('acct')}",
                          client_id=self.client_id, client_secret=self.client_secret)


# --- LinkedIn ------------------------------------------------------------------------------------

def linkedin_scopes(config: m.LinkedInChannel) -> str:
    if config.scopes:
        return config.scopes
    if config.author.startswith("urn:li:organization:"):
        return "openid profile w_organization_social r_organization_social rw_organization_admin"
    return "openid profile w_member_social"


class LinkedInOAuth:
    def __init__(self, channel: str, config: m.LinkedInChannel, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self.config = config
        self.base = str(config.oauth_base).rstrip("/")
        self.transport = transport

    def client(self) -> tuple[str, str]:
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
