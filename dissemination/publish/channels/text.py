"""Text rules the channels share: counting what readers see as characters, and finding links."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Callable

_NON_SPACE = re.compile(r"\S*")


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


def replace_url_tokens(text: str, replace: Callable[[str], str]) -> str:
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
