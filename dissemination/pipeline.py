"""One run of the main job: check, plan, publish what is due, measure, report.

`run_once` is the only place the steps are put together. `dissemination run` runs them all; the
single-step commands, each tick of `serve` and each Prefect flow run the steps they are about
(`steps=`), and read the same `RunResult`: what stopped the run, and what makes it failed. The
steps themselves live in their packages (`plan.apply`, `publish.loop`, `measure`, `report`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection

from dissemination.check import CheckResult, ledger_facts, run_check
from dissemination.ledger import Ledger
from dissemination.measure import DEFAULT_MAX_AGE
from dissemination.plan.apply import PlanReport, plan
from dissemination.problems import ContentErrors
from dissemination.publish.credentials import CredentialStore
from dissemination.publish.loop import PublishReport, publish_due

if TYPE_CHECKING:
    from dissemination.measure import CollectReport
    from dissemination.report import Report, ReportFiles

UTC = dt.timezone.utc
STEPS = ("check", "plan", "publish", "measure", "report")


@dataclass
class RunResult:
    """What each step of a run reported (None: the step was not asked for, or did not run)."""
    check: CheckResult | None = None
    plan: PlanReport | None = None
    publish: PublishReport | None = None
    metrics: CollectReport | None = None
    report: tuple[Report, ReportFiles] | None = None
    # Errors in a file every step needs (channels, programme, maps, templates): the steps after
    # the one that found them did not run.
    stopped: ContentErrors | None = None
    # channels.yaml could not be read when measuring: nothing measured, the report still written.
    unmeasured: ContentErrors | None = None

    @property
    def problems(self) -> list[str]:
        """Why the run failed, one line each: campaigns not planned, items failed for good or
        waiting for a person, channels that could not be used. Empty: the run went well (items
        missed past their tolerance are told, see `missed`, but do not fail it)."""
        lines = [f"campaign not planned: {campaign} ({len(errors)} error(s))"
                 for campaign, errors in sorted(self.plan.failed.items())] if self.plan else []
        if self.publish:
            lines += [f"failed permanently: {item}" for item in self.publish.failed]
            lines += [f"channel not usable: {reason}" for reason in self.publish.unusable]
            # outcome unknown and read-back could not tell: a person must look (`dissemination resolve`)
            lines += [f"waiting for a person: {item}" for item in self.publish.waiting]
        return lines

    @property
    def missed(self) -> list[str]:
        return [f"missed (past its late tolerance, not posted): {item}"
                for item in (self.publish.missed if self.publish else [])]


def run_once(root: Path, ledger: Ledger, now: dt.datetime | None = None, steps: Collection[str] = STEPS, *,
             credentials: CredentialStore | None = None, batch: int = 50, worker: str | None = None,
             max_age: dt.timedelta = DEFAULT_MAX_AGE,
             progress: Callable[[str, int, int], None] | None = None) -> RunResult:
    """Run `steps` (of STEPS) once, in that order. `now`: act as if it were that moment (a
    rehearsal; publishing and measuring then keep that clock); `progress(label, done, total)`
    hears about long sends and the metrics reads."""
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown step(s) {', '.join(sorted(unknown))}; the steps are {', '.join(STEPS)}")
    root = root.resolve()
    moment = now or dt.datetime.now(UTC)
    run = RunResult()
    try:
        if "check" in steps:
            run.check = run_check(root, ledger_facts(ledger))
        if "plan" in steps:
            # A campaign with errors keeps its previous plan and the run goes on (`problems`).
            run.plan = plan(root, ledger, moment, run.check)
        if "publish" in steps:
            run.publish = publish_due(root, ledger, now, worker=worker, batch=batch, credentials=credentials,
                                      progress=progress)
    except ContentErrors as exc:
        run.stopped = exc
        return run
    if "measure" in steps:
        run.unmeasured = _measure(run, root, ledger, now, max_age, credentials, progress)
    if "report" in steps:
        from dissemination.periods import current_quarter
        from dissemination.report import make_report

        run.report = make_report(root, ledger, current_quarter(moment), now=moment)
    return run


def _measure(run: RunResult, root: Path, ledger: Ledger, now: dt.datetime | None, max_age: dt.timedelta,
             credentials: CredentialStore | None,
             progress: Callable[[str, int, int], None] | None) -> ContentErrors | None:
    from dissemination.measure import collect_metrics

    def read(done: int, total: int) -> None:
        if progress is not None:
            progress("metrics", done, total)

    try:
        run.metrics = collect_metrics(root, ledger, now, max_age, credentials=credentials, progress=read)
    except ContentErrors as exc:  # the report reads the ledger, not the channels: it is still written
        return exc
    return None
