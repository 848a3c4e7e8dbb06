"""Stored LinkedIn tokens before a publish run: renewed with the refresh token when they expire
within a week, a warning a week ahead when there is none, no publishing once expired; a refused
token remembered for `status`. Against the loopback LinkedIn (tests/fakes/linkedin.py)."""

import datetime as dt
import json
import logging
import time

import pytest
from publishing import cli, due_rows, make_project

from dissemination.publish.credentials import Credential, FileStore

PLAN_AT = "2026-12-01T00:00Z"
DUE = "2027-03-01T09:00:00+00:00"
UTC = dt.timezone.utc
CLIENT = {"TEST_LINKEDIN_CLIENT_ID": "86test1inkedin", "TEST_LINKEDIN_CLIENT_SECRET": "WPL_AP1.test-client-secret.Zm9v"}
NO_ENV_TOKEN = {"TEST_LINKEDIN_TOKEN": "", **CLIENT}


@pytest.fixture
def linkedin(fake_linkedin):
    return fake_linkedin


@pytest.fixture
def project(tmp_path, linkedin):
    root = make_project(tmp_path, tolerance="90d")
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        'api_version: "202510"', f'api_version: "202510"\n  api_base: {linkedin.url}\n  oauth_base: {linkedin.url}\n'
        '  client_id_env: TEST_LINKEDIN_CLIENT_ID\n  client_secret_env: TEST_LINKEDIN_CLIENT_SECRET'))
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root


def _store_token(linkedin, expires_in: dt.timedelta, refresh: bool, token="AQX-stored-token-7e1f") -> Credential:
    """What `dissemination auth linkedin` stored some time ago, and LinkedIn's side of it."""
    now = dt.datetime.now(UTC)
    linkedin.tokens[token] = {"expires": (now + expires_in).timestamp(), "scopes": {"openid", "profile"}}
    refresh_token = None
    if refresh:
        refresh_token = "AQW-stored-refresh-0b9c"
        linkedin.refreshes[refresh_token] = time.time() + 300 * 86400
    credential = Credential("linkedin", "linkedin", linkedin.url, token, obtained_at=now - dt.timedelta(days=55),
                            expires_at=now + expires_in, refresh_token=refresh_token,
                            refresh_expires_at=now + dt.timedelta(days=300) if refresh else None,
                            account="Roos Redacteur (urn:li:person:782bbtaQ)")
    FileStore().put(credential)
    return credential


def _stored():
    return FileStore().get("linkedin")


def _token_grants(linkedin):
    return [r for r in linkedin.requests if r[1] == "/oauth/v2/accessToken"]


def test_an_expired_token_is_renewed_with_the_refresh_token_and_publishes(project, linkedin):
    old = _store_token(linkedin, dt.timedelta(hours=-1), refresh=True)
    linkedin.refresh_tokens = True  # the answer to a refresh carries the refresh token again
    result = cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN)
    assert result.exit_code == 0, result.output
    assert _token_grants(linkedin) == [("POST", "/oauth/v2/accessToken", 200)]
    renewed = _stored()
    assert renewed.access_token != old.access_token and renewed.access_token in linkedin.tokens
    assert renewed.expires_at > dt.datetime.now(UTC) + dt.timedelta(days=59)
    # a refresh does not extend the refresh token's life
    assert abs(renewed.refresh_expires_at - old.refresh_expires_at) < dt.timedelta(seconds=5)
    assert len(linkedin.posts) == 1 and len(due_rows(project, "linkedin", DUE, "published")) == 1
    assert "warning" not in result.output


def test_a_token_expiring_within_a_week_is_renewed_ahead(project, linkedin):
    old = _store_token(linkedin, dt.timedelta(days=5), refresh=True)
    assert cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN).exit_code == 0
    assert _stored().access_token != old.access_token and len(linkedin.posts) == 1


def test_a_week_before_expiry_without_a_refresh_token_warns_and_still_publishes(project, linkedin):
    _store_token(linkedin, dt.timedelta(days=3, hours=2), refresh=False)
    result = cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN)
    expires = (dt.datetime.now(UTC) + dt.timedelta(days=3, hours=2)).strftime("%Y-%m-%d")
    warning = (f"linkedin: the stored token of channel 'linkedin' expires on {expires} (in 3 days) and LinkedIn "
               "gave no refresh token: run `dissemination auth linkedin linkedin` before then")
    assert f"warning: {warning}" in result.output
    assert len(linkedin.posts) == 1 and not _token_grants(linkedin)
    status = cli(project, "status", "--now", DUE, env=NO_ENV_TOKEN)
    assert warning in status.output.replace("linkedin: warning: ", "linkedin: ")


def test_no_warning_while_more_than_a_week_is_left(project, linkedin):
    _store_token(linkedin, dt.timedelta(days=8), refresh=False)
    result = cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN)
    assert "warning" not in result.output and len(linkedin.posts) == 1


def test_an_expired_token_without_a_refresh_token_publishes_nothing_and_says_what_to_do(project, linkedin):
    _store_token(linkedin, dt.timedelta(minutes=-5), refresh=False)
    result = cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN)
    assert result.exit_code == 0
    assert "linkedin: not publishing: the stored token of channel 'linkedin' expired on" in result.output
    assert "there is no refresh token; run `dissemination auth linkedin linkedin`" in result.output
    rows = due_rows(project, "linkedin", DUE)
    assert rows and {r["state"] for r in rows} == {"planned"} and not linkedin.posts
    assert not [r for r in linkedin.requests if r[1] == "/rest/posts"]
    status = cli(project, "status", "--now", DUE, env=NO_ENV_TOKEN)
    assert "linkedin: NOT OK: the stored token of channel 'linkedin' expired on" in status.output


def test_a_refused_refresh_of_an_expired_token_publishes_nothing(project, linkedin):
    _store_token(linkedin, dt.timedelta(hours=-1), refresh=True)
    linkedin.refreshes.clear()  # revoked on LinkedIn's side
    result = cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN)
    assert "could not be renewed (LinkedIn refused the refresh token: HTTP 400 invalid_request" in result.output
    assert not linkedin.posts and {r["state"] for r in due_rows(project, "linkedin", DUE)} == {"planned"}


def test_a_revoked_stored_token_is_remembered_for_status(project, linkedin):
    _store_token(linkedin, dt.timedelta(days=30), refresh=False)
    linkedin.tokens.pop("AQX-stored-token-7e1f")  # revoked by the member
    result = cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN)
    assert "linkedin: not publishing: the stored token of channel 'linkedin' was refused by LinkedIn" in result.output
    assert "Invalid access token" in _stored().broken and not linkedin.posts
    status = cli(project, "status", "--now", DUE, "--no-channels", env=NO_ENV_TOKEN)
    assert "linkedin:" not in status.output  # --no-channels: no platform asked
    status = cli(project, "status", "--now", DUE, env=NO_ENV_TOKEN)
    assert "linkedin: NOT OK: the stored token of channel 'linkedin' was refused by LinkedIn" in status.output
    assert "run `dissemination auth linkedin linkedin`" in status.output


def test_the_environment_token_wins_over_the_stored_one(project, linkedin):
    _store_token(linkedin, dt.timedelta(minutes=-5), refresh=False)  # expired: would stop the channel
    result = cli(project, "publish", "--now", DUE, env={**CLIENT, "TEST_LINKEDIN_TOKEN": linkedin.token})
    assert result.exit_code == 0 and len(linkedin.posts) == 1


def test_no_token_value_in_logs_output_outbox_or_ledger_through_sign_in_and_renewal(project, linkedin, caplog):
    caplog.set_level(logging.DEBUG)
    old = _store_token(linkedin, dt.timedelta(hours=-1), refresh=True)
    env = {**NO_ENV_TOKEN, "DISSEMINATION_LOG": "DEBUG"}
    outputs = [cli(project, "publish", "--now", DUE, env=env).output,
               cli(project, "status", "--now", DUE, env=env).output]
    renewed = _stored()
    linkedin.tokens.pop(renewed.access_token)  # now revoked: the refusal is reported and stored
    outputs.append(cli(project, "publish", "--now", "2027-03-09T09:00:00+00:00", env=env).output)
    outputs.append(cli(project, "status", "--now", DUE, "--json", env=env).output)
    written = [p.read_text(errors="replace") for p in project.rglob("*") if p.is_file() and "outbox" in p.parts]
    ledger = [json.dumps(r, default=str) for r in due_rows(project, "linkedin", "2027-12-31T00:00:00+00:00")]
    secrets = [old.access_token, old.refresh_token, renewed.access_token, renewed.refresh_token,
               CLIENT["TEST_LINKEDIN_CLIENT_SECRET"]]
    assert renewed.access_token != old.access_token
    for text in [caplog.text, *outputs, *written, *ledger, repr(renewed)]:
        for secret in secrets:
            assert secret not in text


def test_reading_metrics_renews_an_expired_token_or_says_why_nothing_was_read(project, linkedin, monkeypatch):
    from dataclasses import replace

    from dissemination.ledger import Ledger
    from dissemination.measure import collect_metrics

    stored = _store_token(linkedin, dt.timedelta(days=30), refresh=True)
    assert cli(project, "publish", "--now", DUE, env=NO_ENV_TOKEN).exit_code == 0 and len(linkedin.posts) == 1
    # a week later the token has expired; the refresh token still works
    linkedin.tokens[stored.access_token]["expires"] = time.time() - 60
    FileStore().put(replace(_stored(), expires_at=dt.datetime.now(UTC) - dt.timedelta(minutes=1)))
    for name, value in NO_ENV_TOKEN.items():  # collect_metrics runs in this process
        monkeypatch.setenv(name, value)
    read_at = dt.datetime(2027, 3, 8, 9, 0, tzinfo=UTC)  # within the 30 days metrics are read

    def readings(at):
        return [s for s in Ledger.for_root(project).snapshots()
                if s["fetched_at"] == at.replace(tzinfo=None) and "linkedin" in s["source"]]

    assert collect_metrics(project, Ledger.for_root(project), read_at).added > 0
    assert readings(read_at) and all(s["available"] for s in readings(read_at))
    assert _stored().access_token != stored.access_token
    # once nothing can renew it, the readings say what to do instead of being left out
    linkedin.refreshes.clear()
    FileStore().put(replace(_stored(), expires_at=dt.datetime.now(UTC) - dt.timedelta(minutes=1)))
    later = read_at + dt.timedelta(hours=1)
    collect_metrics(project, Ledger.for_root(project), later)
    assert readings(later) and all(not s["available"] and s["source"] == "collector:linkedin"
                                   and "dissemination auth linkedin linkedin" in s["reason"] for s in readings(later))
