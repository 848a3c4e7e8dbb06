"""The report for its readers, on a ledger and content seeded with known publications, readings,
milestones, events and next quarter's plan: the summary, the milestones, plan versus actual, the
events and the outlook equal figures written out here (HTML, CSV and summary); no English reaches
the page; the PDF printed by headless Chromium has the headline figures; the files are readable
by the group."""

import csv
import datetime as dt
import html as htmllib
import re
import shutil
import stat
import subprocess

import pytest
from reporting import AS_OF, seed_ledger, with_targets

from dissemination.ledger import Ledger, PlannedItem, Receipt, Snapshot
from dissemination.report.dutch import EXAMPLES

UTC = dt.timezone.utc
NOW = AS_OF.isoformat()

MILESTONES = """  - id: PL1-1
    description: Een mijlpaal die te laat is
    due: 2026-12-31
  - id: PL1-2
    description: Een behaalde mijlpaal
    due: 2027-06-30
    achieved: 2027-02-15
  - id: PL2-1
    description: Een mijlpaal waaraan een evenement werkte
    due: 2028-06-30
  - id: PL2-2
    description: Een mijlpaal waaraan niemand werkt
    due: 2028-12-31
events:
  - name: Praktijkdag
    starts: 2027-02-20 13:00
    place: Utrecht
    milestones: [PL2-1]
    registrations: 40
    attendance: 31
  - name: Zomersessie
    starts: 2027-05-12 10:00
    place: Venlo
"""

# Written out by hand from tests/reporting.py and the content above:
SUMMARY = [
    # A 300 + B 120 reach (C, D unknown), interactions 8 + 12 (C, D unknown), clicks B 7; Q4: H and I
    "In 1e kwartaal 2027 verschenen 4 publicaties (vorige periode 2), met een bereik van ten minste 420, "
    "ten minste 20 interacties en ten minste 7 klikken.",
    # A late, B C D on time, E missed, F failed, G held: 7 planned; 3 of 6 decided on time
    "Van de 7 geplande publicaties gingen er 3 op tijd uit; 1 gemist, 1 mislukt en 1 wachten op goedkeuring "
    "(op tijd: 50%).",
    # publicaties-pl3-2 met; linkedin-publicaties behind; bereik-verdubbelen and both klikken rows unknown
    "Doelen: 1 gehaald, 0 op koers, 1 achter en 3 niet te beoordelen.",
    # PL1-2 achieved; PL3-2 (publications) and PL2-1 (the Praktijkdag) on schedule; PL1-1 late; PL2-2 nothing
    "Mijlpalen: 1 behaald, 2 op schema, 1 te laat, 1 nog niet gestart.",
    "1 evenement(en) in deze periode: 40 aanmeldingen en 31 deelnemers.",
    "1 doelgroep(en) kregen in deze periode geen publicatie: Beleidsmakers.",
    # next quarter: 2 Mastodon posts and 1 held LinkedIn post, 1 newsletter edition, the Zomersessie
    "Volgend kwartaal (2e kwartaal 2027) staan 3 berichten, 1 nieuwsbrief-edities en 1 evenement(en) gepland; "
    "1 daarvan wachten op goedkeuring.",
]
MILESTONE_STATUS = {"PL1-1": "te laat", "PL1-2": "behaald", "PL2-1": "op schema", "PL2-2": "nog niet gestart",
                    "PL3-2": "op schema"}


def _content(root):
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + MILESTONES)
    with_targets(root)


def _next_quarter(ledger):
    slot = dt.datetime(2027, 4, 20, 8, 0, tzinfo=UTC)
    items = [PlannedItem("volgend", "a", "mkb", "mastodon", 0, slot, "Europe/Amsterdam", {"text": "a"}),
             PlannedItem("volgend", "b", "mkb", "mastodon", 0, slot, "Europe/Amsterdam", {"text": "b"}),
             PlannedItem("volgend", "c", "mkb", "linkedin", 0, slot, "Europe/Amsterdam", {"text": "c"},
                         state="held", reason="changed since approval; approve again"),
             PlannedItem("volgend", "d", "mkb", "nieuwsbrief", 0, slot, "Europe/Amsterdam", {"text": "d"}),
             # the quarter after that: not in the outlook
             PlannedItem("volgend", "e", "mkb", "mastodon", 0, slot + dt.timedelta(days=90), "Europe/Amsterdam",
                         {"text": "e"})]
    ledger.apply_plan(items, AS_OF, campaigns=["volgend"])


def _visible_text(page: str) -> str:
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return " ".join(htmllib.unescape(page).split())


def _csv(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))


@pytest.fixture
def report(content_root, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DISSEMINATION_REPORT_PDF", "1")
    root = content_root()
    _content(root)
    ledger = Ledger.for_root(root)
    seed_ledger(ledger)
    _next_quarter(ledger)
    out = tmp_path / "stuurgroep" / "2027-Q1.html"
    result = cli("--root", str(root), "report", "--period", "2027-Q1", "--out", str(out), "--now", NOW)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_summary_milestones_plan_events_and_outlook_equal_the_seeded_figures(report):
    out, output = report
    page = out.read_text(encoding="utf-8")
    summary = re.search(r'<div class="samenvatting" id="samenvatting">(.*?)</div>', page, re.S).group(1)
    assert [htmllib.unescape(p) for p in re.findall(r"<p>(.*?)</p>", summary)] == SUMMARY
    for milestone, status in MILESTONE_STATUS.items():
        row = re.search(rf'<tr id="mijlpaal-{milestone}">(.*?)</tr>', page, re.S).group(1)
        assert f">{status}</span>" in row, (milestone, row)
    assert "31 december 2026" in re.search(r'<tr id="mijlpaal-PL1-1">(.*?)</tr>', page, re.S).group(1)
    assert "Praktijkdag" in re.search(r'<tr id="mijlpaal-PL2-1">(.*?)</tr>', page, re.S).group(1)
    rows = _csv(out.with_suffix(".csv"))
    status = {r["groep"]: r["waarde"] for r in rows if r["onderdeel"] == "mijlpaalstatus"}
    assert status == MILESTONE_STATUS
    plan = {(r["groep"], r["maat"]): r["waarde"] for r in rows if r["onderdeel"] == "plan"}
    # reeks: A B C published (A late), E missed, F failed, G held; oud: D on time
    assert {m: plan[("reeks", m)] for m in ("gepland", "gepubliceerd", "op_tijd", "gemist", "mislukt",
                                            "vastgehouden", "open")} == {
        "gepland": "6", "gepubliceerd": "3", "op_tijd": "2", "gemist": "1", "mislukt": "1", "vastgehouden": "1",
        "open": "0"}
    assert (plan[("oud", "gepland")], plan[("oud", "gepubliceerd")]) == ("1", "1")
    table = re.search(r'<table id="plan-tabel">(.*?)</table>', page, re.S).group(1)
    assert re.search(r'data-campagne="reeks"><th scope="row">Kennisreeks</th>'
                     r'<td class="num" data-label="Gepland">6</td><td class="num" data-label="Gepubliceerd">3</td>',
                     table)
    events = {(r["naam"], r["maat"]): r["waarde"] for r in rows if r["onderdeel"] == "evenement"}
    assert events == {("Praktijkdag", "aanmeldingen"): "40", ("Praktijkdag", "deelnemers"): "31"}
    outlook = {r["maat"]: r["waarde"] for r in rows if r["onderdeel"] == "vooruitblik"}
    assert outlook == {"berichten": "3", "nieuwsbrieven": "1", "evenementen": "1", "vastgehouden": "1"}
    assert "Zomersessie (Venlo)" in page
    # top publications by their title (the seeds' posts are no longer in the campaign file: the
    # campaign's title and the post's id), with their link
    assert '<a href="https://social.example/B">Kennisreeks (p1)</a>' in page
    assert "reeks / p1" not in re.search(r'<section aria-labelledby="top">(.*?)</section>', page, re.S).group(1)


def test_the_pdf_has_the_headline_figures_and_every_file_is_readable_by_the_group(report):
    out, output = report
    pdf = out.with_suffix(".pdf")
    assert f"PDF: {pdf.name}" in output
    assert pdf.read_bytes().startswith(b"%PDF")
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext is missing: run scripts/install-test-tools"
    text = " ".join(subprocess.run([pdftotext, str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "Verspreidingsrapport 1e kwartaal 2027" in text
    assert SUMMARY[0] in text
    for headline in ("≥ 420", "≥ 20", "≥ 7", "50%"):
        assert headline in text, headline
    for path in (out, out.with_suffix(".csv"), out.with_name("2027-Q1-publicaties.csv"), pdf):
        assert path.stat().st_mode & stat.S_IRGRP, f"{path.name} is not readable by the group"


def test_no_english_reaches_the_page(content_root, cli, tmp_path):
    """Every message the code records (dissemination/report/dutch.py EXAMPLES), as a failure and as
    an unreadable figure: the page shows Dutch only."""
    root = content_root()
    ledger = Ledger.for_root(root)
    slot = dt.datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    failing = [PlannedItem("reeks", f"f{i}", "mkb", "linkedin", 0, slot + dt.timedelta(hours=i), "Europe/Amsterdam",
                           {"text": str(i)}) for i in range(len(EXAMPLES))]
    reading = [PlannedItem("reeks", f"r{i}", "mkb", "mastodon", 0, slot + dt.timedelta(hours=i), "Europe/Amsterdam",
                           {"text": str(i)}) for i in range(len(EXAMPLES))]
    ledger.apply_plan(failing + reading, slot - dt.timedelta(days=1))
    for i, reason in enumerate(EXAMPLES):
        moment = slot + dt.timedelta(hours=i)
        for claim in ledger.claim_due("test", moment, limit=10):
            if claim.post.startswith("f"):
                ledger.record_failed(claim, moment, reason)
            else:
                ledger.record_published(claim, Receipt(f"r{i}"), moment)
                ledger.add_snapshots([Snapshot.unavailable(claim.id, "engagement", moment, "test", reason)])
    out = tmp_path / "r.html"
    assert cli("--root", str(root), "report", "--period", "2027-Q1", "--out", str(out), "--now", NOW).exit_code == 0
    text = _visible_text(out.read_text(encoding="utf-8"))
    for reason in EXAMPLES:
        assert reason not in text
    english = re.findall(r"\b(the|was|not|has|been|with|its|this|from|will|cannot|refused|published)\b", text)
    assert english == [], english
    assert "geweigerd door LinkedIn (HTTP 422)" in text and "technische melding" in text


def test_subscribers_leave_out_suppressed_addresses_and_are_judged_by_pace(content_root, cli, tmp_path):
    from dissemination.ledger.deliveries import Deliveries

    root = content_root()
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + """targets:
  - id: abonnees-mkb
    description: Ten minste twee abonnees onder mkb-ondernemers
    metric: subscribers
    audiences: [mkb]
    minimum: 2
""")
    running = "2027-02-01T00:00:00+00:00"  # 745 of the quarter's 2159 hours: 35 %
    out = tmp_path / "r.html"

    def target_row():
        assert cli("--root", str(root), "report", "--period", "2027-Q1", "--out", str(out), "--now",
                   running).exit_code == 0
        (row,) = [r for r in _csv(out.with_suffix(".csv")) if r["onderdeel"] == "doel"]
        return row

    csv = tmp_path / "abonnees.csv"
    csv.write_text("email,lists,consent_source,consent_date\ntest.persoon@example.org,mkb,Aanmelding website,"
                   "2026-01-15\n")
    assert cli("--root", str(root), "subscribers", "import", str(csv)).exit_code == 0
    # the one mkb subscriber: 1 of 2 with a third of the quarter gone is on pace
    row = target_row()
    assert row["waarde"] == "1" and "status op koers" in row["reden"] and "35% van de periode verstreken" in row["reden"]
    Deliveries(Ledger.for_root(root)).suppress("Test.Persoon@example.org", "*", "bounced",
                                              dt.datetime(2027, 1, 20, tzinfo=UTC))
    row = target_row()
    assert row["waarde"] == "0" and "status achter" in row["reden"]
    assert "35% van de periode verstreken" in row["reden"] and "periode voorbij" not in row["reden"]
