"""The Mastodon adapter through the real CLI and pipeline, Mastodon.py and a socket, against a
server on loopback that behaves as Mastodon does (tests/fakes/mastodon.py)."""

import logging

import pytest
from publishing import cli, due_rows, make_project, mastodon_only, subprocess_cli

PLAN_AT = "2026-12-01T00:00Z"
DUE = "2027-03-01T09:00:00+00:00"


@pytest.fixture
def fake(fake_mastodon):
    return fake_mastodon


@pytest.fixture
def project(request, tmp_path, fake):
    root = make_project(tmp_path, tolerance="90d")
    if request.node.get_closest_marker("mastodon_only"):
        mastodon_only(root)
        assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        "base_url: https://mastodon.example", f"base_url: {fake.url}\n  rate_limit_wait: 10s"))
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root


def _env(fake):
    return {"TEST_MASTODON_TOKEN": fake.token}


def _mastodon_rows(root, state=None):
    return due_rows(root, "mastodon", DUE, state)


def _assert_exactly_once(root, fake):
    published = _mastodon_rows(root, "published")
    assert published and len(published) == len(_mastodon_rows(root))
    assert sorted(r["remote_id"] for r in published) == sorted(fake.statuses)  # one post, one receipt each
    assert sorted(fake.idempotency) == sorted(r["idempotency_key"] for r in published)


def test_publishes_each_due_item_once_and_reads_the_instance_limits(project, fake):
    result = cli(project, "publish", "--now", DUE, env=_env(fake))
    assert result.exit_code == 0, result.output
    _assert_exactly_once(project, fake)
    row = _mastodon_rows(project, "published")[0]
    assert row["url"] == f"{fake.url}/@roadmap/{row['remote_id']}"
    assert ("GET", "/api/v1/accounts/verify_credentials") in fake.requests
    assert not list((project / "outbox").glob("mastodon/*"))  # the real adapter, not the outbox
    # a second run finds nothing due and posts nothing
    before = len(fake.statuses)
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    assert len(fake.statuses) == before
    assert fake.requests.count(("GET", "/api/v2/instance")) == 1  # limits cached per instance


@pytest.mark.mastodon_only  # so that the first remote call, where the run is killed, is Mastodon's
def test_killed_after_the_post_is_replayed_with_the_same_key(project, fake):
    crashed = subprocess_cli(project, "publish", "--now", DUE,
                             env={**_env(fake), "DISSEMINATION_FAULT": "after_remote"})
    crashed.communicate(timeout=60)
    assert crashed.returncode != 0
    assert len(fake.statuses) == 1 and not _mastodon_rows(project, "published")  # posted, never recorded
    # after the lease, the next run repeats the post with the same key: Mastodon answers 200 with
    # the original status, so the ledger gets its receipt and nothing is posted twice
    assert cli(project, "publish", "--now", "2027-03-01T09:06:00+00:00", env=_env(fake)).exit_code == 0
    assert ("POST", "/api/v1/statuses") in fake.requests[fake.requests.index(("POST", "/api/v1/statuses")) + 1:]
    _assert_exactly_once(project, fake)


def test_stored_then_500_is_retried_with_the_same_key_and_posted_once(project, fake):
    fake.fail_after_store = 1
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    unknown = _mastodon_rows(project, "unknown")
    assert len(unknown) == 1 and "500" in unknown[0]["reason"]
    assert cli(project, "publish", "--now", "2027-03-01T10:00:00+00:00", env=_env(fake)).exit_code == 0
    _assert_exactly_once(project, fake)


def test_rate_limit_reset_within_the_budget_waits_then_succeeds(project, fake):
    fake.rate_limit_for = 3  # ISO-8601 reset 3 s ahead, as Mastodon sends it
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    _assert_exactly_once(project, fake)
    assert [p for p in fake.requests if p == ("POST", "/api/v1/statuses")][:2] == [("POST", "/api/v1/statuses")] * 2


def test_rate_limit_reset_beyond_the_budget_leaves_the_item_for_the_next_run(project, fake):
    fake.rate_limit_for = 600
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    rows = _mastodon_rows(project)
    assert not fake.statuses and rows
    assert {r["state"] for r in rows} <= {"planned", "unknown"} and "failed" not in {r["state"] for r in rows}
    assert any("rate limited" in (r["reason"] or "") for r in rows)


def test_a_refused_token_marks_the_credential_broken_and_publishes_nothing(project, fake):
    result = cli(project, "publish", "--now", DUE, env={"TEST_MASTODON_TOKEN": "revoked-token-0000"})
    assert "TEST_MASTODON_TOKEN was refused" in result.output
    assert "revoked-token-0000" not in result.output
    assert not fake.statuses
    assert {r["state"] for r in _mastodon_rows(project)} == {"planned"}


def test_a_rejected_status_fails_permanently_with_the_servers_message(project, fake):
    fake.reject_with = "Gültigkeitsprüfung ist fehlgeschlagen: Text Begrenzung von 500 Zeichen überschritten"
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    failed = _mastodon_rows(project, "failed")
    assert failed and len(failed) == len(_mastodon_rows(project))
    assert all(fake.reject_with in r["reason"] and "422" in r["reason"] for r in failed)


def test_no_token_value_in_logs_outbox_or_output(project, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.fail_after_store = 1
    outputs = [cli(project, "publish", "--now", DUE, env={**_env(fake), "DISSEMINATION_LOG": "DEBUG"}).output]
    outputs.append(cli(project, "publish", "--now", DUE, env={"TEST_MASTODON_TOKEN": "x" + fake.token}).output)
    outputs.append(cli(project, "publish", "--now", DUE).output)  # unset: the outbox
    written = [p.read_text() for p in project.rglob("*") if p.is_file() and "outbox" in p.parts]
    assert written  # the other channels, and mastodon once its token was gone
    for text in [caplog.text, *outputs, *written]:
        assert fake.token not in text
