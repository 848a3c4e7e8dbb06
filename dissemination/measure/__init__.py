"""Measuring: read the engagement of recent publications from their channels into the ledger."""

from dissemination.measure.collect import DEFAULT_MAX_AGE, CollectReport, collect_metrics

__all__ = ["DEFAULT_MAX_AGE", "CollectReport", "collect_metrics"]
