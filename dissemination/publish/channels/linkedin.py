"""LinkedIn through its versioned REST API with httpx (platform_apis.md §3).

LinkedIn has no idempotency key. A post whose answer was lost (timeout, 5xx) is retried with the
identical body; LinkedIn then answers 422 DUPLICATE_POST naming the existing post, which is
recorded as the publication. So a retry never makes a second post.
"""

from __future__ import annotations

import datetime as dt
import os
import re

import httpx

from dissemination.ledger import Claim, Receipt
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
                                         rate_per_minute=None, idempotent=True)
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
            if match:  # published before, by an attempt whose answer was lost
                return self._receipt(match.group(1))
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
