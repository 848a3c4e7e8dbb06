"""Content problems: what is wrong, where, and how to fix it.

Every loader reports problems instead of raising, so one bad file never hides the others and no
content error ever reaches the user as a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

# Words known to be synonyms of a key in another language: a Dutch writer types `eigenaar`.
_TRANSLATIONS = {"eigenaar": "owner", "titel": "title", "doel": "goal", "doelgroep": "audience",
                 "doelgroepen": "audiences", "kanaal": "channel", "kanalen": "channels", "tekst": "text",
                 "samenvatting": "summary", "afbeelding": "image", "datum": "date", "tijd": "time",
                 "begin": "start", "einde": "end", "eind": "end", "naam": "name", "thema": "theme",
                 "themas": "themes", "thema's": "themes", "sjabloon": "template"}


def suggest(word: object, known: Iterable[object]) -> str | None:
    """The known key or id closest to `word` (a typo, another case, a Dutch synonym), if any: the
    one rule behind every "did you mean" hint."""
    names = sorted({str(k) for k in known})
    text = str(word)
    by_case = [n for n in names if n.casefold() == text.casefold()]
    if by_case:
        return by_case[0]
    translated = _TRANSLATIONS.get(text.casefold())
    if translated in names:
        return translated
    close = difflib.get_close_matches(text, names, n=1) or difflib.get_close_matches(
        text.casefold(), [n.casefold() for n in names], n=1)
    if not close:
        return None
    return next(n for n in names if n.casefold() == close[0].casefold())


def printable(text: str) -> str:
    """`text` as it may be printed on one line of output: control characters (a newline in a file
    name would forge a `path:line:` line of its own) shown as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        path, message = printable(self.path), printable(self.message)
        text = f"{path}:{self.line}: {message}"
        if self.severity == "warning":
            text = f"{path}:{self.line}: warning: {message}"
        return f"{text} ({printable(self.hint)})" if self.hint else text


@dataclass
class Problems:
    """Collects problems for one run; sorted output, errors and warnings apart."""

    items: list[Problem] = field(default_factory=list)

    def add(self, path: str, line: int, message: str, hint: str | None = None) -> None:
        self.items.append(Problem(path, max(line, 1), message, hint))

    def warn(self, path: str, line: int, message: str, hint: str | None = None) -> None:
        self.items.append(Problem(path, max(line, 1), message, hint, "warning"))

    def extend(self, other: "Problems | list[Problem]") -> None:
        self.items.extend(other.items if isinstance(other, Problems) else other)

    @property
    def errors(self) -> list[Problem]:
        return sorted(p for p in self.items if p.severity == "error")

    @property
    def warnings(self) -> list[Problem]:
        return sorted(p for p in self.items if p.severity == "warning")

    def __bool__(self) -> bool:
        return bool(self.errors)


class ContentErrors(Exception):
    """Content that must be fixed before a step can run; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} content error(s)")
        self.problems = problems


class SharedContentErrors(ContentErrors):
    """Errors in files every campaign depends on (channels, programme, stakeholder maps,
    templates): no campaign can be planned until they are fixed."""
