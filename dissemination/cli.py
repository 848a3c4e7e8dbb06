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

    table = Table("state", "slot (local)", "channel", "campaign / post", "audience", "id", "note")
    for row in rows:
        local = dt.datetime.fromisoformat(row["slot"].replace("Z", "+00:00")).astimezone(ZoneInfo(row["timezone"]))
        state = ("[bold red]overdue " if row["overdue"] else "") + row["state"]
        table.add_row(state, local.strftime("%a %Y-%m-%d %H:%M %Z"), row["channel"],
                      f"{row['campaign']} / {row['post']}", row["audience"], row["id"], row["reason"] or "")
    out.print(table)


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

    with _send_progress() as progress:
        try:
            report = publish_due(State.root.resolve(), _ledger(), moment, batch=batch, progress=progress)
        except ContentErrors as exc:
            _content_errors(exc)
    for note in report.notes:
        out.print(f"[yellow]outbox[/]: {note}")
    out.print(f"publish: {len(report.published)} published, {len(report.retried)} to retry, "
              f"{len(report.failed)} failed, {len(report.missed)} missed (past their late tolerance)"
              + (" -- see dissemination status" if report.failed or report.missed else ""))


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
    item: Annotated[Optional[str], typer.Option("--item", help="List the recipients of this item not (yet) sent.")] = None,
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


@app.command()
def status(now: NowOption = None, as_json: JsonOption = False) -> None:
    """Items by state, overdue and held first. Exits 2 when something is overdue."""
    from dissemination.pipeline import status_rows

    rows = status_rows(_ledger(), _now(now))
    _print_items(rows, as_json)
    if not as_json:
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        out.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "the ledger is empty")
    if any(row["overdue"] for row in rows):
        raise typer.Exit(2)


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
    """The main job, once: check, plan, publish what is due."""
    from dissemination.check import run_check

    result = run_check(State.root)
    _print_problems(result.problems)
    if result.problems.errors:
        out.print(f"[bold red]{len(result.problems.errors)} error(s)[/]: nothing planned or published")
        raise typer.Exit(1)
    out.print(result.summary(), markup=False)
    _plan(_now(now), False, result)
    _publish(_now(now) if now else None)
    root = State.root.resolve()
    out.print(f"ledger: {_ledger().url.replace(str(root) + '/', '')}; outbox: {root / 'outbox'}", markup=False)


@app.command()
def serve(
    publish_every: Annotated[int, typer.Option(help="Seconds between publish runs.")] = 30,
    plan_every: Annotated[int, typer.Option(help="Seconds between plan runs.")] = 300,
    ticks: Annotated[Optional[int], typer.Option(help="Stop after this many publish runs (for tests).")] = None,
) -> None:
    """Run plan and publish on a loop, without a Prefect server. Stops cleanly on Ctrl-C/SIGTERM."""
    from dissemination.serve import serve as run_serve

    logging.getLogger().setLevel(os.environ.get("DISSEMINATION_LOG", "INFO"))
    run_serve(State.root.resolve(), _ledger(), publish_every, plan_every, ticks)


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
