"""Reporting periods: a year (2026), a quarter (2026-Q4), a month (2026-11) or any run of days.

A period is a half-open range of local calendar days [start, end) in the programme's time zone
(Europe/Amsterdam), so a quarter's figures are those the stuurgroep would count by the calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Europe/Amsterdam")
_SPEC = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(0[1-9]|1[0-2])))?$", re.IGNORECASE)
MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
          "oktober", "november", "december"]


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    start: dt.date  # first day
    end: dt.date  # day after the last day
    label: str  # e.g. 2026-Q4, 2026-11, 2026, 2026-10-05..2026-11-04
    kind: str  # year | quarter | month | days

    @property
    def start_utc(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), ZONE).astimezone(dt.timezone.utc)

    @property
    def end_utc(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time(), ZONE).astimezone(dt.timezone.utc)

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def dutch(self) -> str:
        """How the report names it: '4e kwartaal 2026', 'november 2026', '2026'."""
        if self.kind == "year":
            return str(self.start.year)
        if self.kind == "quarter":
            return f"{(self.start.month - 1) // 3 + 1}e kwartaal {self.start.year}"
        if self.kind == "month":
            return f"{MONTHS[self.start.month - 1]} {self.start.year}"
        return f"{dutch_date(self.start)} t/m {dutch_date(self.last_day)}"

    def previous(self) -> "Period":
        """The period just before, of the same kind (a run of days: as many days)."""
        if self.kind == "year":
            return parse_period(str(self.start.year - 1))
        if self.kind in ("quarter", "month"):
            months = 3 if self.kind == "quarter" else 1
            index = self.start.year * 12 + self.start.month - 1 - months
            year, month = divmod(index, 12)
            if self.kind == "quarter":
                return parse_period(f"{year}-Q{month // 3 + 1}")
            return parse_period(f"{year}-{month + 1:02d}")
        return days_period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def contains(self, moment: dt.datetime) -> bool:
        return self.start_utc <= moment < self.end_utc

    def elapsed(self, now: dt.datetime) -> float:
        """Share of the period that lies before `now` (0..1)."""
        total = (self.end_utc - self.start_utc).total_seconds()
        return min(1.0, max(0.0, (now - self.start_utc).total_seconds() / total))


def dutch_date(day: dt.date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def parse_period(spec: str) -> Period:
    match = _SPEC.match(spec.strip())
    if not match:
        raise PeriodError(f"'{spec}' is not a period; write a year (2026), a quarter (2026-Q4) or a month (2026-11)")
    year, quarter, month = int(match.group(1)), match.group(2), match.group(3)
    if not 1 < year < 9999:  # the report compares with the period before, and needs the day after
        raise PeriodError(f"'{spec}': the year must be between 2 and 9998")
    if quarter:
        first = dt.date(year, (int(quarter) - 1) * 3 + 1, 1)
        return Period(first, _add_months(first, 3), f"{year}-Q{quarter}", "quarter")
    if month:
        first = dt.date(year, int(month), 1)
        return Period(first, _add_months(first, 1), f"{year}-{month}", "month")
    return Period(dt.date(year, 1, 1), dt.date(year + 1, 1, 1), str(year), "year")


def days_period(first: dt.date, last: dt.date) -> Period:
    if last < first:
        raise PeriodError(f"the period ends ({last}) before it starts ({first})")
    if first.toordinal() - (last - first).days - 1 < 1 or last >= dt.date.max:
        raise PeriodError(f"{first}..{last} is too close to the year 1 or 9999 to compare with the period before")
    return Period(first, last + dt.timedelta(days=1), f"{first}..{last}", "days")


def current_quarter(now: dt.datetime) -> Period:
    local = now.astimezone(ZONE).date()
    return parse_period(f"{local.year}-Q{(local.month - 1) // 3 + 1}")


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)
