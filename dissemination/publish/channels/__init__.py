"""Channels: one module per kind behind one contract (see `base`), chosen per configured channel."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dissemination.load import models as m
from dissemination.publish.channels.base import Capabilities, Channel, Health, PublishError
from dissemination.publish.channels.outbox import OutboxChannel

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


def open_channel(channel_id: str, config: m.Channel, root: Path) -> OpenedChannel:
    outbox = OutboxChannel(channel_id, config, root / "outbox" / channel_id)
    if isinstance(config, m.OutboxChannel):
        if config.path:
            outbox.folder = root / config.path
        return OpenedChannel(outbox, None)
    names = _secret_names(config)
    missing = [n for n in names if not os.environ.get(n)]
    if isinstance(config, m.EmailChannel):
        return _email(channel_id, config, root, missing)
    adapter = _adapter(config.kind) if not missing else None
    if missing:
        note = f"{channel_id}: {', '.join(missing)} not set, so nothing is published to {config.kind}; " \
               f"writing what would be sent to outbox/{channel_id}/"
    elif adapter is None:
        note = f"{channel_id}: publishing to {config.kind} is not available in this version; " \
               f"writing what would be sent to outbox/{channel_id}/"
    else:
        return OpenedChannel(adapter(channel_id, config), None)
    return OpenedChannel(outbox, note)


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


__all__ = ["Capabilities", "Channel", "Health", "OpenedChannel", "OutboxChannel", "PublishError", "open_channel"]
