"""Content problems: what is wrong, where, and how to fix it.

Every loader reports problems instead of raising, so one bad file never hides the others and no
content error ever reaches the user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}: {self.message}"
        if self.severity == "warning":
            text = f"{self.path}:{self.line}: warning: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


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
