"""The stuurgroep report's figures, computed from the ledger and the content; no presentation here.

Definitions (repeated in the report's footnotes):
- A publication belongs to the period in which it was published; its engagement is the last
  reading taken up to the report's moment (`as_of`), so late readings of a publication count
  towards the period it was published in.
- Reach: impressions where the channel counts them (LinkedIn); for e-mail the messages sent minus
  those rejected; for Mastodon, which counts no views, the account's followers at the last reading
  (a potential reach).
- Interactions: reactions or likes (Mastodon: favourites), comments (replies), shares (reblogs)
  and, where reported, quotes.
- Clicks: clicks reported by the channel (LinkedIn, e-mail); Mastodon reports none.
- A figure one or more publications cannot supply is unknown for them, with the reason. A total
  over publications of which some are unknown is a lower bound and says so; never 0.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from dissemination.ledger import Ledger
from dissemination.load import models as m
from dissemination.load.project import Project
from dissemination.partners import KIT_CAMPAIGN
from dissemination.publish.channels import capabilities_of, channel_class, kinds
from dissemination.publish.channels.email import EmailSettings
from dissemination.periods import ZONE, Period, current_quarter, parse_period
from dissemination.report.dutch import dutch
from dissemination.report.format import number

UTC = dt.timezone.utc
MEASURES = ("publications", "reach", "interactions", "clicks")
ENGAGEMENT = ("reach", "interactions", "clicks")
ON_TIME = dt.timedelta(minutes=10)  # as `dissemination status` calls an item overdue
NOT_YET_READ = "nog niet gemeten"
# What each kind's metrics count as in the figures above (`Metric.counts_as`, declared by each
# channel module); the others in the ledger are not read for the report.
COUNTED = ("reach", "rejected", "reactions", "comments", "shares", "quotes", "clicks")


@cache
def metrics_by_role() -> dict[str, tuple[str, ...]]:
    """Every channel kind's metrics, per what they count as, in the order the kinds declare them
    (the first a publication has is used: LinkedIn's reactions before its likes)."""
    out: dict[str, list[str]] = {role: [] for role in COUNTED}
    for kind in kinds():
        channel = channel_class(kind)
        for metric in channel.metrics if channel is not None else ():
            if metric.counts_as in out and metric.name not in out[metric.counts_as]:
                out[metric.counts_as].append(metric.name)
    return {role: tuple(names) for role, names in out.items()}


def report_metrics() -> tuple[str, ...]:
    """Every metric the report reads from the ledger."""
    return tuple(name for names in metrics_by_role().values() for name in names) + ("engagement",)
DIMENSIONS = {"channel": "Kanaal", "audience": "Doelgroep", "campaign": "Campagne",
              "impact_goal": "Impactdoel", "milestone": "Mijlpaal"}
QUADRANT_ORDER = [m.Quadrant.manage_closely, m.Quadrant.keep_satisfied, m.Quadrant.keep_informed, m.Quadrant.monitor]
QUADRANT_NL = {m.Quadrant.manage_closely: "nauw betrekken", m.Quadrant.keep_satisfied: "tevreden houden",
               m.Quadrant.keep_informed: "informeren", m.Quadrant.monitor: "monitoren"}
MEASURE_NL = {"publications": "publicaties", "reach": "bereik", "interactions": "interacties",
              "clicks": "klikken", "subscribers": "abonnees", "partner_reach": "bereik via partners"}


@dataclass(frozen=True)
class Value:
    """One publication's figure: a number, or why there is none."""

    value: float | None
    reason: str | None = None
    applicable: bool = True  # False: the channel does not count this at all (Mastodon clicks)

    @property
    def known(self) -> bool:
        return self.value is not None


@dataclass
class Figure:
    """A total over publications: the sum of the known values, and why the others are unknown."""

    value: float = 0.0
    known: int = 0
    unknown: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    # Publications whose channel does not count this figure: left out of the total, not unknown
    # (a LinkedIn click total is complete without Mastodon, which has no clicks), but named.
    not_counted: Counter[str] = field(default_factory=Counter)

    def add(self, part: Value) -> None:
        if part.value is not None:
            self.value += part.value
            self.known += 1
        elif not part.applicable:
            self.not_counted[part.reason or ""] += 1
        else:
            self.unknown += 1
            self.reasons[part.reason or NOT_YET_READ] += 1

    @classmethod
    def of(cls, parts: Iterable[Value]) -> "Figure":
        figure = cls()
        for part in parts:
            figure.add(part)
        return figure

    @classmethod
    def count(cls, n: int) -> "Figure":
        return cls(float(n), n, 0)

    @classmethod
    def missing(cls, reason: str) -> "Figure":
        return cls(0.0, 0, 1, Counter({reason: 1}))

    @property
    def is_unknown(self) -> bool:
        return self.known == 0 and (self.unknown > 0 or bool(self.not_counted))

    @property
    def is_partial(self) -> bool:
        return self.known > 0 and self.unknown > 0

    @property
    def complete(self) -> bool:
        return self.unknown == 0

    @property
    def amount(self) -> float | None:
        """The value, or None when it is unknown."""
        return None if self.is_unknown else self.value

    def reason_text(self) -> str:
        parts = [f"{reason} ({n}×)" if n > 1 else reason for reason, n in self.reasons.most_common()]
        if self.is_unknown:
            parts += [reason for reason in self.not_counted]
        return "; ".join(parts)

    def reason_list(self) -> list[str]:
        """Every reason behind this figure: why values are unknown, and which were not counted."""
        return [reason for reason, _ in self.reasons.most_common()] + [r for r in self.not_counted if r]

    def note(self) -> str:
        """Publications left out because their channel does not count this figure."""
        if not self.not_counted or self.is_unknown:
            return ""
        return "zonder " + "; ".join(f"{n} publicatie(s): {reason}" for reason, n in self.not_counted.items())


@dataclass
class Trend:
    pct: float | None  # change in percent; None when it cannot be given
    note: str  # why not, or "nieuw"


def trend(current: Figure, previous: Figure) -> Trend:
    """The change against the previous period. Not given when either figure is incomplete (a
    change between lower bounds means nothing), and 'nieuw' when the previous value is 0."""
    if current.is_unknown or previous.is_unknown:
        return Trend(None, "n.b.")
    if not current.complete or not previous.complete:
        return Trend(None, "n.b.: onvolledige cijfers")
    if previous.value == 0:
        return Trend(None, "–" if current.value == 0 else "nieuw")
    return Trend((current.value - previous.value) / previous.value * 100, "")


@dataclass
class Publication:
    id: str
    campaign: str
    post: str
    audience: str
    channel: str
    slot: dt.datetime
    published_at: dt.datetime
    url: str | None
    values: dict[str, Value]
    impact_goals: tuple[int, ...]
    milestones: tuple[str, ...]
    # Every audience the publication served: a social post shared by several counts for each.
    audiences: tuple[str, ...] = ()
    title: str = ""  # the post's title, with the featured knowledge item's
    knowledge: str | None = None

    def keys(self, dimension: str) -> tuple[Any, ...]:
        if dimension == "audience":
            return self.audiences or (self.audience,)
        if dimension == "impact_goal":
            return self.impact_goals
        if dimension == "milestone":
            return self.milestones
        return (getattr(self, dimension),)


def _pick(readings: dict[str, Value], alternatives: tuple[str, ...]) -> Value | None:
    for metric in alternatives:
        if metric in readings:
            return readings[metric]
    return None


def publication_values(readings: dict[str, Value], channel_label: str) -> dict[str, Value]:
    """Reach, interactions and clicks of one publication from its latest readings per metric."""
    if not readings:
        nothing = Value(None, NOT_YET_READ)
        return {"reach": nothing, "interactions": nothing, "clicks": nothing}
    # A reading that stands for the whole publication (the outbox, a failed read) explains every
    # figure the channel did not supply.
    general = readings.get("engagement")
    fallback = general.reason if general is not None and not general.known else None
    out: dict[str, Value] = {}

    roles = metrics_by_role()
    reach = _pick(readings, roles["reach"])
    rejected = _pick(readings, roles["rejected"])
    if reach is not None and reach.value is not None and rejected is not None and rejected.value is not None:
        reach = Value(reach.value - rejected.value)
    out["reach"] = reach or _absent(fallback, f"{channel_label} meldt geen bereik")

    parts = [_pick(readings, roles["reactions"]), _pick(readings, roles["comments"]), _pick(readings, roles["shares"])]
    quotes = _pick(readings, roles["quotes"])
    if quotes is not None and quotes.known:  # e.g. only from Mastodon 4.5: left out where not reported
        parts.append(quotes)
    present = [p for p in parts if p is not None]
    missing = next((p for p in present if not p.known), None)
    if not present:
        out["interactions"] = _absent(fallback, f"{channel_label} meldt geen interacties")
    elif missing is not None:
        out["interactions"] = missing
    else:
        out["interactions"] = Value(sum(p.value for p in present if p.value is not None))

    clicks = _pick(readings, roles["clicks"])
    out["clicks"] = clicks or _absent(fallback, f"{channel_label} meldt geen klikken")
    return out


def _absent(fallback: str | None, not_counted: str) -> Value:
    return Value(None, fallback) if fallback else Value(None, not_counted, applicable=False)


def _readings(rows: list[dict[str, Any]]) -> dict[str, dict[str, Value]]:
    """item -> metric -> its last available value, else the reason of its last unavailable one."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["item_id"], row["metric"])
        held = best.get(key)
        if held is None or (row["available"], row["fetched_at"], row["id"]) > (
                held["available"], held["fetched_at"], held["id"]):
            best[key] = row
    out: dict[str, dict[str, Value]] = defaultdict(dict)
    for (item, metric), row in best.items():
        out[item][metric] = Value(row["value"], None) if row["available"] else Value(None, dutch(row["reason"]))
    return out


@dataclass
class PeriodData:
    period: Period
    publications: list[Publication]
    items: list[dict[str, Any]]  # every item with a slot or publication in the period


def _channel_label(project: Project, channel: str) -> str:
    config = project.channels.get(channel)
    return capabilities_of(config).label if config is not None else channel


def load_period(ledger: Ledger, project: Project, period: Period, as_of: dt.datetime) -> PeriodData:
    start, end = period.start_utc, period.end_utc
    # A partner's kit e-mail is not one of our publications: it has its own section (partners.py).
    items = [r for r in ledger.items_between(start, end) if r["campaign"] != KIT_CAMPAIGN]
    readings = _readings(ledger.latest_readings(start, end, as_of, report_metrics()))
    goals: dict[str, tuple[int, ...]] = {}
    milestones: dict[str, tuple[str, ...]] = {}
    for cid, campaign in project.campaigns.items():
        ids = tuple(campaign.meta.milestones)
        found = set(campaign.meta.impact_goals)
        for mid in ids:
            if mid in project.milestones:
                found |= set(project.milestones[mid].impact_goals)
        goals[cid], milestones[cid] = tuple(sorted(found)), ids
    publications = []
    for row in items:
        published = row["published_at"]
        if row["state"] != "published" or published is None:
            continue
        published = published.replace(tzinfo=UTC)
        if not (start <= published < end):
            continue
        publications.append(Publication(
            id=row["id"], campaign=row["campaign"], post=row["post"], audience=row["audience"],
            channel=row["channel"], slot=row["slot_utc"].replace(tzinfo=UTC), published_at=published,
            url=row["url"], values=publication_values(readings.get(row["id"], {}), _channel_label(project, row["channel"])),
            impact_goals=goals.get(row["campaign"], ()), milestones=milestones.get(row["campaign"], ()),
            audiences=tuple(row.get("audiences") or ()), title=publication_title(project, row),
            knowledge=row.get("knowledge")))
    return PeriodData(period, publications, items)


def publication_title(project: Project, row: dict[str, Any]) -> str:
    """What a reader recognises a publication by: the post's title and the knowledge item it featured."""
    campaign = project.campaigns.get(row["campaign"])
    post = campaign.post(row["post"]) if campaign else None
    if post is not None:
        title = post.title
    else:  # a post since removed from its campaign: the campaign's title and the post's id
        title = f"{campaign.meta.title} ({row['post']})" if campaign else f"{row['campaign']} / {row['post']}"
    item = project.knowledge.get(row.get("knowledge") or "")
    return f"{title}: {item.meta.title}" if item and item.meta.title not in title else title


def figures(publications: Iterable[Publication]) -> dict[str, Figure]:
    pubs = list(publications)
    out = {"publications": Figure.count(len(pubs))}
    for measure in ENGAGEMENT:
        out[measure] = Figure.of(p.values[measure] for p in pubs)
    return out


def by_dimension(publications: list[Publication], dimension: str) -> dict[Any, dict[str, Figure]]:
    groups: dict[Any, list[Publication]] = defaultdict(list)
    for pub in publications:
        for key in pub.keys(dimension):
            groups[key].append(pub)
    return {key: figures(pubs) for key, pubs in groups.items()}


# --- the report's sections ---------------------------------------------------------------------


@dataclass
class Row:
    key: Any
    label: str
    current: dict[str, Figure]
    previous: dict[str, Figure]

    def trend(self, measure: str) -> Trend:
        return trend(self.current[measure], self.previous[measure])


@dataclass
class TargetRow:
    target: m.Target
    group: str | None  # the campaign, audience or channel of a `per` target
    value: Figure
    goal: float | None
    goal_note: str  # how the goal was set, or why it is unknown
    status: str  # gehaald | op koers | achter | n.b.
    status_note: str


@dataclass
class Coverage:
    audiences: list[tuple[m.Audience, int]]  # not reached, with their number of stakeholders
    stakeholders: list[m.Stakeholder]  # not reached, high power/interest first
    reached_audiences: int
    reached_stakeholders: int


@dataclass
class Reliability:
    planned: int = 0
    published: int = 0
    on_time: int = 0
    late: int = 0
    missed: int = 0
    failed: int = 0
    held: int = 0
    open: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)  # missed, failed, held items

    @property
    def on_time_share(self) -> Figure:
        decided = self.published + self.missed + self.failed
        if not decided:
            return Figure.missing("nog geen publicatie gepland en afgehandeld in deze periode")
        return Figure(self.on_time / decided * 100, 1, 0)


@dataclass
class Report:
    programme: str
    period: Period
    previous: Period
    as_of: dt.datetime
    totals: Row
    sections: dict[str, list[Row]]
    targets: list[TargetRow]
    coverage: Coverage
    top: list[Publication]
    reliability: Reliability
    publications: list[Publication]
    channel_labels: dict[str, str]
    milestones: list["MilestoneRow"] = field(default_factory=list)
    events: list["EventRow"] = field(default_factory=list)  # held or planned in the period
    plan: list["PlanRow"] = field(default_factory=list)
    outlook: "Outlook | None" = None
    summary: list[str] = field(default_factory=list)
    partners: Any = None  # report/partners.PartnerSection: "Bereik via partners"


def _labels(project: Project, dimension: str, key: Any) -> str:
    if dimension == "channel":
        config = project.channels.get(key)
        return f"{key} ({config.description})" if config is not None and config.description else str(key)
    if dimension == "audience":
        audience = project.audiences.get(key)
        return audience.name if audience else f"{key} (niet meer in de stakeholderkaart)"
    if dimension == "campaign":
        campaign = project.campaigns.get(key)
        return campaign.meta.title if campaign else f"{key} (niet meer in campaigns/)"
    if dimension == "impact_goal":
        text = project.programme.programme.impact_goals.get(key) if project.programme else None
        return f"{key}. {text}" if text else f"Impactdoel {key}"
    milestone = project.milestones.get(key)
    return f"{key}: {milestone.description}" if milestone else str(key)


def _rows(project: Project, dimension: str, current: list[Publication], previous: list[Publication],
          period: Period) -> list[Row]:
    now_groups, before_groups = by_dimension(current, dimension), by_dimension(previous, dimension)
    keys = set(now_groups) | set(before_groups)
    empty = figures([])
    if dimension == "impact_goal" and project.programme:
        keys |= set(project.programme.programme.impact_goals)  # every goal, also those not served
    if dimension == "milestone":
        keys |= {ms.id for ms in project.milestones.values() if ms.due and ms.due >= period.start}
    rows = [Row(key, _labels(project, dimension, key), now_groups.get(key, empty), before_groups.get(key, empty))
            for key in keys]
    if dimension in ("impact_goal",):
        rows.sort(key=lambda r: r.key)
    elif dimension == "milestone":
        order = list(project.milestones)
        rows.sort(key=lambda r: (order.index(r.key) if r.key in order else len(order), str(r.key)))
    else:
        rows.sort(key=lambda r: (-r.current["publications"].value, str(r.key)))
    return rows


def _matches(pub: Publication, target: m.Target) -> bool:
    return ((not target.audiences or bool(set(pub.keys("audience")) & set(target.audiences)))
            and (not target.channels or pub.channel in target.channels)
            and (not target.campaigns or pub.campaign in target.campaigns)
            and (not target.milestones or bool(set(pub.milestones) & set(target.milestones))))


def _subscribers(ledger: Ledger, audiences: Iterable[str]) -> int:
    """Active subscribers of any of `audiences` (the subscriber database; addresses are not in git)."""
    from dissemination.ledger.subscribers import Subscribers

    return Subscribers(ledger).count(list(audiences))


def _goal(target: m.Target, before: Figure) -> tuple[float | None, str]:
    """The goal of a `times_baseline` target from the baseline period's figure, and how it was set."""
    factor = number(target.times_baseline)
    if not before.complete:
        return None, f"{factor} × {target.baseline}: basisperiode onvolledig ({before.reason_text()})"
    if before.value == 0:
        return None, f"{factor} × {target.baseline}: de basisperiode had 0, een veelvoud zegt niets"
    return before.value * (target.times_baseline or 0), f"{factor} × {number(before.value)} ({target.baseline})"


def _target_rows(ledger: Ledger, project: Project, target: m.Target, current: PeriodData, as_of: dt.datetime,
                 baseline: PeriodData | None, partner_reach: Any = None) -> list[TargetRow]:
    goal: float | None
    if target.metric == "partner_reach":
        # clicks on partner links plus boosts by partners (report/partners.py), over all partners
        value = partner_reach(current.period)
        if target.minimum is not None:
            goal, note = target.minimum, f"minimaal {number(target.minimum)}"
        else:
            goal, note = _goal(target, partner_reach(baseline.period) if baseline else Figure())
        return [_judge(target, None, value, goal, note, current.period, as_of)]
    if target.metric == "subscribers":
        audiences = target.audiences or list(project.audiences)
        groups = [(a, [a]) for a in audiences] if target.per == "audience" else [(None, audiences)]
        rows = []
        for group, members in groups:
            value = Figure.count(_subscribers(ledger, members))
            # Judged by pace like the other targets: in a running period the share of the goal
            # that the elapsed share of the period calls for.
            rows.append(_judge(target, group, value, target.minimum, f"minimaal {number(target.minimum)}",
                               current.period, as_of))
        return rows
    chosen = [p for p in current.publications if _matches(p, target)]
    base = [p for p in baseline.publications if _matches(p, target)] if baseline else []
    key = {"campaign": "campaign", "audience": "audience", "channel": "channel"}.get(target.per or "")
    if key:
        names = set(getattr(target, key + "s")) or {g for p in chosen + base for g in p.keys(key)}
        compared = [(g, [p for p in chosen if g in p.keys(key)], [p for p in base if g in p.keys(key)])
                    for g in sorted(names)]
    else:
        compared = [(None, chosen, base)]
    rows = []
    for group, pubs, base_pubs in compared:
        value = figures(pubs)[target.metric]
        if target.minimum is not None:
            goal, note = target.minimum, f"minimaal {number(target.minimum)}"
        else:
            goal, note = _goal(target, figures(base_pubs)[target.metric])
        rows.append(_judge(target, group, value, goal, note, current.period, as_of))
    return rows


def _judge(target: m.Target, group: str | None, value: Figure, goal: float | None, note: str, period: Period,
           as_of: dt.datetime) -> TargetRow:
    if goal is None:
        return TargetRow(target, group, value, None, note, "n.b.", "doelwaarde onbekend")
    if value.is_unknown:
        return TargetRow(target, group, value, goal, note, "n.b.", value.reason_text())
    if value.value >= goal:
        return TargetRow(target, group, value, goal, note, "gehaald", "")
    if not value.complete:
        return TargetRow(target, group, value, goal, note, "n.b.", f"onvolledig: {value.reason_text()}")
    share = period.elapsed(as_of)
    if share < 1.0 and value.value >= goal * share:
        return TargetRow(target, group, value, goal, note, "op koers",
                         f"{round(share * 100)}% van de periode verstreken")
    ended = "periode voorbij" if share >= 1.0 else f"{round(share * 100)}% van de periode verstreken"
    return TargetRow(target, group, value, goal, note, "achter", ended)


def _coverage(project: Project, publications: list[Publication]) -> Coverage:
    reached = {a for p in publications for a in p.keys("audience")}
    audiences = [(a, sum(1 for s in project.stakeholders.values() if a.id in s.audiences))
                 for a in project.audiences.values() if a.id not in reached]
    stakeholders = [s for s in project.stakeholders.values() if not reached & set(s.audiences)]
    stakeholders.sort(key=lambda s: (QUADRANT_ORDER.index(s.quadrant), -(s.power + s.interest), s.name))
    audiences.sort(key=lambda pair: (-pair[1], pair[0].name))
    return Coverage(audiences, stakeholders, len(reached & set(project.audiences)),
                    len(project.stakeholders) - len(stakeholders))


def _reliability(items: list[dict[str, Any]], period: Period) -> Reliability:
    out = Reliability()
    for row in items:
        slot = row["slot_utc"].replace(tzinfo=UTC)
        if not period.contains(slot) or row["state"] == "cancelled":
            continue
        out.planned += 1
        state = row["state"]
        if state == "published":
            out.published += 1
            published = row["published_at"].replace(tzinfo=UTC)
            if published <= slot + ON_TIME:
                out.on_time += 1
            else:
                out.late += 1
        elif state in ("missed", "failed", "held"):
            setattr(out, state, getattr(out, state) + 1)
            out.problems.append(row)
        else:
            out.open += 1
    return out


@dataclass
class EventRow:
    name: str
    starts: dt.datetime  # aware
    place: str
    campaign: str | None  # None: a programme event (programme.yaml)
    milestones: tuple[str, ...]
    registrations: int | None
    attendance: int | None


def _events(project: Project) -> list[EventRow]:
    """Every event: the campaigns' and the programme's, with their results where entered."""
    out = []
    for campaign in project.campaigns.values():
        event = campaign.meta.event
        if event is not None:
            zone = ZoneInfo(campaign.meta.timezone)
            out.append(EventRow(event.name, _aware(event.starts, zone), event.place, campaign.id,
                                tuple(campaign.meta.milestones), event.registrations, event.attendance))
    for event in (project.programme.programme.events if project.programme else []):
        out.append(EventRow(event.name, _aware(event.starts, ZONE), event.place, None, tuple(event.milestones),
                            event.registrations, event.attendance))
    return sorted(out, key=lambda e: (e.starts, e.name))


def _aware(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


MILESTONE_STATUSES = ("behaald", "op schema", "te laat", "nog niet gestart")


@dataclass
class MilestoneRow:
    milestone: m.Milestone
    status: str  # one of MILESTONE_STATUSES
    publications: list[Publication]  # in the report period
    events: list[EventRow]


def _milestone_rows(project: Project, publications: list[Publication], events: list[EventRow],
                    as_of: dt.datetime) -> list[MilestoneRow]:
    """Every milestone with its status on the report's day: behaald (recorded as reached), te laat
    (due and not reached), op schema (work for it has started: a campaign, publication or event),
    nog niet gestart."""
    today = as_of.astimezone(ZONE).date()
    rows = []
    for ms in project.milestones.values():
        pubs = [p for p in publications if ms.id in p.milestones]
        served = [e for e in events if ms.id in e.milestones]
        started = pubs or any(e.starts.date() <= today for e in served) or any(
            ms.id in c.meta.milestones and c.meta.status == m.CampaignStatus.approved and c.meta.start <= today
            for c in project.campaigns.values())
        if ms.achieved is not None and ms.achieved <= today:
            status = "behaald"
        elif ms.due is not None and ms.due < today:
            status = "te laat"
        else:
            status = "op schema" if started else "nog niet gestart"
        rows.append(MilestoneRow(ms, status, pubs, served))
    rows.sort(key=lambda r: (r.milestone.due or dt.date.max, r.milestone.id))
    return rows


@dataclass
class PlanRow:
    campaign: str
    label: str
    counts: Reliability


def _plan_rows(project: Project, items: list[dict[str, Any]], period: Period) -> list[PlanRow]:
    """Plan versus actual per campaign: what was planned in the period and what became of it."""
    by_campaign: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in items:
        by_campaign[row["campaign"]].append(row)
    rows = [PlanRow(c, _labels(project, "campaign", c), _reliability(rows, period)) for c, rows in by_campaign.items()]
    return sorted([r for r in rows if r.counts.planned], key=lambda r: (-r.counts.planned, r.campaign))


@dataclass
class Outlook:
    period: Period
    posts: int  # social posts (a post shared by several audiences once)
    newsletters: int  # editions (one per audience)
    held: int  # of these, waiting for approval
    by_campaign: list[tuple[str, int, int]]  # label, posts, newsletters
    events: list[EventRow]


def _outlook(ledger: Ledger, project: Project, period: Period, events: list[EventRow]) -> Outlook:
    """The quarter after the report period: what is planned (or held for approval) in the ledger."""
    ahead = current_quarter(period.end_utc + dt.timedelta(hours=12))
    rows = [r for r in ledger.items_between(ahead.start_utc, ahead.end_utc)
            if r["state"] in ("planned", "held") and ahead.contains(r["slot_utc"].replace(tzinfo=UTC))]
    email = {c for c, config in project.channels.items() if isinstance(config, EmailSettings)}
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        per[row["campaign"]][1 if row["channel"] in email else 0] += 1
    by_campaign = sorted(((_labels(project, "campaign", c), n[0], n[1]) for c, n in per.items()),
                         key=lambda t: (-(t[1] + t[2]), t[0]))
    return Outlook(ahead, sum(n[0] for n in per.values()), sum(n[1] for n in per.values()),
                   sum(1 for r in rows if r["state"] == "held"), by_campaign,
                   [e for e in events if ahead.contains(e.starts)])


def summary(report: "Report") -> list[str]:
    """A few sentences on top of the report, generated from its figures."""
    from dissemination.report.format import percent

    def shown(f: Figure) -> str:
        return "n.b." if f.is_unknown else ("ten minste " if f.is_partial else "") + number(f.value)

    t, p = report.totals.current, report.totals.previous
    out = [f"In {report.period.dutch()} verschenen {number(t['publications'].value)} publicaties "
           f"(vorige periode {number(p['publications'].value)}), met een bereik van {shown(t['reach'])}, "
           f"{shown(t['interactions'])} interacties en {shown(t['clicks'])} klikken."]
    rel = report.reliability
    if rel.planned:
        out.append(f"Van de {rel.planned} geplande publicaties gingen er {rel.on_time} op tijd uit; "
                   f"{rel.missed} gemist, {rel.failed} mislukt en {rel.held} wachten op goedkeuring"
                   + (f" (op tijd: {percent(rel.on_time_share.amount)})." if rel.on_time_share.known else "."))
    if report.targets:
        counts = Counter(r.status for r in report.targets)
        out.append(f"Doelen: {counts['gehaald']} gehaald, {counts['op koers']} op koers, {counts['achter']} achter"
                   f" en {counts['n.b.']} niet te beoordelen.")
    if report.milestones:
        counts = Counter(r.status for r in report.milestones)
        out.append("Mijlpalen: " + ", ".join(f"{counts[s]} {s}" for s in MILESTONE_STATUSES) + ".")
    if report.events:
        registered = [e.registrations for e in report.events if e.registrations is not None]
        attended = [e.attendance for e in report.events if e.attendance is not None]
        out.append(f"{len(report.events)} evenement(en) in deze periode: {number(sum(registered))} aanmeldingen en "
                   f"{number(sum(attended))} deelnemers" + ("" if len(attended) == len(report.events) else
                                                           " (nog niet van alle evenementen ingevuld)") + ".")
    missing = report.coverage.audiences
    out.append(f"{len(missing)} doelgroep(en) kregen in deze periode geen publicatie: "
               + ", ".join(a.name for a, _ in missing) + "." if missing
               else "Elke doelgroep kreeg ten minste één publicatie.")
    if report.outlook is not None:
        o = report.outlook
        out.append(f"Volgend kwartaal ({o.period.dutch()}) staan {o.posts} berichten, {o.newsletters} "
                   f"nieuwsbrief-edities en {len(o.events)} evenement(en) gepland"
                   + (f"; {o.held} daarvan wachten op goedkeuring." if o.held else "."))
    return out


def build_report(ledger: Ledger, project: Project, period: Period, as_of: dt.datetime,
                 top: int = 10) -> Report:
    from dissemination.report.partners import partner_reach, partner_section

    previous_period = period.previous()
    current = load_period(ledger, project, period, as_of)
    previous = load_period(ledger, project, previous_period, as_of)
    baselines: dict[str, PeriodData] = {previous_period.label: previous, period.label: current}
    target_rows: list[TargetRow] = []
    for target in project.targets:
        if target.period and target.period != period.label:
            continue
        baseline = None
        if target.baseline:
            if target.baseline not in baselines:
                baselines[target.baseline] = load_period(ledger, project, parse_period(target.baseline), as_of)
            baseline = baselines[target.baseline]
        target_rows += _target_rows(ledger, project, target, current, as_of, baseline,
                                    lambda p: partner_reach(ledger, project, p, as_of))
    totals = Row("totaal", "Totaal", figures(current.publications), figures(previous.publications))
    sections = {dim: _rows(project, dim, current.publications, previous.publications, period) for dim in DIMENSIONS}
    ranked = sorted(current.publications, key=lambda p: (
        -(p.values["interactions"].value or -1), -(p.values["reach"].value or -1), p.published_at, p.id))
    labels = {c: _channel_label(project, c) for c in {p.channel for p in current.publications} | set(project.channels)}
    name = project.programme.programme.name if project.programme else "Programma"
    events = _events(project)
    report = Report(name, period, previous_period, as_of, totals, sections, target_rows,
                    _coverage(project, current.publications), ranked[:top], _reliability(current.items, period),
                    current.publications, labels, _milestone_rows(project, current.publications, events, as_of),
                    [e for e in events if period.contains(e.starts)], _plan_rows(project, current.items, period),
                    _outlook(ledger, project, period, events))
    report.partners = partner_section(ledger, project, period, previous_period, as_of) if project.partners else None
    report.summary = summary(report)
    return report
