"""Render: every planned post as its channel and audience will receive it.

Read top to bottom: `env` (sandboxed templates, lookup with fallbacks, errors as `file:line`),
`context` (what a template sees, helper filters, Dutch dates), `attribution` (UTM links),
`newsletter` (e-mail issues), `preview` (the static site for comms staff).

`Renderer(project).render(campaign, post, channel_id, audience_id, slot)` is what `check`,
`preview` and the publisher call. It never raises for content: problems come back as a list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dissemination.load import Project
from dissemination.load.readers import Campaign, Post
from dissemination.plan.schedule import Slot
from dissemination.problems import Problem
from dissemination.render.attribution import Utm
from dissemination.publish.channels.base import Capabilities, class_of
from dissemination.render.context import (
    AudienceView,
    Bound,
    CampaignView,
    ChannelView,
    ItemView,
    PostView,
    audience_view,
)
from dissemination.render.env import Templates, TemplateFailure
from dissemination.render.newsletter import (
    UNSUBSCRIBE_PLACEHOLDER,
    WEB_VERSION_PLACEHOLDER,
    image_source,
    inline_css,
    issue_items,
)

__all__ = ["Rendered", "Renderer", "UNSUBSCRIBE_PLACEHOLDER", "over_limit_problem"]


@dataclass(frozen=True)
class Rendered:
    campaign: str
    post: str
    channel: str
    audience: str
    text: str  # mastodon: status text; linkedin: commentary ALREADY escaped in little format; email: plain-text part
    html: str | None  # newsletters only: full HTML with CSS inlined, containing the unsubscribe placeholder
    subject: str | None  # email only
    length: int  # as the channel counts it (e-mail: bytes of HTML)
    limit: int | None
    warnings: tuple[str, ...]
    link: str | None = None  # linkedin article link / main link, UTM-tagged, if any
    kind: str = ""  # the channel's kind: mastodon | linkedin | email | outbox
    unit: str = "characters"  # what `length` counts
    knowledge: str | None = None  # the featured knowledge item, if any
    plain: str = ""  # the text as readers see it (linkedin: before escaping)
    image: str | None = None  # social channels: a file under the content root, posted with the text
    image_alt: str | None = None
    # The content files besides the campaign this text was rendered from (templates, knowledge
    # items, images), as paths under the content root: what approval must cover.
    sources: tuple[str, ...] = ()
    # LinkedIn's link card: the knowledge item's title and summary, else the event's or the post's.
    link_title: str | None = None
    link_description: str | None = None

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.length > self.limit


def over_limit_problem(campaign: Campaign, post: Post, rendered: Rendered) -> Problem | None:
    """`campaigns/x.md:<post heading line>: <channel> post for <audience> is N characters, over ...`."""
    if not rendered.over_limit:
        return None
    if rendered.html is not None:  # a newsletter
        return Problem(
            campaign.path, post.line,
            f"{rendered.channel} newsletter for {rendered.audience} is {rendered.length} bytes of HTML, "
            f"over the limit of {rendered.limit}",
            "Gmail clips longer messages and hides the unsubscribe link: feature fewer knowledge items",
        )
    featuring = f" (with knowledge item '{rendered.knowledge}')" if rendered.knowledge else ""
    return Problem(
        campaign.path, post.line,
        f"{rendered.channel} post for {rendered.audience} is {rendered.length} {rendered.unit}, "
        f"over the limit of {rendered.limit}",
        f"shorten the text{featuring}, or write a shorter '### variant: {rendered.channel}' "
        f"or '### variant: {rendered.channel} {rendered.audience}'",
    )


_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_TEMPLATE_SYNTAX = ("{{", "{%", "{#")


def tidy(text: str) -> str:
    """Templates leave stray blank lines; a post has at most one blank line between paragraphs."""
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_SPACE.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


CARD_DESCRIPTION = 250  # characters: LinkedIn cuts a card's description short anyway


def _card(context: dict[str, Any], post: Post, body: str) -> tuple[str, str | None]:
    """Title and description of the link card: the featured knowledge item's, else the event's
    (for its registration link), else the post's title and the start of its text. Never the URL."""
    item, event = context["item"], context["event"]
    if item is not None:
        title, description = item.title, item.summary
    elif event is not None:
        title, description = event.name, f"{event.place}" if event.place else None
    else:
        title, description = post.title, body
    description = " ".join((description or "").split())
    if len(description) > CARD_DESCRIPTION:
        description = description[:CARD_DESCRIPTION].rsplit(" ", 1)[0] + " …"
    return title, description or None


class Renderer:
    """Renders posts of one project; builds the sandboxed environment once."""

    def __init__(self, project: Project, *, inline_images: bool = False) -> None:
        self.project = project
        self.templates = Templates(project.root)
        self.inline_images = inline_images
        programme = project.programme.programme if project.programme else None
        self.owned_domains = tuple(programme.owned_domains) if programme else ()
        self.sender = programme.sender if programme else None  # the newsletters' footer
        self._caps: dict[str, Capabilities] = {}
        self._campaigns: dict[str, CampaignView] = {}
        self._audiences: dict[str, AudienceView] = {}
        self._channels: dict[str, ChannelView] = {}
        self._utms: dict[tuple[str, str, str], Utm] = {}
        self._bodies: dict[tuple[Any, ...], str] = {}  # post text that is the same on every channel

    def capabilities(self, channel_id: str) -> Capabilities | None:
        caps = self._caps.get(channel_id)
        if caps is None and channel_id in self.project.channels:
            caps = self._caps[channel_id] = class_of(self.project.channels[channel_id]).capabilities_of(
                self.project.channels[channel_id])
        return caps

    def audience_specific(self, channel_id: str, audience_id: str) -> bool:
        """Whether this audience has its own template on this channel (e.g. `mastodon/post.beleid.j2`),
        so a planner that shares one rendering between audiences knows not to share it."""
        caps = self.capabilities(channel_id)
        if caps is None:
            return False
        name = "newsletter.html.j2" if caps.newsletter else "post.j2"
        try:
            chosen = self.templates.select(channel_id, caps.kind, audience_id, name).name or ""
        except TemplateFailure:
            return False
        return f".{audience_id}." in chosen.rsplit("/", 1)[-1]

    def render(self, campaign: Campaign, post: Post, channel_id: str, audience_id: str,
               slot: Slot, utm_content: str | None = None) -> tuple[Rendered | None, list[Problem]]:
        """`audience_id` chooses the text and templates; `utm_content` (default: `audience_id`)
        names the audiences in the links, for a post shared by several (see `shared_content`);
        the links' `utm_content` is the post's id and those audiences ("uitgelicht.mkb.verladers")."""
        caps = self.capabilities(channel_id)
        if caps is None:
            return None, [Problem(campaign.path, post.line, f"unknown channel '{channel_id}'")]
        try:
            rendered = self._render(campaign, post, channel_id, audience_id, slot, caps,
                                    f"{post.id}.{utm_content or audience_id}")
        except TemplateFailure as failure:
            return None, [failure.problem]
        problem = over_limit_problem(campaign, post, rendered)
        return rendered, [problem] if problem else []

    # --- one rendering ---------------------------------------------------------------------------

    def _context(self, campaign: Campaign, post: Post, channel_id: str, audience_id: str, slot: Slot,
                 caps: Capabilities, utm: Utm) -> dict[str, Any]:
        view = self._campaigns.get(campaign.id)
        if view is None:
            view = self._campaigns[campaign.id] = CampaignView.of(campaign)
        knowledge = self.project.knowledge
        item_id = slot.knowledge or next((k for k in post.meta.knowledge if k in knowledge), None)
        item = self._item(item_id, utm) if item_id in knowledge else None
        event = campaign.meta.event
        link = item.link if item else (utm.tag(event.registration_url) if event and event.registration_url else None)
        return self.templates.context({
            "campaign": view,
            "intro": campaign.intro,
            "post": PostView(post.id, post.title),
            "audience": self._audience(audience_id),
            "channel": self._channels.get(channel_id) or self._channels.setdefault(
                channel_id, ChannelView.of(channel_id, caps)),
            "item": item,
            "event": event,
            "slot": slot.local,
            "link": link,
            "hashtags": view.hashtags,
            "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
            "web_version_url": WEB_VERSION_PLACEHOLDER,
            "sender": self.sender,
            "_bound": Bound(utm, class_of(self.project.channels[channel_id]), self.project.stakeholders),
        })

    def _item(self, item_id: str, utm: Utm) -> ItemView:
        item = self.project.knowledge[item_id]
        return ItemView.of(item, utm, image_source(self.project.root, item.meta.image, self.inline_images))

    def _audience(self, audience_id: str) -> AudienceView:
        view = self._audiences.get(audience_id)
        if view is None:
            view = self._audiences[audience_id] = audience_view(audience_id, self.project.audiences.get(audience_id))
        return view

    def _body(self, campaign: Campaign, post: Post, channel_id: str, audience_id: str, slot: Slot,
              context: dict[str, Any]) -> str:
        text = post.text_for(channel_id, audience_id)
        if not any(mark in text for mark in _TEMPLATE_SYNTAX):
            return text
        key = (text, campaign.id, post.id, slot.knowledge, slot.local)
        body = self._bodies.get(key)  # holds only text that renders the same on every channel
        if body is not None:
            return body
        first_line = post.text_line
        for variant in post.variants:
            if variant.text is text:
                first_line = variant.line + 1
        template = self.templates.from_text(text, campaign.path, first_line)
        body = self.templates.render_text(template, context, campaign.path, first_line).strip()
        if self.templates.same_for_every_channel(text):
            if len(self._bodies) > 50_000:
                self._bodies.clear()
            self._bodies[key] = body
        return body

    def _render(self, campaign: Campaign, post: Post, channel_id: str, audience_id: str, slot: Slot,
                caps: Capabilities, utm_content: str) -> Rendered:
        key = (channel_id, campaign.meta.utm_campaign or campaign.id, utm_content)
        utm = self._utms.get(key)
        if utm is None:
            utm = self._utms[key] = Utm(self.owned_domains, channel_id, caps.medium, key[1], utm_content)
        context = self._context(campaign, post, channel_id, audience_id, slot, caps, utm)
        context["body"] = self._body(campaign, post, channel_id, audience_id, slot, context)
        if caps.newsletter:
            return self._newsletter(campaign, post, channel_id, audience_id, slot, caps, utm, context)
        template = self.templates.select(channel_id, caps.kind, audience_id, "post.j2")
        plain = utm.tag_text(tidy(self.templates.render(template, context)))
        text, length = class_of(self.project.channels[channel_id]).text(plain, caps)
        warnings = []
        if not plain:
            warnings.append("the rendered text is empty")
        if caps.max_length is not None and length > caps.max_length:
            warnings.append(f"{length} {caps.unit}, over the limit of {caps.max_length}")
        image, alt = self._image(post, context["item"]) if caps.max_images else (None, None)
        sources = self._sources([template], [context["item"].id] if context["item"] else [], [image])
        card = _card(context, post, context["body"]) if caps.link_card and context["link"] else (None, None)
        return Rendered(campaign.id, post.id, channel_id, audience_id, text, None, None, length,
                        caps.max_length, tuple(warnings), context["link"], caps.kind, caps.unit,
                        slot.knowledge or (context["item"].id if context["item"] else None), plain, image, alt,
                        sources, *card)

    def _sources(self, templates: list[Any], knowledge: list[str], images: list[str | None]) -> tuple[str, ...]:
        """Paths under the content root of the templates, knowledge items and images used. The
        templates shipped with dissemination are code, not content: not listed."""
        root = self.project.root.resolve()
        out: list[str] = []
        for template in templates:
            filename = getattr(template, "filename", None)
            if filename:
                try:
                    out.append(Path(filename).resolve().relative_to(root).as_posix())
                except ValueError:
                    pass
        for item_id in knowledge:
            item = self.project.knowledge.get(item_id)
            if item is not None:
                out.append(item.path)
                if item.meta.image and not item.meta.image.lower().startswith(("http://", "https://")):
                    out.append(item.meta.image)
        out += [i for i in images if i and not i.lower().startswith(("http://", "https://"))]
        return tuple(sorted(set(out)))

    def _image(self, post: Post, item: ItemView | None) -> tuple[str | None, str | None]:
        """The post's own image, else the featured knowledge item's, when it is a local file (a
        web address would have to be fetched first; the link preview shows it anyway)."""
        if post.meta.image:
            return post.meta.image, post.meta.image_alt
        meta = self.project.knowledge[item.id].meta if item is not None else None
        if meta is not None and meta.image and not meta.image.lower().startswith(("http://", "https://")):
            return meta.image, meta.image_alt
        return None, None

    def _newsletter(self, campaign: Campaign, post: Post, channel_id: str, audience_id: str, slot: Slot,
                    caps: Capabilities, utm: Utm, context: dict[str, Any]) -> Rendered:
        items = issue_items(self.project.knowledge, campaign, post, audience_id, slot)
        context["items"] = [self._item(it.id, utm) for it in items]
        select = self.templates.select
        subject = " ".join(self.templates.render(select(channel_id, caps.kind, audience_id, "subject.j2"),
                                                 context).split())
        context["subject"] = subject
        text = utm.tag_text(tidy(self.templates.render(
            select(channel_id, caps.kind, audience_id, "newsletter.txt.j2"), context)))
        chosen = [select(channel_id, caps.kind, audience_id, name)
                  for name in ("subject.j2", "newsletter.txt.j2", "newsletter.html.j2")]
        html = self.templates.render(chosen[2], context)
        html = utm.tag_html(inline_css(html))
        size = len(html.encode("utf-8"))
        warnings = []
        if not items:
            warnings.append("no knowledge items for this audience in this issue")
        if UNSUBSCRIBE_PLACEHOLDER not in html or UNSUBSCRIBE_PLACEHOLDER not in text:
            warnings.append("the newsletter has no unsubscribe link ({{ unsubscribe_url }})")
        local = [it.id for it in items if it.meta.image and not it.meta.image.lower().startswith("http")]
        if local:
            warnings.append(f"local image(s) of {', '.join(local)} must be attached when sent")
        if caps.max_html_bytes is not None and size > caps.max_html_bytes:
            warnings.append(f"{size} bytes of HTML, over the limit of {caps.max_html_bytes}")
        return Rendered(campaign.id, post.id, channel_id, audience_id, text, html, subject, size,
                        caps.max_html_bytes, tuple(warnings), context["link"], caps.kind, caps.unit,
                        slot.knowledge, text, sources=self._sources(chosen, [it.id for it in items], []))
