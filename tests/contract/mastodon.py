"""Mastodon against the loopback server built from recorded answers (tests/fakes/mastodon.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from contract import Harness
from fakes.mastodon import FakeMastodon

from dissemination.records import Claim, Receipt

TOKEN_ENV = "CONTRACT_MASTODON_TOKEN"


class MastodonHarness(Harness):
    kind = "mastodon"
    channel_id = "mastodon"

    def start(self) -> None:
        self.fake = FakeMastodon().start()
        self.fake.set_now(self.now)  # created_at, key life and rate windows follow the run's clock
        self.monkeypatch.setenv(TOKEN_ENV, self.fake.token)

    def stop(self) -> None:
        self.fake.stop()

    def channel(self) -> Any:
        return self.open_configured(f"  kind: mastodon\n  base_url: {self.fake.url}\n  token_env: {TOKEN_ENV}\n")

    def payload(self, label: str) -> dict[str, Any]:
        return {"text": f"Bericht {label}: de planning van deze week staat online."}

    def publications(self, claim: Claim) -> int:
        return sum(1 for text in self.fake.sources.values() if text == claim.payload["text"])

    def trigger_rate_limit(self) -> None:
        # longer than the channel's rate_limit_wait, which it would sleep through in-thread
        self.fake.faults.append(("429", 600))

    def let_time_pass(self, delta: dt.timedelta) -> None:
        super().let_time_pass(delta)
        self.fake.advance(seconds=delta.total_seconds())

    def break_credential(self) -> str:
        revoked = "revoked-mastodon-token-0000"
        self.monkeypatch.setenv(TOKEN_ENV, revoked)
        self.fake.echo_token = True
        return revoked

    def add_engagement(self, claim: Claim, receipt: Receipt) -> dict[str, float]:
        self.fake.statuses[receipt.remote_id]["favourites_count"] += 3
        self.fake.boost(receipt.remote_id, "@lezer@example.social")
        return {"favourites": 3, "reblogs": 1}
