"""The stuurgroep report: reach and engagement per channel, audience, campaign, impact goal and
milestone against the previous period and the programme's targets, as Dutch HTML plus CSV."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dissemination.contained import inside
from dissemination.ledger import Ledger
from dissemination.load import load_project
from dissemination.periods import Period
from dissemination.report.figures import Report, build_report
from dissemination.report.write import ReportFiles, figure_rows, markdown_summary, write_report


def default_report_path(root: Path, period: Period) -> Path:
    """`reports/<period>.html` in the content root, which it must not leave (a `reports` link
    to elsewhere is refused, see dissemination.contained)."""
    return inside(root, f"reports/{period.label}.html", "report")


def make_report(root: Path, ledger: Ledger, period: Period, out: Path | None = None,
                now: dt.datetime | None = None) -> tuple[Report, ReportFiles]:
    """Build the report of `period` from the ledger and the content under `root`, write it to
    `out` (HTML; default: `default_report_path`) with its CSVs beside it. Content problems do not stop the report: it labels what
    it can (a campaign that no longer loads is shown by its id)."""
    project, _ = load_project(root)
    report = build_report(ledger, project, period, now or dt.datetime.now(dt.timezone.utc))
    return report, write_report(report, out or default_report_path(root, period))


__all__ = ["Report", "ReportFiles", "build_report", "figure_rows", "make_report", "markdown_summary", "write_report"]
