"""The publication ledger: every publication passes through it, keyed for idempotency."""

from dissemination.ledger.store import Claim, Ledger, LiveLimits, PlannedItem, PlanStats, Receipt, Snapshot

__all__ = ["Claim", "Ledger", "LiveLimits", "PlanStats", "PlannedItem", "Receipt", "Snapshot"]
