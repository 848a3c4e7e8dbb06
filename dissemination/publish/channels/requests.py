"""What each platform is sent, built in one place.

The real adapters send these bodies; the outbox writes them to disk unchanged, so what the outbox
shows is exactly what would have been sent.
"""

from __future__ import annotations

from typing import Any

from dissemination.ledger import Claim
from dissemination.load import models as m


def mastodon_status(claim: Claim, config: m.MastodonChannel) -> dict[str, Any]:
    return {
        "status": claim.payload["text"],
        "visibility": config.visibility,
        "language": config.language,
    }


def linkedin_post(claim: Claim, config: m.LinkedInChannel) -> dict[str, Any]:
    body: dict[str, Any] = {
        "author": config.author,
        "commentary": claim.payload["text"],
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    link = claim.payload.get("link")
    if link:
        body["content"] = {"article": {"source": link, "title": claim.payload.get("link_title") or link}}
    return body
