"""Slots: when each post goes out, as an instant plus the zone it was written in.

A slot is written in the campaign's local time (Europe/Amsterdam by default) and kept with its
zone, so "every Tuesday 09:30" stays 09:30 on the wall clock across daylight-saving changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dissemination.load.models import WEEKDAYS
from dissemination.load.readers import Campaign, KnowledgeItem, Post
from dissemination.problems import Problem, suggest

UTC = dt.timezone.utc
OUT_OF_RANGE = "out of range"
_RANGE_HINT = "write a date between the years 2 and 9998"


@dataclass(frozen=True)
class Slot:
    campaign: str
    post: str
    local: dt.datetime  # aware, in `timezone`
    timezone: str
    line: int  # where the slot (or the cadence) is written
    knowledge: str | None = None  # the knowledge item a series occurrence features
    occurrence: int | None = None  # index within a cadence series

    @property
    def utc(self) -> dt.datetime:
        return self.local.astimezone(UTC)


def localize(naive: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, str | None]:
    """Attach `zone` to a wall-clock time; say whether that time is skipped or repeated there, or
    "out of range" for a time too close to the years 1 and 9999 to convert to UTC."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    try:
        round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        return first, OUT_OF_RANGE
    if round_trip != naive:
        return first, "skipped"  # clocks go forward: this wall time does not exist
    if first.utcoffset() != second.utcoffset():
        return first, "repeated"  # clocks go back: this wall time happens twice
    return first, None


def _explicit_slots(campaign: Campaign, post: Post, zone: ZoneInfo) -> tuple[list[Slot], list[Problem]]:
    meta, path = campaign.meta, campaign.path
    written = ([(("slot",), post.meta.slot)] if post.meta.slot else []) + [
        (("slots", j), value) for j, value in enumerate(post.meta.slots)
    ]
    slots, problems = [], []
    for loc, value in written:
        line = post.line_of(loc)
        if value.tzinfo is not None:
            try:
                local, trouble = value.astimezone(zone), None
            except OverflowError:
                local, trouble = value, OUT_OF_RANGE
        else:
            local, trouble = localize(value, zone)
        if trouble == OUT_OF_RANGE:
            problems.append(Problem(path, line, f"slot {value.isoformat(sep=' ', timespec='minutes')} is too close to the year 1 or 9999 "
                                    "to plan", _RANGE_HINT))
            continue
        if trouble == "skipped":
            problems.append(Problem(path, line, f"{value:%Y-%m-%d %H:%M} does not exist in {meta.timezone} "
                                    "(the clocks go forward)", "pick another time, e.g. an hour later"))
            continue
        if trouble == "repeated":
            problems.append(Problem(path, line, f"{value:%Y-%m-%d %H:%M} happens twice in {meta.timezone} "
                                    "(the clocks go back); the first is used", "pick another time to be exact",
                                    "warning"))
        if not meta.start <= local.date() <= meta.end:
            problems.append(Problem(path, line, f"slot {local:%Y-%m-%d %H:%M} is outside the campaign "
                                    f"({meta.start} to {meta.end})", "move the slot or widen start/end"))
            continue
        slots.append(Slot(meta.id, post.id, local, meta.timezone, line))
    return slots, problems


def _cadence_slots(campaign: Campaign, post: Post, zone: ZoneInfo,
                   knowledge: dict[str, KnowledgeItem]) -> tuple[list[Slot], list[Problem]]:
    meta, cadence, path = campaign.meta, campaign.meta.cadence, campaign.path
    assert cadence is not None
    line = campaign.doc.line_of(("cadence",))
    problems: list[Problem] = []
    start, end = cadence.start or meta.start, cadence.end or meta.end
    for key, day in (("start", cadence.start), ("end", cadence.end)):
        if day and not meta.start <= day <= meta.end:
            problems.append(Problem(path, campaign.doc.line_of(("cadence", key)), f"cadence {key} {day} is "
                                    f"outside the campaign ({meta.start} to {meta.end})"))
    featured = [k for k in meta.knowledge if k in knowledge]
    evergreen = [k for k in featured if knowledge[k].meta.evergreen]
    week_zero = start - dt.timedelta(days=start.weekday())
    days = {WEEKDAYS.index(d) for d in cadence.days}
    slots: list[Slot] = []
    day = start
    while day <= end:
        if day.weekday() in days and ((day - week_zero).days // 7) % cadence.every_weeks == 0:
            n = len(slots)
            if featured and n >= len(featured) and not (cadence.repeat_evergreen and evergreen):
                break
            item = None
            if featured:
                item = featured[n] if n < len(featured) else evergreen[(n - len(featured)) % len(evergreen)]
            local, trouble = localize(dt.datetime.combine(day, cadence.time), zone)
            if trouble == OUT_OF_RANGE:
                problems.append(Problem(path, line, f"the cadence reaches {day}, too close to the year 1 or 9999 "
                                        "to plan", _RANGE_HINT))
                break
            if trouble == "skipped":
                # zoneinfo reads a skipped wall time with the old offset: it lands an hour later.
                local = local.astimezone(UTC).astimezone(zone)
            slots.append(Slot(meta.id, post.id, local, meta.timezone, line, item, n))
        if day == dt.date.max:
            break
        day += dt.timedelta(days=1)
    if featured and len(slots) < len(featured):
        problems.append(Problem(
            path, line, f"the series has room for {len(slots)} posts but features {len(featured)} knowledge "
            f"items; {len(featured) - len(slots)} will not be shown", "add days, or move the end date", "warning"))
    return slots, problems


def campaign_slots(campaign: Campaign, knowledge: dict[str, KnowledgeItem]) -> tuple[list[Slot], list[Problem]]:
    """Every slot of every post in the campaign, in time order, and what is wrong with them."""
    zone = ZoneInfo(campaign.meta.timezone)
    cadence_post = campaign.meta.cadence.post if campaign.meta.cadence else None
    slots: list[Slot] = []
    problems: list[Problem] = []
    for post in campaign.posts:
        if post.id == cadence_post:
            found, trouble = _cadence_slots(campaign, post, zone, knowledge)
        else:
            found, trouble = _explicit_slots(campaign, post, zone)
            # A slot that is written but not valid is reported where it is written, not as missing.
            written = post.meta_doc is not None and isinstance(post.meta_doc.data, dict) and any(
                suggest(key, ("slot", "slots")) for key in post.meta_doc.data)
            if not post.meta.slot and not post.meta.slots and not written:
                trouble.append(Problem(campaign.path, post.line, f"post '{post.id}' has no slot",
                                       "add 'slot: YYYY-MM-DD HH:MM' under its heading, or make it the "
                                       "campaign's cadence post"))
        slots += found
        problems += trouble
    slots.sort(key=lambda s: (s.utc, s.post))
    return slots, problems
