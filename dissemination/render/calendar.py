"""The calendar: what went out and what is coming, by month and by week.

It merges the ledger (published with its link, missed, failed, held, waiting for a person) with
the plan played forward (plan/simulate.py: every slot of every draft and approved campaign, so
drafts show too, marked), per channel and audience, with the simulation's problems on the entries
they concern. Two self-contained pages (`index.html` month view, `week.html` week view): inline
CSS, a few lines of vanilla JavaScript for the filters (campaign, channel, audience, state; also
read from the address, e.g. `?channel=mastodon`), nothing loaded from the network. Without
JavaScript every entry shows.

Written by `dissemination calendar --out DIR` and `preview`, and served by `dissemination web`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from dissemination.check import CheckResult
from dissemination.render.context import datum

_HERE = Path(__file__).resolve().parent
UTC = dt.timezone.utc
DEFAULT_ZONE = "Europe/Amsterdam"

# The ledger's states as the comms team says them; `unknown` waits for someone to look at the
# platform (or the mail log) and decide, `held` for a new approval.
STATES = {
    "published": "gepubliceerd", "missed": "gemist", "failed": "mislukt", "held": "wacht op goedkeuring",
    "unknown": "wacht op een mens", "claimed": "wordt verstuurd", "planned": "gepland", "draft": "concept",
}
MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
          "november", "december"]
WEEKDAYS = ["ma", "di", "wo", "do", "vr", "za", "zo"]


@dataclass
class Entry:
    when: dt.datetime  # local
    campaign: str
    campaign_title: str
    post: str
    post_title: str
    channel: str
    audience: str  # the item's audience id or "*"
    audience_names: str
    audience_ids: tuple[str, ...]
    state: str
    url: str | None = None
    reason: str | None = None
    problems: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (audiences, url) of a merged entry
    editions: int = 1  # items merged into this entry (a newsletter's editions, a post's audience groups)
    recipients: int | None = None  # a newsletter not sent yet: the simulation's forecast
    finish: dt.datetime | None = None  # local

    @property
    def draft(self) -> bool:
        return self.state == "draft"

    @property
    def state_label(self) -> str:
        return STATES.get(self.state, self.state)


@dataclass(frozen=True)
class CalendarSummary:
    month: Path
    week: Path
    entries: int
    counts: dict[str, int]


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def calendar_entries(result: CheckResult, ledger_items: Iterable[dict[str, Any]]) -> list[Entry]:
    """The ledger's items (except cancelled ones) and every simulated publication the ledger does
    not hold yet, in time order."""
    project = result.project
    names = {a: project.audiences[a].name if a in project.audiences else a for a in project.audiences}
    problems: dict[tuple[str, int], list[str]] = {}
    if result.simulation is not None:
        for p in result.simulation.problems:
            problems.setdefault((p.path, p.line), []).append(
                ("waarschuwing: " if p.severity == "warning" else "") + p.message)

    def titles(campaign_id: str, post_id: str) -> tuple[str, str]:
        """Titles from the content; the ids for items of campaigns or posts no longer there."""
        campaign = project.campaigns.get(campaign_id)
        post = campaign.post(post_id) if campaign else None
        return campaign.meta.title if campaign else campaign_id, post.title if post else post_id

    # the simulation's newsletter forecasts, for the editions not sent yet (from the plan or the ledger)
    forecasts = {(f.occurrence.campaign, f.occurrence.post, f.occurrence.audience, _naive_utc(f.occurrence.utc)): f
                 for f in (result.simulation.forecasts if result.simulation is not None else [])}
    entries: list[Entry] = []
    seen: set[tuple[str, str, str, str, dt.datetime]] = set()
    for row in ledger_items:
        if row["state"] == "cancelled":
            continue
        key = (row["campaign"], row["post"], row["channel"], row["audience"], row["slot_utc"])
        seen.add(key)
        campaign_title, post_title = titles(row["campaign"], row["post"])
        zone = ZoneInfo(row.get("timezone") or DEFAULT_ZONE)
        audiences = tuple(_payload_audiences(row) or [row["audience"]])
        entries.append(Entry(row["slot_utc"].replace(tzinfo=UTC).astimezone(zone), row["campaign"], campaign_title,
                             row["post"], post_title, row["channel"], row["audience"],
                             ", ".join(names.get(a, a) for a in audiences), audiences, row["state"],
                             row.get("url"), row.get("reason")))
        forecast = forecasts.get(key[:2] + key[3:]) if row["state"] in ("planned", "held") else None
        if forecast is not None:
            entries[-1].recipients = forecast.recipients
            entries[-1].finish = forecast.finish.astimezone(zone)
    if result.simulation is not None:
        for o in result.simulation.occurrences:
            if (o.campaign, o.post, o.channel, o.audience, _naive_utc(o.utc)) in seen:
                continue
            campaign_title, post_title = titles(o.campaign, o.post)
            entries.append(Entry(o.slot.local, o.campaign, campaign_title, o.post, post_title, o.channel, o.audience,
                                 ", ".join(names.get(a, a) for a in o.audiences), o.audiences,
                                 "draft" if o.draft else "planned",
                                 problems=_concerning(problems.get((o.path, o.slot.line), []), o.slot.local)))
            forecast = forecasts.get((o.campaign, o.post, o.audience, _naive_utc(o.utc)))
            if forecast is not None:
                entries[-1].recipients = forecast.recipients
                entries[-1].finish = forecast.finish.astimezone(o.slot.local.tzinfo)
    entries.sort(key=lambda e: (e.when.astimezone(UTC), e.campaign, e.post, e.channel, e.audience))
    return entries


def merged(entries: list[Entry]) -> list[Entry]:
    """One entry per post, channel, moment and state: a newsletter's ten editions, or a post's
    audience groups, are one line in a day, naming every audience (and each link)."""
    out: list[Entry] = []
    index: dict[tuple[dt.datetime, str, str, str, str], Entry] = {}
    for e in entries:
        key = (e.when, e.campaign, e.post, e.channel, e.state)
        first = index.get(key)
        if first is None:
            e.links = [(e.audience_names, e.url)] if e.url else []
            index[key] = e
            out.append(e)
            continue
        first.audience_ids = tuple(dict.fromkeys(first.audience_ids + e.audience_ids))
        first.audience_names = f"{first.audience_names}; {e.audience_names}"
        first.problems += [p for p in e.problems if p not in first.problems]
        if e.url:
            first.links.append((e.audience_names, e.url))
        if e.reason and e.reason != first.reason:
            first.reason = f"{first.reason}; {e.reason}" if first.reason else e.reason
        first.editions += 1
        if e.recipients is not None:
            first.recipients = (first.recipients or 0) + e.recipients
        if e.finish is not None and (first.finish is None or e.finish > first.finish):
            first.finish = e.finish
    return out


def _concerning(messages: list[str], local: dt.datetime) -> list[str]:
    """The problems written at a slot's line that concern this occurrence: a series shares one
    line, so a problem that names a date belongs to the occurrences on that date only."""
    day = f"{local:%Y-%m-%d}"
    return [m for m in messages if day in m or not _DATED.search(m)]


_DATED = re.compile(r"\d{4}-\d{2}-\d{2}")


def _payload_audiences(row: dict[str, Any]) -> list[str]:
    import json

    try:
        payload = json.loads(row.get("payload") or "{}")
    except ValueError:
        return []
    audiences = payload.get("audiences")
    return [str(a) for a in audiences] if isinstance(audiences, list) else []


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(str(_HERE)), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update({"datum": datum})
    return env


def render_calendar(result: CheckResult, ledger_items: Iterable[dict[str, Any]], now: dt.datetime,
                    view: str, links: dict[str, str] | None = None) -> tuple[str, list[Entry]]:
    """One view ("month" or "week") as an HTML page."""
    entries = merged(calendar_entries(result, ledger_items))
    today = now.astimezone(ZoneInfo(DEFAULT_ZONE)).date()
    months: dict[tuple[int, int], dict[dt.date, list[Entry]]] = {}
    weeks: dict[tuple[int, int], dict[dt.date, list[Entry]]] = {}
    for e in entries:
        day = e.when.date()
        months.setdefault((day.year, day.month), {}).setdefault(day, []).append(e)
        iso = day.isocalendar()
        weeks.setdefault((iso[0], iso[1]), {}).setdefault(day, []).append(e)
    month_grids = []
    for (year, month), days in sorted(months.items()):
        first = dt.date(year, month, 1)
        start = first - dt.timedelta(days=first.weekday())
        cells = []
        day = start
        while day.month == month or day < first or day.weekday() != 0:
            cells.append((day, day.month == month, days.get(day, [])))
            day += dt.timedelta(days=1)
        month_grids.append({"id": f"m-{year}-{month:02d}", "title": f"{MONTHS[month - 1]} {year}", "cells": cells})
    week_lists = []
    for (year, week), days in sorted(weeks.items()):
        monday = dt.date.fromisocalendar(year, week, 1)
        week_lists.append({"id": f"w-{year}-{week:02d}", "title": f"week {week}, {year}",
                           "days": [(monday + dt.timedelta(days=i), days.get(monday + dt.timedelta(days=i), []))
                                    for i in range(7)]})
    iso = today.isocalendar()
    current = f"m-{today.year}-{today.month:02d}" if view == "month" else f"w-{iso[0]}-{iso[1]:02d}"
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.state] = counts.get(e.state, 0) + e.editions
    programme = result.project.programme.programme.name if result.project.programme else "Campagnes"
    problems = sorted(result.simulation.problems) if result.simulation else []
    page = _environment().get_template("calendar.html.j2").render(
        programme=programme, view=view, months=month_grids, weeks=week_lists, today=today, current=current,
        counts=[(STATES.get(s, s), s, n) for s, n in sorted(counts.items())],
        campaigns=sorted({(e.campaign, e.campaign_title) for e in entries}),
        channels=sorted({e.channel for e in entries}),
        audiences=sorted({(a, result.project.audiences[a].name if a in result.project.audiences else a)
                          for e in entries for a in e.audience_ids}),
        states=[(s, label) for s, label in STATES.items() if s in counts],
        problems=problems, weekdays=WEEKDAYS,
        links=links or {"month": "index.html", "week": "week.html"})
    return page, entries


def write_calendar(result: CheckResult, ledger_items: Iterable[dict[str, Any]], out: Path,
                   now: dt.datetime) -> CalendarSummary:
    items = list(ledger_items)
    out.mkdir(parents=True, exist_ok=True)
    month, entries = render_calendar(result, items, now, "month")
    week, _ = render_calendar(result, items, now, "week")
    (out / "index.html").write_text(month, encoding="utf-8")
    (out / "week.html").write_text(week, encoding="utf-8")
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.state] = counts.get(e.state, 0) + e.editions
    return CalendarSummary(out / "index.html", out / "week.html", sum(e.editions for e in entries), counts)


def live_calendar(root: Path, ledger: Any) -> Callable[[str], str]:
    """The calendar as `dissemination web` serves it: content and ledger read afresh for every
    request (`view`: month or week)."""
    from dissemination.check import run_check

    def page(view: str) -> str:
        return render_calendar(run_check(root), ledger.items(), dt.datetime.now(dt.timezone.utc), view,
                               {"month": "/kalender/", "week": "/kalender/week"})[0]

    return page
