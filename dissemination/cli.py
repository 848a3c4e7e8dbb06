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

from dissemination.files import WriteRefused, write_atomically
from dissemination.redact import RedactingStream, redact

app = typer.Typer(
    help="Campaigns as code: check, plan, publish and report on programme dissemination.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Everything printed passes the one redaction of the process's secrets (see dissemination.redact).
out = Console(file=RedactingStream("stdout"), soft_wrap=True, highlight=False)  # type: ignore[arg-type]
err = Console(file=RedactingStream("stderr"), soft_wrap=True, highlight=False)  # type: ignore[arg-type]
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
    logging.basicConfig(level=os.environ.get("DISSEMINATION_LOG", "ERROR"), stream=RedactingStream("stderr"),
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
    from dissemination.problems import SharedContentErrors

    for problem in exc.problems:
        out.print(str(problem), markup=False)
    where = (" in files every campaign depends on (" + ", ".join(sorted({p.path for p in exc.problems})) + ")"
             if isinstance(exc, SharedContentErrors) else "")
    out.print(f"[bold red]{len(exc.problems)} error(s)[/]{where}: nothing was planned or published; "
              "fix them and run again (dissemination check lists them)")
    raise typer.Exit(1)


def _failed_campaigns(failed: dict, console=None) -> None:  # type: ignore[no-untyped-def,type-arg]
    """After everything else has gone out: which campaigns were not planned, and why; exit 1."""
    if not failed:
        return
    console = console or out
    for campaign, problems in sorted(failed.items()):
        if "/" in campaign:  # a knowledge item no campaign features: nothing was held back for it
            console.print(f"[bold red]errors[/] in {campaign} ({len(problems)}; no campaign features it):")
        else:
            console.print(f"[bold red]not planned[/]: campaign '{campaign}' ({len(problems)} error(s); its "
                          "previous plan stands):")
        for problem in problems:
            console.print(f"  {problem}", markup=False)
    noun = "campaign(s) or file(s)" if any("/" in key for key in failed) else "campaign(s)"
    console.print(f"[bold red]{len(failed)} {noun} with errors[/]: {', '.join(sorted(failed))}; "
                  "the other campaigns were planned and published")
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
    # Which limits the posts were checked against: with the summary, or beside a length error.
    if not errors or any("over the limit of" in p.message or p.message.startswith("image_alt is")
                         for p in result.problems.errors):
        for line in result.limits_used():
            out.print(f"limits {line}", markup=False)
    if errors:
        files = len({p.path for p in result.problems.errors})
        out.print(f"[bold red]{errors} error(s)[/] in {files} file(s), {warnings} warning(s)")
        raise typer.Exit(1)
    out.print(result.summary(), markup=False)
    out.print(f"[bold green]OK[/]: no errors, {warnings} warning(s)")


def _print_items(rows: list[dict], as_json: bool) -> None:  # type: ignore[type-arg]
    if as_json:
        print(redact(json.dumps(rows, ensure_ascii=False, indent=2)))
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


def _ledger_exists() -> bool:
    """Whether there is a ledger to read, so that a command which only reads it does not create
    one (ledger.store.DB_URL_ENV is not imported for this: SQLAlchemy and Alembic take 0.3 s)."""
    return bool(os.environ.get("DISSEMINATION_DB_URL")) or (State.root / ".dissemination" / "ledger.db").exists()


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
    target = out_dir or (State.root / "simulation")
    target.mkdir(parents=True, exist_ok=True)
    text = simulation.report()
    document = simulation.as_json()
    write_atomically(target / "simulation.txt", text)
    write_atomically(target / "simulation.json", json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    if as_json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        out.print(text.rstrip("\n"), markup=False, crop=False, overflow="ignore")
        out.print(f"written to {target / 'simulation.txt'} and simulation.json; nothing was planned", markup=False)
    if other or any(p.severity == "error" for p in simulation.problems):
        raise typer.Exit(1)


def _steps(moment: dt.datetime | None, steps: tuple[str, ...], **options):  # type: ignore[no-untyped-def]
    """Run `steps` once (`dissemination.pipeline.run_once`), with progress bars on a terminal."""
    from dissemination.pipeline import run_once

    ledger = _ledger()
    with _send_progress() as progress:
        done = run_once(State.root.resolve(), ledger, moment, steps, progress=progress, **options)
    return done, ledger


def _print_plan(done, ledger, moment: dt.datetime, as_json: bool) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The plan step's outcome; returns the campaigns that could not be planned, with their errors."""
    from dissemination.status import status_rows

    if done.plan is None and done.stopped:
        _content_errors(done.stopped)
    report = done.plan
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


def _print_publish(done, ledger, moment: dt.datetime | None) -> None:  # type: ignore[no-untyped-def]
    if done.stopped:
        _content_errors(done.stopped)
    report = done.publish
    for note in report.notes:
        out.print(f"[yellow]outbox[/]: {note}")
    for warning in report.warnings:
        out.print(f"[yellow]warning[/]: {warning}")
    out.print(f"publish: {len(report.published)} published, {len(report.retried)} to retry, "
              f"{len(report.failed)} failed, {len(report.missed)} missed (past their late tolerance)"
              + (f", {len(report.waiting)} waiting for a person" if report.waiting else "")
              + (" -- see dissemination status" if report.failed or report.missed or report.waiting else ""))
    _print_next(ledger, moment)


def _print_next(ledger, moment: dt.datetime | None) -> None:  # type: ignore[no-untyped-def]
    """When the next post goes out: after a run that published nothing, the question a person has."""
    from dissemination.status import next_slot

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
    moment = _now(now) if now else None
    done, ledger = _steps(moment, ("publish",), batch=batch)
    _print_publish(done, ledger, moment)


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
    calendar: Annotated[bool, typer.Option("--calendar/--no-calendar", help="Also serve the calendar at /kalender/ "
                                           "(read-only, for the team: only on localhost or behind the proxy's "
                                           "authentication).")] = False,
) -> None:
    """Serve newsletter unsubscribe (one-click, RFC 8058), click links, web versions of editions,
    the sign-up forms with double opt-in and preference pages, and with --calendar the team's
    calendar."""
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
    ledger = _ledger()
    page = _live_calendar(ledger) if calendar else None
    signup = _signup_settings(channels)
    out.print(f"serving unsubscribe and click links on http://{host}:{port}"
              + (f"; sign-up forms at /aanmelden/<list> for {', '.join(sorted(signup.lists))}" if signup else "")
              + (f"; the calendar on http://{host}:{port}/kalender/" if calendar else ""), markup=False)
    uvicorn.run(create_app(ledger, signer, names, signup, calendar=page), host=host, port=port, log_level="warning")


def _live_calendar(ledger):  # type: ignore[no-untyped-def]
    """The calendar as `web` serves it: content and ledger read afresh for every request."""
    from dissemination.check import run_check
    from dissemination.render.calendar import render_calendar

    root = State.root.resolve()

    def page(view: str) -> str:
        return render_calendar(run_check(root), ledger.items(), dt.datetime.now(UTC), view,
                               {"month": "/kalender/", "week": "/kalender/week"})[0]

    return page


def _signup_settings(channels):  # type: ignore[no-untyped-def]
    """Sign-up forms for every audience, confirmations sent through the first e-mail channel with
    a web_url (into outbox/<channel>/bevestigingen/ while its SMTP secrets are not set)."""
    from dissemination.load import models as m
    from dissemination.publish.channels.email import send_single, write_single
    from dissemination.signup import SignupSettings

    found = next(((cid, c) for cid, c in (channels.channels if channels else {}).items()
                  if isinstance(c, m.EmailChannel) and c.web_url), None)
    if found is None:
        return None
    channel_id, config = found
    lists = {a.id: a.name for _, parsed in _stakeholder_maps() for a in parsed.audiences}
    root = State.root.resolve()
    missing = [e for e in (config.username_env, config.password_env) if e and not os.environ.get(e)]
    folder = root / "outbox" / channel_id / "bevestigingen"
    send = (lambda message: write_single(folder, message)) if missing else \
        (lambda message: send_single(config, root, message))
    return SignupSettings(lists, str(config.web_url), config.from_address, config.from_name, send)


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


@app.command()
def unsuppress(
    address: Annotated[str, typer.Argument(help="The e-mail address to mail again.")],
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded in the ledger).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, e.g. 'bounced by a relay misconfiguration, see ticket 12'.")],
    list_id: Annotated[Optional[str], typer.Option("--list", help="Only this list (e-mail channel); default: every list.")] = None,
) -> None:
    """Take an address off the suppression list (e.g. wrongly suppressed as a bounce), with an
    audit row of who, when, why and what it was. It is mailed again only where it has consent."""
    from dissemination.ledger.deliveries import Deliveries

    missing = [name for name, value in (("--by", by), ("--reason", reason)) if not value.strip()]
    if missing:
        err.print(f"{' and '.join(missing)}: say who lifts the suppression and why (both are recorded)", markup=False)
        raise typer.Exit(2)
    lifted = Deliveries(_ledger()).unsuppress(address, by.strip(), reason.strip(), dt.datetime.now(UTC), list_id)
    where = f"list {list_id}" if list_id else "any list"
    if not lifted:
        err.print(f"{address.strip().lower()} is not suppressed on {where}; nothing was changed "
                  "(`dissemination newsletters --item ID` shows why a recipient was not sent)", markup=False)
        raise typer.Exit(1)
    for row in lifted:
        scope = "every list" if row["scope"] == "*" else f"list {row['scope']}"
        out.print(f"{row['address']}: no longer suppressed on {scope} (was {row['reason']}"
                  + (f": {row['detail']}" if row["detail"] else "") + ")", markup=False)


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


def _window_edge(value: str | None, moment: dt.datetime, sign: int, name: str) -> dt.datetime | None:
    from dissemination.load.models import _duration

    if not value:
        return None
    try:
        return moment + sign * _duration(value)
    except ValueError:
        pass
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed
    except ValueError:
        pass
    err.print(f"{name}: '{value}' is not a day (2027-03-01), a moment with offset (2027-03-01T09:00+01:00) or a "
              "duration (7d, 12h)", markup=False)
    raise typer.Exit(2)


MISSED_RECENTLY = dt.timedelta(days=1)


@app.command()
def resolve(
    item: Annotated[str, typer.Argument(help="The waiting item's id (see dissemination status).")],
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded in the ledger).")],
    published: Annotated[Optional[str], typer.Option(
        "--published", help="It is online at this URL: record it as published.")] = None,
    remote_id: Annotated[Optional[str], typer.Option(
        "--id", help="With --published: the platform's id of the post (default: the URL).")] = None,
    absent: Annotated[bool, typer.Option("--absent", help="It is not online: send it with the next publish run.")] = False,
) -> None:
    """Settle an item `waiting` for a person: its outcome was unknown and the channel could not
    find out whether it was published. FIRST LOOK at the account: --published URL records the post
    found there; --absent sends it again with the next publish run (a second copy if it was
    there after all)."""
    if published is None and not absent or published is not None and absent:
        err.print("resolve: give either --published URL or --absent", markup=False)
        raise typer.Exit(2)
    if not by.strip():
        err.print("--by: say who decides", markup=False)
        raise typer.Exit(2)
    problem = _ledger().resolve(item, dt.datetime.now(UTC), by.strip(), published_url=published, remote_id=remote_id)
    if problem:
        err.print(f"resolve: {problem}", markup=False)
        raise typer.Exit(2)
    out.print(f"item {item}: " + (f"recorded as published at {published}" if published else
                                  "planned again; the next `dissemination publish` sends it")
              + f" (decided by {by.strip()}, recorded in the ledger)", markup=False)


@app.command()
def status(
    now: NowOption = None,
    as_json: JsonOption = False,
    channels: Annotated[bool, typer.Option("--channels/--no-channels",
                                           help="Check each channel's credentials (contacts the platforms).")] = True,
    since: Annotated[Optional[str], typer.Option("--since", help="Only items with a slot from then on: a day "
                                                 "(YYYY-MM-DD), a moment with offset, or a duration before now "
                                                 "(7d).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Only items with a slot before then: a day, a "
                                                 "moment with offset, or a duration after now (7d).")] = None,
) -> None:
    """Items by state, overdue and held first, a summary line, the next post to go out, then each
    channel's health. Exits 2 when something is overdue, waiting for a person or was missed in the
    last day (whatever --since/--until show), or when `serve`'s heartbeat is stale (its process
    died). --json: {"items": [...], "summary": {...}, "next": {...} or null, "liveness": [problem,
    ...], "channels": [...]} (channels left out with --no-channels)."""
    from dissemination.liveness import problems
    from dissemination.status import next_slot, status_rows

    moment = _now(now)
    first = _window_edge(since, moment, -1, "--since")
    last = _window_edge(until, moment, 1, "--until")
    ledger = _ledger()
    every = status_rows(ledger, moment)
    # Missed in the last day: marked missed (updated) within it, so an e-mail's day of tolerance
    # does not hide it. Like overdue items, they make status exit 2 even outside the window.
    marked = {row["id"]: row["updated_at"] for row in ledger.items(["missed"])}
    recent = {i for i, at in marked.items() if at.replace(tzinfo=UTC) >= moment - MISSED_RECENTLY}

    def slot(row: dict) -> dt.datetime:  # type: ignore[type-arg]
        return dt.datetime.fromisoformat(row["slot"].replace("Z", "+00:00"))

    rows = [r for r in every if (first is None or slot(r) >= first) and (last is None or slot(r) < last)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    overdue = sum(r["overdue"] for r in every)
    summary = {"states": counts, "overdue": overdue, "missed_last_day": len(recent), "shown": len(rows),
               "total": len(every)}
    unwell = problems(ledger, moment)
    if as_json:
        upcoming = next_slot(ledger, moment)
        document = {"items": rows, "summary": summary, "next": upcoming.as_json() if upcoming else None,
                    "liveness": unwell}
        if channels:
            document["channels"] = _channel_health_json(ledger)
        print(redact(json.dumps(document, ensure_ascii=False, indent=2)))
    else:
        _print_items(rows, False)
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or (
            "no items in this window" if every else "the ledger is empty")
        extra = [f"{overdue} overdue"] if overdue else []
        extra += [f"{len(recent)} missed in the last day"] if recent else []
        if len(rows) != len(every):
            extra.append(f"{len(rows)} of {len(every)} items shown")
        out.print(f"summary: {text}" + (f" ({'; '.join(extra)})" if extra else ""), markup=False,
                  style="bold red" if overdue or recent else None)
        _print_next(ledger, moment)
        for problem in unwell:
            out.print(f"NOT OK: {problem}", markup=False, style="bold red")
        if channels:
            _print_channel_health(ledger)
    if unwell or overdue or recent or any(row["state"] == "waiting" for row in every):
        raise typer.Exit(2)


def _channel_health_json(ledger=None) -> list[dict] | dict:  # type: ignore[no-untyped-def,type-arg]
    from dissemination.problems import ContentErrors
    from dissemination.publish.loop import channel_health

    try:
        health = channel_health(State.root.resolve(), ledger=ledger)
    except ContentErrors as exc:
        return {"errors": [str(p) for p in exc.problems]}
    return [{"channel": row.channel, "kind": row.kind, "publishes_to": row.publishes_to, "ok": row.health.ok,
             "message": row.health.message, "warning": row.health.warning, "note": row.note,
             "credential_broken": row.health.credential_broken,
             "expires_at": row.health.expires_at.isoformat().replace("+00:00", "Z") if row.health.expires_at else None}
            for row in health]


def _print_channel_health(ledger=None) -> None:  # type: ignore[no-untyped-def]
    from dissemination.problems import ContentErrors
    from dissemination.publish.loop import channel_health

    try:
        health = channel_health(State.root.resolve(), ledger=ledger)
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
    from dissemination.approval import approve_text, content_digest
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
    from dissemination.approval import SourceDigests
    from dissemination.plan.planner import campaign_sources
    from dissemination.render import Renderer

    # The approval covers what the posts print besides this file: knowledge items, templates, images.
    sources = campaign_sources(result.project, loaded, result.slots.get(loaded.id, []), Renderer(result.project),
                               SourceDigests(result.project.root))
    text = approve_text(path.read_text(encoding="utf-8"), by.strip(), _now(now), loaded.meta.timezone, sources)
    write_atomically(path, text)
    out.print(f"approved {rel} by {by.strip()} ({content_digest(text)}; with {len(sources)} knowledge item(s), "
              "template(s) and image(s) its posts use)", markup=False)


@app.command()
def run(now: NowOption = None) -> None:
    """The main job, once: check, plan, publish what is due, collect metrics, write this quarter's report."""
    from dissemination.pipeline import STEPS

    moment = _now(now) if now else None
    done, ledger = _steps(moment, STEPS)
    _print_problems(done.check.problems)
    if not done.check.problems.errors:
        out.print(done.check.summary(), markup=False)
    # errors in shared files stop the run here (exit 1); a campaign's do not
    failed = _print_plan(done, ledger, moment or _now(None), False)
    _print_publish(done, ledger, moment)
    if done.unmeasured:
        _content_errors(done.unmeasured)
    _print_metrics(done.metrics, "30d")
    _print_report(*done.report)
    root = State.root.resolve()
    out.print(f"ledger: {ledger.shown_url.replace(str(root) + '/', '')}; outbox: {root / 'outbox'}", markup=False)
    _failed_campaigns(failed)


MaxAgeOption = Annotated[
    str, typer.Option("--max-age", help="Read publications younger than this (e.g. 30d, 12h).")]


def _print_metrics(report, max_age: str) -> None:  # type: ignore[no-untyped-def]
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


def _print_report(report, files) -> None:  # type: ignore[no-untyped-def]
    t = report.totals.current
    out.print(f"report {report.period.label}: {int(t['publications'].value)} publication(s); written to {files.html} "
              f"(figures: {files.figures_csv.name}, publications: {files.publications_csv.name}"
              + (f", PDF: {files.pdf.name})" if files.pdf else ")"), markup=False)
    if files.pdf_note:
        out.print(f"[yellow]report[/]: {files.pdf_note}")


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
    _write_calendar(result, out_dir / "calendar", _now(None))


def _write_calendar(result, out_dir: Path, moment: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    from dissemination.render.calendar import write_calendar

    # No ledger yet (content being written, nothing planned): the plan alone, and none created.
    written = write_calendar(result, _ledger().items() if _ledger_exists() else [], out_dir, moment)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(written.counts.items()))
    out.print(f"calendar: {written.entries} entries ({counts or 'none'}) in {written.month} (month) and "
              f"{written.week.name} (week)", markup=False)


@app.command()
def calendar(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the calendar to (index.html: month, "
                                          "week.html: week).", file_okay=False)] = Path("calendar"),
    now: NowOption = None,
) -> None:
    """Write the calendar: the ledger's published, missed, failed and held items with the plan
    ahead (drafts marked) and the simulation's problems, by month and week."""
    from dissemination.check import run_check

    result = run_check(State.root)
    _print_problems(result.problems)
    _write_calendar(result, out_dir, _now(now))


@app.command()
def kits(
    period: Annotated[Optional[str], typer.Option("--period", help="2027-Q1, 2027-01 or 2027 (default: the next "
                                                  "quarter).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for the kit pages (default kits/PERIOD).",
                                                    file_okay=False)] = None,
    partner: Annotated[Optional[str], typer.Option("--partner", help="Only this partner's kit (its stakeholder id).")] = None,
    send: Annotated[bool, typer.Option("--send", help="Also queue each kit for its partner's contact by e-mail "
                                       "(once per partner and period; `publish` sends it).")] = False,
    now: NowOption = None,
) -> None:
    """Write each partner's content kit for a period: texts per channel in the tone of its
    audiences, a newsletter block, images with alt text, and the partner's own links."""
    from dissemination.partners.kits import KitsUnavailable, make_kits, next_quarter
    from dissemination.periods import PeriodError, parse_period
    from dissemination.problems import ContentErrors
    from dissemination.publish.tokens import MissingSecret, Signer, secret_from_env

    moment = _now(now)
    try:
        chosen = parse_period(period) if period else next_quarter(moment)
    except PeriodError as exc:
        err.print(f"kits: {exc}", markup=False)
        raise typer.Exit(2) from None
    try:
        signer = Signer(secret_from_env())
    except MissingSecret as exc:
        err.print(f"kits: {exc}", markup=False)
        raise typer.Exit(2) from None
    ledger = _ledger()
    try:
        built, queued = make_kits(State.root.resolve(), ledger, chosen, out_dir, moment, signer, partner, send)
    except ContentErrors as exc:
        _content_errors(exc)
    except KitsUnavailable as exc:
        err.print(f"kits: {exc}", markup=False)
        raise typer.Exit(1) from None
    if partner is not None and not built:
        err.print(f"kits: '{partner}' is not a partner (mark it with partner: in its stakeholder map)", markup=False)
        raise typer.Exit(2)
    for kit in built:
        out.print(f"kit {chosen.label} for {kit.partner.id}: {len(kit.entries)} publication(s), "
                  f"{len(kit.links)} partner link(s): {kit.path}", markup=False)
    for line in queued:
        out.print(f"kit {chosen.label}: {line}", markup=False)


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
    except Exception as exc:  # noqa: BLE001
        fault = environment_fault(exc)
        if fault is None or os.environ.get("DISSEMINATION_DEBUG"):
            _internal_error(exc)
        err.print(fault, markup=False)
        sys.exit(2)


def environment_fault(exc: BaseException) -> str | None:
    """One plain sentence for a fault of the machine rather than of dissemination or the content:
    a file that cannot be written (read-only content root, full disk, a device at --out), a ledger
    that is damaged. None for anything else."""
    from sqlalchemy.exc import DatabaseError

    if isinstance(exc, OSError):
        if isinstance(exc, WriteRefused):
            return f"cannot write: {exc}"
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} (check the free disk space and the permissions; nothing was " \
               "half-written)"
    if isinstance(exc, DatabaseError):
        reason = " ".join(str(exc.orig or exc).split())
        return (f"the ledger cannot be used ({reason}): if it is damaged, restore it from a backup or move it aside to start "
                "a new one")
    return None


def _internal_error(exc: Exception) -> None:
    """A bug of ours, not a content error: say so, briefly."""
    if os.environ.get("DISSEMINATION_DEBUG"):
        raise exc
    err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
    err.print("this is a bug in dissemination; rerun with DISSEMINATION_DEBUG=1 for the traceback")
    sys.exit(3)


subscribers_app = typer.Typer(help="Newsletter subscribers (personal data, kept in the ledger database, not in git).",
                              no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")


def _stakeholder_maps() -> list:  # type: ignore[type-arg]
    """(path, parsed map) of every stakeholder map; a map with errors stops the command."""
    from dissemination.load.readers import read_stakeholder_map

    maps, problems = [], []
    for file in sorted((State.root / "stakeholder_maps").glob("*.y*ml")):
        rel = file.relative_to(State.root).as_posix()
        parsed, found = read_stakeholder_map(rel, file.read_text(encoding="utf-8"))
        problems += [p for p in found if p.severity == "error"]
        if parsed is not None:
            maps.append((rel, parsed))
    if problems:
        for problem in problems:
            out.print(str(problem), markup=False)
        out.print(f"[bold red]{len(problems)} error(s)[/] in the stakeholder maps: nothing was imported")
        raise typer.Exit(1)
    return maps


def _hasher():  # type: ignore[no-untyped-def]
    from dissemination.ledger.subscribers import keyed_hash
    from dissemination.publish.tokens import MissingSecret, secret_from_env

    try:
        return keyed_hash(secret_from_env())
    except MissingSecret:
        return None


def _import(rows, problems: list[str], dry_run: bool, what: str) -> None:  # type: ignore[no-untyped-def]
    from dissemination.ledger.subscribers import MissingKey, Subscribers

    if not problems:
        try:
            report = Subscribers(_ledger()).import_rows(rows, dt.datetime.now(UTC), _hasher(), dry_run)
        except MissingKey as exc:
            err.print(f"subscribers: {exc}", markup=False)
            raise typer.Exit(2) from None
        problems = report.problems
    if problems:
        for problem in problems:
            out.print(problem, markup=False)
        out.print(f"[bold red]{len(problems)} row(s) refused[/]: nothing was imported; fix or remove them and run again")
        raise typer.Exit(1)
    for kept in report.kept_unsubscribed:
        out.print(f"kept unsubscribed: {kept} (re-subscribing takes a new confirmation by the person)", markup=False)
    verb = "would add" if dry_run else "added"
    out.print(f"{what}: {verb} {len(report.added)} subscriber(s) and {report.subscribed} list subscription(s); "
              f"{report.unchanged} row(s) already in the database" + (" (dry run: nothing written)" if dry_run else ""),
              markup=False)


@subscribers_app.command("import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV: email, lists, consent_source, consent_date[, name, language, "
                                              "tracking, organisation, confirmed_at, request_origin].")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count; write nothing.")] = False,
) -> None:
    """Add subscribers from a CSV file; every row needs its consent record (source and date).
    All rows or none: refused rows are listed as file:line."""
    from dissemination.ledger.subscribers import read_csv

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"{file}: cannot read it ({type(exc).__name__}: {exc})", markup=False)
        raise typer.Exit(2) from None
    lists = {a.id for _, parsed in _stakeholder_maps() for a in parsed.audiences}
    rows, problems = read_csv(str(file), text, lists or None)
    _import(rows, problems, dry_run, str(file))


@subscribers_app.command("import-contacts")
def subscribers_import_contacts(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count; write nothing.")] = False,
) -> None:
    """Move the e-mail contacts of the stakeholder maps (with their consent records) into the
    subscriber database, once; then delete their email, consent and tracking lines from the maps."""
    from dissemination.ledger.subscribers import contact_rows

    _import(list(contact_rows(_stakeholder_maps())), [], dry_run, "stakeholder maps")


@subscribers_app.command("export")
def subscribers_export(address: Annotated[str, typer.Argument(help="The person's e-mail address.")]) -> None:
    """Everything held about one person (AVG right of access), as JSON: subscriptions with their
    consent records, deliveries, clicks, suppressions."""
    from dissemination.ledger.subscribers import Subscribers

    held = Subscribers(_ledger()).export(address)
    if held is None:
        err.print(f"nothing is held about {address.strip().lower()}", markup=False)
        raise typer.Exit(1)
    print(json.dumps(held, indent=2, ensure_ascii=False, sort_keys=True))


@subscribers_app.command("erase")
def subscribers_erase(address: Annotated[str, typer.Argument(help="The person's e-mail address.")]) -> None:
    """Remove a person's data everywhere (AVG right to erasure). Only a keyed hash of the address
    is kept, so no import adds it again; newsletter counts stay, without the address."""
    from dissemination.ledger.subscribers import Subscribers

    hasher = _hasher()
    if hasher is None:
        err.print("subscribers erase: DISSEMINATION_UNSUBSCRIBE_SECRET is not set; it keys the hash that keeps "
                  "the erased address out of later imports (use the value `dissemination web` uses)", markup=False)
        raise typer.Exit(2)
    held = Subscribers(_ledger()).erase(address, hasher, dt.datetime.now(UTC))
    out.print(f"{address.strip().lower()}: " + ("erased everywhere; imports will refuse it" if held else
                                               "nothing was held; imports will refuse it from now on"), markup=False)


@app.command()
def bounces(
    channel: Annotated[Optional[str], typer.Option("--channel", help="The e-mail channel (default: every one with a "
                                                                     "bounce mailbox).")] = None,
    maildir: Annotated[Optional[Path], typer.Option("--maildir", help="Read this Maildir instead of the channel's "
                                                                      "bounce mailbox.")] = None,
) -> None:
    """Read the bounce mailbox (IMAP, or a Maildir) and apply what the reports say: hard bounces
    and complaints suppress the address, soft bounces are counted; a refusal of our sending setup
    (5.7.x) suppresses nobody and exits 1 so a person looks at it."""
    from dissemination.problems import ContentErrors
    from dissemination.publish.bouncebox import read_bounces
    from dissemination.publish.tokens import MissingSecret

    try:
        reports = read_bounces(State.root.resolve(), _ledger(), channel, maildir.resolve() if maildir else None)
    except ContentErrors as exc:
        _content_errors(exc)
    except MissingSecret as exc:
        err.print(f"bounces: {exc}", markup=False)
        raise typer.Exit(2) from None
    if not reports:
        err.print(f"no e-mail channel '{channel}' in channels.yaml" if channel else
                  "no e-mail channel has a bounce mailbox (bounce_imap_host or bounce_maildir in channels.yaml)",
                  markup=False)
        raise typer.Exit(2)
    trouble = False
    for report in reports:
        channel_id, run = report.channel, report.run
        if run is None:
            err.print(f"{channel_id}: {report.error}", markup=False)
            trouble = True
            continue
        out.print(f"{channel_id}: {run.messages} message(s) read: {len(run.hard)} hard bounce(s) suppressed, "
                  f"{len(run.soft)} soft bounce(s) ({len(run.soft_suppressed)} suppressed after "
                  f"{report.soft_bounce_limit} in a row), {len(run.complaints)} complaint(s) unsubscribed, "
                  f"{len(run.refused)} message(s) refused, {run.delays} delay(s), {run.unmatched} not ours, "
                  f"{run.ignored} not a report", markup=False)
        for address in run.hard:
            out.print(f"  bounced     {address}", markup=False)
        for address in run.complaints:
            out.print(f"  complained  {address}", markup=False)
        for line in run.sender:
            out.print(f"  [red]refused us[/]  {line}", markup=True)
        if run.sender:
            out.print(f"{channel_id}: {len(run.sender)} report(s) say the receiving server refuses our mail (5.7.x: "
                      "SPF, DKIM, DMARC or policy; see docs/deliverability.md); nobody was suppressed", markup=False)
            trouble = True
    if trouble:
        raise typer.Exit(1)
