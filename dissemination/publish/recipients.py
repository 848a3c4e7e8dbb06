"""Who receives a newsletter: the active subscribers of the edition's audience, in the subscriber
database (`dissemination.ledger.subscribers`), read at the moment of sending, not at planning:
someone who unsubscribed or was erased since the plan is not mailed. `EmailChannel.publish`
streams them (`Subscribers.address_query`, then names and tracking consent per chunk).

A newsletter has an edition per audience; a subscriber of several of its audiences receives only
one: the edition of the first of them in the campaign's order. Addresses in the stakeholder maps
are no longer read for sending (`dissemination subscribers import-contacts` moves them once).
"""

from __future__ import annotations

from pathlib import Path

from dissemination.ledger.deliveries import normalise
from dissemination.ledger.subscribers import Recipient
from dissemination.load.readers import read_stakeholder_map

__all__ = ["Recipient", "UnreadableMap", "kit_recipient"]


class UnreadableMap(Exception):
    pass


def kit_recipient(root: Path, partner: str) -> dict[str, Recipient]:
    """The contact who receives partner `partner`'s kit (dissemination/partners/kits.py), if it has
    an address and a consent record: read from the maps at the moment of sending. A partner's kit
    contact is the organisation's role address (e.g. its editors'), kept in the map beside the
    partner's channels; people's addresses belong in the subscriber database."""
    for file in sorted((root / "stakeholder_maps").glob("*.y*ml")):
        rel = file.relative_to(root).as_posix()
        parsed, problems = read_stakeholder_map(rel, file.read_text(encoding="utf-8"))
        errors = [p for p in problems if p.severity == "error"]
        if parsed is None or errors:
            raise UnreadableMap(f"{rel} has errors ({errors[0] if errors else 'unreadable'}); run `dissemination check`")
        for stakeholder in parsed.stakeholders:
            contact = stakeholder.kit_contact if stakeholder.id == partner else None
            if contact is not None and contact.email and contact.consent is not None:  # never without consent
                address = normalise(contact.email)
                return {address: Recipient(address, contact.name, contact.tracking)}
    return {}
