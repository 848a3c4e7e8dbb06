"""Channels: one module per kind behind one contract (see `base`), chosen per configured channel."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dissemination.load import models as m
from dissemination.publish.channels.base import Capabilities, Channel, Health, PublishError
from dissemination.publish.channels.outbox import OutboxChannel

# Kinds with a real network adapter. Others are written to the outbox until their adapter exists.
from dissemination.publish.channels.linkedin import LinkedInChannel as LinkedInAdapter  # noqa: E402
from dissemination.publish.channels.mastodon import MastodonChannel as MastodonAdapter  # noqa: E402

ADAPTERS: dict[str, type] = {"mastodon": MastodonAdapter, "linkedin": LinkedInAdapter}


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
    adapter = ADAPTERS.get(config.kind)
    if missing:
        note = f"{channel_id}: {', '.join(missing)} not set, so nothing is published to {config.kind}; " \
               f"writing what would be sent to outbox/{channel_id}/"
    elif adapter is None:
        note = f"{channel_id}: publishing to {config.kind} is not available in this version; " \
               f"writing what would be sent to outbox/{channel_id}/"
    else:
        return OpenedChannel(adapter(channel_id, config), None)
    return OpenedChannel(outbox, note)


__all__ = ["Capabilities", "Channel", "Health", "OpenedChannel", "OutboxChannel", "PublishError", "open_channel"]
