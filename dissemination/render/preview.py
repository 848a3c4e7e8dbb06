"""Preview: a static site in which comms staff see every variant before anything goes out.

`DIR/index.html` is a timeline of every post as it will be published (one post for the audiences
that share it on a social channel; drafts included): date and time in the campaign's time zone,
channel, audience, the rendered text, its length against the channel's limit and any warnings,
with a link to each newsletter rendering under `DIR/newsletters/`. Everything is escaped and
self-contained (inline CSS, no scripts, local images inlined), so it opens from disk in any browser.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from dissemination.check import CheckResult
from dissemination.load import Project
from dissemination.load.readers import Campaign, Post
from dissemination.plan.planner import audience_groups, shared_content
from dissemination.plan.schedule import Slot
from dissemination.render import Rendered, Renderer
from dissemination.render.context import datum, tijd
from dissemination.render.newsletter import image_source
from dissemination.render.variants import planned_posts

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Entry:
    when: dt.datetime  # local, in the campaign's time zone
    timezone: str
    campaign: str
    campaign_title: str
    post_title: str
    audience_name: str
    rendered: Rendered
    newsletter: str | None  # relative link to the HTML rendering
    plain_text: str | None  # relative link to the text part
    image: str | None = None  # the post's image as a data: URI

    @property
    def percent(self) -> int:
        limit = self.rendered.limit
        return min(100, round(100 * self.rendered.length / limit)) if limit else 0


@dataclass(frozen=True)
class PreviewSummary:
    index: Path
    posts: int
    newsletters: int
    over_limit: int
    warnings: int


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(str(_HERE)), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update({"datum": datum, "tijd": tijd})
    return env


def _entry(project: Project, out: Path, campaign: Campaign, post: Post, channel: str, group: str,
           members: list[str], slot: Slot, rendered: Rendered) -> Entry:
    html_link = text_link = None
    if rendered.html is not None:  # a newsletter: its renderings as files beside the index
        stem = f"{post.id}-{slot.local:%Y%m%d-%H%M}-{channel}-{group}"
        folder = out / "newsletters" / campaign.id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.html").write_text(rendered.html, encoding="utf-8")
        (folder / f"{stem}.txt").write_text(rendered.text, encoding="utf-8")
        html_link = f"newsletters/{campaign.id}/{stem}.html"
        text_link = f"newsletters/{campaign.id}/{stem}.txt"
    names = ", ".join(project.audiences[a].name if a in project.audiences else a for a in members)
    return Entry(slot.local, slot.timezone, campaign.id, campaign.meta.title, post.title, names, rendered,
                 html_link, text_link, image_source(project.root, rendered.image, inline=True))


def build_preview(result: CheckResult, out: Path) -> PreviewSummary:
    project = result.project
    renderer = Renderer(project, inline_images=True)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    # What the planner will make of each slot: on a social channel the audiences without text of
    # their own share one post, so the preview shows that one post, for all of them.
    for campaign, post, channel, slot in planned_posts(project, result.slots):
        for group, members in audience_groups(project, campaign, post, channel, renderer):
            rendered, _problems = renderer.render(campaign, post, channel, members[0], slot, shared_content(members))
            if rendered is None:
                continue  # `preview` runs only when check found no errors
            entries.append(_entry(project, out, campaign, post, channel, group, members, slot, rendered))
    newsletters = sum(e.newsletter is not None for e in entries)
    entries.sort(key=lambda e: (e.when.astimezone(dt.timezone.utc), e.campaign, e.rendered.post,
                                e.rendered.channel, e.rendered.audience))
    days: dict[dt.date, list[Entry]] = {}
    for entry in entries:
        days.setdefault(entry.when.date(), []).append(entry)
    programme = project.programme.programme.name if project.programme else "Campagnes"
    counts = Counter(e.rendered.kind for e in entries)
    summary = PreviewSummary(out / "index.html", len(entries), newsletters,
                             sum(e.rendered.over_limit for e in entries),
                             sum(bool(e.rendered.warnings) for e in entries))
    page = _environment().get_template("preview.html.j2").render(
        programme=programme, days=days, counts=counts, summary=summary,
        campaigns=len(project.campaigns))
    summary.index.write_text(page, encoding="utf-8")
    return summary
