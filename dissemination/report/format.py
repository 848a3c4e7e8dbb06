"""Dutch number formatting for the report: 12.345, 1,5, +12%."""

from __future__ import annotations


def number(value: float | None, decimals: int = 0) -> str:
    if value is None:
        return "n.b."
    if decimals == 0 and abs(value - round(value)) < 1e-9:
        text = f"{round(value):,}"
    else:
        text = f"{value:,.{decimals or 1}f}"
    # 1,234.5 -> 1.234,5
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n.b."
    rounded = round(value)
    sign = "+" if signed and rounded > 0 else ("−" if rounded < 0 else "")
    return f"{sign}{abs(rounded)}%"
