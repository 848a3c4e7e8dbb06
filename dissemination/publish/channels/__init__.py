"""Channels: one module per kind behind one contract (see `base`), chosen per configured channel."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from dissemination.contained import inside
from dissemination.load import models as m
from dissemination.publish.channels.base import Capabilities, Channel, Health, PublishError, ReadBackError
from dissemination.publish.channels.outbox import OutboxChannel
from dissemination.publish.credentials import CredentialStore, CredentialStoreError, auth_command, default_store, token_for

if TYPE_CHECKING:
    from dissemination.ledger import Ledger

# Kinds with a real network adapter (module, class). Others are written to the outbox until their
# adapter exists. Imported only when a channel with credentials uses it: Mastodon.py alone costs
# ~0.3 s, which every plan, status and outbox-only run would otherwise pay.
ADAPTERS: dict[str, tuple[str, str]] = {
    "mastodon": ("dissemination.publish.channels.mastodon", "MastodonChannel"),
    "linkedin": ("dissemination.publish.channels.linkedin", "LinkedInChannel"),
}


def _adapter(kind: str) -> type | None:
    import importlib

    where = ADAPTERS.get(kind)
    return getattr(importlib.import_module(where[0]), where[1]) if where else None


@dataclass(frozen=True)
class OpenedChannel:
    channel: Channel
    note: str | None  # said plainly to the user when a channel falls back to the outbox


def _secret_names(config: m.Channel) -> list[str]:
    return [getattr(config, k) for k in ("token_env", "username_env", "password_env") if getattr(config, k, None)]


def endpoint(config: m.Channel) -> str:
    """The server a stored token belongs to: a token for another one is not used."""
    if isinstance(config, m.MastodonChannel):
        return str(config.base_url).rstrip("/")
    if isinstance(config, m.LinkedInChannel):
        return str(config.oauth_base).rstrip("/")
    return ""


def open_channel(channel_id: str, config: m.Channel, root: Path,
                 credentials: CredentialStore | None = None) -> OpenedChannel:
    """The channel's adapter when it has credentials, else its outbox. `credentials` is the store
    `dissemination auth` wrote to (default: the user's credentials file)."""
    outbox = OutboxChannel(channel_id, config, root / "outbox" / channel_id)
    if isinstance(config, m.OutboxChannel):
        if config.path:
            outbox.folder = inside(root, config.path, "path")  # checked by `check`; the folder may have changed since
        return OpenedChannel(outbox, None)
    fallback = f"so nothing is published to {config.kind}; writing what would be sent to outbox/{channel_id}/"
    if isinstance(config, (m.MastodonChannel, m.LinkedInChannel)):
        # An environment token wins (token_for), so the keyring (~0.2 s to import and probe) is
        # only opened when there is none.
        if credentials is None and not (config.token_env and os.environ.get(config.token_env)):
            try:
                credentials = default_store(root)
            except CredentialStoreError as exc:
                return OpenedChannel(outbox, f"{channel_id}: {exc}, {fallback}")
        token, why = token_for(channel_id, endpoint(config), config.token_env, credentials)
        if token is None:
            how = f"`{auth_command(config.kind, channel_id)}`" + (f" or set {config.token_env}" if config.token_env else "")
            return OpenedChannel(outbox, f"{channel_id}: {why}, {fallback} (to publish: {how})")
        return OpenedChannel(_adapter(config.kind)(channel_id, config, token, root), None)  # type: ignore[misc]
    missing = [n for n in _secret_names(config) if not os.environ.get(n)]
    if isinstance(config, m.EmailChannel):
        return _email(channel_id, config, root, missing)
    adapter = _adapter(config.kind) if not missing else None
    if missing:
        note = f"{channel_id}: {', '.join(missing)} not set, {fallback}"
    elif adapter is None:
        note = f"{channel_id}: publishing to {config.kind} is not available in this version; " \
               f"writing what would be sent to outbox/{channel_id}/"
    else:
        return OpenedChannel(adapter(channel_id, config), None)
    return OpenedChannel(outbox, note)


def bind_channel(channel: object, ledger: Ledger, clock: Callable[[], dt.datetime] | None = None,
                 lease: dt.timedelta | None = None, progress: Callable[[str, int, int], None] | None = None) -> None:
    """Channels that keep state in the ledger (e-mail: per-recipient rows, the suppression list)
    get it here, before their preflight."""
    bind = getattr(channel, "bind", None)
    if bind is not None:
        bind(ledger, clock, lease, progress)


def _email(channel_id: str, config: m.EmailChannel, root: Path, missing: list[str]) -> OpenedChannel:
    from dissemination.publish.channels.email import EmailChannel, OutboxTransport
    from dissemination.publish.tokens import SECRET_ENV

    if not os.environ.get(SECRET_ENV):
        missing = [*missing, SECRET_ENV]
    if not missing and config.web_url:
        return OpenedChannel(EmailChannel(channel_id, config, root), None)
    # Without SMTP credentials, the link secret or web_url: the same recipients, consent,
    # suppression and ledger rows, but one .eml file per recipient instead of SMTP.
    folder = root / "outbox" / channel_id
    lacking = ", ".join(missing) + (" not set" if missing else "") + \
        (" and " if missing and not config.web_url else "") + ("no web_url in channels.yaml" if not config.web_url else "")
    note = f"{channel_id}: {lacking}, so no e-mail is sent; writing one message per recipient to outbox/{channel_id}/"
    return OpenedChannel(EmailChannel(channel_id, config, root, OutboxTransport(folder)), note)


__all__ = ["Capabilities", "Channel", "Health", "OpenedChannel", "OutboxChannel", "PublishError", "ReadBackError", "bind_channel",
           "open_channel"]
