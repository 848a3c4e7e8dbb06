"""Targeting from the stakeholder analysis: an audience receives a campaign's posts only on the
channels its stakeholder map entry lists (`channels:`), unless a post explicitly allows more
(`allow_channels: {beleid: [mastodon]}` under the post's heading).

A campaign names its audiences and channels once; the map decides which audience gets what on
which channel. What `check` reports as an error is a post *aimed* at an audience on a channel the
map does not list for it: a channel of a post that none of the post's audiences lists, an
audience that gets none of its post's channels, a variant for such an audience and channel.
An audience whose entry lists no channels at all is not restricted.
"""

from __future__ import annotations

from dissemination.load.project import Project
from dissemination.load.readers import Campaign, Post
from dissemination.problems import Problem


def _listed(project: Project, audience_id: str, channel_id: str) -> bool:
    audience = project.audiences.get(audience_id)
    return audience is None or not audience.channels or channel_id in audience.channels


def receives(project: Project, post: Post, audience_id: str, channel_id: str) -> bool:
    """Whether this audience gets this post on this channel: the map lists the channel for it,
    or the post allows it explicitly."""
    return _listed(project, audience_id, channel_id) or channel_id in post.meta.allow_channels.get(audience_id, ())


def post_audiences(campaign: Campaign, post: Post) -> list[str]:
    return list(post.meta.audiences or campaign.meta.audiences)


def post_channels(campaign: Campaign, post: Post) -> list[str]:
    return list(post.meta.channels or campaign.meta.channels)


def audiences_on(project: Project, campaign: Campaign, post: Post, channel_id: str) -> list[str]:
    """The post's audiences that receive it on `channel_id`, in the campaign's order."""
    return [a for a in post_audiences(campaign, post) if receives(project, post, a, channel_id)]


def targeting_problems(project: Project) -> list[Problem]:
    """Posts aimed at an audience on a channel its stakeholder map entry does not list."""
    if not project.audiences_known or not project.channels_known:
        return []  # a map or channels.yaml that did not load is reported on its own
    out: list[Problem] = []
    for campaign in project.campaigns.values():
        channels = [c for c in campaign.meta.channels if c in project.channels]
        for j, audience in enumerate(campaign.meta.audiences):
            if audience in project.audiences and channels and not any(
                    _listed(project, audience, c) or any(c in p.meta.allow_channels.get(audience, ())
                                                         for p in campaign.posts) for c in channels):
                listed = ", ".join(project.audiences[audience].channels)
                out.append(Problem(campaign.path, campaign.doc.line_of(("audiences", j)),
                                   f"audience '{audience}' gets none of this campaign's channels "
                                   f"({', '.join(channels)}); the stakeholder map lists {listed} for it",
                                   f"add one of {listed} to the campaign's channels, or leave '{audience}' out"))
        for post in campaign.posts:
            out += _post_problems(project, campaign, post)
    return out


def _allow_hint(audience: str, channel: str) -> str:
    return f"allow it for this post with 'allow_channels: {{{audience}: [{channel}]}}'"


def _post_problems(project: Project, campaign: Campaign, post: Post) -> list[Problem]:
    path, out = campaign.path, []
    audiences, channels = post_audiences(campaign, post), post_channels(campaign, post)
    known = [a for a in audiences if a in project.audiences]
    for channel in channels:
        if channel not in project.channels or not known:
            continue
        if not any(receives(project, post, a, channel) for a in known):
            line = post.line_of(("channels",)) if post.meta.channels else post.line
            names = ", ".join(known)
            out.append(Problem(path, line, f"post '{post.id}' goes to {channel}, but none of its audiences "
                               f"({names}) lists {channel} in the stakeholder map",
                               f"leave {channel} out of this post's channels, or {_allow_hint(known[0], channel)}"))
    for audience in known if post.meta.audiences else ():
        if not any(receives(project, post, audience, c) for c in channels if c in project.channels):
            listed = ", ".join(project.audiences[audience].channels)
            out.append(Problem(path, post.line_of(("audiences",)),
                               f"post '{post.id}' is aimed at audience '{audience}', which gets none of its "
                               f"channels ({', '.join(channels)}); the stakeholder map lists {listed} for it",
                               f"add one of {listed} to the post's channels, or "
                               f"{_allow_hint(audience, channels[0])}"))
    for variant in post.variants:
        named_audiences = [t for t in variant.targets if t in known]
        named_channels = [t for t in variant.targets if t in project.channels]
        for audience in named_audiences:
            for channel in named_channels or []:
                if not receives(project, post, audience, channel):
                    out.append(Problem(path, variant.line, f"variant for {audience} on {channel}, but the "
                                       f"stakeholder map does not list {channel} for {audience}",
                                       f"remove the variant, or {_allow_hint(audience, channel)}"))
    for audience, allowed in post.meta.allow_channels.items():
        line = post.line_of(("allow_channels", audience))
        if audience not in audiences:
            out.append(Problem(path, line, f"allow_channels names audience '{audience}', which this post is "
                               "not for", f"use one of: {', '.join(audiences)}"))
        for channel in allowed:
            if channel not in channels:
                out.append(Problem(path, line, f"allow_channels names channel '{channel}', which this post "
                                   "does not go to", f"use one of: {', '.join(channels)}"))
    return out


__all__ = ["audiences_on", "post_audiences", "post_channels", "receives", "targeting_problems"]
