"""Simulation: the plan played forward, to see mistakes before anything goes out.

Every slot of every draft and approved campaign becomes what the planner would make of it (one
post per audience group on a social channel, one newsletter edition per audience), and the
simulation reports, as `path:line` problems:

- collisions: two posts on one channel account closer than its `min_gap` (channels.yaml, 30 min
  by default; every follower sees both, the second buries the first), and an audience that gets
  more than one newsletter on a day;
- platform quotas over the whole plan, at the first slot that would hit each: Mastodon's 300
  statuses per 3 hours and 30 media uploads per 30 minutes per account (an image's size and
  type are checked where it is named, load/project.py); LinkedIn's 150 posts per member per day
  (reset at 00:00 UTC);
- newsletters for an audience without a consented recipient (an error unless the campaign says
  why with `without_recipients: <reason>`);
- slots written without a time of day (`slot: 2027-02-09` would silently mean midnight);
- knowledge items a newsletter leaves out because they are published after its date (warning).

Beside the problems it gives each newsletter's recipient count and projected finish time, the
contacts per stakeholder per ISO week and quadrant, and the posts that take a stakeholder over
its monthly contact budget (plan/budget.py reports those as problems; here they are named post by
post). Nothing here reads the network or writes the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dissemination.files import write_atomically
from dissemination.load import models as m
from dissemination.load.project import Project
from dissemination.plan.budget import COUNTED
from dissemination.plan.planner import audience_groups
from dissemination.plan.schedule import Slot
from dissemination.problems import Problem
from dissemination.publish.channels.email import EmailSettings

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Quota:
    what: str
    limit: int
    period: dt.timedelta
    rule: str  # whose rule, for the message
    media_only: bool = False

    @property
    def per(self) -> str:
        hours = self.period.total_seconds() / 3600
        return "day" if hours == 24 else f"{hours:g} h" if hours >= 1 else f"{self.period.total_seconds() / 60:g} min"


# Platform limits per account (see docs/channels.md). The windows are fixed and aligned to the
# period, as the platforms count them: Mastodon's rate limiter and LinkedIn's midnight-UTC reset.
QUOTAS: dict[str, tuple[Quota, ...]] = {
    "mastodon": (Quota("statuses", 300, dt.timedelta(hours=3), "Mastodon allows"),
                 Quota("media uploads", 30, dt.timedelta(minutes=30), "Mastodon allows", media_only=True)),
    "linkedin": (Quota("posts", 150, dt.timedelta(days=1), "LinkedIn's share limit allows"),),
}
# Messages per minute one SMTP connection manages (a transaction takes ~0.5 s on a relay),
# used until the ledger has measured the channel's own rate.
ASSUMED_PER_CONNECTION = 120


@dataclass(slots=True)  # not frozen: a year of a thousand campaigns makes 100,000 of them
class Occurrence:
    """One publication the plan will make: a post at a slot on a channel, for an audience group."""
    campaign: str
    post: str
    channel: str
    kind: str
    audience: str  # the ledger's audience: one id, or "*" for several sharing one post
    audiences: tuple[str, ...]
    slot: Slot
    draft: bool
    path: str
    utc: dt.datetime  # the slot's instant in UTC, computed once: everything sorts and windows on it
    image: str | None = None

    @property
    def label(self) -> str:
        return f"{self.campaign}/{self.post}"


@dataclass(frozen=True)
class Forecast:
    """A newsletter edition's projected send."""
    occurrence: Occurrence
    recipients: int
    per_minute: float
    measured: bool  # the rate comes from earlier sends in the ledger

    @property
    def finish(self) -> dt.datetime:
        return self.occurrence.utc + dt.timedelta(minutes=self.recipients / self.per_minute)


@dataclass
class Simulation:
    start: dt.datetime | None
    end: dt.datetime | None
    occurrences: list[Occurrence]
    problems: list[Problem]
    forecasts: list[Forecast]
    weekly: dict[tuple[str, str], tuple[int, str]]  # (ISO week, quadrant) -> (most contacts, stakeholder)
    over_budget: list[str]
    quota_peaks: dict[tuple[str, str], tuple[int, Quota, dt.datetime]]  # (channel, what) -> (most, quota, window)
    budgets: dict[str, int]  # stakeholder -> contacts per month

    def report(self) -> str:
        """The simulation as plain text: what `plan --simulate` prints and writes."""
        span = (f"{self.start:%Y-%m-%d %H:%M} UTC" if self.start else "the beginning") + " to " + (
            f"{self.end:%Y-%m-%d %H:%M} UTC" if self.end else "the end")
        newsletters = sum(o.kind == "email" for o in self.occurrences)
        drafts = len({o.campaign for o in self.occurrences if o.draft})
        lines = [f"simulation from {span}: {len(self.occurrences)} publications ({newsletters} newsletters), "
                 f"{len({o.campaign for o in self.occurrences})} campaigns ({drafts} draft)"]
        errors = sorted(p for p in self.problems if p.severity == "error")
        warnings = sorted(p for p in self.problems if p.severity == "warning")
        lines += [str(p) for p in errors + warnings]
        lines.append(f"{len(errors)} error(s), {len(warnings)} warning(s)")
        if self.forecasts:
            lines.append("newsletters (recipients, projected finish):")
            for f in self.forecasts:
                o = f.occurrence
                local, finish = o.slot.local, f.finish.astimezone(o.slot.local.tzinfo)
                how = "measured in the ledger" if f.measured else "channel rate and connections"
                took = (f.finish - o.utc).total_seconds()
                lines.append(f"  {local:%Y-%m-%d %H:%M} {o.label} to {o.audience} on {o.channel}"
                             f"{' (draft)' if o.draft else ''}: {f.recipients} recipient(s), done ~"
                             f"{finish:%H:%M:%S} after {took / 60:.1f} min ({f.per_minute:g}/min, {how})")
        if self.quota_peaks:
            lines.append("platform quotas (busiest window):")
            for (channel, what), (most, quota, window) in sorted(self.quota_peaks.items()):
                lines.append(f"  {channel}: {most} of {quota.limit} {what} per {quota.per} "
                             f"(from {window:%Y-%m-%d %H:%M} UTC)")
        if self.weekly:
            lines.append("contacts with one stakeholder per week (most in each quadrant):")
            weeks: dict[str, list[str]] = defaultdict(list)
            for (week, quadrant), (n, who) in sorted(self.weekly.items()):
                weeks[week].append(f"{quadrant.replace('_', ' ')} {n} ({who}; budget {self.budgets[who]}/month)")
            lines += [f"  {week}: " + ", ".join(parts) for week, parts in weeks.items()]
        if self.over_budget:
            lines.append("posts over a stakeholder's monthly contact budget:")
            lines += [f"  {line}" for line in self.over_budget]
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        def stamp(moment: dt.datetime) -> str:
            return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

        return {
            "from": stamp(self.start) if self.start else None, "to": stamp(self.end) if self.end else None,
            "publications": len(self.occurrences),
            "problems": [{"path": p.path, "line": p.line, "severity": p.severity, "message": p.message,
                          "hint": p.hint} for p in sorted(self.problems)],
            "newsletters": [{"campaign": f.occurrence.campaign, "post": f.occurrence.post,
                             "audience": f.occurrence.audience, "channel": f.occurrence.channel,
                             "slot": stamp(f.occurrence.utc), "draft": f.occurrence.draft,
                             "recipients": f.recipients, "per_minute": f.per_minute, "measured": f.measured,
                             "finish": stamp(f.finish)} for f in self.forecasts],
            "over_budget": self.over_budget,
        }

    def write(self, folder: Path) -> Path:
        """simulation.txt and simulation.json in `folder` (made if need be); returns the first."""
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / "simulation.txt", self.report())
        write_atomically(folder / "simulation.json", json.dumps(self.as_json(), ensure_ascii=False, indent=2) + "\n")
        return folder / "simulation.txt"


def occurrences(project: Project, slots: dict[str, list[Slot]], renderer: Any,
                start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[Occurrence]:
    """What the planner would make of every slot of the draft and approved campaigns in [start, end)."""
    return _expand(project, slots, renderer, start, end)[0]


def _expand(project: Project, slots: dict[str, list[Slot]], renderer: Any, start: dt.datetime | None,
            end: dt.datetime | None) -> tuple[list[Occurrence], list[Occurrence]]:
    """The occurrences in time order, and the first of each post slot (one contact each)."""
    timed: list[tuple[dt.datetime, str, str, Slot, list[tuple[str, str, str, tuple[str, ...]]], bool, str,
                      str | None]] = []
    for campaign_id, campaign_slots in slots.items():
        campaign = project.campaigns[campaign_id]
        if campaign.meta.status not in COUNTED:
            continue
        draft = campaign.meta.status == m.CampaignStatus.draft
        # (channel, kind, audience, members) per post, once: a series repeats them every week
        targets: dict[str, list[tuple[str, str, str, tuple[str, ...]]]] = {}
        for post in campaign.posts:
            targets[post.id] = [
                (channel_id, project.channels[channel_id].kind, audience, tuple(members))
                for channel_id in post.meta.channels or campaign.meta.channels if channel_id in project.channels
                for audience, members in audience_groups(project, campaign, post, channel_id, renderer)]
        posts = {p.id: p for p in campaign.posts}
        for slot in campaign_slots:
            utc = slot.utc
            if (start and utc < start) or (end and utc >= end):
                continue
            slot_post = posts.get(slot.post)
            if slot_post is None:
                continue
            post = slot_post
            image = post.meta.image
            if image is None and slot.knowledge and slot.knowledge in project.knowledge:
                image = project.knowledge[slot.knowledge].meta.image
            timed.append((utc, campaign_id, post.id, slot, targets[post.id], draft, campaign.path, image))
    # Sorting the post slots, not the twice as many occurrences: same order, half the work.
    timed.sort(key=lambda t: t[:3])
    found: list[Occurrence] = []
    firsts: list[Occurrence] = []
    for utc, campaign_id, post_id, slot, post_targets, draft, path, image in timed:
        here = [Occurrence(campaign_id, post_id, channel_id, kind, audience, members, slot, draft, path, utc,
                           image if kind != "email" else None)
                for channel_id, kind, audience, members in post_targets]
        if here:
            firsts.append(here[0])
            found += here
    return found, firsts


def simulate(project: Project, slots: dict[str, list[Slot]], renderer: Any = None,
             start: dt.datetime | None = None, end: dt.datetime | None = None,
             measured_rates: dict[str, float] | None = None,
             recipients: dict[str, frozenset[str]] | None = None) -> Simulation:
    """`recipients`: the active subscribers of each list (audience), from the subscriber
    database; None when there is none to read (then recipient counts are unknown, not zero)."""
    if renderer is None:
        from dissemination.render import Renderer

        renderer = Renderer(project)
    found, firsts = _expand(project, slots, renderer, start, end)
    problems: list[Problem] = []
    problems += _untimed_slots(project)
    problems += _collisions(project, found)
    problems += _newsletters_per_day(found)
    quota_problems, peaks = _quotas(project, found)
    problems += quota_problems
    forecasts, trouble = _newsletters(project, found, recipients, measured_rates or {})
    problems += trouble
    weekly, over = _contacts(project, firsts)
    budgets = {s: project.contact_budget(s) for s in project.stakeholders}
    return Simulation(start, end, found, problems, forecasts, weekly, over, peaks, budgets)


def _local(o: Occurrence) -> str:
    return f"{o.slot.local:%Y-%m-%d %H:%M}"


def _untimed_slots(project: Project) -> list[Problem]:
    """`slot: 2027-02-09` reads as a date, which the loader would take for midnight."""
    out = []
    for campaign in project.campaigns.values():
        if campaign.meta.status not in COUNTED:
            continue
        for post in campaign.posts:
            data = post.meta_doc.data if post.meta_doc is not None else None
            if not isinstance(data, dict):
                continue
            written: list[tuple[tuple[str | int, ...], object]] = [(("slot",), data.get("slot"))]
            if isinstance(data.get("slots"), list):
                written += [(("slots", j), v) for j, v in enumerate(data["slots"])]
            for loc, value in written:
                if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                    out.append(Problem(campaign.path, post.line_of(loc), f"slot {value} has no time of day "
                                       "(it would go out at midnight)", f"give a time, e.g. {loc[0]}: {value} 10:00"))
    return out


def _collisions(project: Project, found: list[Occurrence]) -> list[Problem]:
    """Posts on one social account closer together than the channel's min_gap. One problem per
    (slot line, earlier post): a series colliding every week is one mistake, written once.

    Audiences with text of their own on a channel get a post each at the same slot (plan/planner.py):
    the author chose that, so it is a warning, not an error (none when the campaign says why with
    `separate_audience_posts`); every follower still sees them all."""
    last: dict[str, Occurrence] = {}
    grouped: dict[tuple[str, int, str, str], list[tuple[Occurrence, Occurrence]]] = {}
    twins: dict[tuple[str, int, str, str], dict[str, Occurrence]] = {}
    for o in found:
        if o.kind == "email":
            continue  # newsletters: an edition per audience at once is the design; see _newsletters_per_day
        gap = project.channels[o.channel].min_gap
        before = last.get(o.channel)
        last[o.channel] = o
        if before is None or not gap or o.utc - before.utc >= gap:
            continue
        if before.label == o.label and before.utc == o.utc:
            if project.campaigns[o.campaign].meta.separate_audience_posts:
                continue  # the campaign says why
            same = twins.setdefault((o.path, o.slot.line, o.channel, o.label), {})
            same.setdefault(before.audience, before)
            same.setdefault(o.audience, o)
            continue
        grouped.setdefault((o.path, o.slot.line, o.channel, before.label), []).append((before, o))
    out = []
    for (path, line, channel, _), pairs in grouped.items():
        before, o = pairs[0]
        minutes = int((o.utc - before.utc).total_seconds() // 60)
        when = "at the same time as" if minutes == 0 else f"{minutes} min after"
        more = f"; {len(pairs) - 1} more time(s) until {pairs[-1][1].slot.local:%Y-%m-%d}" if len(pairs) > 1 else ""
        gap = project.channels[channel].min_gap
        out.append(Problem(path, line, f"collision: {o.label} ({_local(o)}) goes out on {channel} {when} "
                           f"{before.label} ({_local(before)}){more}",
                           f"move one of them at least {int(gap.total_seconds() // 60)} min apart, or set "
                           f"min_gap for '{channel}' in channels.yaml"))
    for (path, line, channel, label), by_audience in twins.items():
        o = next(iter(by_audience.values()))
        parts = "; ".join(", ".join(x.audiences) for x in by_audience.values())
        out.append(Problem(path, line, f"collision: '{o.post}' goes out {len(by_audience)} times at once on {channel} "
                           f"({_local(o)}), one post per audience group with text of its own ({parts}); every "
                           "follower sees them all", "give the audiences one text on this channel, or say why with "
                           "'separate_audience_posts: <reason>'", "warning"))
    return out


def _newsletters_per_day(found: list[Occurrence]) -> list[Problem]:
    """An audience gets at most one newsletter a day (in the campaign's time zone)."""
    days: dict[tuple[str, dt.date], list[Occurrence]] = defaultdict(list)
    for o in found:
        if o.kind == "email":
            for audience in o.audiences:
                days[(audience, o.slot.local.date())].append(o)
    grouped: dict[tuple[str, int], list[str]] = defaultdict(list)
    first: dict[tuple[str, int], tuple[Occurrence, list[Occurrence]]] = {}
    for (audience, day), sent in days.items():
        distinct = list({(o.label, o.slot.utc): o for o in sent}.values())
        if len(distinct) < 2:
            continue
        for o in distinct[1:]:
            key = (o.path, o.slot.line)
            grouped[key].append(audience)
            first.setdefault(key, (o, distinct))
    out = []
    for key, audiences in grouped.items():
        o, distinct = first[key]
        others = ", ".join(f"{d.label} ({d.slot.local:%H:%M})" for d in distinct if d is not o)
        out.append(Problem(o.path, o.slot.line, f"audience(s) {', '.join(sorted(set(audiences)))} get more than one "
                           f"newsletter on {o.slot.local:%Y-%m-%d}: {o.label} ({o.slot.local:%H:%M}) and {others}",
                           "move one newsletter to another day, or merge them"))
    return out


def _quotas(project: Project, found: list[Occurrence]) -> tuple[list[Problem], dict[tuple[str, str], tuple[int, Quota, dt.datetime]]]:
    out: list[Problem] = []
    peaks: dict[tuple[str, str], tuple[int, Quota, dt.datetime]] = {}
    counts: dict[tuple[str, str, int], int] = defaultdict(int)
    reported: set[tuple[str, str, int]] = set()
    for o in found:
        for quota in QUOTAS.get(o.kind, ()):
            if quota.media_only and not o.image:
                continue
            window = int(o.utc.timestamp() // quota.period.total_seconds())
            key = (o.channel, quota.what, window)
            counts[key] += 1
            n = counts[key]
            peak = peaks.get((o.channel, quota.what))
            if peak is None or n > peak[0]:
                peaks[(o.channel, quota.what)] = (n, quota, EPOCH + window * quota.period)
            if n > quota.limit and key not in reported:
                reported.add(key)
                begins = EPOCH + window * quota.period
                out.append(Problem(o.path, o.slot.line, f"quota: {o.label} ({_local(o)}) would be number {n} of "
                                   f"{o.channel}'s {quota.what} in the {quota.per} from {begins:%Y-%m-%d %H:%M} UTC; "
                                   f"{quota.rule} {quota.limit} per {quota.per}",
                                   "spread the posts over more time, or over more accounts"))
    return out, peaks


def _newsletters(project: Project, found: list[Occurrence], consented: dict[str, frozenset[str]] | None,
                 measured: dict[str, float]) -> tuple[list[Forecast], list[Problem]]:
    forecasts: list[Forecast] = []
    out: list[Problem] = []
    empty: dict[tuple[str, int, str], tuple[Occurrence, str]] = {}
    left_out: dict[tuple[str, int, str], set[str]] = defaultdict(set)
    left_out_at: dict[tuple[str, int, str], Occurrence] = {}
    for o in found:
        if o.kind != "email":
            continue
        campaign = project.campaigns[o.campaign]
        post = campaign.post(o.post)
        assert post is not None
        editions = list(post.meta.audiences or campaign.meta.audiences)
        earlier = editions[:editions.index(o.audience)] if o.audience in editions else []
        if consented is None:  # no subscriber database to count: neither empty nor a forecast
            mine = frozenset[str]()
        else:
            mine = consented.get(o.audience, frozenset())
        if consented is not None and earlier and mine:
            mine = mine - frozenset().union(*(consented.get(a, frozenset()) for a in earlier))
        channel = project.channels[o.channel]
        assert isinstance(channel, EmailSettings)
        rate = measured.get(o.channel)
        per_minute = min(rate, channel.rate_per_minute) if rate else min(
            channel.rate_per_minute, channel.connections * ASSUMED_PER_CONNECTION)
        if consented is not None:
            forecasts.append(Forecast(o, len(mine), float(per_minute), bool(rate)))
        line = post.line_of(("audiences",)) if post.meta.audiences else campaign.doc.line_of(("audiences",))
        # An audience whose consented contacts all get an earlier edition is not empty: its
        # edition reaches no one by design (the forecast shows 0), so that is no problem.
        if consented is not None and not consented.get(o.audience) and not campaign.meta.without_recipients:
            empty.setdefault((o.path, line, o.audience), (o, "it has no active subscriber"))
        # knowledge items the issue leaves out for their date (render/newsletter.py issue_items)
        ids = post.meta.knowledge or ([o.slot.knowledge] if o.slot.knowledge else campaign.meta.knowledge)
        day = o.slot.local.date()
        late = [k for k in ids if k in project.knowledge and project.knowledge[k].meta.published > day
                and (not project.knowledge[k].meta.audiences or o.audience in project.knowledge[k].meta.audiences)]
        if late:
            where = post.line_of(("knowledge",)) if post.meta.knowledge else campaign.doc.line_of(("knowledge",))
            key = (o.path, where, f"{o.post}@{o.slot.utc.isoformat()}")
            left_out[key].update(late)
            left_out_at.setdefault(key, o)
    for (path, line, audience), (o, why) in empty.items():
        # A warning, not an error: the subscriber database is not content. People sign up (double
        # opt-in) between planning and the slot, so an empty list today must not stop the plan.
        out.append(Problem(path, line, f"newsletter {o.label} ({_local(o)}) goes to audience '{audience}' with "
                           f"0 recipients: {why}", "import or invite subscribers (dissemination subscribers "
                           "import), leave the audience out, or say why with 'without_recipients: <reason>'",
                           severity="warning"))
    for key, items in left_out.items():
        o = left_out_at[key]
        names = ", ".join(f"{k} (published {project.knowledge[k].meta.published})" for k in sorted(items))
        out.append(Problem(key[0], key[1], f"newsletter {o.label} of {o.slot.local:%Y-%m-%d} leaves out "
                           f"{names}: published after the issue", "move the newsletter later, or feature "
                           "other items", "warning"))
    return forecasts, out


def _contacts(project: Project, found: list[Occurrence]) -> tuple[dict[tuple[str, str], tuple[int, str]], list[str]]:
    """Contacts per stakeholder per ISO week (the most in each quadrant), and the posts that take
    a stakeholder over its monthly budget, counted as plan/budget.py counts them: one post at one
    slot is one contact, however many channels carry it; campaigns with `over_budget` not counted.

    Counted per audience set first and spread over the stakeholders after: a year of a thousand
    campaigns is 50,000 post slots but only a few hundred audience sets."""
    from zoneinfo import ZoneInfo

    members: dict[str, list[str]] = defaultdict(list)
    for stakeholder in project.stakeholders.values():
        for audience in stakeholder.audiences:
            members[audience].append(stakeholder.id)
    budgets = {s: project.contact_budget(s) for s in project.stakeholders}
    quadrants = {s.id: s.quadrant.value for s in project.stakeholders.values()}
    by_week: dict[tuple[tuple[str, ...], str], int] = defaultdict(int)
    by_month: dict[tuple[tuple[str, ...], str], list[Occurrence]] = defaultdict(list)
    audiences_of: dict[tuple[str, str], tuple[str, ...]] = {}
    periods: dict[dt.date, tuple[str, str]] = {}
    for o in found:  # the first occurrence of each post slot: one contact, however many channels
        campaign = project.campaigns[o.campaign]
        if campaign.meta.over_budget:
            continue
        audiences = audiences_of.get((o.campaign, o.post))
        if audiences is None:
            post = campaign.post(o.post)
            audiences = tuple(sorted((post.meta.audiences if post else None) or campaign.meta.audiences))
            audiences_of[(o.campaign, o.post)] = audiences
        day = o.slot.local.date()
        if day not in periods:
            iso = day.isocalendar()
            periods[day] = (f"{iso[0]}-W{iso[1]:02d}", f"{day:%Y-%m}")
        week, month = periods[day]
        by_week[(audiences, week)] += 1
        by_month[(audiences, month)].append(o)
    reach: dict[tuple[str, ...], set[str]] = {}
    for audiences, _ in list(by_week) + list(by_month):
        if audiences not in reach:
            reach[audiences] = {s for a in audiences for s in members.get(a, ())}
    weekly: dict[tuple[str, str], int] = defaultdict(int)
    for (audiences, week), n in by_week.items():
        for s in reach[audiences]:
            weekly[(s, week)] += n
    monthly: dict[tuple[str, str], int] = defaultdict(int)
    for (audiences, month), posts in by_month.items():
        for s in reach[audiences]:
            monthly[(s, month)] += len(posts)
    most: dict[tuple[str, str], tuple[int, str]] = {}
    for (s, week), n in sorted(weekly.items()):  # sorted: ties name the same stakeholder every run
        q = (week, quadrants[s])
        if q not in most or n > most[q][0]:
            most[q] = (n, s)
    # Only for the (stakeholder, month) pairs over budget: walk that month's posts in time order.
    over: dict[tuple[str, str, dt.datetime], list[str]] = {}
    for (s, month), total in monthly.items():
        if total <= budgets[s]:
            continue
        posts = sorted((o for (audiences, m_), os in by_month.items() if m_ == month and s in reach[audiences]
                        for o in os), key=lambda o: (o.utc, o.campaign, o.post))
        for o in posts[budgets[s]:]:
            over.setdefault((o.campaign, o.post, o.utc), []).append(s)
    lines = []
    for (campaign_id, post_id, utc), stakeholders in sorted(over.items(), key=lambda kv: (kv[0][2], kv[0][:2])):
        local = utc.astimezone(ZoneInfo(project.campaigns[campaign_id].meta.timezone))
        names = sorted(stakeholders)
        lines.append(f"{local:%Y-%m-%d %H:%M} {campaign_id}/{post_id}: over the monthly budget of "
                     f"{', '.join(names[:3])}{f' and {len(names) - 3} more' if len(names) > 3 else ''}")
    return most, lines
