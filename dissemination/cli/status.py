"""`status` and `resolve`: what the ledger holds, what is overdue or waiting for a person."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Optional

import typer

from dissemination.cli.common import (JsonOption, NowOption, State, UTC, _ledger, _now, _print_items, _print_next, err,
                                      out)
from dissemination.redact import redact


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
    from dissemination.status import next_slot, status_view

    moment = _now(now)
    first = _window_edge(since, moment, -1, "--since")
    last = _window_edge(until, moment, 1, "--until")
    ledger = _ledger()
    view = status_view(ledger, moment, first, last)
    if as_json:
        upcoming = next_slot(ledger, moment)
        document = {"items": view.rows, "summary": view.summary, "next": upcoming.as_json() if upcoming else None,
                    "liveness": view.liveness}
        if channels:
            document["channels"] = _channel_health_json(ledger)
        print(redact(json.dumps(document, ensure_ascii=False, indent=2)))
    else:
        _print_items(view.rows, False)
        text = ", ".join(f"{n} {state}" for state, n in sorted(view.counts.items())) or (
            "no items in this window" if view.every else "the ledger is empty")
        extra = [f"{view.overdue} overdue"] if view.overdue else []
        extra += [f"{len(view.missed_recently)} missed in the last day"] if view.missed_recently else []
        if len(view.rows) != len(view.every):
            extra.append(f"{len(view.rows)} of {len(view.every)} items shown")
        out.print(f"summary: {text}" + (f" ({'; '.join(extra)})" if extra else ""), markup=False,
                  style="bold red" if view.overdue or view.missed_recently else None)
        _print_next(ledger, moment)
        for problem in view.liveness:
            out.print(f"NOT OK: {problem}", markup=False, style="bold red")
        if channels:
            _print_channel_health(ledger)
    if view.needs_attention:
        raise typer.Exit(2)


def _channel_health_json(ledger=None) -> list[dict] | dict:
    from dissemination.problems import ContentErrors
    from dissemination.publish.loop import channel_health

    try:
        health = channel_health(State.root.resolve(), ledger=ledger)
    except ContentErrors as exc:
        return {"errors": [str(p) for p in exc.problems]}
    return [row.as_json() for row in health]


def _print_channel_health(ledger=None) -> None:
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
