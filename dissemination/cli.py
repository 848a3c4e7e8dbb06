"""The `dissemination` command line."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Campaigns as code: check, plan, publish and report on programme dissemination.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)
UTC = dt.timezone.utc


class State:
    root: Path = Path(".")


@app.callback()
def main_options(
    root: Annotated[
        Path,
        typer.Option("--root", envvar="DISSEMINATION_ROOT", help="Content root (campaigns/, knowledge/, ...).",
                     file_okay=False),
    ] = Path("."),
) -> None:
    State.root = root
    # The commands print their own summaries; the log adds detail on request (DISSEMINATION_LOG=INFO).
    logging.basicConfig(level=os.environ.get("DISSEMINATION_LOG", "ERROR"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


NowOption = Annotated[
    Optional[str],
    typer.Option("--now", help="Act as if it were this moment (ISO-8601, e.g. 2027-03-02T09:31+01:00)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the items as a JSON array.")]


def _now(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(UTC)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        err.print(f"--now: '{value}' is not an ISO-8601 date-time (e.g. 2027-03-02T09:31+01:00)", markup=False)
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        err.print("--now needs a UTC offset or Z, e.g. 2027-03-02T09:31+01:00", markup=False)
        raise typer.Exit(2)
    return moment


def _print_problems(problems) -> None:  # type: ignore[no-untyped-def]
    for problem in problems.errors:
        out.print(str(problem), markup=False)
    for problem in problems.warnings:
        out.print(str(problem), markup=False, style="yellow")


def _content_errors(exc) -> None:  # type: ignore[no-untyped-def]
    for problem in exc.problems:
        out.print(str(problem), markup=False)
    out.print(f"[bold red]{len(exc.problems)} error(s)[/]: nothing was planned or published; "
              "fix them and run again (dissemination check lists them)")
    raise typer.Exit(1)


def _ledger():  # type: ignore[no-untyped-def]
    from dissemination.ledger import Ledger

    return Ledger.for_root(State.root.resolve())


@app.command()
def check() -> None:
    """Validate every content file and every reference between them; list all problems at once."""
    from dissemination.check import run_check

    result = run_check(State.root)
    _print_problems(result.problems)
    errors, warnings = len(result.problems.errors), len(result.problems.warnings)
    if errors:
        files = len({p.path for p in result.problems.errors})
        out.print(f"[bold red]{errors} error(s)[/] in {files} file(s), {warnings} warning(s)")
        raise typer.Exit(1)
    out.print(result.summary(), markup=False)
    out.print(f"[bold green]OK[/]: no errors, {warnings} warning(s)")


def _print_items(rows: list[dict], as_json: bool) -> None:  # type: ignore[type-arg]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from zoneinfo import ZoneInfo

    header = ("state", "slot (local)", "channel", "campaign / post", "audience", "id", "note")
    lines = []
    for row in rows:
        local = dt.datetime.fromisoformat(row["slot"].replace("Z", "+00:00")).astimezone(ZoneInfo(row["timezone"]))
        lines.append((("overdue " if row["overdue"] else "") + row["state"], local.strftime("%a %Y-%m-%d %H:%M %Z"),
                      row["channel"], f"{row['campaign']} / {row['post']}", row["audience"], row["id"],
                      row["reason"] or ""))
    if not out.is_terminal:
        # A pipe or a log: one whole line per item in aligned columns, nothing cut or wrapped (a
        # table at the 80 columns rich assumes there broke every cell over several lines).
        widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header) - 1)]
        for line in [header, *lines]:
            out.print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) + "  " + line[-1],
                      markup=False, crop=False, overflow="ignore")
        return
    table = Table(*header)
    for line in lines:
        table.add_row(*line, style="bold red" if line[0].startswith("overdue") else None)
    out.print(table, markup=False)


@app.command()
def plan(now: NowOption = None, as_json: JsonOption = False) -> None:
    """Expand approved campaigns into publication items in the ledger (idempotent)."""
    _plan(_now(now), as_json)


def _plan(moment: dt.datetime, as_json: bool, checked=None) -> None:  # type: ignore[no-untyped-def]
    from dissemination.pipeline import ContentErrors, plan as run_plan, status_rows

    ledger = _ledger()
    try:
        report = run_plan(State.root, ledger, moment, checked)
    except ContentErrors as exc:
        _content_errors(exc)
    if as_json:
        _print_items(status_rows(ledger, moment), True)
        return
    s = report.stats
    out.print(f"plan: {s.added} added, {s.updated} updated, {s.unchanged} unchanged, {s.cancelled} cancelled")
    for held in report.held:
        out.print(f"[yellow]held[/]: campaign '{held.campaign}': {held.reason}", markup=True)
    for path in report.calendars:
        out.print(f"event calendar: {path.relative_to(State.root.resolve())}", markup=False)


def _publish(moment: dt.datetime | None, batch: int = 50) -> None:
    from dissemination.pipeline import ContentErrors, publish_due

    ledger = _ledger()
    with _send_progress() as progress:
        try:
            report = publish_due(State.root.resolve(), ledger, moment, batch=batch, progress=progress)
        except ContentErrors as exc:
            _content_errors(exc)
    for note in report.notes:
        out.print(f"[yellow]outbox[/]: {note}")
    for warning in report.warnings:
        out.print(f"[yellow]warning[/]: {warning}")
    out.print(f"publish: {len(report.published)} published, {len(report.retried)} to retry, "
              f"{len(report.failed)} failed, {len(report.missed)} missed (past their late tolerance)"
              + (" -- see dissemination status" if report.failed or report.missed else ""))
    _print_next(ledger, moment)


def _print_next(ledger, moment: dt.datetime | None) -> None:  # type: ignore[no-untyped-def]
    """When the next post goes out: after a run that published nothing, the question a person has."""
    from dissemination.pipeline import next_slot

    upcoming = next_slot(ledger, moment or dt.datetime.now(UTC))
    out.print(f"next: {upcoming.describe()}" if upcoming else
              "next: nothing planned (approve a campaign with `dissemination approve`, then `dissemination plan`)",
              markup=False)


@app.command()
def publish(
    now: NowOption = None,
    batch: Annotated[int, typer.Option(min=1, help="Items claimed per transaction.")] = 50,
) -> None:
    """Publish every item that is due, exactly once. Safe to run in parallel."""
    _publish(_now(now) if now else None, batch)


def _send_progress():  # type: ignore[no-untyped-def]
    """A progress bar per newsletter with its projected finish (on a terminal only)."""
    import contextlib

    if not out.is_terminal:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn

    class Finish(ProgressColumn):
        def render(self, task):  # type: ignore[no-untyped-def]
            remaining = task.time_remaining
            if remaining is None or task.finished:
                return ""
            return f"done ~{(dt.datetime.now() + dt.timedelta(seconds=remaining)):%H:%M}"

    @contextlib.contextmanager
    def bars():  # type: ignore[no-untyped-def]
        tasks: dict[str, int] = {}
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      Finish(), console=out, transient=False) as progress:
            def update(label: str, done: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = progress.add_task(label, total=total, completed=done)
                progress.update(tasks[label], completed=done, total=total)

            yield update

    return bars()


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Address to listen on (put a TLS proxy in front for the public).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve newsletter unsubscribe (one-click, RFC 8058) and click links."""
    import uvicorn

    from dissemination.load import models as m
    from dissemination.load.project import load_channels
    from dissemination.publish.tokens import MissingSecret, Signer, secret_from_env
    from dissemination.web import create_app

    try:
        signer = Signer(secret_from_env())
    except MissingSecret as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    channels, _ = load_channels(State.root)
    names = {cid: c.list_name or c.description or cid for cid, c in (channels.channels if channels else {}).items()
             if isinstance(c, m.EmailChannel)}
    out.print(f"serving unsubscribe and click links on http://{host}:{port}", markup=False)
    uvicorn.run(create_app(_ledger(), signer, names), host=host, port=port, log_level="warning")


@app.command()
def newsletters(
    item: Annotated[Optional[str], typer.Option("--item", help="List the recipients of this item not (yet) sent, "
                                                "and who re-opened which for resending.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Newsletter items with their recipients by state (sent, suppressed, bounced, unknown, ...)."""
    from dissemination.ledger.deliveries import Deliveries

    ledger = _ledger()
    store = Deliveries(ledger)
    if item:
        rows = [r for r in store.rows(item) if r["state"] != "sent"]
        if as_json:
            out.print_json(data=[{k: r[k] for k in ("address", "state", "attempts", "detail")} for r in rows])
            return
        for r in rows:
            out.print(f"{r['state']:<10} {r['address']}  {r['detail'] or ''}", markup=False)
        out.print(f"{len(rows)} recipient(s) not sent", markup=False)
        for r in store.resends(item):
            out.print(f"re-opened {r['address']} by {r['requested_by']} at {r['requested_at']:%Y-%m-%d %H:%M} UTC "
                      f"(was unknown: {r['previous_detail'] or 'no detail recorded'})", markup=False)
        return
    found = []
    for row in ledger.items():
        counts = store.counts(row["id"])
        if counts:
            found.append({"id": row["id"], "campaign": row["campaign"], "post": row["post"],
                          "audience": row["audience"], "channel": row["channel"], "state": row["state"], **counts})
    if as_json:
        out.print_json(data=found)
        return
    for f in found:
        counts = ", ".join(f"{n} {k}" for k, n in f.items() if isinstance(n, int))
        out.print(f"{f['id']}  {f['channel']} {f['campaign']}/{f['post']} to {f['audience']} ({f['state']}): {counts}",
                  markup=False)
    if not found:
        out.print("no newsletter has been sent yet", markup=False)


@app.command()
def suppress(
    address: Annotated[str, typer.Argument(help="The e-mail address never to mail again.")],
    reason: Annotated[str, typer.Option(help="unsubscribed, complained or bounced.")] = "unsubscribed",
    list_id: Annotated[str, typer.Option("--list", help="The e-mail channel (list); '*' for every list.")] = "*",
) -> None:
    """Put an address on the suppression list (e.g. an unsubscribe by reply, or a complaint)."""
    from dissemination.ledger.deliveries import Deliveries

    if reason not in ("unsubscribed", "complained", "bounced"):
        err.print(f"--reason: '{reason}' is not one of unsubscribed, complained, bounced", markup=False)
        raise typer.Exit(2)
    added = Deliveries(_ledger()).suppress(address, list_id, reason, dt.datetime.now(UTC), detail="by hand")
    where = "every list" if list_id == "*" else f"list {list_id}"
    out.print(f"{address.strip().lower()}: {'suppressed' if added else 'already suppressed'} on {where} ({reason})",
              markup=False)


@app.command("resend-unknown")
def resend_unknown(
    item: Annotated[str, typer.Argument(help="The newsletter item's id (see dissemination newsletters).")],
    by: Annotated[str, typer.Option("--by", help="Who decides to resend (recorded in the ledger).")],
    address: Annotated[Optional[list[str]], typer.Option(
        "--address", help="Only this recipient (repeat for several); default: every unknown recipient.")] = None,
) -> None:
    """Send a newsletter again to its `unknown` recipients (the connection dropped after the
    message was handed over, so it may have arrived). FIRST CHECK in the mail server's log that
    the message did not arrive: whoever is re-opened here gets it with the next publish run, a
    second copy if the first one did arrive. Consent and the suppression list still apply."""
    from dissemination.ledger.deliveries import CannotResend, Deliveries

    if not by.strip():
        err.print("--by: say who decides to resend", markup=False)
        raise typer.Exit(2)
    try:
        done = Deliveries(_ledger()).resend_unknown(item, address or [], by.strip(), dt.datetime.now(UTC))
    except CannotResend as exc:
        err.print(f"resend-unknown: {exc}", markup=False)
        raise typer.Exit(2) from None
    for reopened, why in done.reopened.items():
        out.print(f"re-opened  {reopened}  (was unknown: {why or 'no detail recorded'})", markup=False)
    for kept, reason in done.suppressed.items():
        out.print(f"not sent   {kept}  on the suppression list ({reason}); it stays unknown", markup=False)
    if not done.reopened:
        out.print(f"item {item}: nothing re-opened" + ("" if done.suppressed else "; it has no unknown recipients"),
                  markup=False)
        return
    out.print(f"item {item}: {len(done.reopened)} recipient(s) re-opened for resending by {by.strip()} (recorded in "
              "the ledger); the next `dissemination publish` sends them, checking consent and the suppression "
              "list again", markup=False)


@app.command()
def status(
    now: NowOption = None,
    as_json: JsonOption = False,
    channels: Annotated[bool, typer.Option("--channels/--no-channels",
                                           help="Check each channel's credentials (contacts the platforms).")] = True,
) -> None:
    """Items by state, overdue and held first, the next post to go out, then each channel's
    health. Exits 2 when something is overdue or `serve`'s heartbeat is stale (its process died).
    --json: {"items": [...], "next": {...} or null, "liveness": [problem, ...], "channels": [...]}
    (channels left out with --no-channels)."""
    from dissemination.liveness import problems
    from dissemination.pipeline import next_slot, status_rows

    moment = _now(now)
    ledger = _ledger()
    rows = status_rows(ledger, moment)
    unwell = problems(ledger, moment)
    if as_json:
        upcoming = next_slot(ledger, moment)
        document = {"items": rows, "next": upcoming.as_json() if upcoming else None, "liveness": unwell}
        if channels:
            document["channels"] = _channel_health_json()
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        _print_items(rows, False)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        out.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "the ledger is empty")
        _print_next(ledger, moment)
        for problem in unwell:
            out.print(f"NOT OK: {problem}", markup=False, style="bold red")
        if channels:
            _print_channel_health()
    if unwell:
        raise typer.Exit(2)


def _channel_health_json() -> list[dict] | dict:  # type: ignore[type-arg]
    from dissemination.pipeline import ContentErrors, channel_health

    try:
        health = channel_health(State.root.resolve())
    except ContentErrors as exc:
        return {"errors": [str(p) for p in exc.problems]}
    return [{"channel": row.channel, "kind": row.kind, "publishes_to": row.publishes_to, "ok": row.health.ok,
             "message": row.health.message, "warning": row.health.warning, "note": row.note,
             "credential_broken": row.health.credential_broken,
             "expires_at": row.health.expires_at.isoformat().replace("+00:00", "Z") if row.health.expires_at else None}
            for row in health]


def _print_channel_health() -> None:
    from dissemination.pipeline import ContentErrors, channel_health

    try:
        health = channel_health(State.root.resolve())
    except ContentErrors as exc:
        for problem in exc.problems:
            out.print(str(problem), markup=False)
        return
    for row in health:
        if row.note:
            line, style = row.note, "yellow"
        elif not row.health.ok:
            line, style = f"{row.channel}: NOT OK: {row.health.message}", "bold red"
        else:
            line, style = f"{row.channel}: ok: {row.health.message}", None
        out.print(line, markup=False, style=style)
        if row.health.warning:
            out.print(f"{row.channel}: warning: {row.health.warning}", markup=False, style="yellow")


@app.command()
def approve(
    campaign: Annotated[Path, typer.Argument(help="The campaign file, e.g. campaigns/kennisreeks.md")],
    by: Annotated[str, typer.Option("--by", help="Who approves.")],
    now: NowOption = None,
) -> None:
    """Approve a campaign: record approver, time and a digest of the approved content."""
    from dissemination.approval import approve_text, content_digest, write_atomically
    from dissemination.check import run_check

    path = campaign if campaign.is_absolute() else (Path.cwd() / campaign)
    if not path.is_file():
        path = State.root / campaign
    if not path.is_file():
        err.print(f"{campaign}: no such campaign file", markup=False)
        raise typer.Exit(1)
    if not by.strip():
        err.print("--by: say who approves", markup=False)
        raise typer.Exit(2)
    result = run_check(State.root)
    rel = path.resolve().relative_to(State.root.resolve()).as_posix()
    own = [p for p in result.problems.errors if p.path == rel]
    if own:
        for problem in own:
            out.print(str(problem), markup=False)
        out.print(f"[bold red]not approved[/]: {rel} has {len(own)} error(s)")
        raise typer.Exit(1)
    loaded = next((c for c in result.project.campaigns.values() if c.path == rel), None)
    if loaded is None:
        err.print(f"{rel} is not a campaign under {State.root}/campaigns", markup=False)
        raise typer.Exit(1)
    text = approve_text(path.read_text(encoding="utf-8"), by.strip(), _now(now), loaded.meta.timezone)
    write_atomically(path, text)
    out.print(f"approved {rel} by {by.strip()} ({content_digest(text)})", markup=False)


@app.command()
def run(now: NowOption = None) -> None:
    """The main job, once: check, plan, publish what is due, collect metrics, write this quarter's report."""
    from dissemination.check import run_check

    result = run_check(State.root)
    _print_problems(result.problems)
    if result.problems.errors:
        out.print(f"[bold red]{len(result.problems.errors)} error(s)[/]: nothing planned or published")
        raise typer.Exit(1)
    out.print(result.summary(), markup=False)
    _plan(_now(now), False, result)
    _publish(_now(now) if now else None)
    _metrics(_now(now) if now else None)
    _report(_now(now), None, None, None, None)
    root = State.root.resolve()
    out.print(f"ledger: {_ledger().url.replace(str(root) + '/', '')}; outbox: {root / 'outbox'}", markup=False)


MaxAgeOption = Annotated[
    str, typer.Option("--max-age", help="Read publications younger than this (e.g. 30d, 12h).")]


def _metrics(moment: dt.datetime | None, max_age: str = "30d") -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dissemination.load.models import _duration
    from dissemination.measure import collect_metrics
    from dissemination.problems import ContentErrors

    try:
        age = _duration(max_age)
    except ValueError:
        err.print(f"--max-age: '{max_age}' is not a duration (e.g. 30d, 12h)", markup=False)
        raise typer.Exit(2) from None
    with Progress(TextColumn("metrics"), BarColumn(), MofNCompleteColumn(), TextColumn("publications"),
                  TimeRemainingColumn(), console=out, transient=True, disable=not out.is_terminal) as bar:
        task = bar.add_task("metrics", total=None)
        try:
            report = collect_metrics(State.root.resolve(), _ledger(), moment, age,
                                     progress=lambda done, total: bar.update(task, completed=done, total=total))
        except ContentErrors as exc:
            _content_errors(exc)
    for note in report.notes:
        out.print(f"[yellow]metrics[/]: {note}")
    out.print(f"metrics: {report.publications} publication(s) younger than {max_age} read in {report.reads} "
              f"request(s); {report.added} reading(s) added ({report.unavailable} unavailable, with the reason)",
              markup=False)


@app.command()
def metrics(
    now: NowOption = None,
    max_age: MaxAgeOption = "30d",
) -> None:
    """Read the engagement of recent publications from their channels into the ledger."""
    _metrics(_now(now) if now else None, max_age)


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
    root = State.root.resolve()
    target = out_path or (root / "reports" / f"{period.label}.html")
    report, files = make_report(root, _ledger(), period, target, moment)
    t = report.totals.current
    out.print(f"report {period.label}: {int(t['publications'].value)} publication(s); written to {files.html} "
              f"(figures: {files.figures_csv.name}, publications: {files.publications_csv.name})", markup=False)
    return files.html


@app.command()
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


@app.command()
def serve(
    publish_every: Annotated[int, typer.Option(help="Seconds between publish runs.")] = 30,
    plan_every: Annotated[int, typer.Option(help="Seconds between plan runs.")] = 300,
    ticks: Annotated[Optional[int], typer.Option(help="Stop after this many publish runs (for tests).")] = None,
    metrics_every: Annotated[int, typer.Option(help="Seconds between metrics collections, each followed by "
                                                    "this quarter's report.")] = 6 * 3600,
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


@app.command()
def preview(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the static preview site to.",
                                          file_okay=False)] = Path("preview"),
) -> None:
    """Render every planned post and newsletter into a static site (open DIR/index.html)."""
    from dissemination.check import run_check
    from dissemination.render.preview import build_preview

    result = run_check(State.root)
    if result.problems.errors:
        _print_problems(result.problems)
        errors = len(result.problems.errors)
        out.print(f"[bold red]{errors} error(s)[/]: fix them first; nothing was written")
        raise typer.Exit(1)
    for problem in result.problems.warnings:
        out.print(str(problem), markup=False, style="yellow")
    summary = build_preview(result, out_dir)
    out.print(f"wrote {summary.posts} planned posts ({summary.newsletters} newsletters) to {summary.index}",
              markup=False)


auth_app = typer.Typer(help="Sign in to a platform; the token is stored outside the repository.",
                       no_args_is_help=True)
app.add_typer(auth_app, name="auth")


def _channel_config(channel: str, kind: str):  # type: ignore[no-untyped-def]
    from dissemination.load.project import load_channels

    channels_file, problems = load_channels(State.root)
    if channels_file is None or problems.errors:
        _print_problems(problems)
        raise typer.Exit(1)
    config = channels_file.channels.get(channel)
    if config is None or config.kind != kind:
        known = [c for c, cfg in channels_file.channels.items() if cfg.kind == kind]
        err.print(f"channels.yaml has no {kind} channel '{channel}'"
                  + (f"; {kind} channels: {', '.join(known)}" if known else ""), markup=False)
        raise typer.Exit(1)
    return config


def _credential_store():  # type: ignore[no-untyped-def]
    from dissemination.publish.credentials import CredentialStoreError, default_store

    try:
        return default_store(State.root.resolve())
    except CredentialStoreError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


def _previous(store, channel):  # type: ignore[no-untyped-def]
    from dissemination.publish.credentials import CredentialStoreError

    try:
        return store.get(channel)
    except CredentialStoreError:
        return None  # unreadable: sign in afresh and overwrite


def _stored(store, credential, config) -> None:  # type: ignore[no-untyped-def]
    from dissemination.publish.credentials import CredentialStoreError

    try:
        store.put(credential)
    except (CredentialStoreError, OSError) as exc:
        err.print(f"signed in, but the token could not be stored: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"signed in as {credential.account or '?'}; token stored in {store.description}", markup=False)
    if config.token_env and os.environ.get(config.token_env):
        out.print(f"[yellow]note[/]: {config.token_env} is set and is used instead of the stored token "
                  "until it is unset")


@auth_app.command("mastodon")
def auth_mastodon(channel: Annotated[str, typer.Argument(help="The channel's id in channels.yaml.")]) -> None:
    """Register the app on the channel's instance, sign in in a browser, paste the code shown."""
    from dissemination.publish.oauth import MastodonSignIn, OAuthError

    config = _channel_config(channel, "mastodon")
    store = _credential_store()
    try:
        sign_in = MastodonSignIn.start(channel, config, _previous(store, channel))
        out.print("Open this address, sign in as the account that should post, and allow access:")
        out.print(sign_in.url, markup=False, soft_wrap=True)
        code = typer.prompt("Paste the authorization code the page shows", hide_input=True)
        credential = sign_in.finish(code, dt.datetime.now(UTC))
    except OAuthError as exc:
        err.print(f"not signed in: {exc}", markup=False)
        raise typer.Exit(1) from None
    _stored(store, credential, config)


@auth_app.command("linkedin")
def auth_linkedin(
    channel: Annotated[str, typer.Argument(help="The channel's id in channels.yaml.")],
    port: Annotated[Optional[int], typer.Option(help="Listen for the redirect on this port "
                                                "(default: the channel's redirect_port).")] = None,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open the address in a browser.")] = True,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the browser.")] = 300,
) -> None:
    """Sign in with LinkedIn (3-legged OAuth); the browser comes back to a listener on 127.0.0.1."""
    import secrets
    import threading
    import webbrowser

    from dissemination.publish.oauth import LinkedInOAuth, OAuthError, RedirectListener, new_state

    config = _channel_config(channel, "linkedin")
    store = _credential_store()
    oauth = LinkedInOAuth(channel, config)
    try:
        oauth.client()
        listener = RedirectListener(config.redirect_port if port is None else port)
        state = new_state()
        url = oauth.authorization_url(listener.redirect_uri, state)
        out.print(f"Open this address and allow access (the app must list {listener.redirect_uri} "
                  "as a redirect URL):")
        out.print(url, markup=False, soft_wrap=True)
        # Only where a browser can show up: a console browser would fight us for the terminal.
        if browser and (os.environ.get("BROWSER") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                        or sys.platform in ("darwin", "win32")):
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        redirect = listener.wait(timeout)
        if redirect.error:
            raise OAuthError(f"LinkedIn did not grant access: {redirect.error}")
        if not redirect.state or not secrets.compare_digest(redirect.state, state):
            raise OAuthError("the answer did not come from the sign-in started here (state does not match); "
                             "run the command again")
        if not redirect.code:
            raise OAuthError("LinkedIn sent no authorization code; run the command again")
        credential = oauth.who(oauth.exchange(redirect.code, listener.redirect_uri, dt.datetime.now(UTC)))
    except OAuthError as exc:
        err.print(f"not signed in: {exc}", markup=False)
        raise typer.Exit(1) from None
    _stored(store, credential, config)
    if credential.expires_at:
        renew = (f"renewed automatically with the refresh token until {credential.refresh_expires_at:%Y-%m-%d}"
                 if credential.refresh_token and credential.refresh_expires_at else
                 "renewed automatically with the refresh token" if credential.refresh_token else
                 "LinkedIn gave no refresh token: sign in again before then (status warns a week ahead)")
        out.print(f"valid until {credential.expires_at:%Y-%m-%d}; {renew}", markup=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug of ours, not a content error: say so, briefly
        if os.environ.get("DISSEMINATION_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print("this is a bug in dissemination; rerun with DISSEMINATION_DEBUG=1 for the traceback")
        sys.exit(3)
