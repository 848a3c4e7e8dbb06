"""The channel contract, held against every channel kind and its test server.

Each kind has a harness in tests/contract/<kind>.py (found automatically): the only code that
knows the channel's settings and drives its server. This file talks to a channel only through
the contract (capabilities, preflight, publish, read_back, fetch_metrics) and to its server only
through the harness, so a new channel kind adds its harness and nothing here.

A property a channel cannot have is not generated as a case for it (no skipped tests): its
harness names it in `not_applicable` with the reason, and
`test_the_cases_of_each_channel_follow_its_capabilities` holds that list against what the
channel declares.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Callable

import pytest
from contract import PROPERTIES, Harness, harnesses

from dissemination.publish.channels import Capabilities, PublishError
from dissemination.records import Claim, Receipt, Snapshot

HARNESSES = harnesses()

# Which properties a channel's declared capabilities call for (None: nothing in the capabilities
# says; the harness's reason stands). A channel that declares a rate (its own sending pace or its
# reads per minute) talks to a server that limits it; one with a key retention must be able to
# read a publication back once the platform forgets the key.
RULES: dict[str, Callable[[Capabilities, type[Harness]], bool] | None] = {
    "publish": lambda caps, harness: True,
    "retry_same_key": lambda caps, harness: caps.idempotent,
    "rate_limit": lambda caps, harness: caps.rate_per_minute is not None or caps.read_per_minute is not None,
    "broken_credential": None,
    "read_back": lambda caps, harness: caps.key_retention is not None,
    "metrics": lambda caps, harness: True,
    "engagement": lambda caps, harness: bool(declared_metrics(harness)),
}
assert tuple(RULES) == PROPERTIES
# The harness hook a property needs: implemented exactly where the property applies.
HOOKS = {"rate_limit": "trigger_rate_limit", "broken_credential": "break_credential", "engagement": "add_engagement"}


def applicable(prop: str) -> list:  # type: ignore[type-arg]
    """The channel kinds a property applies to (as their harnesses say; checked below)."""
    return [pytest.param(kind, id=kind) for kind, harness in sorted(HARNESSES.items())
            if prop not in harness.not_applicable]


@pytest.fixture
def harness(request, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    running = HARNESSES[request.param](tmp_path, monkeypatch)
    running.start()
    yield running
    running.stop()


def healthy(harness: Harness):  # type: ignore[no-untyped-def]
    """The channel as a publish run has it after a passing preflight."""
    channel = harness.channel()
    health = channel.preflight()
    assert health.ok and not health.credential_broken, health.message
    return channel


def retry(claim: Claim) -> Claim:
    """The same item claimed again by a later run after its answer was lost: the same key."""
    return dataclasses.replace(claim, attempt_count=claim.attempt_count + 1, outcome_unknown=True)


def declared_metrics(harness) -> tuple[str, ...]:
    """The metric names the harness's channel kind declares (its class's `metrics`)."""
    from dissemination.publish.channels.base import channel_class

    found = channel_class(harness.kind)
    assert found is not None, harness.kind
    return tuple(m.name for m in found.metrics)


# --- which cases each channel gets ---------------------------------------------------------------

def test_every_channel_kind_has_a_harness():
    from dissemination.publish.channels.base import kinds

    assert set(HARNESSES) == set(kinds()), \
        "each channel kind needs tests/contract/<kind>.py (see tests/contract/__init__.py)"


@pytest.mark.parametrize("harness", [pytest.param(kind, id=kind) for kind in sorted(HARNESSES)], indirect=True)
def test_the_cases_of_each_channel_follow_its_capabilities(harness):
    channel = harness.channel()
    assert channel.kind == harness.kind
    caps = channel.capabilities
    assert set(harness.not_applicable) <= set(PROPERTIES), harness.not_applicable
    assert all(reason.strip() for reason in harness.not_applicable.values())
    expected = [p for p in PROPERTIES if RULES[p] is None and p not in harness.not_applicable
                or RULES[p] is not None and RULES[p](caps, type(harness))]
    generated = [p for p in PROPERTIES if harness.kind in [c.values[0] for c in applicable(p)]]
    assert generated == expected, f"{harness.kind} declares {caps}"
    implemented = [p for p, hook in HOOKS.items() if getattr(type(harness), hook) is not getattr(Harness, hook)]
    assert implemented == [p for p in HOOKS if p in generated]


# --- the contract --------------------------------------------------------------------------------

@pytest.mark.parametrize("harness", applicable("publish"), indirect=True)
def test_publish_gives_a_receipt_and_exactly_one_publication(harness):
    claim = harness.claim("een")
    channel = healthy(harness)
    assert harness.publications(claim) == 0
    receipt = channel.publish(claim)
    assert isinstance(receipt, Receipt) and isinstance(receipt.remote_id, str) and receipt.remote_id
    assert harness.publications(claim) == 1


@pytest.mark.parametrize("harness", applicable("retry_same_key"), indirect=True)
def test_a_retry_with_the_same_key_makes_no_second_publication(harness):
    claim = harness.claim("twee")
    first = healthy(harness).publish(claim)
    # in the same run (a retry after a timeout) and in the next run, with the channel opened anew
    again = healthy(harness).publish(retry(claim))
    third = healthy(harness).publish(retry(retry(claim)))
    assert harness.publications(claim) == 1
    assert again.remote_id == third.remote_id == first.remote_id  # the receipt of the one publication


@pytest.mark.parametrize("harness", applicable("rate_limit"), indirect=True)
def test_a_rate_limit_says_when_to_retry_and_the_retry_publishes_once(harness):
    claim = harness.claim("drie")
    channel = healthy(harness)
    harness.trigger_rate_limit()
    with pytest.raises(PublishError) as refused:
        channel.publish(claim)
    error = refused.value
    assert error.retry_after is not None and error.retry_after > dt.timedelta(0), error.reason
    assert not error.permanent and not error.outcome_unknown, error.reason  # refused: nothing can exist
    assert harness.publications(claim) == 0

    harness.let_time_pass(error.retry_after)
    receipt = healthy(harness).publish(retry(claim))
    assert harness.publications(claim) == 1
    assert healthy(harness).publish(retry(retry(claim))).remote_id == receipt.remote_id
    assert harness.publications(claim) == 1


@pytest.mark.parametrize("harness", applicable("broken_credential"), indirect=True)
def test_a_broken_credential_is_found_at_preflight_and_never_shown(harness, caplog):
    caplog.set_level(logging.DEBUG)
    claim = harness.claim("vier")  # planned before the run starts, as a publish run finds it
    secret = harness.break_credential()
    channel = harness.channel()
    health = channel.preflight()
    assert not health.ok and health.credential_broken, health
    assert secret not in health.message and secret not in (health.warning or "")
    with pytest.raises(PublishError) as refused:
        channel.publish(claim)
    error = refused.value
    assert not error.outcome_unknown, error.reason  # nothing went out with a refused credential
    assert secret not in error.reason and secret not in str(error)
    assert harness.publications(claim) == 0
    assert secret not in caplog.text


@pytest.mark.parametrize("harness", applicable("read_back"), indirect=True)
def test_read_back_finds_the_publication_after_the_key_is_forgotten_and_proves_absence(harness):
    published, never = harness.claim("vijf"), harness.claim("zes")
    receipt = healthy(harness).publish(published)
    # past the key's retention: the platform would take a repeat as new, so only reading tells
    harness.let_time_pass(healthy(harness).capabilities.key_retention + dt.timedelta(minutes=1))
    channel = healthy(harness)
    found = channel.read_back(retry(published), published.first_claimed_at)
    assert isinstance(found, Receipt) and found.remote_id == receipt.remote_id
    assert channel.read_back(retry(never), never.first_claimed_at) is None
    assert harness.publications(published) == 1 and harness.publications(never) == 0


def _readings(channel, claim: Claim, receipt: Receipt, now: dt.datetime) -> list[Snapshot]:  # type: ignore[no-untyped-def]
    readings = channel.fetch_metrics({claim.id: receipt}, now)
    assert readings and all(isinstance(s, Snapshot) and s.item_id == claim.id and s.fetched_at == now
                            for s in readings), readings
    return readings


@pytest.mark.parametrize("harness", applicable("metrics"), indirect=True)
def test_metrics_give_one_reading_per_declared_metric(harness):
    claim = harness.claim("zeven")
    channel = healthy(harness)
    receipt = channel.publish(claim)
    readings = _readings(channel, claim, receipt, harness.now)
    if declared_metrics(harness):
        assert sorted(s.metric for s in readings) == sorted(declared_metrics(harness))
        # the test server grants every read: each metric has a number, none is a guess
        assert all(s.available and isinstance(s.value, float) and s.value >= 0 for s in readings), readings
    else:  # nothing to measure: said, with the reason, never a 0
        assert all(not s.available and s.value is None and s.reason for s in readings), readings


@pytest.mark.parametrize("harness", applicable("engagement"), indirect=True)
def test_engagement_shows_in_the_next_reading(harness):
    claim = harness.claim("acht")
    channel = healthy(harness)
    receipt = channel.publish(claim)
    before = {s.metric: s.value for s in _readings(channel, claim, receipt, harness.now)}
    raised = harness.add_engagement(claim, receipt)
    assert raised and set(raised) <= set(declared_metrics(harness))
    harness.let_time_pass(dt.timedelta(minutes=5))
    after = {s.metric: s.value for s in _readings(harness.channel(), claim, receipt, harness.now)}
    assert {m: after[m] - before[m] for m in raised} == raised
