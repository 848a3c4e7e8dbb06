"""What a template sees: the context of one rendering and the helper filters.

Context (every template):
    campaign   title, goal, hashtags, utm_campaign, event, start, end, timezone, id
    intro      the campaign intro (Markdown text)
    post       id, title
    body       the post text, itself rendered as a template (channel templates only)
    audience   id, name, description, tone, language
    channel    id, kind, medium, max_characters, characters_reserved_per_url, markup, max_images
    item       the featured knowledge item (cadence occurrence, else the post's first), or none
    items      the knowledge items of a newsletter issue (e-mail only)
    event      the campaign's event, or none
    slot       when it goes out, in the campaign's time zone
    link       the main link (featured item, else event registration), UTM-tagged, or none
    hashtags   the campaign's hashtags without '#'

Filters: `utm` (tag a link), `hashtags` (['a', 'b'] -> '#a #b'), `datum` ('dinsdag 3 maart
2027'), `tijd` ('09:30'), `datumtijd`, `mention` (a stakeholder id -> a mention in the channel's
syntax), `markdown` (Markdown -> safe HTML, for e-mail templates).

Values are small read-only views, not the loaded files, so a template can only read what is here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from dissemination.load import models as m
from dissemination.load.readers import KnowledgeItem
from dissemination.render.attribution import Utm
from dissemination.publish.channels.base import Capabilities, Channel

DAYS = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"]
MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
          "oktober", "november", "december"]


def datum(value: dt.date | dt.datetime, weekday: bool = True) -> str:
    """A Dutch date: 'dinsdag 3 maart 2027' (or '3 maart 2027' with weekday=False)."""
    text = f"{value.day} {MONTHS[value.month - 1]} {value.year}"
    return f"{DAYS[value.weekday()]} {text}" if weekday else text


def tijd(value: dt.datetime | dt.time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def datumtijd(value: dt.datetime) -> str:
    return f"{datum(value)} om {tijd(value)}"


def hashtags(tags: list[str] | tuple[str, ...]) -> str:
    return " ".join(f"#{t.lstrip('#')}" for t in tags)


@cache
def _markdown_parser() -> Any:
    from markdown_it import MarkdownIt  # only newsletters need it; keep `check` quick to start

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def markdown(text: str) -> Markup:
    """Markdown to HTML; raw HTML in the text is escaped, never passed through."""
    return Markup(_markdown_parser().render(str(text)))


@dataclass(frozen=True)
class ChannelView:
    id: str
    kind: str
    medium: str
    markup: str
    max_characters: int | None
    characters_reserved_per_url: int | None
    max_images: int

    @classmethod
    def of(cls, channel_id: str, caps: Capabilities) -> "ChannelView":
        # Templates keep the names they have always seen.
        return cls(channel_id, caps.kind, caps.medium, caps.markup, caps.max_length, caps.url_weight, caps.max_images)


@dataclass(frozen=True)
class ItemView:
    id: str
    title: str
    type: str
    summary: str
    url: str  # as written
    link: str  # UTM-tagged
    image: str | None
    image_alt: str | None
    published: dt.date
    themes: tuple[str, ...]
    body: str

    @classmethod
    def of(cls, item: KnowledgeItem, utm: Utm, image: str | None) -> "ItemView":
        meta = item.meta
        return cls(meta.id, meta.title, meta.type.value, meta.summary, meta.url, utm.tag(meta.url), image,
                   meta.image_alt, meta.published, tuple(meta.themes), item.body)


@dataclass(frozen=True)
class CampaignView:
    id: str
    title: str
    goal: str
    hashtags: tuple[str, ...]
    utm_campaign: str
    start: dt.date
    end: dt.date
    timezone: str
    event: m.Event | None
    intro: str

    @classmethod
    def of(cls, campaign: Any) -> "CampaignView":
        meta = campaign.meta
        return cls(meta.id, meta.title, meta.goal, tuple(meta.hashtags), meta.utm_campaign or meta.id,
                   meta.start, meta.end, meta.timezone, meta.event, campaign.intro)


@dataclass(frozen=True)
class PostView:
    id: str
    title: str


@dataclass(frozen=True)
class AudienceView:
    id: str
    name: str
    description: str
    tone: str
    language: str


def audience_view(audience_id: str, audience: m.Audience | None) -> AudienceView:
    if audience is None:
        return AudienceView(audience_id, audience_id, "", "", "nl")
    return AudienceView(audience.id, audience.name, audience.description, audience.tone, audience.language)


@dataclass(frozen=True)
class Bound:
    """What the contextual filters need of one rendering (kept in the context as `_bound`)."""

    utm: Utm
    channel: type[Channel]  # its `mention`
    stakeholders: dict[str, m.Stakeholder]


def mention(bound: Bound, stakeholder_id: str) -> str:
    """A stakeholder named in the channel's own syntax; its plain name where it has no account."""
    stakeholder = bound.stakeholders.get(stakeholder_id)
    if stakeholder is None:
        raise ValueError(f"unknown stakeholder '{stakeholder_id}' in mention")
    return bound.channel.mention(stakeholder) or stakeholder.name


@pass_context
def _utm(context: Context, url: str) -> str:
    return context["_bound"].utm.tag(str(url))


@pass_context
def _mention(context: Context, stakeholder_id: str) -> str:
    return mention(context["_bound"], str(stakeholder_id))


FILTERS: dict[str, Any] = {
    "utm": _utm,
    "hashtags": hashtags,
    "datum": datum,
    "tijd": tijd,
    "datumtijd": datumtijd,
    "mention": _mention,
    "markdown": markdown,
}
