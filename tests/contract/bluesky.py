"""Bluesky against the reference PDS and AppView (@atproto/dev-env on loopback, tests/bluesky_pds.py),
with an account of its own per test."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest
from bluesky_pds import PdsUnavailable, shared
from contract import Harness

from dissemination.records import Claim, Receipt

PASSWORD_ENV = "CONTRACT_BLUESKY_APP_PASSWORD"
POST = "app.bsky.feed.post"
# Records of a collection no AppView indexes: they only spend the account's write budget.
SPENT = "nl.example.contract.spent"


class BlueskyHarness(Harness):
    kind = "bluesky"
    channel_id = "bluesky"
    not_applicable = {
        "read_back": "a post's record key is derived from the item's key and names it for as long as it exists; "
                     "a retry reads that one record, so nothing is forgotten (no key_retention)",
    }

    def start(self) -> None:
        try:
            self.network = shared()
        except PdsUnavailable as exc:
            pytest.fail(str(exc))
        self.account = self.network.create_account(self._name())
        self.monkeypatch.setenv(PASSWORD_ENV, self.account.app_password)
        self.limited_until: float | None = None  # when the write limit met by trigger_rate_limit ends (epoch s)
        self.advanced = 0.0  # seconds let pass: the PDS's clock is real time plus these

    def stop(self) -> None:
        pass  # the network is the process's (it stops at exit); the account is this test's alone

    @staticmethod
    def _name() -> str:
        return "c" + uuid.uuid4().hex[:12]

    def channel(self) -> Any:
        return self.open_configured(
            f"  kind: bluesky\n  handle: {self.account.handle}\n  pds_url: {self.network.pds_url}\n"
            f"  appview_url: {self.network.synced_appview_url()}\n  password_env: {PASSWORD_ENV}\n")

    def payload(self, label: str) -> dict[str, Any]:
        return {"text": f"Bericht {label}: de planning van deze week staat online."}

    def publications(self, claim: Claim) -> int:
        count, cursor = 0, None
        while True:
            params = {"repo": self.account.did, "collection": POST, "limit": 100} | ({"cursor": cursor} if cursor else {})
            answer = self.network.xrpc("GET", "com.atproto.repo.listRecords", params=params)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            count += sum(1 for r in body["records"] if r["value"]["text"] == claim.payload["text"])
            cursor = body.get("cursor")
            if not cursor or not body["records"]:
                return count

    def trigger_rate_limit(self) -> None:
        # The PDS's real write limit (repo-write-hour: 5000 points per account, a create costs 3),
        # spent by the account's own writes in batches of 200 (com.atproto.repo.applyWrites).
        for batch in range(10):
            writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": SPENT,
                       "value": {"$type": SPENT, "n": batch * 200 + i}} for i in range(200)]
            answer = self.network.xrpc("POST", "com.atproto.repo.applyWrites", token=self.account.access,
                                       json={"repo": self.account.did, "validate": False, "writes": writes})
            if answer.status_code == 429:
                self.limited_until = float(answer.headers["RateLimit-Reset"])
                return
            assert answer.status_code == 200, answer.text
        raise AssertionError("the PDS took 2000 writes in a row without a 429")

    def let_time_pass(self, delta: dt.timedelta) -> None:
        super().let_time_pass(delta)
        self.advanced += delta.total_seconds()
        # The PDS's clock cannot be moved: its windows that have ended by now are forgotten instead.
        if self.limited_until is not None and time.time() + self.advanced >= self.limited_until:
            assert self.network.forget_limits(self.account.did) > 0
            self.limited_until = None

    def break_credential(self) -> str:
        # The account owner revokes the app password in Bluesky's settings.
        revoked = self.network.xrpc("POST", "com.atproto.server.revokeAppPassword", token=self.account.access,
                                    json={"name": "dissemination"})
        assert revoked.status_code == 200, revoked.text
        return self.account.app_password

    def add_engagement(self, claim: Claim, receipt: Receipt) -> dict[str, float]:
        # Real like and repost records in two other accounts' repositories, indexed by the AppView.
        repo, collection, rkey = receipt.remote_id.removeprefix("at://").split("/")
        record = self.network.xrpc("GET", "com.atproto.repo.getRecord",
                                   params={"repo": repo, "collection": collection, "rkey": rkey})
        assert record.status_code == 200, record.text
        subject = {"uri": record.json()["uri"], "cid": record.json()["cid"]}
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for fan in (self.network.create_account(self._name()) for _ in range(2)):
            for kind in ("app.bsky.feed.like", "app.bsky.feed.repost"):
                made = self.network.xrpc("POST", "com.atproto.repo.createRecord", token=fan.access, json={
                    "repo": fan.did, "collection": kind, "record": {"$type": kind, "subject": subject, "createdAt": now}})
                assert made.status_code == 200, made.text
        self.network.sync()
        return {"likes": 2, "reposts": 2}
