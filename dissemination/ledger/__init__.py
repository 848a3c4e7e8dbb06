"""The publication ledger: every publication passes through it, keyed for idempotency."""

from dissemination.ledger.store import Claim, Ledger, PlannedItem, PlanStats, Receipt, Snapshot

__all__ = ["Claim", "Ledger", "PlanStats", "PlannedItem", "Receipt", "Snapshot"]
