"""The report as files: one self-contained Dutch HTML page, and beside it the figures as CSV
(`NAME.csv`) and the publications behind them (`NAME-publicaties.csv`). An unknown figure is an
empty value with its reason in the `reden` column, never 0."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from dissemination.files import check_target, write_atomically
from dissemination.periods import ZONE, dutch_date
from dissemination.report import charts
from dissemination.report.figures import (
    DIMENSIONS,
    MEASURE_NL,
    MEASURES,
    QUADRANT_NL,
    Figure,
    Report,
    Row,
    Trend,
)
from dissemination.report.dutch import dutch
from dissemination.report.format import number, percent
from dissemination.report.partners import PARTNER_MEASURE_NL, PARTNER_MEASURES

_HERE = Path(__file__).resolve().parent
FIGURE_COLUMNS = ["periode", "onderdeel", "groep", "naam", "maat", "waarde", "volledig", "publicaties_bekend",
                  "publicaties_onbekend", "vorige_periode", "trend_pct", "reden"]
PUBLICATION_COLUMNS = ["publicatie", "gepubliceerd", "kanaal", "doelgroep", "campagne", "bericht", "impactdoelen",
                       "mijlpalen", "link", "bereik", "bereik_reden", "interacties", "interacties_reden", "klikken",
                       "klikken_reden"]


CSV_DELIMITER = ";"
NUMERIC_COLUMNS = frozenset({"waarde", "vorige_periode", "trend_pct", "bereik", "interacties", "klikken"})


@dataclass
class ReportFiles:
    html: Path
    figures_csv: Path
    publications_csv: Path
    pdf: Path | None = None  # None when no Chromium could print it; `pdf_note` says why
    pdf_note: str | None = None


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_ENV = "DISSEMINATION_REPORT_PDF"  # "0": write no PDF


def print_pdf(html: Path, pdf: Path, timeout: float = 120.0) -> str | None:
    """Print the report to `pdf` through headless Chromium (the page is self-contained: no
    scripts, nothing from the network). Returns why not, or None when it was written."""
    import os
    import shutil
    import subprocess
    import tempfile

    browser = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    if browser is None:
        return "no PDF: Chromium is not installed (e.g. apt-get install chromium)"
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        target = Path(profile) / "report.pdf"
        command = [browser, "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                   f"--user-data-dir={profile}/profile", "--no-pdf-header-footer", f"--print-to-pdf={target}",
                   html.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(2, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        try:
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout,
                           check=False, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"no PDF: Chromium did not print it ({type(exc).__name__})"
        if not target.is_file() or target.stat().st_size == 0:
            return "no PDF: Chromium did not print it"
        write_atomically(pdf, target.read_bytes())
    return None


def _raw(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if abs(value - round(value)) < 1e-9 else f"{value:.2f}"


def _row(period: str, section: str, group: Any, name: str, measure: str, current: Figure,
         previous: Figure | None, change: Trend | None) -> dict[str, str]:
    return {
        "periode": period, "onderdeel": section, "groep": str(group), "naam": name, "maat": MEASURE_NL[measure],
        "waarde": _raw(current.amount), "volledig": "ja" if current.complete else "nee",
        "publicaties_bekend": str(current.known), "publicaties_onbekend": str(current.unknown),
        "vorige_periode": _raw(previous.amount) if previous is not None and previous.complete else "",
        "trend_pct": f"{change.pct:.1f}" if change is not None and change.pct is not None else "",
        "reden": "; ".join(x for x in (current.reason_text(), current.note()) if x),
    }


def figure_rows(report: Report) -> list[dict[str, str]]:
    """Every figure the report shows, one row each (also the Prefect table artifact)."""
    label = report.period.label
    out = []
    for measure in MEASURES:
        out.append(_row(label, "totaal", "totaal", "Totaal", measure, report.totals.current[measure],
                        report.totals.previous[measure], report.totals.trend(measure)))
    for dimension, title in DIMENSIONS.items():
        for row in report.sections[dimension]:
            for measure in MEASURES:
                out.append(_row(label, title.lower(), row.key, row.label, measure, row.current[measure],
                                row.previous[measure], row.trend(measure)))
    for t in report.targets:
        entry = _row(label, "doel", t.target.id + (f":{t.group}" if t.group else ""), t.target.description,
                     t.target.metric, t.value, None, None)
        entry["vorige_periode"] = ""
        entry["reden"] = "; ".join(x for x in (f"doel {_raw(t.goal) or 'n.b.'} ({t.goal_note})",
                                               f"status {t.status}", t.status_note, t.value.reason_text()) if x)
        out.append(entry)
    if report.partners is not None:
        out += partner_rows(report)
    share = report.reliability.on_time_share
    out.append({**_row(label, "betrouwbaarheid", "op_tijd_pct", "Op tijd gepubliceerd (%)", "publications",
                       share, None, None), "maat": "percentage"})
    for ms in report.milestones:
        due = ms.milestone.due.isoformat() if ms.milestone.due else "geen"
        out.append(_plain(label, "mijlpaalstatus", ms.milestone.id, ms.milestone.description, "status", ms.status,
                          f"einddatum {due}; {len(ms.publications)} publicatie(s) en {len(ms.events)} "
                          "evenement(en) in deze periode"))
    for plan in report.plan:
        c = plan.counts
        for maat, value in (("gepland", c.planned), ("gepubliceerd", c.published), ("op_tijd", c.on_time),
                            ("gemist", c.missed), ("mislukt", c.failed), ("vastgehouden", c.held), ("open", c.open)):
            out.append(_plain(label, "plan", plan.campaign, plan.label, maat, str(value)))
    for event in report.events:
        for maat, given in (("aanmeldingen", event.registrations), ("deelnemers", event.attendance)):
            out.append(_plain(label, "evenement", event.starts.date().isoformat(), event.name, maat,
                              "" if given is None else str(given), "" if given is not None else "nog niet ingevuld"))
    if report.outlook is not None:
        o = report.outlook
        for maat, value in (("berichten", o.posts), ("nieuwsbrieven", o.newsletters),
                            ("evenementen", len(o.events)), ("vastgehouden", o.held)):
            out.append(_plain(label, "vooruitblik", o.period.label, o.period.dutch(), maat, str(value)))
    return out


def partner_rows(report: Report) -> list[dict[str, str]]:
    """"Bereik via partners": one row per partner (and the total) and measure, with the previous
    period and the trend; the counted items are not publications, so those columns stay empty."""
    label = report.period.label
    out = []
    for row in report.partners.rows + [report.partners.total]:
        for measure in PARTNER_MEASURES:
            current, previous, change = row.current[measure], row.previous[measure], row.trend(measure)
            out.append({**_plain(label, "partners", row.partner, row.name, PARTNER_MEASURE_NL[measure],
                                 _raw(current.amount), "; ".join(x for x in (current.reason_text(), current.note()) if x)),
                        "volledig": "ja" if current.complete and not current.is_unknown else "nee",
                        "vorige_periode": _raw(previous.amount) if previous.complete else "",
                        "trend_pct": f"{change.pct:.1f}" if change.pct is not None else ""})
    return out


def _plain(period: str, section: str, group: str, name: str, maat: str, value: str, reason: str = "") -> dict[str, str]:
    """A row that is a count or a status, not a total over publications."""
    return {"periode": period, "onderdeel": section, "groep": group, "naam": name, "maat": maat, "waarde": value,
            "volledig": "ja" if value != "" else "nee", "publicaties_bekend": "", "publicaties_onbekend": "",
            "vorige_periode": "", "trend_pct": "", "reden": reason}


def publication_rows(report: Report) -> list[dict[str, str]]:
    out = []
    for p in sorted(report.publications, key=lambda p: (p.published_at, p.id)):
        row = {"publicatie": p.id, "gepubliceerd": p.published_at.isoformat().replace("+00:00", "Z"),
               "kanaal": p.channel, "doelgroep": " ".join(p.keys("audience")), "campagne": p.campaign, "bericht": p.post,
               "impactdoelen": " ".join(map(str, p.impact_goals)), "mijlpalen": " ".join(p.milestones),
               "link": p.url or ""}
        for measure, column in (("reach", "bereik"), ("interactions", "interacties"), ("clicks", "klikken")):
            value = p.values[measure]
            row[column] = _raw(value.value)
            row[column + "_reden"] = value.reason or ""
        out.append(row)
    return out


def _csv(rows: list[dict[str, str]], columns: list[str]) -> str:
    buffer = io.StringIO()
    # Dutch Excel reads ';' as the separator (',' is the decimal comma there) and needs the
    # byte-order mark to read the accents as UTF-8.
    writer = csv.DictWriter(buffer, columns, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writeheader()
    # ... and a decimal comma in the figures, which it would otherwise read as text or thousands
    writer.writerows({k: v.replace(".", ",") if k in NUMERIC_COLUMNS else v for k, v in row.items()} for row in rows)
    return "\ufeff" + buffer.getvalue()


def _show(figure: Figure, percent_sign: bool = False) -> str:
    text = percent(figure.amount) if percent_sign else number(figure.amount)
    return ("≥ " + text) if figure.is_partial else text


def _show_trend(change: Trend) -> str:
    return percent(change.pct, signed=True) if change.pct is not None else change.note


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_HERE), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(nl=dutch, show=_show, trend=_show_trend, n=number, pct=percent, raw=_raw,
                       datum=lambda d: dutch_date(d.astimezone(ZONE).date() if hasattr(d, "astimezone") else d),
                       tijd=lambda d: d.astimezone(ZONE).strftime("%H:%M"))
    return env


def render_html(report: Report) -> str:
    template = _environment().get_template("report.html.j2")
    numbered: dict[str, int] = {}

    def ref(reason: str) -> int:
        return numbered.setdefault(reason, len(numbered) + 1)

    return template.render(
        ref=ref, reasons=lambda: list(numbered),
        r=report, measures=MEASURES, measure_nl=MEASURE_NL, dimensions=DIMENSIONS, quadrant_nl=QUADRANT_NL,
        charts=[charts.reach_by_channel(report), charts.publications_over_time(report)],
        is_link=lambda url: bool(url) and url.startswith(("https://", "http://")),
        partner_measures=PARTNER_MEASURES, partner_nl=PARTNER_MEASURE_NL)


def write_report(report: Report, out: Path) -> ReportFiles:
    out.parent.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out, out.with_suffix(".csv"), out.with_name(out.stem + "-publicaties.csv"))
    html = render_html(report)
    for target in (files.html, files.figures_csv, files.publications_csv):
        check_target(target)  # all three or none: refuse before writing any of them
    write_atomically(files.figures_csv, _csv(figure_rows(report), FIGURE_COLUMNS))
    write_atomically(files.publications_csv, _csv(publication_rows(report), PUBLICATION_COLUMNS))
    write_atomically(files.html, html)
    import os

    if os.environ.get(PDF_ENV, "1") != "0":
        pdf = out.with_suffix(".pdf")
        files.pdf_note = print_pdf(files.html, pdf)
        files.pdf = None if files.pdf_note else pdf
    return files


def markdown_summary(report: Report, files: ReportFiles | None = None) -> str:
    """A short Markdown version for the Prefect UI."""
    t = report.totals
    lines = [f"# Verspreidingsrapport {report.period.dutch()}", "",
             f"{report.programme}. Vergeleken met {report.previous.dutch()}; "
             f"stand van de metingen {dutch_date(report.as_of.astimezone(ZONE).date())}.", "",
             "| maat | deze periode | vorige periode | trend |", "|---|---|---|---|"]
    for measure in MEASURES:
        lines.append(f"| {MEASURE_NL[measure]} | {_show(t.current[measure])} | {_show(t.previous[measure])} | "
                     f"{_show_trend(t.trend(measure))} |")
    unknown = [(MEASURE_NL[mm], t.current[mm].reason_text()) for mm in MEASURES if t.current[mm].unknown]
    for name, reason in unknown:
        lines.append(f"\n*n.b. bij {name}*: {reason}")
    if report.targets:
        lines += ["", "## Doelen", "", "| doel | waarde | doel | status |", "|---|---|---|---|"]
        for row in report.targets:
            name = row.target.id + (f" ({row.group})" if row.group else "")
            goal = number(row.goal) if row.goal is not None else "n.b."
            lines.append(f"| {name} | {_show(row.value)} | {goal} | {row.status} |")
    rel = report.reliability
    lines += ["", f"Op tijd: {_show(rel.on_time_share, True)}; gemist {rel.missed}, mislukt {rel.failed}, "
                  f"vastgehouden {rel.held}."]
    missing = report.coverage.stakeholders
    if missing:
        lines.append(f"Niet bereikt: {len(missing)} stakeholder(s), waarvan "
                     f"{sum(1 for s in missing if s.quadrant.value == 'manage_closely')} 'nauw betrekken'.")
    if files:
        lines.append(f"\nRapport: `{files.html}`; cijfers: `{files.figures_csv}`.")
    return "\n".join(lines) + "\n"


__all__ = ["ReportFiles", "Row", "figure_rows", "markdown_summary", "publication_rows", "render_html",
           "write_report"]
