"""LinkedIn through its versioned REST API with httpx (platform_apis.md §3).

LinkedIn has no idempotency key. A post whose answer was lost (timeout, 5xx) is retried with the
identical body; LinkedIn then answers 422 DUPLICATE_POST naming the existing post, which is
recorded as the publication. So a retry never makes a second post.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from urllib.parse import quote

import httpx

from dissemination.ledger import Claim, Receipt, Snapshot
from dissemination.load import models as m
from dissemination.publish.channels import requests
from dissemination.publish.channels.base import Capabilities, Health, PublishError

_DUPLICATE_URN = re.compile(r"duplicate of (urn:li:(?:share|ugcPost):\d+)")
RATE_LIMIT_BACKOFF = dt.timedelta(minutes=15)  # LinkedIn's 429 carries no reset time


def _error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of a LinkedIn error body; either may be empty."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    codes = [d.get("code", "") for d in (body.get("errorDetails") or {}).get("inputErrors", [])]
    return body.get("code") or (codes[0] if codes else ""), str(body.get("message", ""))


class LinkedInChannel:
    kind = "linkedin"

    def __init__(self, channel_id: str, config: m.LinkedInChannel, transport: httpx.BaseTransport | None = None) -> None:
        self.id = channel_id
        self.config = config
        self.base_url = config.api_base.rstrip("/")
        self.capabilities = Capabilities(max_length=config.max_characters, url_weight=None, media=False,
                                         rate_per_minute=None, idempotent=True, read_batch=1,
                                         read_concurrency=config.metrics_concurrency,
                                         read_per_minute=config.metrics_per_minute or self.READS_PER_MINUTE)
        self._stop: str | None = None  # a refused token or an inactive version: no use trying more
        # The token lives only in the client's default headers, never in a message.
        self.client = httpx.Client(
            base_url=self.base_url, timeout=config.request_timeout.total_seconds(), transport=transport,
            headers={"Authorization": f"Bearer {os.environ[config.token_env]}",
                     "LinkedIn-Version": config.api_version, "X-Restli-Protocol-Version": "2.0.0"})

    def preflight(self) -> Health:
        # Nothing to call: every LinkedIn read needs a scope a posting-only app may lack, so the
        # token is checked by the first post, and a refusal stops the rest of the run.
        return Health(True, f"posting as {self.config.author} with LinkedIn-Version {self.config.api_version}")

    def publish(self, claim: Claim) -> Receipt:
        if self._stop:
            raise PublishError(self._stop)
        try:
            response = self.client.post("/rest/posts", json=requests.linkedin_post(claim, self.config))
        except httpx.TimeoutException:
            raise PublishError("LinkedIn did not answer in time; the post may exist, the retry will tell",
                               outcome_unknown=True) from None
        except httpx.TransportError as exc:
            raise PublishError(f"cannot reach {self.base_url}: {type(exc).__name__}", outcome_unknown=True) from None
        if response.status_code == 201:
            urn = response.headers.get("x-restli-id")
            if not urn:
                raise PublishError("LinkedIn answered 201 without x-restli-id", outcome_unknown=True)
            return self._receipt(urn)
        code, message = _error(response)
        status = response.status_code
        if status == 422 and code == "DUPLICATE_POST":
            match = _DUPLICATE_URN.search(message)
            if match and claim.attempt_count > 1:  # published before, by an attempt whose answer was lost
                return self._receipt(match.group(1))
            # On a first attempt the duplicate is another post with the same text (e.g. a series
            # whose occurrences read alike): recording its URN would claim a post we never made.
            raise PublishError(f"LinkedIn refuses this text as a duplicate of an earlier post ({message}); "
                               "make this post's text differ, e.g. name the featured item", permanent=True)
        if status == 401:
            self._stop = (f"the token in {self.config.token_env} was refused by LinkedIn ({code or status}: "
                          f"{message}); sign in again")
            raise PublishError(self._stop)
        if status == 426:
            self._stop = (f"LinkedIn-Version {self.config.api_version} is no longer active ({message}); set a "
                          f"recent api_version (YYYYMM) for channel '{self.id}' in channels.yaml")
            raise PublishError(self._stop)
        if status == 429:
            raise PublishError(f"rate limited by LinkedIn: {message}", retry_after=RATE_LIMIT_BACKOFF)
        if status >= 500:
            raise PublishError(f"LinkedIn answered {status}; the post may exist, the retry will tell",
                               outcome_unknown=True)
        raise PublishError(f"LinkedIn refused the post: HTTP {status} {code}: {message}".replace("  ", " "),
                           permanent=True)

    def _receipt(self, urn: str) -> Receipt:
        return Receipt(remote_id=urn, url=f"https://www.linkedin.com/feed/update/{urn}/")

    # Posts read per minute (2 requests each for an organisation, 4 for a member): LinkedIn's
    # daily per-app quotas are not published; this keeps a day's refresh far below any of them.
    READS_PER_MINUTE = 30

    # metric -> field of totalShareStatistics (organization posts)
    SHARE_STATISTICS = {"impressions": "impressionCount", "clicks": "clickCount", "likes": "likeCount",
                        "comments": "commentCount", "shares": "shareCount"}
    # metric -> queryType of memberCreatorPostAnalytics (member posts)
    MEMBER_ANALYTICS = {"impressions": "IMPRESSION", "reactions": "REACTION", "comments": "COMMENT",
                        "shares": "RESHARE"}

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Every metric needs a scope a posting-only app lacks; a refusal is stored as unavailable
        with the scope named, never as 0 (§3.5)."""
        rows: list[Snapshot] = []
        organization = self.config.author.startswith("urn:li:organization:")
        for item, receipt in receipts.items():
            urn = receipt.remote_id
            if organization:
                rows += self._share_statistics(item, urn, now)
                rows += self._social_metadata(item, urn, now)
            else:
                rows += self._member_analytics(item, urn, now)
        return rows

    def _get(self, path: str) -> httpx.Response | str:
        """The response, or why there is none."""
        try:
            return self.client.get(path)
        except httpx.HTTPError as exc:
            return f"cannot reach {self.base_url}: {type(exc).__name__}"

    @staticmethod
    def _refusal(response: httpx.Response | str, scope: str) -> str | None:
        if isinstance(response, str):
            return response
        if response.status_code == 200:
            return None
        code, message = _error(response)
        if response.status_code == 403:
            return f"needs the {scope} scope (LinkedIn: 403 {code} {message})".replace("  ", " ")
        return f"LinkedIn answered {response.status_code} {code} {message}".strip()

    def _share_statistics(self, item: str, urn: str, now: dt.datetime) -> list[Snapshot]:
        source = "linkedin:organizationalEntityShareStatistics"
        kind = "ugcPosts" if urn.startswith("urn:li:ugcPost:") else "shares"
        # Rest.li wants the URNs inside List(...) encoded, and the parentheses themselves not.
        response = self._get(f"/rest/organizationalEntityShareStatistics?q=organizationalEntity"
                             f"&organizationalEntity={quote(self.config.author, safe='')}"
                             f"&{kind}=List({quote(urn, safe='')})")
        refusal = self._refusal(response, "rw_organization_admin")
        if refusal is None:
            elements = [e for e in response.json().get("elements", []) if urn in (e.get("share"), e.get("ugcPost"))]
            if not elements:
                refusal = "no statistics for this post (LinkedIn keeps them for 12 months)"
        if refusal is not None:
            return [Snapshot.unavailable(item, metric, now, source, refusal) for metric in self.SHARE_STATISTICS]
        totals = elements[0].get("totalShareStatistics", {})
        return [Snapshot(item, metric, float(totals[field]), now, source) if field in totals
                else Snapshot.unavailable(item, metric, now, source, f"{field} not reported")
                for metric, field in self.SHARE_STATISTICS.items()]

    def _social_metadata(self, item: str, urn: str, now: dt.datetime) -> list[Snapshot]:
        source = "linkedin:socialMetadata"
        response = self._get(f"/rest/socialMetadata/{quote(urn, safe='')}")
        refusal = self._refusal(response, "r_organization_social")
        if refusal is not None:
            return [Snapshot.unavailable(item, "reactions", now, source, refusal)]
        body = response.json()
        reactions = sum(r.get("count", 0) for r in (body.get("reactionSummaries") or {}).values())
        return [Snapshot(item, "reactions", float(reactions), now, source)]

    def _member_analytics(self, item: str, urn: str, now: dt.datetime) -> list[Snapshot]:
        source = "linkedin:memberCreatorPostAnalytics"
        union = "ugc" if urn.startswith("urn:li:ugcPost:") else "share"
        rows = []
        for metric, query_type in self.MEMBER_ANALYTICS.items():
            response = self._get(f"/rest/memberCreatorPostAnalytics?q=entity&entity=({union}:{quote(urn, safe='')})"
                                 f"&queryType={query_type}&aggregation=TOTAL")
            refusal = self._refusal(response, "r_member_postAnalytics")
            if refusal is None:
                counts = [e.get("count") for e in response.json().get("elements", []) if e.get("count") is not None]
                if counts:
                    rows.append(Snapshot(item, metric, float(sum(counts)), now, source))
                    continue
                refusal = f"no {query_type} count returned"
            rows.append(Snapshot.unavailable(item, metric, now, source, refusal))
        return rows
