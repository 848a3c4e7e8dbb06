"""The collect_metrics and report flows under a Prefect test harness: thin wrappers that read
engagement, write the report and publish it to the Prefect UI as Markdown and a table."""

import asyncio

import pytest
import yaml
from publishing import cli, make_project

from conftest import REPO
from dissemination.ledger import Ledger


def test_prefect_yaml_collects_metrics_every_six_hours_and_writes_the_report():
    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    collect = deployments["collect-metrics"]
    assert collect["entrypoint"] == "flows/collect_metrics.py:collect_metrics_flow"
    minute, hour, *_ = collect["schedules"][0]["cron"].split()
    assert hour == "*/6" and minute.isdigit()
    assert deployments["report"]["entrypoint"] == "flows/report.py:report_flow"


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


async def _artifacts(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def test_collect_and_report_flows_run_under_prefect(tmp_path, harness):
    from flows.collect_metrics import collect_metrics_flow
    from flows.report import report_flow

    root = make_project(tmp_path, tolerance="90d")
    assert cli(root, "plan", "--now", "2026-12-01T00:00Z").exit_code == 0
    assert cli(root, "publish", "--now", "2027-03-01T09:00:00+00:00").exit_code == 0
    collected = collect_metrics_flow(root=str(root))
    # published to the outbox (no tokens set): read, and stored as unavailable with the reason
    assert collected["publications"] == 2 and collected["added"] == 2 and collected["unavailable"] == 2
    result = report_flow(root=str(root), period="2027-Q1")
    assert result["publications"] == 2
    html = (root / "reports" / "2027-Q1.html").read_text()
    outbox_nl = "niet echt gepubliceerd: alleen in de outbox gezet (geen inloggegevens ingesteld)"
    assert outbox_nl in html and "outbox: nothing was published" not in html
    (markdown,) = asyncio.run(_artifacts("stuurgroep-2027-q1"))
    assert markdown.type == "markdown" and "Verspreidingsrapport 1e kwartaal 2027" in markdown.data
    assert "| publicaties | 2 |" in markdown.data
    (table,) = asyncio.run(_artifacts("stuurgroep-2027-q1-cijfers"))
    assert table.type == "table"
    rows = yaml.safe_load(table.data) if isinstance(table.data, str) else table.data
    total = next(r for r in rows if r["onderdeel"] == "totaal" and r["maat"] == "publicaties")
    assert total["waarde"] == "2"
    reach = next(r for r in rows if r["onderdeel"] == "totaal" and r["maat"] == "bereik")
    assert reach["waarde"] == "" and reach["reden"] == f"{outbox_nl} (2×)"
    assert len(Ledger.for_root(root).snapshots()) >= 2
