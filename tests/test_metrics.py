"""Engagement of published posts round-trips from each platform (fakes on loopback) into the
ledger's snapshots, with the time of reading and its source; what cannot be read says why."""

import datetime as dt

import pytest
from fakes.linkedin import FakeLinkedIn
from fakes.mastodon import FakeMastodon
from publishing import cli, make_project

from dissemination.ledger import Ledger
from dissemination.measure import collect_metrics

PLAN_AT = "2026-12-01T00:00Z"
DUE = "2027-03-01T09:00:00+00:00"
READ_AT = dt.datetime(2027, 3, 2, 9, 0, 5, tzinfo=dt.timezone.utc)


@pytest.fixture
def fakes():
    mastodon, linkedin = FakeMastodon().start(), FakeLinkedIn().start()
    yield mastodon, linkedin
    mastodon.stop()
    linkedin.stop()


@pytest.fixture
def published(tmp_path, fakes, monkeypatch):
    mastodon, linkedin = fakes
    root = make_project(tmp_path, tolerance="90d")
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text()
                        .replace("base_url: https://mastodon.example", f"base_url: {mastodon.url}")
                        .replace('api_version: "202510"', f'api_version: "202510"\n  api_base: {linkedin.url}'))
    monkeypatch.setenv("TEST_MASTODON_TOKEN", mastodon.token)
    monkeypatch.setenv("TEST_LINKEDIN_TOKEN", linkedin.token)
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    assert cli(root, "publish", "--now", DUE).exit_code == 0
    return root


def _by_channel(root):
    ledger = Ledger.for_root(root)
    channel_of = {r["id"]: r["channel"] for r in ledger.items(["published"])}
    rows = {}
    for snap in ledger.snapshots():
        rows.setdefault(channel_of[snap["item_id"]], []).append(snap)
    return rows


def test_mastodon_counts_round_trip_and_a_deleted_status_is_marked(published, fakes):
    mastodon, _ = fakes
    (sid,) = mastodon.statuses
    mastodon.statuses[sid].update(favourites_count=4, reblogs_count=2, replies_count=1, quotes_count=0)
    assert collect_metrics(published, Ledger.for_root(published), READ_AT).added > 0
    rows = _by_channel(published)["mastodon"]
    assert {r["metric"]: r["value"] for r in rows} == {"favourites": 4, "reblogs": 2, "replies": 1, "quotes": 0,
                                                      "followers": 250}
    assert all(r["available"] and r["source"] == f"mastodon:{mastodon.url}" for r in rows)
    assert all(r["fetched_at"] == READ_AT.replace(tzinfo=None) for r in rows)
    assert ("GET", "/api/v1/statuses") in mastodon.requests  # the batch read
    # the same reading again in the same minute adds nothing
    assert collect_metrics(published, Ledger.for_root(published), READ_AT + dt.timedelta(seconds=20)).added == 0
    del mastodon.statuses[sid]  # deleted on the server: the batch read leaves it out
    collect_metrics(published, Ledger.for_root(published), READ_AT + dt.timedelta(hours=1))
    gone = _by_channel(published)["mastodon"][5:]
    assert all(not r["available"] and r["value"] is None and "deleted" in r["reason"] for r in gone)
    assert len(_by_channel(published)["mastodon"]) == 9  # appended: the earlier reading is kept


def test_linkedin_organization_statistics_round_trip(published, fakes):
    assert collect_metrics(published, Ledger.for_root(published), READ_AT).added > 0
    rows = _by_channel(published)["linkedin"]
    values = {(r["source"], r["metric"]): r["value"] for r in rows}
    stats = "linkedin:organizationalEntityShareStatistics"
    assert values[(stats, "impressions")] == 120 and values[(stats, "likes")] == 9
    assert values[("linkedin:socialMetadata", "reactions")] == 9
    assert all(r["available"] for r in rows)


def test_linkedin_metrics_without_the_scope_are_unavailable_naming_it_never_zero(published, fakes):
    _, linkedin = fakes
    linkedin.scopes = {"w_organization_social", "r_organization_social"}  # no rw_organization_admin
    collect_metrics(published, Ledger.for_root(published), READ_AT)
    stats = [r for r in _by_channel(published)["linkedin"]
             if r["source"] == "linkedin:organizationalEntityShareStatistics"]
    assert stats and all(not r["available"] and r["value"] is None for r in stats)
    assert all("rw_organization_admin" in r["reason"] and "403" in r["reason"] for r in stats)


def test_outbox_items_have_no_metrics_and_say_why(tmp_path):
    root = make_project(tmp_path, tolerance="90d")
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    assert cli(root, "publish", "--now", DUE).exit_code == 0
    collect_metrics(root, Ledger.for_root(root), READ_AT)
    rows = Ledger.for_root(root).snapshots()
    assert rows and all(not r["available"] and r["reason"] == "outbox: nothing was published" for r in rows)


def test_linkedin_member_post_analytics_without_the_scope_name_it(tmp_path, fakes, monkeypatch):
    mastodon, linkedin = fakes
    root = make_project(tmp_path, tolerance="90d")
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("author: urn:li:organization:42", "author: urn:li:person:abc123")
                        .replace('api_version: "202510"', f'api_version: "202510"\n  api_base: {linkedin.url}'))
    monkeypatch.setenv("TEST_LINKEDIN_TOKEN", linkedin.token)
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    assert cli(root, "publish", "--now", DUE).exit_code == 0
    collect_metrics(root, Ledger.for_root(root), READ_AT)
    rows = _by_channel(root)["linkedin"]
    assert {r["metric"] for r in rows} == {"impressions", "reactions", "comments", "shares"}
    assert all(not r["available"] and r["value"] is None and "r_member_postAnalytics" in r["reason"]
               and r["source"] == "linkedin:memberCreatorPostAnalytics" for r in rows)
