"""The stuurgroep report on a ledger seeded with known publications and readings (tests/reporting.py):
every figure in the HTML and the CSVs equals a sum written out here; unknown figures are "n.b."
with their reason (HTML) and empty with a reason (CSV); never 0."""

import csv
import re

import pytest
from reporting import AS_OF, SCOPE_NL, backend, seed_ledger, with_targets  # noqa: F401  (backend: a fixture)

from dissemination.ledger import Ledger

NOW = AS_OF.isoformat()
NOT_READ = "nog niet gemeten"
NO_CLICKS = "Mastodon meldt geen klikken"

# The seeds' figures, summed by hand (see tests/reporting.py):
#   2027-Q1: A mastodon reach 300 (last followers) interactions 5+2+1; B linkedin reach 120 (the 999
#   read after AS_OF does not count) interactions 9 reactions + 2 + 1, clicks 7; C linkedin: no
#   scope (only reactions 4 readable); D mastodon: never read. 2026-Q4: H reach 200 interactions 2;
#   I reach 50 interactions 5 clicks 3.
Q1 = {"publicaties": 4, "bereik": 300 + 120, "interacties": (5 + 2 + 1) + (9 + 2 + 1), "klikken": 7}
Q4 = {"publicaties": 2, "bereik": 200 + 50, "interacties": 2 + 5, "klikken": 3}


@pytest.fixture
def written(content_root, cli, tmp_path, backend):
    root = content_root()
    with_targets(root)
    ids = seed_ledger(Ledger.for_root(root))
    out = tmp_path / "rapporten" / "2027-Q1.html"
    result = cli("--root", str(root), "report", "--period", "2027-Q1", "--out", str(out), "--now", NOW)
    assert result.exit_code == 0, result.output
    assert f"written to {out}" in result.output
    html = out.read_text(encoding="utf-8")
    raw = out.with_suffix(".csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.split(b"\r\n")[0].count(b";") > 5  # Dutch Excel: BOM and ';'
    figures = list(csv.DictReader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    publications = list(csv.DictReader((out.parent / "2027-Q1-publicaties.csv").read_text(encoding="utf-8-sig")
                                       .splitlines(), delimiter=";"))
    return {"html": html, "figures": figures, "publications": publications, "ids": ids, "root": root}


def _figure(rows, section, group, measure):
    (row,) = [r for r in rows if r["onderdeel"] == section and r["groep"] == group and r["maat"] == measure]
    return row


def test_totals_in_the_csv_equal_the_seeded_sums(written):
    rows = written["figures"]
    for measure, value in Q1.items():
        row = _figure(rows, "totaal", "totaal", measure)
        assert row["waarde"] == str(value), (measure, row)
    assert _figure(rows, "totaal", "totaal", "publicaties")["vorige_periode"] == str(Q4["publicaties"])
    assert _figure(rows, "totaal", "totaal", "publicaties")["trend_pct"] == "100,0"  # 4 against 2, decimal comma
    reach = _figure(rows, "totaal", "totaal", "bereik")
    # C and D are unknown: the total is a lower bound, says so and why
    assert (reach["volledig"], reach["publicaties_bekend"], reach["publicaties_onbekend"]) == ("nee", "2", "2")
    assert SCOPE_NL in reach["reden"] and NOT_READ in reach["reden"]
    assert reach["trend_pct"] == ""  # no change between a lower bound and a complete figure
    clicks = _figure(rows, "totaal", "totaal", "klikken")
    assert NO_CLICKS in clicks["reden"] and clicks["publicaties_bekend"] == "1"


def test_breakdowns_in_the_csv_equal_the_seeded_sums(written):
    rows = written["figures"]
    assert _figure(rows, "kanaal", "mastodon", "bereik")["waarde"] == "300"  # A; D unknown
    assert _figure(rows, "kanaal", "linkedin", "bereik")["waarde"] == "120"  # B; C unknown
    assert _figure(rows, "kanaal", "mastodon", "publicaties")["vorige_periode"] == "1"
    assert _figure(rows, "campagne", "reeks", "publicaties")["waarde"] == "3"
    assert _figure(rows, "campagne", "oud", "bereik")["waarde"] == ""  # D: never read
    assert _figure(rows, "campagne", "oud", "bereik")["reden"] == NOT_READ
    assert "niet meer in campaigns/" in _figure(rows, "campagne", "oud", "bereik")["naam"]
    # reeks serves impact goals 1, 2 (its own) and 3 (through milestone PL3-2); 'oud' none
    for goal in ("1", "2", "3"):
        assert _figure(rows, "impactdoel", goal, "publicaties")["waarde"] == "3"
    assert _figure(rows, "mijlpaal", "PL3-2", "interacties")["waarde"] == str(Q1["interacties"])
    previous = _figure(rows, "doelgroep", "mkb", "bereik")
    assert previous["vorige_periode"] == str(Q4["bereik"])


def test_unknown_publication_figures_are_empty_with_the_reason_in_the_csv(written):
    by_id = {r["publicatie"]: r for r in written["publications"]}
    ids = written["ids"]
    assert set(by_id) == {ids[n] for n in "ABCD"}  # published in Q1 only
    c = by_id[ids["C"]]
    assert (c["bereik"], c["bereik_reden"]) == ("", SCOPE_NL)
    assert (c["interacties"], c["interacties_reden"]) == ("", SCOPE_NL)  # reactions alone are not all of it
    d = by_id[ids["D"]]
    assert (d["bereik"], d["bereik_reden"], d["klikken"], d["klikken_reden"]) == ("", NOT_READ, "", NOT_READ)
    a = by_id[ids["A"]]
    assert (a["bereik"], a["interacties"], a["klikken"], a["klikken_reden"]) == ("300", "8", "", NO_CLICKS)
    assert by_id[ids["B"]]["link"] == "https://social.example/B"
    assert "0" not in {c["bereik"], d["bereik"], d["klikken"]}


def _headline(html, measure):
    block = re.search(rf'<div id="kern-{measure}">(.*?)</div>\s*</div>', html, re.S).group(1)
    return re.search(r'data-waarde="([^"]*)"', block).group(1), block


def test_the_html_shows_the_same_figures_and_n_b_with_reasons(written):
    html = written["html"]
    assert html.startswith("<!DOCTYPE html>") and '<html lang="nl">' in html
    assert "Verspreidingsrapport 1e kwartaal 2027" in html
    for measure, value in (("publications", Q1["publicaties"]), ("reach", Q1["bereik"]),
                           ("interactions", Q1["interacties"]), ("clicks", Q1["klikken"])):
        shown, block = _headline(html, measure)
        assert shown == str(value)
    _, reach = _headline(html, "reach")
    assert "≥ 420" in reach and "2 van 4 n.b." in reach and SCOPE_NL in reach and NOT_READ in reach
    # C's row in the top publications: n.b. with the reason, never 0
    assert re.search(r'<span class="nb">n\.b\.</span><span class="reden">' + re.escape(SCOPE_NL), html)
    assert "vorige periode: 250" in html  # reach in 2026-Q4, complete
    assert "+100%" in html  # publications 4 against 2
    # no script, no external resource: one self-contained file
    assert "<script" not in html and "http://cdn" not in html and "<svg" in html
    assert not re.search(r'(src|href)="(?!https://social\.example/)(https?:)?//', html)


def test_targets_have_value_goal_and_status(written):
    rows = {r["groep"]: r for r in written["figures"] if r["onderdeel"] == "doel"}
    # 3 publications for milestone PL3-2: the minimum of 3 is met
    assert rows["publicaties-pl3-2"]["waarde"] == "3" and "status gehaald" in rows["publicaties-pl3-2"]["reden"]
    # LinkedIn: 2 of at least 5, the period is over
    assert rows["linkedin-publicaties"]["waarde"] == "2"
    assert "status achter" in rows["linkedin-publicaties"]["reden"]
    # reach among mkb: 420 is a lower bound below 2 × 250: cannot be judged
    reach = rows["bereik-verdubbelen"]
    assert reach["waarde"] == "420" and "doel 500 (2 × 250 (2026-Q4))" in reach["reden"]
    assert "status n.b." in reach["reden"]
    # clicks per campaign: reeks 7 with C unknown; 'oud' only unread Mastodon
    assert rows["klikken-per-campagne:oud"]["waarde"] == "" and "status n.b." in rows["klikken-per-campagne:oud"]["reden"]
    html = written["html"]
    for status in ("gehaald", "achter", "n.b."):
        assert f'">{status}</span>' in html


def test_coverage_lists_stakeholders_and_audiences_that_received_nothing(written):
    html = written["html"]
    table = re.search(r'<table id="niet-bereikte-stakeholders">(.*?)</table>', html, re.S).group(1)
    # only the beleid audience went without (its items were missed and failed): ienw, not tln
    assert "Ministerie van Infrastructuur en Waterstaat" in table and "Transport en Logistiek" not in table
    assert "tevreden houden" in table
    assert "Beleidsmakers (beleid; 1 stakeholder(s))" in html


def test_delivery_reliability(written):
    rows = written["figures"]
    share = _figure(rows, "betrouwbaarheid", "op_tijd_pct", "percentage")
    assert share["waarde"] == "50"  # A late; B, C, D on time; E missed; F failed: 3 of 6
    table = re.search(r'<table id="betrouwbaarheid-tabel">(.*?)</table>', written["html"], re.S).group(1)
    cells = dict(re.findall(r'<th scope="row">([^<]+)</th><td class="num">([^<]+)</td>', table))
    assert cells["Gepland in deze periode"] == "7" and cells["Gepubliceerd"] == "4"
    assert cells["waarvan later"] == "1" and cells["Gemist (te laat, niet meer verstuurd)"] == "1"
    assert cells["Mislukt"] == "1" and cells["Vastgehouden (goedkeuring)"] == "1"
    assert "geweigerd door LinkedIn (HTTP 422)" in written["html"]
    assert "LinkedIn refused" not in written["html"]


def test_period_options(content_root, cli, tmp_path):
    root = content_root()
    seed_ledger(Ledger.for_root(root))
    out = tmp_path / "m.html"
    result = cli("--root", str(root), "report", "--from", "2027-01-01", "--to", "2027-01-31", "--out", str(out),
                 "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "report 2027-01-01..2027-01-31: 1 publication(s)" in result.output  # A only
    assert "vergeleken met 1 december 2026 t/m 31 december 2026" in out.read_text()
    result = cli("--root", str(root), "report", "--period", "2027-02", "--now", NOW)
    assert result.exit_code == 0 and (root / "reports" / "2027-02.html").is_file()
    assert "report 2027-02: 1 publication(s)" in result.output  # B
    for bad in (["--period", "2027-Q5"], ["--from", "2027-01-01"], ["--period", "2027", "--from", "2027-01-01",
                                                                       "--to", "2027-01-02"]):
        result = cli("--root", str(root), "report", *bad, "--now", NOW)
        assert result.exit_code == 2 and "Traceback" not in result.output


def test_periods_and_their_previous_period():
    import datetime as dt

    from dissemination.periods import PeriodError, days_period, parse_period

    q4 = parse_period("2026-Q4")
    assert (q4.start, q4.end, q4.dutch()) == (dt.date(2026, 10, 1), dt.date(2027, 1, 1), "4e kwartaal 2026")
    # local midnight in Amsterdam: summer time on 1 October, winter time on 1 January
    assert q4.start_utc.isoformat() == "2026-09-30T22:00:00+00:00"
    assert q4.end_utc.isoformat() == "2026-12-31T23:00:00+00:00"
    assert parse_period("2027-Q1").previous().label == "2026-Q4"
    assert parse_period("2026-01").previous().label == "2025-12"
    assert parse_period("2026").previous().label == "2025"
    assert parse_period("2026-11").dutch() == "november 2026"
    ten = days_period(dt.date(2027, 1, 1), dt.date(2027, 1, 10))
    assert (ten.previous().start, ten.previous().last_day) == (dt.date(2026, 12, 22), dt.date(2026, 12, 31))
    for bad in ("2026-Q0", "2026-13", "26-Q1", "Q4"):
        with pytest.raises(PeriodError):
            parse_period(bad)


def test_a_shared_post_counts_for_each_of_its_audiences_and_once_in_the_totals(content_root, cli, tmp_path):
    import datetime as dt

    from dissemination.ledger import PlannedItem, Receipt

    root = content_root()
    ledger = Ledger.for_root(root)
    seed_ledger(ledger)
    slot = dt.datetime(2027, 3, 10, 8, 30, tzinfo=dt.timezone.utc)
    shared = PlannedItem("reeks", "gedeeld", "*", "linkedin", 0, slot, "Europe/Amsterdam",
                         {"text": "Voor mkb en beleid", "audiences": ["mkb", "beleid"]}, audiences=("mkb", "beleid"))
    ledger.apply_plan([shared], slot - dt.timedelta(days=1), campaigns=["reeks-gedeeld"])
    (claim,) = ledger.claim_due("test", slot, limit=1)
    assert claim.id == shared.id and ledger.record_published(claim, Receipt("remote-S"), slot)
    out = tmp_path / "r.html"
    assert cli("--root", str(root), "report", "--period", "2027-Q1", "--out", str(out), "--now", NOW).exit_code == 0
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text(encoding="utf-8-sig").splitlines(),
                               delimiter=";"))
    assert _figure(rows, "totaal", "totaal", "publicaties")["waarde"] == str(Q1["publicaties"] + 1)  # once
    assert _figure(rows, "doelgroep", "mkb", "publicaties")["waarde"] == str(Q1["publicaties"] + 1)
    assert _figure(rows, "doelgroep", "beleid", "publicaties")["waarde"] == "1"
    assert not [r for r in rows if r["groep"] == "*"]
    html = out.read_text()
    assert "niet meer in de stakeholderkaart" not in html
    # beleid received the shared post: neither it nor its stakeholder is listed as not reached
    assert 'id="niet-bereikte-doelgroepen"' not in html and "Beleidsmakers (beleid" not in html
    assert 'id="niet-bereikte-stakeholders"' not in html
    assert "telt bij elk van die doelgroepen mee" in html
    publications = list(csv.DictReader((tmp_path / "r-publicaties.csv").read_text(encoding="utf-8-sig").splitlines(),
                                       delimiter=";"))
    assert [p["doelgroep"] for p in publications if p["publicatie"] == shared.id] == ["beleid mkb"]
