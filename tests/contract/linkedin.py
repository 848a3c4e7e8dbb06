"""LinkedIn (an organisation page) against its REST API on loopback (tests/fakes/linkedin.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from contract import Harness
from fakes.linkedin import FakeLinkedIn

from dissemination.records import Claim, Receipt

TOKEN_ENV = "CONTRACT_LINKEDIN_TOKEN"
AUTHOR = "urn:li:organization:42"


class LinkedInHarness(Harness):
    kind = "linkedin"
    channel_id = "linkedin"

    def start(self) -> None:
        self.fake = FakeLinkedIn().start()
        self.fake.set_now(self.now)  # createdAt, the daily quota and duplicate detection follow the run's clock
        self.monkeypatch.setenv(TOKEN_ENV, self.fake.token)
        self.quota: int | None = None  # the daily quota while trigger_rate_limit holds it at "used up"

    def stop(self) -> None:
        self.fake.stop()

    def channel(self) -> Any:
        return self.open_configured(f"  kind: linkedin\n  author: {AUTHOR}\n  api_version: \"202510\"\n"
                                    f"  api_base: {self.fake.url}\n  token_env: {TOKEN_ENV}\n")

    def payload(self, label: str) -> dict[str, Any]:
        return {"text": f"Bericht {label}: de planning van deze week staat online."}

    def publications(self, claim: Claim) -> int:
        return sum(1 for post in self.fake.posts.values() if post["commentary"] == claim.payload["text"])

    def trigger_rate_limit(self) -> None:
        # LinkedIn's member quota is daily (reset at midnight UTC) and its 429 names no reset time
        self.quota, self.limited_on = self.fake.daily_limit, self.fake.now().date()
        self.fake.daily_limit = self.fake.posts_today()

    def let_time_pass(self, delta: dt.timedelta) -> None:
        super().let_time_pass(delta)
        self.fake.advance(seconds=delta.total_seconds())
        if self.quota is not None and self.fake.now().date() > self.limited_on:
            self.fake.daily_limit, self.quota = self.quota, None  # a new day: the whole quota again

    def break_credential(self) -> str:
        revoked = "AQX-revoked-linkedin-token-0000"
        self.monkeypatch.setenv(TOKEN_ENV, revoked)
        return revoked

    def add_engagement(self, claim: Claim, receipt: Receipt) -> dict[str, float]:
        self.fake.stats["likeCount"] += 2
        return {"likes": 2}
