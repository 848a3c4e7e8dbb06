"""Who receives a newsletter: the active subscribers of the edition's audience, in the subscriber
database (`dissemination.ledger.subscribers`), read at the moment of sending, not at planning:
someone who unsubscribed or was erased since the plan is not mailed. `EmailChannel.publish`
streams them (`Subscribers.address_query`, then names and tracking consent per chunk).

A newsletter has an edition per audience; a subscriber of several of its audiences receives only
one: the edition of the first of them in the campaign's order. Addresses in the stakeholder maps
are no longer read for sending (`dissemination subscribers import-contacts` moves them once).
"""

from __future__ import annotations

from dissemination.ledger.subscribers import Recipient

__all__ = ["Recipient"]
