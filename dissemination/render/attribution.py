"""Attribution: UTM parameters on every link to a domain the programme owns.

`utm_source` is the channel id, `utm_medium` social or email, `utm_campaign` the campaign's
`utm_campaign` (its id when not set), `utm_content` the post's id followed by the audience id, or
the ids of all audiences a shared social post is for, joined by '.' ("uitgelicht.mkb.verladers";
`plan.planner.shared_content`), so every post of a series can be told apart. Existing query strings and
fragments are kept byte for byte; a parameter already present is never overwritten; links to
other domains are left alone.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import quote_plus, urlencode

from dissemination.publish.channels.text import find_urls


@dataclass(frozen=True)
class Utm:
    owned_domains: tuple[str, ...]
    source: str
    medium: str
    campaign: str
    content: str
    # url -> tagged url, and tagged url -> itself
    _tagged: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def owns(self, url: str) -> bool:
        return _parse(url, self.owned_domains) is not None

    def tag(self, url: str) -> str:
        """`url` with the UTM parameters added, if it points to an owned domain."""
        found = self._tagged.get(url)
        if found is None:
            found = self._tag(url)
            self._tagged[url] = self._tagged[found] = found
        return found

    def _tag(self, url: str) -> str:
        parsed = _parse(url, self.owned_domains)
        if parsed is None:
            return url
        base, joiner, present, rest = parsed
        if not present:
            extra = self._all_parameters
        else:  # some are set already: those stay as they are
            extra = urlencode([(k, v) for k, v in self._wanted() if k not in present])
            if not extra:
                return url
        return f"{base}{joiner}{extra}{rest}"

    def _wanted(self) -> list[tuple[str, str]]:
        return [("utm_source", self.source), ("utm_medium", self.medium),
                ("utm_campaign", self.campaign), ("utm_content", self.content)]

    @cached_property
    def _all_parameters(self) -> str:
        return "&".join(f"{k}={quote_plus(v)}" for k, v in self._wanted())

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


_Parsed = tuple[str, str, frozenset[str], str]
_PARSED: dict[tuple[str, tuple[str, ...]], _Parsed | None] = {}


def _parse(url: str, owned_domains: tuple[str, ...]) -> _Parsed | None:
    """Where the parameters go in `url` (None when the domain is not owned): the part before the
    fragment, the joiner, the UTM keys already present, and the fragment with its '#'.

    Kept per URL because every channel and audience tags the same links (only the values differ)."""
    key = (url, owned_domains)
    if key in _PARSED:
        return _PARSED[key]
    match = _HOST.match(url) if owned_domains else None
    host = match.group(1).lower() if match else None
    parsed = None
    if host is not None and any(host == d or host.endswith("." + d) for d in owned_domains):
        # String surgery rather than urlsplit/urlunsplit: the rest of the URL stays byte for byte.
        base, hash_mark, fragment = url.partition("#")
        _, question_mark, query = base.partition("?")
        present = frozenset(pair.split("=", 1)[0] for pair in query.split("&") if pair) & _UTM_KEYS
        joiner = "?" if not question_mark else ("&" if query and not query.endswith("&") else "")
        parsed = (base, joiner, present, hash_mark + fragment)
    if len(_PARSED) > 50_000:
        _PARSED.clear()
    _PARSED[key] = parsed
    return parsed


_HOST = re.compile(r"https?://(?:[^/?#@\s]*@)?([^/?#:\s]+)", re.IGNORECASE)
_UTM_KEYS = frozenset({"utm_source", "utm_medium", "utm_campaign", "utm_content"})
_HREF = re.compile(r'(\bhref=)"([^"]*)"', re.IGNORECASE)
