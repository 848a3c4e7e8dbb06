"""Shared wiring for the flows: which errors are worth a retry, and the ledger to use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import OperationalError

from dissemination.ledger import Ledger

# Worth a retry: the database or the file system was briefly unavailable. Content errors and
# bugs are not: retrying them only repeats the failure.
TRANSIENT = (OperationalError, ConnectionError, TimeoutError)


def transient_only(task, task_run, state) -> bool:  # type: ignore[no-untyped-def]
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:
        return False
    return False


def ledger_for(root: str) -> Ledger:
    return Ledger.for_root(Path(root).resolve())
