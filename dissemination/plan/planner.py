"""The planner: approved campaigns become publication items for the ledger.

An item is (campaign, post, audience, channel, occurrence) with its slot. Its idempotency key is
derived from that identity alone, never from the time of planning, the slot or the text: a post
that is rescheduled or edited keeps its key, so it can never go out twice.

Audiences and channels: a newsletter is an item per audience (each audience gets its own
edition). On a social channel every follower sees every status, so the audiences of a post share
one item (audience `*`) unless an audience has text of its own there (a variant naming it, or an
audience template for that channel); then it gets its own item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dissemination.approval import hold_reason
from dissemination.load import models as m
from dissemination.load.project import Project
from dissemination.load.readers import Campaign, Post
from dissemination.plan.schedule import Slot
from dissemination.problems import Problem

if TYPE_CHECKING:  # the ledger (SQLAlchemy, Alembic) is imported where items are made, not by `check`
    from dissemination.ledger import PlannedItem

SHARED_AUDIENCE = "*"


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
    audiences = list(post.meta.audiences or campaign.meta.audiences)
    channel = project.channels.get(channel_id)
    if isinstance(channel, m.EmailChannel) or len(audiences) == 1:
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
    """`utm_content` of an item for several audiences: their ids joined by '.', which no id
    contains and a URL needs no escaping for ("mkb.verladers"). Naming only the first audience
    would credit it with every visit the shared post brings. None for one audience: its id."""
    return ".".join(audiences) if len(audiences) > 1 else None


def _payload(rendered: Any) -> dict[str, Any]:
    payload = {key: getattr(rendered, key, None) for key in ("text", "html", "subject", "link")}
    if getattr(rendered, "image", None):  # only then: items without an image keep their digest
        payload |= {"image": rendered.image, "image_alt": rendered.image_alt}
    return payload


def _editions(project: Project, campaign: Campaign, post: Post, channel_id: str) -> dict[str, Any]:
    """A newsletter's editions in the campaign's audience order: a contact in several of its
    audiences gets only the first of them (see publish/recipients.py)."""
    if not isinstance(project.channels.get(channel_id), m.EmailChannel):
        return {}
    return {"editions": list(post.meta.audiences or campaign.meta.audiences)}


def plan_items(project: Project, slots: dict[str, list[Slot]], renderer: Renderer) -> tuple[list[PlannedItem], list[Held], list[Problem]]:
    from dissemination.ledger import PlannedItem

    planned: list[PlannedItem] = []
    held: list[Held] = []
    problems: list[Problem] = []
    for campaign in project.campaigns.values():
        if campaign.meta.status != m.CampaignStatus.approved:
            continue  # drafts are never published; paused and archived campaigns are not planned
        reason = hold_reason(campaign)
        if reason:
            held.append(Held(campaign.id, reason))
        occurrence: dict[str, int] = {}
        for slot in sorted(slots.get(campaign.id, []), key=lambda s: (s.post, s.utc)):
            post = campaign.post(slot.post)
            if post is None:
                continue
            n = slot.occurrence if slot.occurrence is not None else occurrence.get(post.id, 0)
            occurrence[post.id] = n + 1
            for channel_id in post.meta.channels or campaign.meta.channels:
                editions = _editions(project, campaign, post, channel_id)
                for audience_id, members in audience_groups(project, campaign, post, channel_id, renderer):
                    rendered, trouble = renderer.render(campaign, post, channel_id, members[0], slot,
                                                        shared_content(members))
                    problems += trouble
                    if rendered is None:
                        continue
                    payload = _payload(rendered) | {"audiences": members} | editions
                    planned.append(PlannedItem(
                        campaign=campaign.id, post=post.id, audience=audience_id, channel=channel_id,
                        occurrence=n, slot_utc=slot.utc, timezone=slot.timezone, payload=payload,
                        knowledge=slot.knowledge, state="held" if reason else "planned", reason=reason))
    return planned, held, problems


def write_event_calendar(campaign: Campaign, folder: Path) -> Path | None:
    """An .ics file for a campaign's event, so it can be linked from posts and newsletters."""
    event = campaign.meta.event
    if event is None:
        return None
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(campaign.meta.timezone)

    def stamp(moment) -> str:  # type: ignore[no-untyped-def]
        aware = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        return aware.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")

    ends = event.ends or event.starts.replace(hour=min(event.starts.hour + 2, 23))
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//dissemination//campaigns as code//NL", "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT", f"UID:{campaign.id}@dissemination", f"DTSTAMP:{stamp(event.starts)}",
        f"DTSTART:{stamp(event.starts)}", f"DTEND:{stamp(ends)}", f"SUMMARY:{escape(event.name)}",
        f"LOCATION:{escape(event.place)}",
    ]
    if event.registration_url:
        lines.append(f"URL:{event.registration_url}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{campaign.id}.ics"
    target.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    return target
