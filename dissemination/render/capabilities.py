"""Channel rules: what each kind of channel accepts, and how it counts a post's length.

Every channel declares its capabilities in one place (`capabilities_for`), Apprise style: the
length limit, how much a URL weighs, the markup it expects, the UTM medium, media limits. The
functions below implement the counting and escaping each platform does on its side:

- Mastodon counts grapheme clusters; every URL weighs `characters_reserved_per_url` (23) and a
  remote mention `@user@domain` counts as `@user` (server `StatusLengthValidator`).
- LinkedIn's `commentary` is in the "little" text format: reserved characters must be
  backslash-escaped or LinkedIn silently cuts the post at the first one. Hashtags, URLs and
  mentions are kept as they are so they still work.
- E-mail: HTML must stay under ~100 KB or Gmail clips it (hiding the unsubscribe link).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable, Literal

from dissemination.load import models as m

GMAIL_CLIP_BYTES = 102_400  # Gmail clips HTML bodies over ~102 KB


@dataclass(frozen=True)
class Capabilities:
    kind: str
    medium: Literal["social", "email"]  # utm_medium
    markup: Literal["plain", "little", "html"]
    max_characters: int | None  # None: no length limit
    characters_reserved_per_url: int | None  # None: URLs count as written
    max_images: int
    max_html_bytes: int | None = None
    unit: str = "characters"

    @property
    def is_email(self) -> bool:
        return self.kind == "email"


def capabilities_for(channel: m.Channel) -> Capabilities:
    """The one place that says what a channel accepts."""
    if isinstance(channel, m.MastodonChannel):
        return Capabilities("mastodon", "social", "plain", channel.max_characters,
                            channel.characters_reserved_per_url, max_images=4)
    if isinstance(channel, m.LinkedInChannel):
        return Capabilities("linkedin", "social", "little", channel.max_characters, None, max_images=20)
    if isinstance(channel, m.EmailChannel):
        return Capabilities("email", "email", "html", None, None, max_images=50,
                            max_html_bytes=GMAIL_CLIP_BYTES)
    return Capabilities("outbox", "social", "plain", None, None, max_images=0)


# --- grapheme clusters ---------------------------------------------------------------------------

@cache
def _segmentation() -> tuple[Any, Any]:
    """`\\X` (a grapheme cluster) and the characters that can make a cluster longer than one code
    point (UAX #29). Compiled on first use: most posts never need them."""
    import regex

    joins = regex.compile(
        r"[\p{Grapheme_Cluster_Break=Extend}\p{Grapheme_Cluster_Break=ZWJ}"
        r"\p{Grapheme_Cluster_Break=SpacingMark}\p{Grapheme_Cluster_Break=Prepend}"
        r"\p{Grapheme_Cluster_Break=Regional_Indicator}\p{Grapheme_Cluster_Break=L}"
        r"\p{Grapheme_Cluster_Break=V}\p{Grapheme_Cluster_Break=T}\p{Grapheme_Cluster_Break=LV}"
        r"\p{Grapheme_Cluster_Break=LVT}]"
    )
    return regex.compile(r"\X"), joins


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@cache
def _joins(char: str) -> bool:
    return _segmentation()[1].match(char) is not None


def grapheme_length(text: str) -> int:
    """User-perceived characters: 'f\\u0301' and a family emoji each count as one.

    Text without a character that joins clusters has one cluster per code point (CR LF aside),
    so the slow `\\X` scan runs only when such a character is present."""
    if not text.isascii() and any(_joins(c) for c in set(_NON_ASCII.findall(text))):
        return len(_segmentation()[0].findall(text))
    return len(text) - text.count("\r\n")


# --- Mastodon ------------------------------------------------------------------------------------

@cache
def _mastodon_url_rule() -> re.Pattern[str]:
    """The URL rule Mastodon's server uses (twitter-text's), as shipped in Mastodon.py.

    Loaded from its module file on its own: importing the `mastodon` package would pull in
    `requests` and half a second of imports that `check` does not need."""
    spec = importlib.util.find_spec("mastodon")
    assert spec is not None and spec.submodule_search_locations
    file = Path(next(iter(spec.submodule_search_locations))) / "_url_regex.py"
    module_spec = importlib.util.spec_from_file_location("dissemination_mastodon_url_regex", file)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.url_regex  # type: ignore[no-any-return]


_NON_SPACE = re.compile(r"\S*")
_COUNTED_TOKENS: dict[tuple[str, int], str] = {}  # the URL rule is slow; tokens repeat across renders
_REMOTE_MENTION = re.compile(r"(^|[^/\w])@(([a-z0-9_]+)@[a-z0-9.\-]+[a-z0-9]+)", re.IGNORECASE)


def mastodon_length(text: str, url_weight: int = 23, spoiler_text: str = "") -> int:
    """The length Mastodon's server computes for a status."""
    def counted(token: str) -> str:
        key = (token, url_weight)
        found = _COUNTED_TOKENS.get(key)
        if found is None:
            if len(_COUNTED_TOKENS) > 20_000:
                _COUNTED_TOKENS.clear()
            found = _COUNTED_TOKENS[key] = _mastodon_url_rule().sub(
                lambda u: u.group(2) + "x" * url_weight, token)
        return found

    if "://" in text:  # URLs never contain white space: run the big URL rule on candidates only
        text = _replace_url_tokens(text, counted)
    if "@" in text:
        text = _REMOTE_MENTION.sub(r"\1@\3", text)
    return grapheme_length(text) + grapheme_length(spoiler_text)


def _replace_url_tokens(text: str, replace: Callable[[str], str]) -> str:
    """`text` with every white-space-delimited token that contains '://' replaced.

    A scan from each '://' rather than a regex: a pattern anchored on a preceding space tries
    every word of the post, and this runs for every rendering."""
    out, pos = [], 0
    found = text.find("://")
    while found != -1:
        start = found
        while start > pos and not text[start - 1].isspace():
            start -= 1
        end = _NON_SPACE.match(text, found + 3).end()  # type: ignore[union-attr]
        out += [text[pos:start], replace(text[start:end])]
        pos = end
        found = text.find("://", pos)
    out.append(text[pos:])
    return "".join(out)


# --- links in plain text -------------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\")]}"


def find_urls(text: str) -> list[tuple[int, int]]:
    """Spans of http(s) URLs as a reader sees them: a trailing '.' or ')' ends the sentence, not the URL."""
    spans = []
    for match in _URL.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in _TRAILING:
            if text[end - 1] == ")" and text.count("(", start, end) >= text.count(")", start, end):
                break  # a balanced ')' is part of the URL, e.g. a Wikipedia link
            end -= 1
        spans.append((start, end))
    return spans


# --- LinkedIn "little" text ----------------------------------------------------------------------

LITTLE_RESERVED = "\\|{}@[]()<>#*_~"


def _escape_reserved(text: str) -> str:
    # '\\' first, so the backslashes added for the others are not escaped again
    for char in LITTLE_RESERVED:
        if char in text:
            text = text.replace(char, "\\" + char)
    return text

# Tokens kept as they are: mentions `@[Name](urn:li:organization:1)` and hashtags `#word`.
_LITTLE_MENTION = re.compile(r"@\[[^\[\]()\\]+\]\(urn:li:(?:person|organization):[A-Za-z0-9_-]+\)")
_HASHTAG = re.compile(r"#\w+")


def _little_keep(text: str) -> list[tuple[int, int]]:
    """Spans of mentions and of hashtags that start a word. Two literal-led patterns and a look at
    the character before: one pattern with a look-behind alternative is tried at every position."""
    spans = [m.span() for m in _LITTLE_MENTION.finditer(text)] if "@[" in text else []
    if "#" in text:
        for match in _HASHTAG.finditer(text):
            before = text[match.start() - 1] if match.start() else " "
            if not (before.isalnum() or before in "_#"):  # what `\w` and '#' match, as (?<![\w#])
                spans.append(match.span())
    return spans


def escape_little(text: str) -> str:
    """Escape LinkedIn's reserved characters, keeping URLs, hashtags and mentions working."""
    keep = find_urls(text) if "://" in text else []
    if "#" in text or "@" in text:
        keep = sorted(keep + _little_keep(text))
    out, pos = [], 0
    for start, end in keep:
        if start < pos:
            continue  # a hashtag inside a URL's fragment: the URL is kept whole
        out.append(_escape_reserved(text[pos:start]))
        out.append(text[start:end])
        pos = end
    out.append(_escape_reserved(text[pos:]))
    return "".join(out)


def linkedin_length(text: str) -> int:
    """LinkedIn's 3,000 limit applies to the text as readers see it, before escaping."""
    return grapheme_length(text)
