"""The outbox channel: writes exactly what would be sent, one file per idempotency key.

Used for `kind: outbox` channels and for every channel that cannot publish (its credentials are
not set: `Channel.fallback`). What it writes is the request the real channel would make (its
`outbox_request`). A repeat with the same key overwrites its file, so a retried item can never
appear twice. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from dissemination.contained import inside
from dissemination.files import remove_orphans, write_atomically
from dissemination.load import models as m
from dissemination.publish.channels.base import Capabilities, Channel, Health, OpenedChannel, class_of
from dissemination.publish.credentials import CredentialStore, Token
from dissemination.records import Claim, Receipt, Snapshot


class OutboxSettings(m.ChannelSettings):
    kind: Literal["outbox"]
    path: str | None = None  # the folder, relative to the content root (default: outbox/<channel>/)

    def paths(self) -> dict[str, str]:
        return {"path": self.path} if self.path else {}


class OutboxChannel(Channel):
    kind = "outbox"
    settings = OutboxSettings

    def __init__(self, channel_id: str, config: m.ChannelSettings, root: Path, token: Token | None = None,
                 transport: Any = None) -> None:
        """`config`: the outbox's own settings, or those of the channel it stands in for."""
        super().__init__(channel_id, config, root, token, transport)
        self.folder = root / "outbox" / channel_id
        if isinstance(config, OutboxSettings) and config.path:
            self.folder = inside(root, config.path, "path")  # checked by `check`; the folder may have changed since

    @classmethod
    def capabilities_of(cls, config: m.ChannelSettings) -> Capabilities:
        if isinstance(config, OutboxSettings):
            return Capabilities("outbox", "De outbox", idempotent=True)  # a repeat overwrites the file
        # Standing in: the real channel's text rules, but nothing is uploaded, limited or read.
        return dataclasses.replace(
            class_of(config).capabilities_of(config), rate_per_minute=None, read_batch=1, read_concurrency=1,
            read_per_minute=None, key_retention=None, idempotent=True)

    @classmethod
    def open(cls, channel_id: str, config: m.ChannelSettings, root: Path,
             credentials: CredentialStore | None = None) -> OpenedChannel:
        return OpenedChannel(cls(channel_id, config, root), None)

    def preflight(self) -> Health:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return Health(False, f"cannot create {self.folder}: {exc.strerror}")
        self._remove_orphans()
        return Health(True, f"writing to {self.folder}")

    def _remove_orphans(self) -> None:
        remove_orphans(self.folder)

    def file_for(self, key: str) -> Path:
        return self.folder / f"{key}.json"  # e-mail channels have their own outbox (email.OutboxTransport)

    def publish(self, claim: Claim) -> Receipt:
        target = self.file_for(claim.idempotency_key)
        data = self._render(claim)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data)
        return Receipt(remote_id=claim.idempotency_key, url=target.as_uri())

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        return [Snapshot.unavailable(item, "engagement", now, f"outbox:{self.id}", "outbox: nothing was published")
                for item in receipts]

    def _render(self, claim: Claim) -> bytes:
        document = {
            "idempotency_key": claim.idempotency_key, "item": claim.id, "channel": self.id,
            "campaign": claim.campaign, "post": claim.post, "audience": claim.audience,
            "slot": claim.slot_utc.isoformat(), "request": class_of(self.config).outbox_request(claim, self.config),
        }
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()
