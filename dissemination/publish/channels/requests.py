"""What each platform is sent, built in one place.

The real adapters send these bodies; the outbox writes them to disk unchanged, so what the outbox
shows is exactly what would have been sent.
"""

from __future__ import annotations

from typing import Any

from dissemination.records import Claim
from dissemination.load import models as m


def mastodon_status(claim: Claim, config: m.MastodonChannel) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": claim.payload["text"],
        "visibility": config.visibility,
        "language": config.language,
    }
    if claim.payload.get("image"):  # uploaded first (POST /api/v2/media), then sent as media_ids[]
        body["media"] = [{"file": claim.payload["image"], "description": claim.payload.get("image_alt")}]
    return body


def linkedin_post(claim: Claim, config: m.LinkedInChannel, image_urn: str | None = None) -> dict[str, Any]:
    """`image_urn`: the uploaded image (Images API); the outbox, which uploads nothing, names the file."""
    body: dict[str, Any] = {
        "author": config.author,
        "commentary": claim.payload["text"],
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    link = claim.payload.get("link")
    image = claim.payload.get("image")
    if image:
        image_urn = image_urn or f"(urn:li:image of {image}, uploaded first)"
    if link:  # a post has one content: the image becomes the link's thumbnail
        # The card's title and description: the knowledge item's (or the post's), set when planned.
        article = {"source": link, "title": claim.payload.get("link_title") or link}
        if claim.payload.get("link_description"):
            article["description"] = claim.payload["link_description"]
        body["content"] = {"article": article}
        if image:
            body["content"]["article"] |= {"thumbnail": image_urn, "thumbnailAltText": claim.payload.get("image_alt")}
    elif image:
        body["content"] = {"media": {"id": image_urn, "altText": claim.payload.get("image_alt")}}
    return body
