"""`auth`: sign in to a platform; the token is stored outside the repository."""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Optional

import typer

from dissemination.cli.common import State, UTC, _print_problems, err, out



auth_app = typer.Typer(help="Sign in to a platform; the token is stored outside the repository.",
                       no_args_is_help=True)


def _channel_config(channel: str, kind: str):
    from dissemination.load.project import load_channels

    channels_file, problems = load_channels(State.root)
    if channels_file is None or problems.errors:
        _print_problems(problems)
        raise typer.Exit(1)
    config = channels_file.channels.get(channel)
    if config is None or config.kind != kind:
        known = [c for c, cfg in channels_file.channels.items() if cfg.kind == kind]
        err.print(f"channels.yaml has no {kind} channel '{channel}'"
                  + (f"; {kind} channels: {', '.join(known)}" if known else ""), markup=False)
        raise typer.Exit(1)
    return config


def _credential_store():
    from dissemination.publish.credentials import CredentialStoreError, default_store

    try:
        return default_store(State.root.resolve())
    except CredentialStoreError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


def _previous(store, channel):
    from dissemination.publish.credentials import CredentialStoreError

    try:
        return store.get(channel)
    except CredentialStoreError:
        return None  # unreadable: sign in afresh and overwrite


def _stored(store, credential, config) -> None:
    from dissemination.publish.credentials import CredentialStoreError

    try:
        store.put(credential)
    except (CredentialStoreError, OSError) as exc:
        err.print(f"signed in, but the token could not be stored: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"signed in as {credential.account or '?'}; token stored in {store.description}", markup=False)
    if config.token_env and os.environ.get(config.token_env):
        out.print(f"[yellow]note[/]: {config.token_env} is set and is used instead of the stored token "
                  "until it is unset")


@auth_app.command("mastodon")
def auth_mastodon(channel: Annotated[str, typer.Argument(help="The channel's id in channels.yaml.")]) -> None:
    """Register the app on the channel's instance, sign in in a browser, paste the code shown."""
    from dissemination.publish.channels.mastodon import MastodonSignIn
    from dissemination.publish.oauth import OAuthError

    config = _channel_config(channel, "mastodon")
    store = _credential_store()
    try:
        sign_in = MastodonSignIn.start(channel, config, _previous(store, channel))
        out.print("Open this address, sign in as the account that should post, and allow access:")
        out.print(sign_in.url, markup=False, soft_wrap=True)
        code = typer.prompt("Paste the authorization code the page shows", hide_input=True)
        credential = sign_in.finish(code, dt.datetime.now(UTC))
    except OAuthError as exc:
        err.print(f"not signed in: {exc}", markup=False)
        raise typer.Exit(1) from None
    _stored(store, credential, config)


@auth_app.command("linkedin")
def auth_linkedin(
    channel: Annotated[str, typer.Argument(help="The channel's id in channels.yaml.")],
    port: Annotated[Optional[int], typer.Option(help="Listen for the redirect on this port "
                                                "(default: the channel's redirect_port).")] = None,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open the address in a browser.")] = True,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the browser.")] = 300,
) -> None:
    """Sign in with LinkedIn (3-legged OAuth); the browser comes back to a listener on 127.0.0.1."""
    import threading
    import webbrowser

    from dissemination.publish.channels.linkedin import LinkedInOAuth
    from dissemination.publish.oauth import OAuthError, RedirectListener, browser_can_show, new_state

    config = _channel_config(channel, "linkedin")
    store = _credential_store()
    oauth = LinkedInOAuth(channel, config)
    try:
        oauth.client()
        listener = RedirectListener(config.redirect_port if port is None else port)
        state = new_state()
        url = oauth.authorization_url(listener.redirect_uri, state)
        out.print(f"Open this address and allow access (the app must list {listener.redirect_uri} "
                  "as a redirect URL):")
        out.print(url, markup=False, soft_wrap=True)
        if browser and browser_can_show():
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        code = listener.wait(timeout).code_for(state, "LinkedIn")
        credential = oauth.who(oauth.exchange(code, listener.redirect_uri, dt.datetime.now(UTC)))
    except OAuthError as exc:
        err.print(f"not signed in: {exc}", markup=False)
        raise typer.Exit(1) from None
    _stored(store, credential, config)
    if credential.expires_at:
        renew = (f"renewed automatically with the refresh token until {credential.refresh_expires_at:%Y-%m-%d}"
                 if credential.refresh_token and credential.refresh_expires_at else
                 "renewed automatically with the refresh token" if credential.refresh_token else
                 "LinkedIn gave no refresh token: sign in again before then (status warns a week ahead)")
        out.print(f"valid until {credential.expires_at:%Y-%m-%d}; {renew}", markup=False)
