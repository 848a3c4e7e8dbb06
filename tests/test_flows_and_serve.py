"""The Prefect flows (thin wrappers) under a test harness, prefect.yaml, and `serve`."""

import importlib
import re
import signal
import time

import pytest
import yaml
from publishing import due_now, make_project, outbox_keys, subprocess_cli

from conftest import REPO
from dissemination.ledger import Ledger


def test_every_prefect_yaml_entrypoint_imports_and_has_a_schedule():
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = set()
    for deployment in config["deployments"]:
        if deployment["name"] == "notify":  # run by the automations only
            assert deployment["schedules"] == [] and len(deployment["triggers"]) == 2
            continue
        module_path, function = deployment["entrypoint"].split(":")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, function)
        names.add(flow.name)
        assert deployment["schedules"][0]["timezone"] == "Europe/Amsterdam"
        assert deployment["schedules"][0]["cron"]
    assert {"plan", "publish_due"} <= names
    publish = next(d for d in config["deployments"] if d["name"] == "publish-due")
    assert publish["schedules"][0]["cron"] == "*/5 * * * *"


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_plan_and_publish_flows_run_under_prefect(tmp_path, harness, monkeypatch):
    from flows.plan import plan_flow
    from flows.publish_due import publish_due_flow

    root = make_project(tmp_path)
    due_now(root)
    planned = plan_flow(root=str(root))
    assert planned["added"] == 8 and planned["held"] == 0
    assert plan_flow(root=str(root))["unchanged"] == 8  # idempotent under Prefect too
    result = publish_due_flow(root=str(root))
    assert len(result["published"]) == 2 and result["failed"] == []
    assert len(outbox_keys(root)) == 2
    assert len(publish_due_flow(root=str(root))["published"]) == 0  # a second run sends nothing again


def test_the_plan_flow_plans_the_valid_campaigns_and_fails_naming_the_broken_one(tmp_path, harness):
    from flows.plan import plan_flow
    from flows.publish_due import publish_due_flow
    from test_isolation import BROKEN_DRAFT

    from dissemination.problems import ContentErrors

    root = make_project(tmp_path)
    due_now(root)
    (root / "campaigns" / "kapot.md").write_text(BROKEN_DRAFT)
    with pytest.raises(ContentErrors) as failed:
        plan_flow(root=str(root))
    assert {p.path for p in failed.value.problems} == {"campaigns/kapot.md"}
    # the valid campaign was planned before the flow failed, and its due post goes out
    assert len(publish_due_flow(root=str(root))["published"]) == 2


def test_the_publish_flow_takes_the_token_from_a_prefect_secret_block(tmp_path, harness, credentials_file):
    """Signed in on a laptop (credentials file), copied into a Secret block, used by the flow."""
    from fakes.mastodon import FakeMastodon
    from flows._common import PrefectSecretStore
    from flows.credentials import upload
    from flows.plan import plan_flow
    from flows.publish_due import publish_due_flow
    from prefect.blocks.system import Secret

    from dissemination.publish.credentials import Credential, FileStore

    fake = FakeMastodon().start()
    try:
        root = make_project(tmp_path)
        channels = root / "channels.yaml"
        channels.write_text(channels.read_text().replace("base_url: https://mastodon.example", f"base_url: {fake.url}"))
        due_now(root)
        FileStore().put(Credential("mastodon", "mastodon", fake.url, fake.token, account="@roadmap"))
        assert upload(["mastodon"]) == ["dissemination-credentials-mastodon"]
        credentials_file.unlink()  # from here on only the block has it
        assert Secret.load("dissemination-credentials-mastodon").get()["access_token"] == fake.token
        plan_flow(root=str(root))
        result = publish_due_flow(root=str(root))
        assert result["failed"] == [] and len(fake.statuses) == 1
        assert PrefectSecretStore().get("mastodon").access_token == fake.token
        with pytest.raises(SystemExit, match="nothing stored for channel 'linkedin'"):
            upload(["linkedin"])
    finally:
        fake.stop()


def test_serve_runs_ticks_and_stops_cleanly_on_sigterm(tmp_path):
    root = make_project(tmp_path)
    proc = subprocess_cli(root, "serve", "--publish-every", "1", "--plan-every", "2",
                          env={"DISSEMINATION_LOG": "INFO"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (root / ".dissemination" / "ledger.db").exists():
        time.sleep(0.2)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "tick plan: 8 added" in err and "tick publish" in err
    assert "received SIGTERM, stopping" in err and err.rstrip().endswith("stopped")
    assert len(Ledger.for_root(root).items(["planned"])) == 8  # 2027 slots: nothing due yet
    # metrics and this quarter's report at start (then every 6 hours, as the Prefect deployment)
    assert "tick metrics: 0 publication(s)" in err
    reports = list((root / "reports").glob("*.html"))
    assert len(reports) == 1 and "tick report" in err and str(reports[0]) in err


def test_serve_with_ticks_exits_by_itself(tmp_path):
    root = make_project(tmp_path)
    proc = subprocess_cli(root, "serve", "--publish-every", "1", "--ticks", "2")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


@pytest.fixture
def receiver():
    from fakes.webhook import WebhookReceiver

    server = WebhookReceiver().start()
    yield server
    server.stop()


def _on_fake_mastodon(root, fake, monkeypatch):
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("base_url: https://mastodon.example", f"base_url: {fake.url}"))
    monkeypatch.setenv("TEST_MASTODON_TOKEN", fake.token)


def test_a_run_with_a_permanently_failed_item_ends_failed_and_notifies(tmp_path, harness, monkeypatch, fake_mastodon,
                                                                         receiver):
    from flows.plan import plan_flow
    from flows.publish_due import publish_due_flow

    root = make_project(tmp_path)
    _on_fake_mastodon(root, fake_mastodon, monkeypatch)
    monkeypatch.setenv("DISSEMINATION_NOTIFY", receiver.url)
    fake_mastodon.reject_with = "Validation failed: Text character limit of 500 exceeded"
    # a rehearsal: `now` on the flows, no clock games
    assert plan_flow(root=str(root), now="2027-03-01T10:00+01:00")["added"] == 8
    state = publish_due_flow(root=str(root), now="2027-03-01T10:00+01:00", return_state=True)
    assert state.is_failed()
    assert "failed permanently: " in state.message and "dissemination status" in state.message
    assert receiver.arrived.wait(10)
    (note,) = receiver.received
    assert note["title"].startswith("dissemination: publish_due 2") and note["title"].endswith("Failed")
    assert "rehearsal at 2027-03-01T10:00+01:00" in note["title"] and "failed permanently" in note["message"]
    assert fake_mastodon.token not in note["message"]
    assert len(outbox_keys(root)) == 1  # LinkedIn (no token: the outbox) still went out


def test_a_run_whose_channel_refuses_its_token_ends_failed(tmp_path, harness, monkeypatch, fake_mastodon, receiver):
    from flows.plan import plan_flow
    from flows.publish_due import publish_due_flow

    root = make_project(tmp_path)
    _on_fake_mastodon(root, fake_mastodon, monkeypatch)
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "revoked-token-0000")
    monkeypatch.setenv("DISSEMINATION_NOTIFY", receiver.url)
    plan_flow(root=str(root), now="2027-03-01T10:00+01:00")
    state = publish_due_flow(root=str(root), now="2027-03-01T10:00+01:00", return_state=True)
    assert state.is_failed() and "channel not usable: mastodon: " in state.message
    assert receiver.arrived.wait(10) and "channel not usable: mastodon" in receiver.received[0]["message"]
    assert "revoked-token-0000" not in receiver.received[0]["message"]
    assert not fake_mastodon.statuses


def test_serve_killed_shows_as_a_stale_heartbeat_in_status_and_health(tmp_path):
    """SIGKILL leaves no chance to say goodbye: within a few publish periods the heartbeat is
    stale, `status` exits 2 and `/health` answers 503, both naming it."""
    import httpx
    from mail import free_port
    from publishing import cli

    root = make_project(tmp_path)
    serve = subprocess_cli(root, "serve", "--publish-every", "1", "--plan-every", "60")
    port = free_port()
    web = subprocess_cli(root, "web", "--port", str(port), env={"DISSEMINATION_UNSUBSCRIBE_SECRET": "s" * 32})
    try:
        deadline = time.monotonic() + 60
        while not ((root / ".dissemination" / "ledger.db").exists() and Ledger.for_root(root).heartbeats()):
            assert time.monotonic() < deadline and serve.poll() is None, serve.stderr.read()
            time.sleep(0.2)
        while True:  # the web server starting
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and web.poll() is None, web.stderr.read()
                time.sleep(0.2)
        assert (health.status_code, health.text) == (200, "ok")
        assert cli(root, "status", "--no-channels").exit_code == 0

        serve.kill()
        serve.wait(timeout=10)
        deadline = time.monotonic() + 60  # a bound, not the expectation: stale after 3 periods (3 s)
        while (status := cli(root, "status", "--no-channels")).exit_code == 0:
            assert time.monotonic() < deadline, status.output
            time.sleep(0.5)
        assert status.exit_code == 2 and "NOT OK: serve heartbeat is stale" in status.output
        health = httpx.get(f"http://127.0.0.1:{port}/health")
        assert health.status_code == 503 and health.text.startswith("serve heartbeat is stale: last beat")
        assert "is `dissemination serve` running?" in health.text
    finally:
        for proc in (serve, web):
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def test_serve_stopped_cleanly_leaves_no_heartbeat_behind(tmp_path):
    root = make_project(tmp_path)
    proc = subprocess_cli(root, "serve", "--publish-every", "1", "--ticks", "2")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert Ledger.for_root(root).heartbeats() == []
    assert "tick publish: next " in err and "reeks/" in err
    # local time with its zone on every line
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]{3,5} INFO dissemination", err, re.M), err[:500]


def test_the_smtp_login_and_the_unsubscribe_secret_come_from_secret_blocks(tmp_path, harness, monkeypatch):
    import os

    from flows._common import secrets_into_environment
    from flows.credentials import upload_env

    root = make_project(tmp_path)
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        "  security: none\n", "  security: none\n  username_env: TEST_SMTP_USER\n  password_env: TEST_SMTP_PASSWORD\n"))
    names = ["TEST_SMTP_USER", "TEST_SMTP_PASSWORD", "DISSEMINATION_UNSUBSCRIBE_SECRET"]
    for name, value in zip(names, ["redactie", "pw-3b9c", "u" * 40]):
        monkeypatch.setenv(name, value)
    assert upload_env(names) == ["dissemination-env-test-smtp-user", "dissemination-env-test-smtp-password",
                                 "dissemination-env-dissemination-unsubscribe-secret"]
    for name in names:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TEST_SMTP_USER", "from-the-worker")  # the worker's own environment wins
    assert secrets_into_environment(root) == ["DISSEMINATION_UNSUBSCRIBE_SECRET", "TEST_SMTP_PASSWORD"]
    assert (os.environ["TEST_SMTP_USER"], os.environ["TEST_SMTP_PASSWORD"]) == ("from-the-worker", "pw-3b9c")
    assert os.environ["DISSEMINATION_UNSUBSCRIBE_SECRET"] == "u" * 40
    with pytest.raises(SystemExit, match="not set in this environment: NOT_SET_ANYWHERE"):
        upload_env(["NOT_SET_ANYWHERE"])
