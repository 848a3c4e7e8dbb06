"""The pull step of every deployment (prefect.yaml): run in the checkout that holds these flows,
the one whose `.venv` runs the worker, so the entrypoints resolve on any machine. Nothing of the
deploying machine is baked in; where the content lives is the worker's DISSEMINATION_HOME, read
by the flows when the run starts (flows/_common.py, `content_root`)."""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def enter_checkout() -> dict:
    os.chdir(CHECKOUT)
    return {"directory": str(CHECKOUT)}
