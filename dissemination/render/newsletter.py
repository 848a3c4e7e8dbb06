"""Newsletters: one issue per audience, HTML with inlined CSS plus a plain-text alternative.

An e-mail channel's post is a newsletter issue. It shows the post text, the campaign intro and
the knowledge items of the issue that fit the audience: the post's `knowledge`, else the item the
cadence features on this date, else the campaign's `knowledge`; only items published by the
issue date and meant for everyone or for this audience. CSS is inlined with `css-inline`
(media queries kept for the 375 px layout, nothing loaded from the network). The unsubscribe link
is the placeholder `UNSUBSCRIBE_PLACEHOLDER`, which the sender fills in per recipient; the link
to the web version is `WEB_VERSION_PLACEHOLDER`. The footer names the sender from programme.yaml.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

import css_inline

from dissemination.contained import OutsideRoot, inside
from dissemination.load.readers import Campaign, KnowledgeItem, Post
from dissemination.plan.schedule import Slot

UNSUBSCRIBE_PLACEHOLDER = "%%UNSUBSCRIBE_URL%%"
# The edition's web version (`dissemination web`, /editie/<item>): the same for every recipient,
# filled in by the sender once the item is known.
WEB_VERSION_PLACEHOLDER = "%%WEB_VERSION_URL%%"

INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def issue_items(knowledge: dict[str, KnowledgeItem], campaign: Campaign, post: Post, audience_id: str,
                slot: Slot) -> list[KnowledgeItem]:
    ids = post.meta.knowledge or ([slot.knowledge] if slot.knowledge else campaign.meta.knowledge)
    issue_date = slot.local.date()
    items = [knowledge[i] for i in dict.fromkeys(ids) if i in knowledge]
    return [it for it in items
            if (not it.meta.audiences or audience_id in it.meta.audiences) and it.meta.published <= issue_date]


def image_source(root: Path, image: str | None, inline: bool) -> str | None:
    """An item's image as an `src`: web addresses as written; local files as written, or as a
    `data:` URI when `inline` (the preview must not depend on files next to it)."""
    if not image or image.lower().startswith(("http://", "https://")) or not inline:
        return image
    try:
        path = inside(root, image, "image")
        data = path.read_bytes()
    except (OSError, OutsideRoot):
        return image
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def inline_css(html: str) -> str:
    return INLINER.inline(html)
