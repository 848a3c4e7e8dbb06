"""The planner: approved campaigns become publication items for the ledger.

An item is (campaign, post, audience, channel, occurrence) with its slot. Its idempotency key is
derived from that identity alone, never from the time of planning, the slot or the text: a post
that is rescheduled or edited keeps its key, so it can never go out twice.

Audiences and channels: an audience gets a post only on the channels its stakeholder map entry
lists (see `targeting`). A newsletter is an item per audience (each audience gets its own
edition). On a social channel every follower sees every status, so the audiences of a post share
one item (audience `*`) unless an audience has text of its own there (a variant naming it, or an
audience template for that channel); then it gets its own item.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dissemination.approval import SourceDigests, hold_reason, sources_hold_reason
from dissemination.contained import inside
from dissemination.files import write_atomically
from dissemination.load import models as m
from dissemination.load.project import Project
from dissemination.load.readers import Campaign, Post
from dissemination.plan.schedule import Slot
from dissemination.plan.targeting import audiences_on
from dissemination.problems import Problem
from dissemination.publish.channels import capabilities_of

if TYPE_CHECKING:  # the ledger (SQLAlchemy, Alembic) is imported where items are made, not by `check`
    from dissemination.ledger import PlannedItem

SHARED_AUDIENCE = "*"
EVENTS = "events"


class Renderer(Protocol):
    def render(self, campaign: Campaign, post: Post, channel_id: str, audience_id: str,
               slot: Slot, utm_content: str | None = None) -> tuple[Any, list[Problem]]: ...

    def audience_specific(self, channel_id: str, audience_id: str) -> bool: ...


@dataclass(frozen=True)
class Held:
    campaign: str
    reason: str


def audience_groups(project: Project, campaign: Campaign, post: Post, channel_id: str,
                    renderer: Renderer) -> list[tuple[str, list[str]]]:
    """(ledger audience, the audiences it serves) of each item of this post on this channel. Only
    audiences whose stakeholder map entry lists the channel (or that the post allows there) get one."""
    audiences = audiences_on(project, campaign, post, channel_id)
    if _newsletter(project, channel_id) or len(audiences) == 1:
        return [(a, [a]) for a in audiences]
    own = [a for a in audiences
           if any(a in v.targets and (len(v.targets) == 1 or channel_id in v.targets) for v in post.variants)
           or renderer.audience_specific(channel_id, a)]
    shared = [a for a in audiences if a not in own]
    groups = [(a, [a]) for a in own]
    if shared:
        groups.append((shared[0], shared) if len(shared) == 1 else (SHARED_AUDIENCE, shared))
    return groups


def shared_content(audiences: list[str]) -> str | None:
    """The audience part of `utm_content` of an item for several audiences: their ids joined by
    '.', which no id contains and a URL needs no escaping for ("mkb.verladers"). Naming only the
    first audience would credit it with every visit the shared post brings. None for one
    audience: its id. The renderer puts the post's id in front (see render/attribution.py)."""
    return ".".join(audiences) if len(audiences) > 1 else None


def _payload(rendered: Any) -> dict[str, Any]:
    payload = {key: getattr(rendered, key, None) for key in ("text", "html", "subject", "link")}
    if getattr(rendered, "image", None):  # only then: items without an image keep their digest
        payload |= {"image": rendered.image, "image_alt": rendered.image_alt}
    if getattr(rendered, "link_title", None):  # LinkedIn's link card
        payload |= {"link_title": rendered.link_title, "link_description": rendered.link_description}
    return payload


def _newsletter(project: Project, channel_id: str) -> bool:
    config = project.channels.get(channel_id)
    return config is not None and capabilities_of(config).newsletter


def _editions(project: Project, campaign: Campaign, post: Post, channel_id: str) -> dict[str, Any]:
    """A newsletter's editions in the campaign's audience order: a contact in several of its
    audiences gets only the first of them (see publish/recipients.py)."""
    if not _newsletter(project, channel_id):
        return {}
    return {"editions": audiences_on(project, campaign, post, channel_id)}


@dataclass
class Rendering:
    """One item-to-be of a campaign: a post at a slot on a channel for a group of audiences."""
    post: Post
    slot: Slot
    occurrence: int
    channel: str
    audience: str  # the ledger's: an audience id, or '*' for a social post several share
    members: list[str]
    rendered: Any


def renderings(project: Project, campaign: Campaign, slots: list[Slot], renderer: Renderer,
               problems: list[Problem]) -> list[Rendering]:
    """Every item a campaign's slots expand into, rendered (problems are added to `problems`)."""
    out: list[Rendering] = []
    occurrence: dict[str, int] = {}
    for slot in sorted(slots, key=lambda s: (s.post, s.utc)):
        post = campaign.post(slot.post)
        if post is None:
            continue
        n = slot.occurrence if slot.occurrence is not None else occurrence.get(post.id, 0)
        occurrence[post.id] = n + 1
        for channel_id in post.meta.channels or campaign.meta.channels:
            for audience_id, members in audience_groups(project, campaign, post, channel_id, renderer):
                rendered, trouble = renderer.render(campaign, post, channel_id, members[0], slot,
                                                    shared_content(members))
                problems += trouble
                if rendered is not None:
                    out.append(Rendering(post, slot, n, channel_id, audience_id, members, rendered))
    return out


def campaign_sources(project: Project, campaign: Campaign, slots: list[Slot], renderer: Renderer,
                     digests: SourceDigests) -> dict[str, str | None]:
    """What `approve` records: every file besides the campaign its posts are rendered from."""
    paths = {p for r in renderings(project, campaign, slots, renderer, []) for p in r.rendered.sources}
    return digests.of(sorted(paths))


def plan_items(project: Project, slots: dict[str, list[Slot]], renderer: Renderer,
               skip: set[str] | None = None) -> tuple[list[PlannedItem], list[Held], list[Problem]]:
    """Items of every approved campaign except those in `skip` (campaigns with errors). An item
    records what it was rendered from (`sources`); one whose sources changed since approval is held."""
    from dissemination.ledger import PlannedItem

    planned: list[PlannedItem] = []
    held: list[Held] = []
    problems: list[Problem] = []
    digests = SourceDigests(project.root)
    for campaign in project.campaigns.values():
        if campaign.meta.status != m.CampaignStatus.approved or campaign.id in (skip or ()):
            continue  # drafts are never published; paused and archived campaigns are not planned
        reason = hold_reason(campaign)
        if reason:
            held.append(Held(campaign.id, reason))
        held_sources: dict[str, None] = {}
        for r in renderings(project, campaign, slots.get(campaign.id, []), renderer, problems):
            used = digests.of(r.rendered.sources)
            item_reason = reason or sources_hold_reason(campaign, used)
            if item_reason and not reason:
                held_sources[item_reason] = None
            editions = _editions(project, campaign, r.post, r.channel)
            payload = _payload(r.rendered) | {"audiences": r.members} | editions
            if used:
                payload["sources"] = used
            planned.append(PlannedItem(
                campaign=campaign.id, post=r.post.id, audience=r.audience, channel=r.channel,
                occurrence=r.occurrence, slot_utc=r.slot.utc, timezone=r.slot.timezone, payload=payload,
                knowledge=r.slot.knowledge, state="held" if item_reason else "planned", reason=item_reason,
                audiences=tuple(r.members)))
        held += [Held(campaign.id, why) for why in held_sources]
    return planned, held, problems


def ics_text(value: str) -> str:
    """A TEXT value per RFC 5545 §3.3.11: backslash, ';' and ',' escaped, every line break (CR LF,
    LF or a bare CR) written as \\n, and other control characters, which TEXT may not hold, dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc")
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics_fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character."""
    out: list[str] = []
    current = ""
    for char in line:
        limit = 75 if not out else 74  # a continuation line starts with a space
        if len((current + char).encode("utf-8")) > limit:
            out.append(current)
            current = ""
        current += char
    out.append(current)
    return "\r\n ".join(out)


def write_event_calendar(campaign: Campaign, root: Path) -> Path | None:
    """An .ics file for a campaign's event in the content root's `events/`, so it can be linked
    from posts and newsletters."""
    event = campaign.meta.event
    if event is None:
        return None
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(campaign.meta.timezone)

    def stamp(moment) -> str:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        return aware.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")

    ends = event.ends or event.starts.replace(hour=min(event.starts.hour + 2, 23))
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//dissemination//campaigns as code//NL", "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT", f"UID:{campaign.id}@dissemination", f"DTSTAMP:{stamp(event.starts)}",
        f"DTSTART:{stamp(event.starts)}", f"DTEND:{stamp(ends)}", f"SUMMARY:{ics_text(event.name)}",
        f"LOCATION:{ics_text(event.place)}",
    ]
    if event.registration_url:
        lines.append(f"URL:{ics_text(str(event.registration_url))}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    target = inside(root, f"{EVENTS}/{campaign.id}.ics", "event calendar")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, "".join(ics_fold(line) + "\r\n" for line in lines))
    return target
