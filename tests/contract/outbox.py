"""The outbox: a folder of files, one per idempotency key, written where a publish run writes it."""

from __future__ import annotations

import json
from typing import Any

from contract import Harness

from dissemination.records import Claim


class OutboxHarness(Harness):
    kind = "outbox"
    channel_id = "archief"
    not_applicable = {
        "rate_limit": "files are written locally; no server limits the rate (no rate declared)",
        "broken_credential": "writing files needs no credential",
        "read_back": "a repeat overwrites the key's own file, so it never needs reading back (no key_retention)",
        "engagement": "nothing is published, so nobody can react (no metrics declared)",
    }

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def channel(self) -> Any:
        return self.open_configured("  kind: outbox\n  path: archief\n")

    def payload(self, label: str) -> dict[str, Any]:
        return {"text": f"Bericht {label}: de planning van deze week staat online."}

    def publications(self, claim: Claim) -> int:
        folder = self.root / "archief"
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        assert not [p for p in files if p.name.startswith(".tmp-")], "a temporary file was left behind"
        return sum(1 for p in files if json.loads(p.read_text())["idempotency_key"] == claim.idempotency_key)
