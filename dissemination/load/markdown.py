"""Markdown content files: front matter, and a campaign body cut into posts.

A campaign body reads like a document: text before the first `##` is the campaign intro (used in
newsletters), each `## Heading` is one post, optional `key: value` lines directly under the heading
set per-post keys (slot, audiences, channels, ...), and a `### variant: <channel> <audience>`
sub-section replaces the text for that channel and/or audience.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from dissemination.load.models import POST_KEYS
from dissemination.problems import Problem

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_POST_HEADING = re.compile(r"^##(?!#)\s*(.*?)\s*#*\s*$")
_VARIANT_HEADING = re.compile(r"^###(?!#)\s*variant\s*:\s*(.*?)\s*$", re.IGNORECASE)
_META_LINE = re.compile(r"^([A-Za-z_][\w-]*)\s*:(\s|$)")
_CONTINUATION = re.compile(r"^(\s+\S|-\s)")


@dataclass(frozen=True)
class FrontMatter:
    yaml_text: str
    yaml_first_line: int
    body: str
    body_first_line: int


def normalise(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def split_front_matter(text: str, path: str) -> tuple[FrontMatter | None, list[Problem]]:
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return None, [
            Problem(
                path,
                1,
                "missing front matter",
                "start the file with a line '---', then 'key: value' lines, then '---'",
            )
        ]
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            return (
                FrontMatter(
                    yaml_text="\n".join(lines[1:index]),
                    yaml_first_line=2,
                    body="\n".join(lines[index + 1 :]),
                    body_first_line=index + 2,
                ),
                [],
            )
    return None, [
        Problem(path, 1, "front matter is not closed", "add a line '---' after the last key")
    ]


@dataclass(frozen=True)
class RawVariant:
    targets: tuple[str, ...]
    text: str
    line: int


@dataclass
class RawPost:
    title: str
    line: int
    meta_text: str = ""
    meta_first_line: int = 0
    text_lines: list[tuple[int, str]] = field(default_factory=list)
    variants: list[RawVariant] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.text_lines).strip()

    @property
    def text_line(self) -> int:
        for number, line in self.text_lines:
            if line.strip():
                return number
        return self.line


@dataclass(frozen=True)
class RawBody:
    intro: str
    posts: list[RawPost]


def split_posts(body: str, first_line: int) -> RawBody:
    """Cut a campaign body into intro and posts; never fails, problems come later."""
    intro: list[str] = []
    posts: list[RawPost] = []
    current: RawPost | None = None
    variant: tuple[tuple[str, ...], int, list[str]] | None = None
    in_fence = False
    lines = body.split("\n")
    index = 0

    def close_variant() -> None:
        nonlocal variant
        if variant and current is not None:
            targets, line, text = variant
            current.variants.append(RawVariant(targets, "\n".join(text).strip(), line))
        variant = None

    while index < len(lines):
        line = lines[index]
        number = first_line + index
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _POST_HEADING.match(line)
        variant_heading = None if in_fence else _VARIANT_HEADING.match(line)
        if heading:
            close_variant()
            current = RawPost(title=heading.group(1), line=number)
            posts.append(current)
            index = _read_meta(lines, index + 1, first_line, current)
            continue
        if variant_heading and current is not None:
            close_variant()
            targets = tuple(t for t in re.split(r"[\s,]+", variant_heading.group(1)) if t)
            variant = (targets, number, [])
        elif variant is not None:
            variant[2].append(line)
        elif current is not None:
            current.text_lines.append((number, line))
        else:
            intro.append(line)
        index += 1
    close_variant()
    return RawBody("\n".join(intro).strip(), posts)


def _looks_like_meta_key(key: str) -> bool:
    return key in POST_KEYS or bool(difflib.get_close_matches(key, POST_KEYS, n=1, cutoff=0.75))


def _read_meta(lines: list[str], start: int, first_line: int, post: RawPost) -> int:
    """Take the `key: value` block directly under a heading; return the index after it."""
    if start >= len(lines):
        return start
    match = _META_LINE.match(lines[start])
    if not match or not _looks_like_meta_key(match.group(1)):
        return start
    end = start
    while end < len(lines) and lines[end].strip():
        if not (_META_LINE.match(lines[end]) or _CONTINUATION.match(lines[end])):
            break
        end += 1
    post.meta_text = "\n".join(lines[start:end])
    post.meta_first_line = first_line + start
    return end
