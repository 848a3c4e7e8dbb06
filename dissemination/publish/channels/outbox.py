"""The outbox channel: writes exactly what would be sent, one file per idempotency key.

Used for `kind: outbox` channels and, in the embedded default, for every channel whose
credentials are not set. A repeat with the same key overwrites its file, so a retried item can
never appear twice. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from dissemination.files import remove_orphans, write_atomically
from dissemination.records import Claim, Receipt, Snapshot
from dissemination.load import models as m
from dissemination.publish.channels import requests
from dissemination.publish.channels.base import Capabilities, Health


class OutboxChannel:
    kind = "outbox"

    def __init__(self, channel_id: str, config: m.Channel, folder: Path) -> None:
        self.id = channel_id
        self.config = config  # the channel this outbox stands in for
        self.folder = folder
        self.capabilities = Capabilities(
            max_length=getattr(config, "max_characters", None),
            url_weight=getattr(config, "characters_reserved_per_url", None),
            media=False, rate_per_minute=None, idempotent=True)

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
        config = self.config
        if isinstance(config, m.MastodonChannel):
            request = {"method": "POST", "url": f"{config.base_url.rstrip('/')}/api/v1/statuses",
                       "headers": {"Idempotency-Key": claim.idempotency_key},
                       "json": requests.mastodon_status(claim, config)}
        elif isinstance(config, m.LinkedInChannel):
            request = {"method": "POST", "url": f"{config.api_base.rstrip('/')}/rest/posts",
                       "headers": {"LinkedIn-Version": config.api_version, "X-Restli-Protocol-Version": "2.0.0"},
                       "json": requests.linkedin_post(claim, config)}
        else:
            request = {"json": claim.payload}
        document = {
            "idempotency_key": claim.idempotency_key, "item": claim.id, "channel": self.id,
            "campaign": claim.campaign, "post": claim.post, "audience": claim.audience,
            "slot": claim.slot_utc.isoformat(), "request": request,
        }
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()
