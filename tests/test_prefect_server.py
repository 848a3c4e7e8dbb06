"""End to end on a real Prefect server, as an operator runs it: the server's own scheduler creates
the `publish_due` run (nobody triggers it), a process worker runs it from this checkout with its own
DISSEMINATION_HOME (the deployer's is not baked in), and the due post lands in the outbox.

This is the test that notices when the locked dependencies break Prefect's scheduler: with
SQLAlchemy 2.1.9 (the lock before issue 12) Prefect 3.8.8's server logs "Can't evaluate bulk DML
statement" on every cycle and no run is ever created, so it fails here."""

from __future__ import annotations

import pytest
from prefect_server import PrefectStack
from publishing import cli, due_now, make_project, outbox_keys, pg_available

from conftest import REPO

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not pg_available(), reason="PostgreSQL at 127.0.0.1:5432 (scripts/install-test-tools) is not running"))]


@pytest.fixture(scope="module", params=DATABASES)
def stack(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"prefect-{request.param}")
    content = make_project(tmp)  # the worker's content root: somewhere else than the checkout
    due_now(content)
    assert cli(content, "plan").exit_code == 0
    server = PrefectStack(tmp, request.param)
    try:
        server.start_server()
        # Deployed with a DISSEMINATION_HOME that exists nowhere: had it been baked into the
        # deployment, the worker's run would look for the content there and fail.
        server.deploy({"publish-due": "* * * * *", "plan": None, "collect-metrics": None, "report": None},
                      env={"DISSEMINATION_HOME": str(tmp / "the-deployers-checkout")})
        server.start_worker({"DISSEMINATION_HOME": str(content),
                             "DISSEMINATION_CREDENTIALS": str(tmp / "credentials.json")})
        server.content = content
        yield server
    finally:
        server.close()


def test_the_scheduler_creates_the_publish_run_and_the_worker_publishes_with_its_own_home(stack):
    deployment = stack.deployment("publish_due", "publish-due")
    assert deployment["parameters"] == {"root": None}
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["* * * * *"]

    runs = stack.wait_for_runs(deployment["id"], lambda runs: any(r["state_type"] == "COMPLETED" for r in runs),
                               timeout=240, what="a scheduled publish_due run completed")
    completed = [r for r in runs if r["state_type"] == "COMPLETED"]
    assert all(r["auto_scheduled"] for r in runs)  # created by the server's scheduler, not by hand
    assert completed[0]["name"].startswith("publish_due 20") and completed[0]["name"].endswith(("CET", "CEST"))
    # the first daily post, on both social channels (no tokens: the outbox), of the worker's content
    assert len(outbox_keys(stack.content)) == 2


def test_a_run_that_comes_due_while_one_works_is_cancelled_not_queued(stack):
    """One publish_due at a time (prefect.yaml: limit 1, collision_strategy CANCEL_NEW): two runs
    asked for at once never both run, and nothing waits in AwaitingConcurrencySlot."""
    deployment = stack.deployment("publish_due", "publish-due")
    assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    asked = [stack.post(f"/deployments/{deployment['id']}/create_flow_run", {"name": f"by-hand-{i}"})["id"]
             for i in range(2)]

    def settled(runs):
        mine = [r for r in runs if r["id"] in asked]
        return len(mine) == 2 and all(r["state_type"] in ("COMPLETED", "CANCELLED", "FAILED", "CRASHED") for r in mine)

    runs = [r for r in stack.wait_for_runs(deployment["id"], settled, timeout=180, what="both runs settled")
            if r["id"] in asked]
    assert sorted(r["state_type"] for r in runs) == ["CANCELLED", "COMPLETED"], [(r["state_name"]) for r in runs]
    assert not any(r["state_name"] == "AwaitingConcurrencySlot" for r in stack.flow_runs(deployment["id"]))


def test_deploying_creates_the_automations_that_notify(stack):
    notify = stack.deployment("notify", "notify")
    created = {a["name"]: a for a in stack.post("/automations/filter", {})}
    crashed, late = created["dissemination: a flow run crashed"], created["dissemination: publish_due has not completed"]
    assert crashed["trigger"]["expect"] == ["prefect.flow-run.Crashed"]
    assert late["trigger"]["posture"] == "Proactive" and late["trigger"]["within"] == 15 * 60
    assert late["trigger"]["match_related"]["prefect.resource.name"] == "publish-due"
    for automation in (crashed, late):
        (action,) = automation["actions"]
        assert automation["enabled"] and action["type"] == "run-deployment"
        assert action["deployment_id"] == notify["id"] and action["parameters"]["title"].startswith("dissemination: ")
    # the crashed run's name reaches the message (templated when the automation fires, not at deploy)
    assert "{{ event.resource.name }}" in crashed["actions"][0]["parameters"]["title"]
