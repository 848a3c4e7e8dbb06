"""The `dissemination` command line. The commands live by group in this package (common, content,
jobs, status, newsletters, auth); they parse, call the step that does the work, and print. They are
registered here, in the order `--help` lists them."""

from __future__ import annotations

import os
import sys

from dissemination.cli import content, jobs, newsletters, status
from dissemination.cli.auth import auth_app
from dissemination.cli.common import app, err
from dissemination.cli.newsletters import subscribers_app
from dissemination.files import WriteRefused

app.command()(content.check)
app.command()(jobs.plan)
app.command()(jobs.publish)
app.command()(content.web)
app.command()(newsletters.newsletters)
app.command()(newsletters.suppress)
app.command()(newsletters.unsuppress)
app.command("resend-unknown")(newsletters.resend_unknown)
app.command()(status.resolve)
app.command()(status.status)
app.command()(content.approve)
app.command()(jobs.run)
app.command()(jobs.metrics)
app.command()(jobs.report)
app.command()(jobs.serve)
app.command()(content.preview)
app.command()(content.calendar)
app.command()(content.kits)
app.add_typer(auth_app, name="auth")
app.add_typer(subscribers_app, name="subscribers")
app.command()(newsletters.bounces)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001
        fault = environment_fault(exc)
        if fault is None or os.environ.get("DISSEMINATION_DEBUG"):
            _internal_error(exc)
        err.print(fault, markup=False)
        sys.exit(2)


def environment_fault(exc: BaseException) -> str | None:
    """One plain sentence for a fault of the machine rather than of dissemination or the content:
    a file that cannot be written (read-only content root, full disk, a device at --out), a ledger
    that is damaged. None for anything else."""
    from sqlalchemy.exc import DatabaseError

    if isinstance(exc, OSError):
        if isinstance(exc, WriteRefused):
            return f"cannot write: {exc}"
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} (check the free disk space and the permissions; nothing was " \
               "half-written)"
    if isinstance(exc, DatabaseError):
        reason = " ".join(str(exc.orig or exc).split())
        return (f"the ledger cannot be used ({reason}): if it is damaged, restore it from a backup or move it aside to start "
                "a new one")
    return None


def _internal_error(exc: Exception) -> None:
    """A bug of ours, not a content error: say so, briefly."""
    if os.environ.get("DISSEMINATION_DEBUG"):
        raise exc
    err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
    err.print("this is a bug in dissemination; rerun with DISSEMINATION_DEBUG=1 for the traceback")
    sys.exit(3)
