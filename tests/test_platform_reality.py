"""Exactly once against Mastodon as it really behaves (tests/fakes/mastodon.py, rebuilt from the
recorded answers of a 4.6.4 server): the Idempotency-Key is forgotten after an hour, a 429 can ask
for hours, older servers lack the batch read and answer 404 to /api/v2/instance/. Through the CLI,
Mastodon.py and httpx over a socket; the fake's clock moves with the pipeline's `--now`."""

import datetime as dt
import json

import pytest
from publishing import cli, due_rows, make_project, mastodon_only

from dissemination.ledger import Ledger
from dissemination.measure import collect_metrics

UTC = dt.timezone.utc
PLAN_AT = "2026-12-01T00:00Z"
DUE = dt.datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def fake(fake_mastodon):
    fake_mastodon.set_now(DUE)
    return fake_mastodon


@pytest.fixture
def project(tmp_path, fake):
    root = make_project(tmp_path, tolerance="90d")
    mastodon_only(root)
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        "base_url: https://mastodon.example", f"base_url: {fake.url}\n  rate_limit_wait: 10s"))
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root


def publish_at(root, fake, minutes: float):
    """A publish run `minutes` after the first slot, with the server's clock at the same time."""
    moment = DUE + dt.timedelta(minutes=minutes)
    fake.set_now(moment)
    result = cli(root, "publish", "--now", moment.isoformat(), env={"TEST_MASTODON_TOKEN": fake.token})
    assert result.exit_code == 0, result.output
    return result


def rows(root, state=None):
    return due_rows(root, "mastodon", DUE.isoformat(), state)


def test_stored_then_500_then_502s_past_the_keys_life_is_read_back_and_posted_once(project, fake):
    fake.faults = ["stored-500", "502", "502", "502", "502"]
    publish_at(project, fake, 0)
    (item,) = rows(project, "unknown")
    # the retries within the hour repeat the key (502: the gateway, nothing stored); the one after
    # the hour, when the server has forgotten the key, reads back instead of posting a second copy
    for minutes in (2, 6, 14, 30):
        publish_at(project, fake, minutes)
        assert rows(project, "unknown"), minutes
    assert not fake.faults and len(fake.statuses) == 1
    publish_at(project, fake, 62)
    (published,) = rows(project, "published")
    assert len(fake.statuses) == 1 and published["remote_id"] == next(iter(fake.statuses))
    assert published["url"] == fake.statuses[published["remote_id"]]["url"]
    assert ("GET", "/api/v1/accounts/117020565966271181/statuses") in fake.requests
    # without read-back the same key would have made a second status by now
    assert not fake.remembers(item["idempotency_key"])


def test_stored_then_500_then_429_for_two_hours_stays_unknown_and_posts_once(project, fake):
    fake.faults = ["stored-500", ("429", 7200)]
    publish_at(project, fake, 0)
    publish_at(project, fake, 2)
    (item,) = rows(project, "unknown")  # the 429 says nothing about the first attempt
    assert "rate limited" in item["reason"] and "7200 s" in item["reason"]
    assert item["lease_expires"] >= (DUE + dt.timedelta(minutes=2, seconds=7199)).replace(tzinfo=None)
    publish_at(project, fake, 60)  # before the reset: not claimed
    assert rows(project, "unknown") and len(fake.statuses) == 1
    publish_at(project, fake, 123)
    (published,) = rows(project, "published")
    assert list(fake.statuses) == [published["remote_id"]]


def test_read_back_that_cannot_answer_waits_for_a_person_and_never_reposts(project, fake):
    fake.faults = ["stored-500"]
    publish_at(project, fake, 0)
    fake.account_statuses_error = 503
    result = publish_at(project, fake, 62)
    assert "1 waiting for a person" in result.output
    (item,) = rows(project, "waiting")
    assert "dissemination resolve" in item["reason"] and "503" in item["reason"]
    publish_at(project, fake, 300)  # nothing is sent while it waits
    assert len(fake.statuses) == 1 and rows(project, "waiting")
    status = cli(project, "status", "--now", (DUE + dt.timedelta(hours=5)).isoformat(), "--no-channels")
    assert status.exit_code == 2 and "waiting" in status.output and f"resolve {item['id']}" in status.output
    # a person looks at the account and records what is there
    (remote_id, remote), = fake.statuses.items()
    done = cli(project, "resolve", item["id"], "--published", remote["url"], "--id", remote_id, "--by", "Test")
    assert done.exit_code == 0, done.output
    (published,) = rows(project, "published")
    assert (published["remote_id"], published["url"]) == (remote_id, remote["url"])
    attempts = Ledger.for_root(project).attempts_of(item["id"])
    assert attempts[-1]["outcome"] == "resolved" and attempts[-1]["worker"] == "person:Test"
    assert cli(project, "resolve", item["id"], "--absent", "--by", "Test").exit_code == 2  # not waiting now


def test_read_back_that_proves_it_absent_posts_it_once(project, fake):
    fake.faults = ["502"]  # the gateway: nothing stored, but we cannot know that
    publish_at(project, fake, 0)
    assert rows(project, "unknown") and not fake.statuses
    fake.faults = ["502"] * 4
    for minutes in (2, 6, 14, 30):
        publish_at(project, fake, minutes)
    publish_at(project, fake, 62)  # read back: absent, so posted
    (published,) = rows(project, "published")
    assert list(fake.statuses) == [published["remote_id"]]


def test_an_older_server_without_the_slash_instance_and_batch_reads(project, fake, monkeypatch):
    fake.instance_slash_404 = True
    fake.batch_reads = False
    publish_at(project, fake, 0)
    (published,) = rows(project, "published")
    status = fake.statuses[published["remote_id"]]
    status["favourites_count"], status["reblogs_count"] = 7, 3
    ledger = Ledger.for_root(project)
    monkeypatch.setenv("TEST_MASTODON_TOKEN", fake.token)
    report = collect_metrics(project, ledger, DUE + dt.timedelta(hours=1))
    assert report.publications == 1
    read = {s["metric"]: s for s in ledger.snapshots(published["id"])}
    assert (read["favourites"]["value"], read["reblogs"]["value"]) == (7, 3)
    assert read["favourites"]["available"] and read["reblogs"]["available"]
    assert ("GET", f"/api/v1/statuses/{published['remote_id']}") in fake.requests


def test_the_instance_limits_are_stored_for_the_channel(project, fake):
    fake.max_characters, fake.description_limit = 300, 420
    publish_at(project, fake, 0)
    limits = Ledger.for_root(project).live_limits()["mastodon"]
    assert (limits.server, limits.max_characters, limits.description_limit) == (fake.url, 300, 420)
    assert json.loads(json.dumps(limits.characters_per_url)) == 23


def test_check_uses_the_instance_limit_once_read_and_reports_the_over_long_posts(project, fake):
    campaign = project / "campaigns" / "reeks.md"
    long_text = "Praktijkvoorbeeld van de week: " + "een verhaal over samenwerken in de logistiek. " * 6
    campaign.write_text(campaign.read_text().replace("Praktijkvoorbeeld van de week.", long_text.strip()))
    line = campaign.read_text().splitlines().index("## Uitgelicht") + 1
    before = cli(project, "check")
    assert before.exit_code == 0, before.output  # within the declared 500
    assert "mastodon: 500 characters" in before.output and "declared in channels.yaml" in before.output
    fake.max_characters = 300
    status = cli(project, "status", "--now", DUE.isoformat(), env={"TEST_MASTODON_TOKEN": fake.token})
    assert "statuses up to 300 characters" in status.output
    after = cli(project, "check")
    assert after.exit_code == 1, after.output
    assert f"campaigns/reeks.md:{line}: mastodon post for mkb is" in after.output
    assert "over the limit of 300" in after.output
    assert f"mastodon: 300 characters, URLs as 23, alt text 1500: read from {fake.url}" in after.output


# --- LinkedIn (tests/fakes/linkedin.py): no idempotency key, duplicate detection of unknown length


@pytest.fixture
def linkedin(fake_linkedin):
    fake_linkedin.set_now(DUE)
    return fake_linkedin


@pytest.fixture
def li_project(tmp_path, linkedin):
    root = make_project(tmp_path, tolerance="90d")
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        'api_version: "202510"', f'api_version: "202510"\n  api_base: {linkedin.url}\n  request_timeout: 1s'))
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root


def li_publish_at(root, linkedin, minutes: float):
    moment = DUE + dt.timedelta(minutes=minutes)
    linkedin.set_now(moment)
    result = cli(root, "publish", "--now", moment.isoformat(), env={"TEST_LINKEDIN_TOKEN": linkedin.token})
    assert result.exit_code == 0, result.output
    return result


def li_rows(root, state=None):
    return due_rows(root, "linkedin", DUE.isoformat(), state)


def test_linkedin_stored_then_500_past_the_duplicate_window_is_read_back(li_project, linkedin):
    linkedin.faults = ["stored-500", "504", "504", "504", "504"]
    li_publish_at(li_project, linkedin, 0)
    assert li_rows(li_project, "unknown") and len(linkedin.posts) == 1
    for minutes in (2, 6, 14, 30, 62):
        li_publish_at(li_project, linkedin, minutes)
    (published,) = li_rows(li_project, "published")
    assert list(linkedin.posts) == [published["remote_id"]]
    assert ("GET", "/rest/posts", 200) in linkedin.requests


def test_linkedin_read_back_without_the_read_scope_waits_for_a_person(li_project, linkedin):
    linkedin.scopes.discard("r_organization_social")
    linkedin.faults = ["stored-500"]
    li_publish_at(li_project, linkedin, 0)
    result = li_publish_at(li_project, linkedin, 62)
    assert "1 waiting for a person" in result.output
    (item,) = li_rows(li_project, "waiting")
    assert "403" in item["reason"] and "dissemination resolve" in item["reason"]
    li_publish_at(li_project, linkedin, 600)
    assert len(linkedin.posts) == 1


def test_linkedin_daily_quota_waits_for_midnight_utc_and_keeps_unknown(li_project, linkedin):
    linkedin.faults = ["stored-500"]
    li_publish_at(li_project, linkedin, 0)
    linkedin.daily_limit = 1  # the one stored post used today's quota
    li_publish_at(li_project, linkedin, 2)
    (item,) = li_rows(li_project, "unknown")
    assert "rate limited" in item["reason"] and item["lease_expires"].isoformat() == "2027-03-02T00:00:00"
    li_publish_at(li_project, linkedin, 15 * 60 + 1)  # 00:01 the next day: read back, found
    (published,) = li_rows(li_project, "published")
    assert list(linkedin.posts) == [published["remote_id"]]


def test_single_reads_stop_while_the_tokens_budget_is_low(project, fake, monkeypatch):
    from fakes.mastodon import API_LIMIT

    fake.batch_reads = False
    publish_at(project, fake, 24 * 60)  # Tuesday: the kick-off and the featured posts
    ledger = Ledger.for_root(project)
    published = [r["id"] for r in ledger.items(["published"]) if r["channel"] == "mastodon"]
    assert len(published) >= 3
    with fake.lock:
        fake._count("api", API_LIMIT, add=API_LIMIT[0] - 25)  # 25 requests left in this window
    monkeypatch.setenv("TEST_MASTODON_TOKEN", fake.token)
    collect_metrics(project, ledger, DUE + dt.timedelta(hours=25))
    favourites = {s["item_id"]: s for s in ledger.snapshots() if s["metric"] == "favourites"}
    read = [i for i in published if favourites[i]["available"]]
    assert len(read) == 1  # one read, then the rest is left for publishing
    assert all("rate budget" in favourites[i]["reason"] for i in published if i not in read)
