"""Measured send rates: how fast each e-mail channel delivered its earlier newsletters, for the
simulation's projected finish times (plan/simulate.py)."""

from __future__ import annotations

from sqlalchemy import func, select

from dissemination.ledger.schema import deliveries, items
from dissemination.ledger.store import Ledger


def measured_send_rates(ledger: Ledger) -> dict[str, float]:
    """Messages per minute per e-mail channel over its earlier sends: the messages after each
    newsletter's first, divided by the minutes from its first to its last (newsletters sent in
    under a second, or to one recipient, say nothing about the rate and are left out)."""
    query = select(items.c.channel, func.count().label("n"), func.min(deliveries.c.sent_at).label("first"),
                   func.max(deliveries.c.sent_at).label("last")).join(
        items, items.c.id == deliveries.c.item_id).where(
        deliveries.c.state == "sent", deliveries.c.sent_at.is_not(None)).group_by(items.c.channel, items.c.id)
    sent: dict[str, int] = {}
    minutes: dict[str, float] = {}
    with ledger.engine.connect() as conn:
        for row in conn.execute(query):
            span = (row.last - row.first).total_seconds() / 60
            if row.n < 2 or span * 60 < 1:
                continue
            sent[row.channel] = sent.get(row.channel, 0) + row.n - 1
            minutes[row.channel] = minutes.get(row.channel, 0.0) + span
    return {channel: round(sent[channel] / minutes[channel], 1) for channel in sent}
