"""Who receives a newsletter: the contacts of the audience's stakeholders with a consent record.

A newsletter has an edition per audience; a contact whose stakeholders are in several of its
audiences receives only one: the edition of the first of them in the campaign's order.

Read from the stakeholder maps at the moment of sending, not at planning: a contact whose consent
was removed from the map since the plan is not mailed. A map that cannot be read stops the send
(no guessing who consented).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dissemination.ledger.deliveries import normalise
from dissemination.load.readers import read_stakeholder_map


@dataclass(frozen=True, slots=True)  # slots: a list can hold 100,000 of them
class Recipient:
    address: str  # normalised
    name: str | None
    tracking: bool  # consented to per-person click tracking


class UnreadableMap(Exception):
    pass


def consented_recipients(root: Path, audience: str, earlier: list[str] | tuple[str, ...] = ()) -> dict[str, Recipient]:
    """Consented contacts of `audience`, minus those who get an `earlier` edition."""
    found: dict[str, Recipient] = {}
    elsewhere: set[str] = set()
    for file in sorted((root / "stakeholder_maps").glob("*.y*ml")):
        rel = file.relative_to(root).as_posix()
        parsed, problems = read_stakeholder_map(rel, file.read_text(encoding="utf-8"))
        errors = [p for p in problems if p.severity == "error"]
        if parsed is None or errors:
            raise UnreadableMap(f"{rel} has errors ({errors[0] if errors else 'unreadable'}); run `dissemination check`")
        for stakeholder in parsed.stakeholders:
            consented = [c for c in stakeholder.contacts if c.consent is not None]  # never without consent
            if any(a in stakeholder.audiences for a in earlier):
                elsewhere.update(normalise(c.email) for c in consented)
            if audience not in stakeholder.audiences:
                continue
            for contact in consented:
                address = normalise(contact.email)
                earlier_listing = found.get(address)
                # Listed twice: per-person tracking only if every listing consents to it.
                tracking = contact.tracking and (earlier_listing is None or earlier_listing.tracking)
                found[address] = Recipient(address, (earlier_listing.name if earlier_listing else None) or contact.name,
                                           tracking)
    return {a: r for a, r in found.items() if a not in elsewhere}


def kit_recipient(root: Path, partner: str) -> dict[str, Recipient]:
    """The contact who receives partner `partner`'s kit (dissemination/partners/kits.py), if it has
    a consent record: read from the maps at the moment of sending, as for newsletters."""
    for file in sorted((root / "stakeholder_maps").glob("*.y*ml")):
        rel = file.relative_to(root).as_posix()
        parsed, problems = read_stakeholder_map(rel, file.read_text(encoding="utf-8"))
        errors = [p for p in problems if p.severity == "error"]
        if parsed is None or errors:
            raise UnreadableMap(f"{rel} has errors ({errors[0] if errors else 'unreadable'}); run `dissemination check`")
        for stakeholder in parsed.stakeholders:
            contact = stakeholder.kit_contact if stakeholder.id == partner else None
            if contact is not None and contact.consent is not None:  # never without consent
                address = normalise(contact.email)
                return {address: Recipient(address, contact.name, contact.tracking)}
    return {}
