"""Channels: one module per kind behind one contract (see `base`), chosen per configured channel.

A kind is a module `dissemination/publish/channels/<kind>.py` whose `Channel` subclass sets
`kind`; nothing else names it (docs/channels.md, "Adding a channel").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from dissemination.load.models import ChannelSettings
from dissemination.publish.channels.base import (
    Capabilities,
    Channel,
    Health,
    Metric,
    OpenedChannel,
    PublishError,
    ReadBackError,
    capabilities_of,
    channel_class,
    class_of,
    kinds,
    settings_model,
)
from dissemination.publish.credentials import CredentialStore

if TYPE_CHECKING:
    from dissemination.ledger import Ledger


def open_channel(channel_id: str, config: ChannelSettings, root: Path,
                 credentials: CredentialStore | None = None) -> OpenedChannel:
    """The channel's adapter when it can publish, else its outbox with a note saying why.
    `credentials` is the store `dissemination auth` wrote to (default: the user's credentials file)."""
    return class_of(config).open(channel_id, config, root, credentials)


def bind_channel(channel: Channel, ledger: Ledger, clock: Callable[[], dt.datetime] | None = None,
                 lease: dt.timedelta | None = None, progress: Callable[[str, int, int], None] | None = None) -> None:
    """The run's ledger and clock, before the channel's preflight (see `Channel.bind`)."""
    channel.bind(ledger, clock, lease, progress)


__all__ = ["Capabilities", "Channel", "Health", "Metric", "OpenedChannel", "PublishError", "ReadBackError",
           "bind_channel", "capabilities_of", "channel_class", "class_of", "kinds", "open_channel", "settings_model"]
