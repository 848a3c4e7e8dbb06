"""Harnesses for the channel contract test (tests/test_contract.py): one module per channel kind,
found here automatically, so a new channel adds `tests/contract/<kind>.py` and nothing else.

A harness is the only place that knows how to build a channel's settings, start its test server
and drive that server (make it rate-limit, refuse the credential, add engagement). The contract
test talks to the channel only through the channel contract (preflight, publish, read_back,
fetch_metrics, capabilities) and to the server only through the `Harness` interface below.

A property that cannot apply to a channel is named in its harness's `not_applicable`, with the
reason; tests/test_contract.py checks that list against the channel's declared capabilities.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dissemination.ledger import Ledger
from dissemination.records import Claim, PlannedItem, Receipt

UTC = dt.timezone.utc

# The properties every channel is held to, in the order the contract test states them.
PROPERTIES = ("publish", "retry_same_key", "rate_limit", "broken_credential", "read_back", "metrics", "engagement")


class Harness:
    """One channel kind and its test server. Subclasses set `kind`, `not_applicable` and
    and implement the methods that raise NotImplementedError."""

    kind: ClassVar[str]
    channel_id: ClassVar[str]
    # property -> why it cannot apply to this channel (checked against the capabilities)
    not_applicable: ClassVar[dict[str, str]] = {}
    # The metrics `fetch_metrics` reads per publication; empty: the channel has none, and every
    # reading it gives is unavailable with a reason.

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.root = tmp / "content"
        self.root.mkdir(parents=True, exist_ok=True)
        self.monkeypatch = monkeypatch
        self.ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
        # The run's clock, given to the channel (bind) and to the server: a rate limit is waited
        # out by moving it on, never by sleeping.
        self.now = dt.datetime.now(UTC).replace(microsecond=0)
        self.worker = "contract"

    # --- the server ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the test server and write the channel's settings (with a credential it accepts)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the test server."""
        raise NotImplementedError

    def channel(self) -> Any:
        """The channel opened as a publish run opens it (with the current credential) and bound
        to the harness's ledger and clock; its preflight has not run."""
        raise NotImplementedError

    def publications(self, claim: Claim) -> int:
        """How many times the server holds the claim's publication: posts on a platform, files in
        an outbox; for a newsletter, how many copies of the edition each recipient got (the same
        number for all of them, else the harness fails the test)."""
        raise NotImplementedError

    def trigger_rate_limit(self) -> None:
        """The server refuses the next publication for a while, as its rate limit does."""
        raise NotImplementedError(f"{self.kind}: rate limits do not apply")

    def let_time_pass(self, delta: dt.timedelta) -> None:
        """`delta` passes on the server's clock and the run's: a rate limit's window ends, a
        platform forgets a key older than its retention."""
        self.now += delta

    def break_credential(self) -> str:
        """From now on the server refuses the credential `channel()` opens with (and quotes it
        back where a careless server would). Returns the secret, which no message may show."""
        raise NotImplementedError(f"{self.kind}: there is no credential")

    def add_engagement(self, claim: Claim, receipt: Receipt) -> dict[str, float]:
        """People react to the claim's publication (`receipt`): metric -> how much its reading
        must go up."""
        raise NotImplementedError(f"{self.kind}: there is no engagement to read")

    def open_configured(self, settings: str) -> Any:
        """The channel as `publish` opens it: `settings` (its channels.yaml entry) read as the
        loader reads it, then open_channel and bind_channel, as the publish run calls them."""
        from dissemination.load.project import load_channels
        from dissemination.publish.channels import bind_channel, open_channel

        (self.root / "channels.yaml").write_text(f"{self.channel_id}:\n" + settings, encoding="utf-8")
        channels, problems = load_channels(self.root)
        assert channels is not None and not problems.errors, problems.errors
        opened = open_channel(self.channel_id, channels.channels[self.channel_id], self.root)
        assert opened.note is None, opened.note  # the real adapter, not the outbox standing in
        bind_channel(opened.channel, self.ledger, lambda: self.now)
        return opened.channel

    # --- items ---------------------------------------------------------------------------------

    def payload(self, label: str) -> dict[str, Any]:
        """What the planner would give one item of this channel (distinct per label)."""
        raise NotImplementedError

    def audience(self) -> str:
        return "mkb"

    def claim(self, label: str) -> Claim:
        """A due item of this channel, claimed from the ledger as a publish run claims it."""
        campaign = f"contract-{label}-{uuid.uuid4().hex[:6]}"
        item = PlannedItem(campaign, label, self.audience(), self.channel_id, 0, self.now - dt.timedelta(minutes=1),
                           "Europe/Amsterdam", self.payload(label), audiences=(self.audience(),))
        self.ledger.apply_plan([item], self.now, campaigns=[campaign])
        claims = [c for c in self.ledger.claim_due(self.worker, self.now, channels=[self.channel_id])
                  if c.id == item.id]
        assert len(claims) == 1, f"{self.kind}: the planned item {item.id} was not due"
        return claims[0]


def harnesses() -> dict[str, type[Harness]]:
    """Every harness in this package, by the channel kind it drives."""
    found: dict[str, type[Harness]] = {}
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, Harness) and value is not Harness \
                    and value.__module__ == loaded.__name__:
                assert value.kind not in found, f"two harnesses for {value.kind}"
                found[value.kind] = value
    return found
