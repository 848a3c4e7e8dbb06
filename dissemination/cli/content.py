"""Commands on the content: check, approve, preview, calendar, web, kits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer

from dissemination.cli.common import (NowOption, State, _content_errors, _ledger, _ledger_exists, _now,
                                      _print_problems, _stakeholder_maps, err, out)


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

    from dissemination.publish.channels.email import EmailSettings
    from dissemination.load.project import load_channels
    from dissemination.publish.tokens import MissingSecret, Signer, secret_from_env
    from dissemination.render.calendar import live_calendar
    from dissemination.signup import signup_settings
    from dissemination.web import create_app

    try:
        signer = Signer(secret_from_env())
    except MissingSecret as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    channels, _ = load_channels(State.root)
    names = {cid: c.list_name or c.description or cid for cid, c in (channels.channels if channels else {}).items()
             if isinstance(c, EmailSettings)}
    ledger = _ledger()
    page = live_calendar(State.root.resolve(), ledger) if calendar else None
    signup = signup_settings(State.root.resolve(), channels,
                             lambda: {a.id: a.name for _, parsed in _stakeholder_maps() for a in parsed.audiences})
    out.print(f"serving unsubscribe and click links on http://{host}:{port}"
              + (f"; sign-up forms at /aanmelden/<list> for {', '.join(sorted(signup.lists))}" if signup else "")
              + (f"; the calendar on http://{host}:{port}/kalender/" if calendar else ""), markup=False)
    uvicorn.run(create_app(ledger, signer, names, signup, calendar=page), host=host, port=port, log_level="warning")


def approve(
    campaign: Annotated[Path, typer.Argument(help="The campaign file, e.g. campaigns/kennisreeks.md")],
    by: Annotated[str, typer.Option("--by", help="Who approves.")],
    now: NowOption = None,
) -> None:
    """Approve a campaign: record approver, time and a digest of the approved content."""
    from dissemination.approval import NotApproved, approve_campaign

    # As written under the content root first (`--root` may name another checkout than the
    # current folder), else as a path from here.
    path = campaign if campaign.is_absolute() else (State.root / campaign)
    if not path.is_file():
        path = Path.cwd() / campaign
    if not path.is_file():
        err.print(f"{campaign}: no such campaign file", markup=False)
        raise typer.Exit(1)
    if not path.resolve().is_relative_to(State.root.resolve()):
        err.print(f"{campaign}: not under the content root {State.root} (approve campaigns/<file>.md of that root)",
                  markup=False)
        raise typer.Exit(1)
    if not by.strip():
        err.print("--by: say who approves", markup=False)
        raise typer.Exit(2)
    try:
        done = approve_campaign(State.root, path, by.strip(), _now(now))
    except NotApproved as exc:
        if not exc.problems:
            err.print(str(exc), markup=False)
            raise typer.Exit(1) from None
        for problem in exc.problems:
            out.print(str(problem), markup=False)
        out.print(f"[bold red]not approved[/]: {exc}")
        raise typer.Exit(1) from None
    out.print(f"approved {done.path} by {by.strip()} ({done.digest}; with {done.sources} knowledge item(s), "
              "template(s) and image(s) its posts use)", markup=False)


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


def _write_calendar(result, out_dir: Path, moment: dt.datetime) -> None:
    from dissemination.render.calendar import write_calendar

    # No ledger yet (content being written, nothing planned): the plan alone, and none created.
    written = write_calendar(result, _ledger().items() if _ledger_exists() else [], out_dir, moment)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(written.counts.items()))
    out.print(f"calendar: {written.entries} entries ({counts or 'none'}) in {written.month} (month) and "
              f"{written.week.name} (week)", markup=False)


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
