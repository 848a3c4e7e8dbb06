"""What every command shares: the app, the consoles (redacted), the content root, --now and --json,
and how content errors and failed campaigns are told."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from dissemination.redact import RedactingStream, redact

if TYPE_CHECKING:
    from dissemination.ledger import Ledger
    from dissemination.load.readers import StakeholderMapFile
    from dissemination.problems import ContentErrors, Problem, Problems

app = typer.Typer(
    help="Campaigns as code: check, plan, publish and report on programme dissemination.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Everything printed passes the one redaction of the process's secrets (see dissemination.redact).
# A RedactingStream is no IO[str], but rich only writes to and flushes it: hence the ignores.
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


def _print_problems(problems: Problems) -> None:
    for problem in problems.errors:
        out.print(str(problem), markup=False)
    for problem in problems.warnings:
        out.print(str(problem), markup=False, style="yellow")


def _content_errors(exc: ContentErrors) -> NoReturn:
    from dissemination.problems import SharedContentErrors

    for problem in exc.problems:
        out.print(str(problem), markup=False)
    where = (" in files every campaign depends on (" + ", ".join(sorted({p.path for p in exc.problems})) + ")"
             if isinstance(exc, SharedContentErrors) else "")
    out.print(f"[bold red]{len(exc.problems)} error(s)[/]{where}: nothing was planned or published; "
              "fix them and run again (dissemination check lists them)")
    raise typer.Exit(1)


def _failed_campaigns(failed: dict[str, list[Problem]], console: Console | None = None) -> None:
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


def _ledger() -> Ledger:
    from dissemination.ledger import Ledger

    return Ledger.for_root(State.root.resolve())


def _print_items(rows: list[dict[str, Any]], as_json: bool) -> None:
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


def _ledger_exists() -> bool:
    """Whether there is a ledger to read, so that a command which only reads it does not create
    one (ledger.store.DB_URL_ENV is not imported for this: SQLAlchemy and Alembic take 0.3 s)."""
    return bool(os.environ.get("DISSEMINATION_DB_URL")) or (State.root / ".dissemination" / "ledger.db").exists()


def _print_next(ledger: Ledger, moment: dt.datetime | None) -> None:
    """When the next post goes out: after a run that published nothing, the question a person has."""
    from dissemination.status import next_slot

    upcoming = next_slot(ledger, moment or dt.datetime.now(UTC))
    out.print(f"next: {upcoming.describe()}" if upcoming else
              "next: nothing planned (approve a campaign with `dissemination approve`, then `dissemination plan`)",
              markup=False)


def _stakeholder_maps() -> list[tuple[str, StakeholderMapFile]]:
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


def _hasher() -> Callable[[str], str] | None:
    from dissemination.ledger.subscribers import keyed_hash
    from dissemination.publish.tokens import MissingSecret, secret_from_env

    try:
        return keyed_hash(secret_from_env())
    except MissingSecret:
        return None
