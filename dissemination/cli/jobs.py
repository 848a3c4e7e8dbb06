"""The steps of the main job as commands: plan, publish, run, metrics, report, serve. Each runs
`dissemination.pipeline.run_once` (or the report) and prints what it did."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Collection, Iterator, Optional

import typer

from dissemination.cli.common import (JsonOption, NowOption, State, UTC, _content_errors, _failed_campaigns, _ledger,
                                      _ledger_exists, _now, _print_items, _print_next, _print_problems, err, out)

if TYPE_CHECKING:
    from dissemination.ledger import Ledger
    from dissemination.measure import CollectReport
    from dissemination.pipeline import RunResult
    from dissemination.problems import Problem
    from dissemination.report import Report, ReportFiles


def plan(
    now: NowOption = None,
    as_json: JsonOption = False,
    simulate: Annotated[bool, typer.Option("--simulate", help="Change nothing: play the plan forward and report "
                                           "collisions, quotas, contact budgets, empty audiences and newsletter "
                                           "finish times (printed, and written to --out).")] = False,
    first: Annotated[Optional[str], typer.Option("--from", help="With --simulate: first day, YYYY-MM-DD "
                                                 "(default: now).")] = None,
    last: Annotated[Optional[str], typer.Option("--to", help="With --simulate: last day, YYYY-MM-DD, included "
                                                "(default: the end of the plan).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="With --simulate: folder for simulation.txt and "
                                                    "simulation.json (default: simulation/ in the content root).",
                                                    file_okay=False)] = None,
) -> None:
    """Expand approved campaigns into publication items in the ledger (idempotent). A campaign
    with errors keeps its previous plan; the others are planned, and the command exits 1."""
    if simulate:
        _simulate(_now(now), first, last, out_dir, as_json)
        return
    if first or last or out_dir:
        err.print("--from, --to and --out go with --simulate", markup=False)
        raise typer.Exit(2)
    moment = _now(now)
    done, ledger = _steps(moment, ("plan",))
    _failed_campaigns(_print_plan(done, ledger, moment, as_json), err if as_json else out)


def _measured_rates() -> dict[str, float]:
    """Send rates from the ledger, without creating one: a dry run on a fresh checkout leaves no
    ledger behind (and has no earlier sends to measure)."""
    if not _ledger_exists():
        return {}
    from dissemination.ledger.rates import measured_send_rates

    return measured_send_rates(_ledger())


def _simulate(moment: dt.datetime, first: str | None, last: str | None, out_dir: Path | None,
              as_json: bool) -> None:
    """`plan --simulate`: the hook into plan/simulate.py (through check, which reports the same)."""
    from dissemination.check import run_check

    try:
        start = dt.datetime.combine(dt.date.fromisoformat(first), dt.time(), UTC) if first else moment
        end = dt.datetime.combine(dt.date.fromisoformat(last) + dt.timedelta(days=1), dt.time(), UTC) if last else None
    except ValueError:
        err.print("--from/--to: write a day as YYYY-MM-DD, e.g. 2027-03-01", markup=False)
        raise typer.Exit(2) from None
    if end is not None and end <= start:
        err.print("--to is before --from", markup=False)
        raise typer.Exit(2)
    result = run_check(State.root, start=start, end=end, measured_rates=_measured_rates())
    simulation = result.simulation
    assert simulation is not None
    own = set(simulation.problems)
    other = [p for p in result.problems.errors if p not in own]  # content errors outside the simulation
    for problem in other:
        out.print(str(problem), markup=False)
    written = simulation.write(out_dir or (State.root / "simulation"))
    if as_json:
        print(json.dumps(simulation.as_json(), ensure_ascii=False, indent=2))
    else:
        out.print(simulation.report().rstrip("\n"), markup=False, crop=False, overflow="ignore")
        out.print(f"written to {written} and simulation.json; nothing was planned", markup=False)
    if other or any(p.severity == "error" for p in simulation.problems):
        raise typer.Exit(1)


def _steps(moment: dt.datetime | None, steps: Collection[str], **options: Any) -> tuple[RunResult, Ledger]:
    """Run `steps` once (`dissemination.pipeline.run_once`), with progress bars on a terminal for
    the steps that take long (sending newsletters, reading metrics)."""
    import contextlib

    from dissemination.pipeline import run_once

    ledger = _ledger()
    bars = _send_progress() if {"publish", "measure"} & set(steps) else contextlib.nullcontext(None)
    with bars as progress:
        done = run_once(State.root.resolve(), ledger, moment, steps, progress=progress, **options)
    return done, ledger


def _print_plan(done: RunResult, ledger: Ledger, moment: dt.datetime, as_json: bool) -> dict[str, list[Problem]]:
    """The plan step's outcome; returns the campaigns that could not be planned, with their errors."""
    from dissemination.status import status_rows

    if done.plan is None and done.stopped:
        _content_errors(done.stopped)
    report = done.plan
    assert report is not None  # asked for, and nothing stopped the run before it
    if as_json:
        _print_items(status_rows(ledger, moment), True)
        return report.failed
    s = report.stats
    out.print(f"plan: {s.added} added, {s.updated} updated, {s.unchanged} unchanged, {s.cancelled} cancelled")
    for held in report.held:
        out.print(f"[yellow]held[/]: campaign '{held.campaign}': {held.reason}", markup=True)
    for path in report.calendars:
        out.print(f"event calendar: {path.relative_to(State.root.resolve())}", markup=False)
    return report.failed


def _print_publish(done: RunResult, ledger: Ledger, moment: dt.datetime | None) -> None:
    if done.stopped:
        _content_errors(done.stopped)
    report = done.publish
    assert report is not None
    for note in report.notes:
        out.print(f"[yellow]outbox[/]: {note}")
    for warning in report.warnings:
        out.print(f"[yellow]warning[/]: {warning}")
    out.print(f"publish: {len(report.published)} published, {len(report.retried)} to retry, "
              f"{len(report.failed)} failed, {len(report.missed)} missed (past their late tolerance)"
              + (f", {len(report.waiting)} waiting for a person" if report.waiting else "")
              + (" -- see dissemination status" if report.failed or report.missed or report.waiting else ""))
    _print_next(ledger, moment)


def publish(
    now: NowOption = None,
    batch: Annotated[int, typer.Option(min=1, help="Items claimed per transaction.")] = 50,
) -> None:
    """Publish every item that is due, exactly once. Safe to run in parallel."""
    moment = _now(now) if now else None
    done, ledger = _steps(moment, ("publish",), batch=batch)
    _print_publish(done, ledger, moment)


def _send_progress() -> AbstractContextManager[Callable[[str, int, int], None] | None]:
    """A progress bar per newsletter, and one for the metrics reads, with the projected finish (on a
    terminal only)."""
    import contextlib

    if not out.is_terminal:
        return contextlib.nullcontext(None)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                               TimeRemainingColumn)

    class Finish(ProgressColumn):
        def render(self, task: Task) -> str:
            remaining = task.time_remaining
            if remaining is None or task.finished:
                return ""
            return f"done ~{(dt.datetime.now() + dt.timedelta(seconds=remaining)):%H:%M}"

    @contextlib.contextmanager
    def bars() -> Iterator[Callable[[str, int, int], None]]:
        tasks: dict[str, TaskID] = {}
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      Finish(), console=out, transient=False) as progress:
            def update(label: str, done: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = progress.add_task(label, total=total, completed=done)
                progress.update(tasks[label], completed=done, total=total)

            yield update

    return bars()


def run(now: NowOption = None) -> None:
    """The main job, once: check, plan, publish what is due, collect metrics, write this quarter's report."""
    from dissemination.pipeline import STEPS

    moment = _now(now) if now else None
    done, ledger = _steps(moment, STEPS)
    assert done.check is not None  # the check reports problems, it never stops the run
    _print_problems(done.check.problems)
    if not done.check.problems.errors:
        out.print(done.check.summary(), markup=False)
    # errors in shared files stop the run here (exit 1); a campaign's do not
    failed = _print_plan(done, ledger, moment or _now(None), False)
    _print_publish(done, ledger, moment)
    if done.unmeasured:
        _content_errors(done.unmeasured)
    _print_metrics(done.metrics, "30d")
    assert done.report is not None
    _print_report(*done.report)
    root = State.root.resolve()
    out.print(f"ledger: {ledger.shown_url.replace(str(root) + '/', '')}; outbox: {root / 'outbox'}", markup=False)
    _failed_campaigns(failed)


MaxAgeOption = Annotated[
    str, typer.Option("--max-age", help="Read publications younger than this (e.g. 30d, 12h).")]


def _print_metrics(report: CollectReport | None, max_age: str) -> None:
    assert report is not None  # asked for, and channels.yaml could be read
    for note in report.notes:
        out.print(f"[yellow]metrics[/]: {note}")
    out.print(f"metrics: {report.publications} publication(s) younger than {max_age} read in {report.reads} "
              f"request(s); {report.added} reading(s) added ({report.unavailable} unavailable, with the reason)",
              markup=False)


def metrics(
    now: NowOption = None,
    max_age: MaxAgeOption = "30d",
) -> None:
    """Read the engagement of recent publications from their channels into the ledger."""
    from dissemination.load.models import _duration

    try:
        age = _duration(max_age)
    except ValueError:
        err.print(f"--max-age: '{max_age}' is not a duration of at most 100 years (e.g. 30d, 12h)", markup=False)
        raise typer.Exit(2) from None
    done, _ = _steps(_now(now) if now else None, ("measure",), max_age=age)
    if done.unmeasured:
        _content_errors(done.unmeasured)
    _print_metrics(done.metrics, max_age)


def _report(moment: dt.datetime, period_spec: str | None, first: str | None, last: str | None,
            out_path: Path | None) -> Path:
    from dissemination.periods import PeriodError, current_quarter, days_period, parse_period
    from dissemination.report import make_report

    try:
        if first or last:
            if period_spec or not (first and last):
                raise PeriodError("give --period, or both --from and --to")
            period = days_period(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
        else:
            period = parse_period(period_spec) if period_spec else current_quarter(moment)
    except ValueError as exc:  # PeriodError, or a date that is not YYYY-MM-DD
        err.print(f"report: {exc}", markup=False)
        raise typer.Exit(2) from None
    report, files = make_report(State.root.resolve(), _ledger(), period, out_path, moment)
    _print_report(report, files)
    return files.html


def _print_report(report: Report, files: ReportFiles) -> None:
    t = report.totals.current
    out.print(f"report {report.period.label}: {int(t['publications'].value)} publication(s); written to {files.html} "
              f"(figures: {files.figures_csv.name}, publications: {files.publications_csv.name}"
              + (f", PDF: {files.pdf.name})" if files.pdf else ")"), markup=False)
    if files.pdf_note:
        out.print(f"[yellow]report[/]: {files.pdf_note}")


def report(
    period: Annotated[Optional[str], typer.Option("--period", help="2026-Q4, 2026-11 or 2026 (default: this quarter).")] = None,
    first: Annotated[Optional[str], typer.Option("--from", help="First day, YYYY-MM-DD (with --to).")] = None,
    last: Annotated[Optional[str], typer.Option("--to", help="Last day, YYYY-MM-DD, included.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="HTML file to write (default reports/PERIOD.html); "
                                                     "the CSVs are written beside it.", dir_okay=False)] = None,
    now: NowOption = None,
) -> None:
    """Write the stuurgroep report (Dutch HTML, with the figures as CSV beside it)."""
    _report(_now(now), period, first, last, out_path)


def serve(
    publish_every: Annotated[int, typer.Option(help="Seconds between publish runs.", min=1)] = 30,
    plan_every: Annotated[int, typer.Option(help="Seconds between plan runs.", min=1)] = 300,
    ticks: Annotated[Optional[int], typer.Option(help="Stop after this many publish runs (for tests).", min=1)] = None,
    metrics_every: Annotated[int, typer.Option(help="Seconds between metrics collections, each followed by "
                                                    "this quarter's report.", min=1)] = 6 * 3600,
) -> None:
    """Run plan, publish, metrics and the report on a loop, without a Prefect server. Stops
    cleanly on Ctrl-C/SIGTERM."""
    from dissemination.serve import serve as run_serve

    logging.getLogger().setLevel(os.environ.get("DISSEMINATION_LOG", "INFO"))
    # A long-running log is read against the clock on the wall: local time with its zone.
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               datefmt="%Y-%m-%d %H:%M:%S %Z"))
    run_serve(State.root.resolve(), _ledger(), publish_every, plan_every, ticks, metrics_every)
