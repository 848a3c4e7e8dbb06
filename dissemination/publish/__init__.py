"""Publish: claim due items from the ledger and send each through its channel exactly once."""
