"""Chart geometry for the report's inline SVG (drawn by report.html.j2): two simple bar charts,
each with a text equivalent, so no charting library or script is needed to read them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from dissemination.periods import MONTHS, Period, ZONE
from dissemination.report.figures import Report
from dissemination.report.format import number

# Drawn small and scaled up: at a phone's width the 12 px labels stay legible (a wide chart
# scaled down to a phone made them 6 px).
WIDTH = 420
LABEL_WIDTH = 110
BAR_HEIGHT = 14


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str  # nu | vorig
    label: str  # the value as shown beside the bar


@dataclass
class Chart:
    title: str
    description: str  # the chart in words, for screen readers
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, float, str]]  # x, y, text
    legend: bool


def reach_by_channel(report: Report) -> Chart:
    rows = report.sections["channel"]
    known = [f.amount or 0 for r in rows for f in (r.current["reach"], r.previous["reach"])]
    top = max(known + [1])
    scale = (WIDTH - LABEL_WIDTH - 80) / top
    bars: list[Bar] = []
    labels: list[tuple[float, float, str]] = []
    words: list[str] = []
    y = 28.0
    for row in rows:
        labels.append((LABEL_WIDTH - 8, y + BAR_HEIGHT + 2, str(row.key)))
        for css, figure in (("nu", row.current["reach"]), ("vorig", row.previous["reach"])):
            amount = figure.amount
            shown = "n.b." if amount is None else ("≥ " if figure.is_partial else "") + number(amount)
            width = (amount or 0) * scale
            bars.append(Bar(LABEL_WIDTH, y, max(width, 1 if amount else 0), BAR_HEIGHT, css, shown))
            y += BAR_HEIGHT + 2
        words.append(f"{row.key}: {bars[-2].label} (vorige periode {bars[-1].label})")
        y += 12
    return Chart("Bereik per kanaal", "Bereik per kanaal, deze periode en de vorige. " + "; ".join(words) + ".",
                 WIDTH, int(y + 4), bars, labels, True)


def publications_over_time(report: Report) -> Chart:
    """Publications per week (per month for a year)."""
    period = report.period
    monthly = period.days > 100
    buckets = _buckets(period, monthly)
    counts: Counter[dt.date] = Counter()
    for pub in report.publications:
        day = pub.published_at.astimezone(ZONE).date()
        counts[_bucket(day, monthly)] += 1
    top = max(list(counts.values()) + [1])
    plot = 150.0
    step = (WIDTH - 40) / max(len(buckets), 1)
    bars, labels, words = [], [], []
    for i, start in enumerate(buckets):
        n = counts.get(start, 0)
        height = plot * n / top
        x = 30 + i * step
        bars.append(Bar(x + 2, 20 + plot - height, max(step - 4, 2), height, "nu", number(n)))
        name = MONTHS[start.month - 1][:3] if monthly else f"{start.day}/{start.month}"
        if len(buckets) <= 8 or i % 2 == 0:  # every other week in a quarter, or the labels overlap
            labels.append((x + step / 2, 20 + plot + 16, name))
        words.append(f"{name}: {n}")
    unit = "maand" if monthly else "week (vanaf maandag)"
    return Chart(f"Publicaties per {unit.split()[0]}", f"Publicaties per {unit}. " + "; ".join(words) + ".",
                 WIDTH, int(plot + 48), bars, labels, False)


def _bucket(day: dt.date, monthly: bool) -> dt.date:
    return day.replace(day=1) if monthly else day - dt.timedelta(days=day.weekday())


def _buckets(period: Period, monthly: bool) -> list[dt.date]:
    out: list[dt.date] = []
    day = period.start
    while day < period.end:
        start = _bucket(day, monthly)
        if not out or out[-1] != start:
            out.append(start)
        day += dt.timedelta(days=1)
    return out
