"""Prefect flows: thin wiring of the steps in `dissemination/`, plus retries and schedules.

Nothing in `dissemination/` imports Prefect; the core runs and is tested without it.
"""
