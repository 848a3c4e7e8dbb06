"""A ledger seeded through its own API with publications and readings whose figures are known:
the report tests compare the report with sums written out here, never with the report's code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from publishing import PgSchema, pg_available

from dissemination.ledger import Ledger, PlannedItem, Receipt, Snapshot

UTC = dt.timezone.utc
AS_OF = dt.datetime(2027, 4, 5, 12, 0, tzinfo=UTC)  # after the end of 2027-Q1
SCOPE = "needs the rw_organization_admin scope (LinkedIn: 403 ACCESS_DENIED)"
# ... as the Dutch report says it
SCOPE_NL = "LinkedIn geeft dit cijfer alleen met de toestemming rw_organization_admin, die de koppeling mist"


TARGETS = """targets:
  - id: bereik-verdubbelen
    description: Verdubbeling van het bereik onder mkb-ondernemers
    metric: reach
    audiences: [mkb]
    times_baseline: 2
    baseline: 2026-Q4
  - id: klikken-per-campagne
    description: Ten minste 20 klikken per campagne
    metric: clicks
    per: campaign
    minimum: 20
  - id: publicaties-pl3-2
    description: Ten minste drie publicaties voor mijlpaal PL3-2
    metric: publications
    milestones: [PL3-2]
    minimum: 3
  - id: linkedin-publicaties
    description: Ten minste vijf LinkedIn-publicaties
    metric: publications
    channels: [linkedin]
    minimum: 5
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, monkeypatch):
    """The test runs on SQLite, and again on PostgreSQL (a schema of its own) when one is running."""
    if request.param == "postgresql":
        if not pg_available():
            pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
        schema = PgSchema()
        monkeypatch.setenv("DISSEMINATION_DB_URL", schema.url)
        yield request.param
        schema.drop()
    else:
        yield request.param


def with_targets(root) -> None:  # type: ignore[no-untyped-def]
    """Adds the report tests' targets to the mini project's programme.yaml."""
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + TARGETS)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Seed:
    name: str
    campaign: str
    post: str
    audience: str
    channel: str
    slot: str
    fate: str  # published | missed | failed | held
    delay_minutes: int = 0  # publication after the slot
    readings: list[tuple[str, str, float | None, str | None]] = field(default_factory=list)  # (at, metric, value, reason)


MASTODON = "mastodon:http://mastodon.test"
LINKEDIN = "linkedin:organizationalEntityShareStatistics"

SEEDS = [
    # 2026-Q4, the previous period
    Seed("H", "reeks", "p0", "mkb", "mastodon", "2026-11-05 09:00", "published", readings=[
        ("2026-11-06 00:00", "favourites", 2, None), ("2026-11-06 00:00", "reblogs", 0, None),
        ("2026-11-06 00:00", "replies", 0, None), ("2026-11-06 00:00", "followers", 200, None)]),
    Seed("I", "reeks", "p0", "mkb", "linkedin", "2026-12-01 09:00", "published", readings=[
        ("2026-12-02 00:00", "impressions", 50, None), ("2026-12-02 00:00", "clicks", 3, None),
        ("2026-12-02 00:00", "likes", 5, None), ("2026-12-02 00:00", "comments", 0, None),
        ("2026-12-02 00:00", "shares", 0, None), ("2026-12-02 00:00", "reactions", 5, None)]),
    # 2027-Q1, the report period
    Seed("A", "reeks", "p1", "mkb", "mastodon", "2027-01-10 09:00", "published", delay_minutes=30, readings=[
        ("2027-01-11 00:00", "favourites", 3, None), ("2027-01-11 00:00", "followers", 280, None),
        ("2027-01-20 00:00", "favourites", 5, None), ("2027-01-20 00:00", "reblogs", 2, None),
        ("2027-01-20 00:00", "replies", 1, None), ("2027-01-20 00:00", "followers", 300, None)]),
    Seed("B", "reeks", "p1", "mkb", "linkedin", "2027-02-03 09:00", "published", readings=[
        ("2027-02-04 00:00", "impressions", 120, None), ("2027-02-04 00:00", "clicks", 7, None),
        ("2027-02-04 00:00", "likes", 9, None), ("2027-02-04 00:00", "comments", 2, None),
        ("2027-02-04 00:00", "shares", 1, None), ("2027-02-04 00:00", "reactions", 9, None),
        # read after the report's moment: must not count
        ("2027-04-06 00:00", "impressions", 999, None)]),
    Seed("C", "reeks", "p2", "mkb", "linkedin", "2027-03-01 09:00", "published", readings=[
        ("2027-03-02 00:00", "impressions", None, SCOPE), ("2027-03-02 00:00", "clicks", None, SCOPE),
        ("2027-03-02 00:00", "likes", None, SCOPE), ("2027-03-02 00:00", "comments", None, SCOPE),
        ("2027-03-02 00:00", "shares", None, SCOPE), ("2027-03-02 00:00", "reactions", 4, None)]),
    Seed("D", "oud", "p1", "mkb", "mastodon", "2027-03-20 09:00", "published"),  # never read
    Seed("E", "reeks", "p3", "beleid", "mastodon", "2027-02-10 09:00", "missed"),
    Seed("F", "reeks", "p4", "beleid", "linkedin", "2027-02-11 09:00", "failed"),
    Seed("G", "reeks", "p5", "mkb", "nieuwsbrief", "2027-03-05 09:00", "held"),
]


def seed_ledger(ledger: Ledger) -> dict[str, str]:
    """Plan, publish, miss, fail and hold the seeds in time order; returns name -> item id."""
    planned = {s.name: PlannedItem(s.campaign, s.post, s.audience, s.channel, i, at(s.slot), "Europe/Amsterdam",
                                   {"text": f"Bericht {s.name}"}, state="held" if s.fate == "held" else "planned",
                                   reason="campaign changed since approval" if s.fate == "held" else None)
               for i, s in enumerate(SEEDS)}
    ledger.apply_plan(planned.values(), at("2026-10-01 00:00"))
    for seed in sorted(SEEDS, key=lambda s: s.slot):
        item = planned[seed.name]
        moment = at(seed.slot) + dt.timedelta(minutes=seed.delay_minutes)
        if seed.fate == "missed":
            assert ledger.mark_missed(moment + dt.timedelta(hours=3), {}) == [item.id]
        elif seed.fate in ("published", "failed"):
            (claim,) = ledger.claim_due("test", moment, limit=1)
            assert claim.id == item.id
            if seed.fate == "failed":
                ledger.record_failed(claim, moment, "LinkedIn refused the post: HTTP 422")
            else:
                assert ledger.record_published(claim, Receipt(f"remote-{seed.name}",
                                                              f"https://social.example/{seed.name}"), moment)
        for when, metric, value, reason in seed.readings:
            source = MASTODON if seed.channel == "mastodon" else LINKEDIN
            ledger.add_snapshots([Snapshot(item.id, metric, value, at(when), source, value is not None, reason)])
    return {name: p.id for name, p in planned.items()}
