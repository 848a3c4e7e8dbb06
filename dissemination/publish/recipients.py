"""Who receives a newsletter: the active subscribers of the edition's audience, read from the
subscriber database (`dissemination.ledger.subscribers`) at the moment of sending, not at
planning: someone who unsubscribed or was erased since the plan is not mailed.

A newsletter has an edition per audience; a subscriber of several of its audiences receives only
one: the edition of the first of them in the campaign's order. Addresses in the stakeholder maps
are no longer read for sending (`dissemination subscribers import-contacts` moves them once).
"""

from __future__ import annotations

from dissemination.ledger import Ledger
from dissemination.ledger.subscribers import Recipient, Subscribers


def subscribed_recipients(ledger: Ledger, audience: str, earlier: list[str] | tuple[str, ...] = ()) -> dict[str, Recipient]:
    """Active subscribers of `audience`, minus those who get an `earlier` edition."""
    return Subscribers(ledger).recipients(audience, earlier)


__all__ = ["Recipient", "subscribed_recipients"]
