"""Attribution: UTM parameters on every link to a domain the programme owns.

`utm_source` is the channel id, `utm_medium` social or email, `utm_campaign` the campaign's
`utm_campaign` (its id when not set), `utm_content` the audience id. Existing query strings and
fragments are kept byte for byte; a parameter already present is never overwritten; links to
other domains are left alone.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from dissemination.render.capabilities import find_urls


@dataclass(frozen=True)
class Utm:
    owned_domains: tuple[str, ...]
    source: str
    medium: str
    campaign: str
    content: str

    def owns(self, url: str) -> bool:
        if not self.owned_domains:
            return False
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return False
        if parts.scheme.lower() not in ("http", "https") or not host:
            return False
        return any(host == d or host.endswith("." + d) for d in self.owned_domains)

    def tag(self, url: str) -> str:
        """`url` with the UTM parameters added, if it points to an owned domain."""
        if not self.owns(url):
            return url
        scheme, netloc, path, query, fragment = urlsplit(url)
        present = {pair.split("=", 1)[0] for pair in query.split("&") if pair}
        wanted = [("utm_source", self.source), ("utm_medium", self.medium),
                  ("utm_campaign", self.campaign), ("utm_content", self.content)]
        extra = urlencode([(k, v) for k, v in wanted if k not in present])
        if not extra:
            return url
        query = f"{query}&{extra}" if query else extra
        return urlunsplit((scheme, netloc, path, query, fragment))

    def tag_text(self, text: str) -> str:
        """Tag every owned link in plain text."""
        if not self.owned_domains or "://" not in text:
            return text
        out, pos = [], 0
        for start, end in find_urls(text):
            out += [text[pos:start], self.tag(text[start:end])]
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def tag_html(self, markup: str) -> str:
        """Tag every owned link in `href="..."` attributes of HTML."""
        if not self.owned_domains:
            return markup

        def attribute(match: re.Match[str]) -> str:
            url = html.unescape(match.group(2))
            return f'{match.group(1)}"{html.escape(self.tag(url), quote=True)}"'

        return _HREF.sub(attribute, markup)


_HREF = re.compile(r'(\bhref=)"([^"]*)"', re.IGNORECASE)
