"""Who follows a link without a person behind it: one rule for every counted click (newsletter
links in web.py, partner links in partners/web.py).

Mail security gateways open every link of a message on delivery; chat apps and fediverse
servers fetch a link once to draw its card; HTTP libraries are scripts. None of them is a
reader, so none of their requests is a click. An empty user agent is no browser either.
"""

from __future__ import annotations

import re

SCANNER = re.compile(
    r"bot\b|bot/|crawler|spider|preview|scanner|headless|"
    r"safelinks|barracuda|proofpoint|mimecast|mailscanner|urldefense|forcepoint|trendmicro|symantec|"
    r"facebookexternalhit|slackbot|linkedinbot|twitterbot|whatsapp|skypeuripreview|"
    r"mastodon/|pleroma|akkoma|misskey|http\.rb|"
    r"python-|curl/|wget/|go-http-client|java/|okhttp|libwww|httpclient",
    re.IGNORECASE)


def is_scanner(user_agent: str | None) -> bool:
    return not (user_agent or "").strip() or bool(SCANNER.search(user_agent or ""))
