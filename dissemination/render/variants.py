"""Every variant a plan produces: each slot of each post, for each of its channels and audiences.

`check` renders each distinct variant once (a cadence post once per featured knowledge item, not
once per week) and reports template errors and posts over their channel's limit.
"""

from __future__ import annotations

from collections.abc import Iterator

from dissemination.load import Project
from dissemination.load.readers import Campaign, Post
from dissemination.plan.schedule import Slot
from dissemination.problems import Problem
from dissemination.render import Rendered, Renderer, over_limit_problem

Variant = tuple[Campaign, Post, str, str, Slot]


def planned_posts(project: Project, slots: dict[str, list[Slot]]) -> Iterator[tuple[Campaign, Post, str, Slot]]:
    """(campaign, post, channel id, slot) for every slot, in slot order."""
    for campaign_id, campaign_slots in slots.items():
        campaign = project.campaigns[campaign_id]
        posts = {p.id: p for p in campaign.posts}
        for slot in campaign_slots:
            post = posts[slot.post]
            for channel in post.meta.channels or campaign.meta.channels:
                if channel not in project.channels:
                    continue  # reported as an unknown channel already
                yield campaign, post, channel, slot


def planned_variants(project: Project, slots: dict[str, list[Slot]]) -> Iterator[Variant]:
    """(campaign, post, channel id, audience id, slot) for every slot, in slot order."""
    for campaign, post, channel, slot in planned_posts(project, slots):
        for audience in post.meta.audiences or campaign.meta.audiences:
            yield campaign, post, channel, audience, slot


def render_problems(project: Project, slots: dict[str, list[Slot]],
                    renderer: Renderer | None = None) -> list[Problem]:
    """Render each distinct variant once; template errors once each, the longest over-limit post
    once per (post, channel, audience)."""
    renderer = renderer or Renderer(project)
    seen: set[tuple[str, str, str, str, str | None]] = set()
    errors: dict[Problem, None] = {}
    longest: dict[tuple[str, str, str, str], tuple[Campaign, Post, Rendered]] = {}
    for campaign, post, channel, audience, slot in planned_variants(project, slots):
        key = (campaign.id, post.id, channel, audience, slot.knowledge)
        if key in seen:
            continue
        seen.add(key)
        rendered, problems = renderer.render(campaign, post, channel, audience, slot)
        if rendered is None:
            errors.update(dict.fromkeys(problems))
            continue
        if rendered.over_limit:
            where = key[:4]
            if where not in longest or longest[where][2].length < rendered.length:
                longest[where] = (campaign, post, rendered)
    found = list(errors)
    for campaign, post, rendered in longest.values():
        problem = over_limit_problem(campaign, post, rendered)
        if problem is not None:
            found.append(problem)
    return found
