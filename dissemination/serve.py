"""`dissemination serve`: the embedded scheduler. The same steps as the Prefect deployments, on a
loop driven by the `schedule` package, for a single machine without a Prefect server."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from pathlib import Path

import schedule

from dissemination.ledger import Ledger
from dissemination.notify import notify
from dissemination.pipeline import run_once
from dissemination.publish.loop import worker_id
from dissemination.status import next_slot

log = logging.getLogger("dissemination.serve")


def serve(root: Path, ledger: Ledger, publish_every: int = 60, plan_every: int = 300,
          ticks: int | None = None, metrics_every: int = 6 * 3600) -> None:
    """Plan every `plan_every` seconds, publish every `publish_every`, and every `metrics_every`
    collect engagement and rewrite this quarter's report (as the Prefect deployments do)."""
    stop = threading.Event()
    done_ticks = 0
    me = worker_id()
    started = dt.datetime.now(dt.timezone.utc)
    last_beat = 0.0
    told: set[str] = set()  # outbox notes and the next post: said once, and again when they change

    def beat() -> None:
        """The heartbeat `status` and `/health` read (dissemination/liveness.py)."""
        nonlocal last_beat
        ledger.beat(me, dt.datetime.now(dt.timezone.utc), publish_every, started)
        last_beat = time.monotonic()

    def on_signal(signum, _frame):
        log.info("received %s, stopping after the current step", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def plan_tick() -> None:
        run = run_once(root, ledger, steps=("plan",))
        if run.stopped:
            log.error("tick plan: %d content error(s), keeping the previous plan: %s",
                      len(run.stopped.problems), "; ".join(str(p) for p in run.stopped.problems[:3]))
            return
        assert run.plan is not None
        log.info("tick plan: %d added, %d updated, %d cancelled", run.plan.stats.added,
                 run.plan.stats.updated, run.plan.stats.cancelled)
        for campaign in run.plan.failed:
            log.error("tick plan: campaign %s has errors and keeps its previous plan", campaign)

    def publish_tick() -> None:
        nonlocal done_ticks
        run = run_once(root, ledger, steps=("publish",))
        if run.stopped:
            log.error("tick publish: channels cannot be read: %s", "; ".join(str(p) for p in run.stopped.problems[:3]))
            notify("dissemination serve: channels cannot be read", "\n".join(str(p) for p in run.stopped.problems))
        else:
            report = run.publish
            assert report is not None
            log.info("tick publish: %d published, %d to retry, %d failed, %d missed", len(report.published),
                     len(report.retried), len(report.failed), len(report.missed))
            for note in report.notes:  # e.g. a channel without secrets writes to the outbox
                if note not in told:
                    log.info("tick publish: %s", note)
            problems = run.problems + run.missed
            if problems:
                notify(f"dissemination serve: {len(problems)} problem(s) publishing",
                       "\n".join(problems) + f"\n(content root {root}; see `dissemination status`)")
            upcoming = next_slot(ledger, dt.datetime.now(dt.timezone.utc))
            following = f"next {upcoming.describe()}" if upcoming else "next: nothing planned"
            if following not in told:
                log.info("tick publish: %s", following)
            told.clear()
            told.update(report.notes + [following])
        beat()
        done_ticks += 1
        if ticks is not None and done_ticks >= ticks:
            stop.set()

    def metrics_tick() -> None:
        run = run_once(root, ledger, steps=("measure", "report"))
        if run.metrics is not None:
            log.info("tick metrics: %d publication(s), %d reading(s) added", run.metrics.publications,
                     run.metrics.added)
        if run.unmeasured is not None:
            log.error("tick metrics: channels cannot be read: %s",
                      "; ".join(str(p) for p in run.unmeasured.problems[:3]))
        assert run.report is not None
        report, files = run.report
        log.info("tick report: %s written to %s", report.period.label, files.html)

    scheduler = schedule.Scheduler()
    scheduler.every(plan_every).seconds.do(plan_tick)
    scheduler.every(metrics_every).seconds.do(metrics_tick)
    if 60 % publish_every == 0:
        # Slots fall on whole minutes: ticking on the wall clock's :00 (and :30, ...) publishes an
        # item within moments of its slot, instead of up to one interval late.
        for second in range(0, 60, publish_every):
            scheduler.every().minute.at(f":{second:02d}").do(publish_tick)
    else:
        scheduler.every(publish_every).seconds.do(publish_tick)
    log.info("serving %s: publish every %ss, plan every %ss, metrics and report every %ss", root, publish_every,
             plan_every, metrics_every)
    try:
        plan_tick()
        publish_tick()
        metrics_tick()
        while not stop.is_set():
            scheduler.run_pending()
            if time.monotonic() - last_beat >= min(publish_every, 15):
                beat()
            # Wake for the next job or within a second, so a signal is honoured promptly.
            stop.wait(min(1.0, max(scheduler.idle_seconds or 0.0, 0.05)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ledger.stop_beating(me)
        log.info("stopped")
