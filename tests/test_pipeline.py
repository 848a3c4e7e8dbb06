"""`run_once`, the one composition of a run that the CLI, `serve` and the flows share: the steps in
order, what stops the run and what fails it."""

import datetime as dt

import pytest
from publishing import make_project
from test_isolation import BROKEN_DRAFT

from dissemination.ledger import Ledger
from dissemination.pipeline import run_once

UTC = dt.timezone.utc
DUE = dt.datetime(2027, 3, 1, 9, 1, tzinfo=UTC)  # a minute after the sample campaign's first slot


def test_a_whole_run_checks_plans_publishes_measures_and_reports(tmp_path):
    root = make_project(tmp_path)
    ledger = Ledger.for_root(root)
    run = run_once(root, ledger, DUE)
    assert run.stopped is None and run.unmeasured is None
    assert run.check is not None and not run.check.problems.errors
    assert run.plan is not None and run.plan.stats.added == 8
    # without tokens both channels write to the outbox: published there, a note says so
    assert run.publish is not None and len(run.publish.published) == 2 and run.publish.notes
    assert run.metrics is not None and run.metrics.publications == 2
    assert run.report is not None and run.report[1].html.is_file()
    assert run.problems == [] and run.missed == []


def test_a_campaign_with_errors_fails_the_run_and_the_others_are_planned(tmp_path):
    root = make_project(tmp_path)
    (root / "campaigns" / "kapot.md").write_text(BROKEN_DRAFT)
    run = run_once(root, Ledger.for_root(root), DUE, steps=("plan",))
    assert run.stopped is None and run.plan is not None and run.plan.stats.added == 8
    (line,) = run.problems
    assert line.startswith("campaign not planned: kapot (") and run.publish is None


def test_an_unreadable_channels_file_stops_the_run_before_publishing(tmp_path):
    root = make_project(tmp_path)
    ledger = Ledger.for_root(root)
    assert run_once(root, ledger, DUE - dt.timedelta(days=30), steps=("plan",)).plan is not None
    (root / "channels.yaml").write_text("mastodon: [\n")
    run = run_once(root, ledger, DUE, steps=("publish", "measure", "report"))
    assert run.stopped is not None and run.stopped.problems
    assert run.publish is None and run.metrics is None and run.report is None
    assert [row["state"] for row in ledger.items()].count("planned") == 8


def test_measuring_without_a_readable_channels_file_still_writes_the_report(tmp_path):
    root = make_project(tmp_path)
    (root / "channels.yaml").write_text("mastodon: [\n")
    run = run_once(root, Ledger.for_root(root), DUE, steps=("measure", "report"))
    assert run.unmeasured is not None and run.metrics is None and run.stopped is None
    assert run.report is not None and run.report[1].html.is_file()


def test_an_unknown_step_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="unknown step.*publsh.*the steps are check, plan, publish"):
        run_once(tmp_path, Ledger(f"sqlite:///{tmp_path / 'l.db'}"), DUE, steps=("plan", "publsh"))
