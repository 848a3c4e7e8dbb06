"""The report's "Bereik via partners" on a ledger seeded through its own API with kits sent, clicks
on partner links and boosts by partner accounts whose totals are known: the partner figures in the
HTML and the CSV, and the target "verdubbeling bereik onder partners", equal sums written out here."""

import csv
import datetime as dt
import re

import pytest
from reporting import backend  # noqa: F401  (a fixture)
from test_partner_reach import PARTNERS, TLN

from dissemination.ledger import Ledger, PlannedItem, Receipt, Snapshot
from dissemination.partners import KIT_CAMPAIGN
from dissemination.partners.links import PartnerLinks
from dissemination.publish.tokens import Signer

UTC = dt.timezone.utc
AS_OF = dt.datetime(2027, 4, 5, 12, 0, tzinfo=UTC)
TARGET = """targets:
  - id: bereik-partners-verdubbelen
    description: Verdubbeling van ons bereik onder partners
    metric: partner_reach
    times_baseline: 2
    baseline: 2026-Q4
"""
RESHARES_NL = "LinkedIn meldt hoe vaak een bericht is gedeeld, maar niet door wie"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# What is seeded, per period: kits sent (by the day they went out), clicks on the partner's links
# (by day), and per Mastodon status of the period whether the partner boosted it (at the last
# reading before AS_OF).
KITS = {"tln": ["2026-12-10 09:00", "2027-01-05 09:00"], "kennisdc": ["2026-12-11 09:00"]}
CLICKS = {"tln": ["2026-11-02 10:00", "2027-01-06 10:00", "2027-01-07 10:00", "2027-03-31 21:00",
                  "2027-04-02 10:00"],  # the last one is after Q1
          # 2026-12-31 23:30 UTC is 1 January in Amsterdam: a Q1 click, as the report counts days
          "kennisdc": ["2026-12-12 10:00", "2026-12-13 10:00", "2026-12-31 23:30"]}
STATUSES = {  # status: (published, {partner: [(read at, value or None for unavailable)]})
    "q4": ("2026-11-20 09:00", {"tln": [("2026-11-21 00:00", 1.0)], "kennisdc": [("2026-11-21 00:00", 0.0)]}),
    "a": ("2027-01-10 09:00", {"tln": [("2027-01-11 00:00", 0.0), ("2027-01-12 00:00", 1.0)],
                               "kennisdc": [("2027-01-11 00:00", 1.0), ("2027-01-12 00:00", None)]}),
    "b": ("2027-02-10 09:00", {"tln": [("2027-02-11 00:00", 1.0), ("2027-04-06 00:00", 0.0)],  # after AS_OF
                               "kennisdc": [("2027-02-11 00:00", 1.0)]}),
}

# ... summed by hand:
# 2027-Q1: tln kits 1, clicks 3 (01-06, 01-07, 03-31), boosts a 1 + b 1 = 2, reach 5;
#          kennisdc kits 0, clicks 1, boosts a 1 (the unavailable later reading keeps the earlier) + b 1 = 2, reach 3;
#          evofenedex: no Mastodon, no kit, nothing.
# 2026-Q4: tln kits 1, clicks 1, boosts 1 -> reach 2; kennisdc kits 1, clicks 2, boosts 0 -> reach 2.
Q1 = {"tln": {"kits": 1, "clicks": 3, "boosts": 2, "reach": 5}, "kennisdc": {"kits": 0, "clicks": 1, "boosts": 2, "reach": 3}}
Q4 = {"tln": {"kits": 1, "clicks": 1, "boosts": 1, "reach": 2}, "kennisdc": {"kits": 1, "clicks": 2, "boosts": 0, "reach": 2}}
Q1_REACH = sum(p["reach"] for p in Q1.values())  # 8
Q4_REACH = sum(p["reach"] for p in Q4.values())  # 4: the target is 2 x 4 = 8, reached


def seed(ledger: Ledger) -> None:
    planned = []
    for partner, moments in KITS.items():
        for i, moment in enumerate(moments):
            planned.append(PlannedItem(KIT_CAMPAIGN, f"kit-{i}", partner, "nieuwsbrief", 0, at(moment), "Europe/Amsterdam",
                                       {"kit_for": partner}))
    posts = {name: PlannedItem("reeks", f"s-{name}", "mkb", "mastodon", 0, at(published), "Europe/Amsterdam",
                               {"text": name}) for name, (published, _) in STATUSES.items()}
    linkedin = PlannedItem("reeks", "li", "mkb", "linkedin", 0, at("2027-02-12 09:00"), "Europe/Amsterdam", {"text": "li"})
    ledger.apply_plan(planned + list(posts.values()) + [linkedin], at("2026-10-01 00:00"))
    for item in sorted(planned + list(posts.values()) + [linkedin], key=lambda p: p.slot_utc):
        (claim,) = ledger.claim_due("test", item.slot_utc, limit=1)
        assert ledger.record_published(claim, Receipt(f"r-{item.id}", f"https://social.example/{item.id}"), item.slot_utc)
    for name, (_, readings) in STATUSES.items():
        for partner, values in readings.items():
            for when, value in values:
                ledger.add_snapshots([Snapshot(posts[name].id, f"partner_boosts:{partner}", value, at(when),
                                               "mastodon:reblogged_by", value is not None,
                                               None if value is not None else "rate limited by https://m.example")])
    for partner in ("tln", "evofenedex"):
        ledger.add_snapshots([Snapshot.unavailable(
            linkedin.id, f"partner_reshares:{partner}", at("2027-02-13 00:00"), "linkedin:reshares",
            "LinkedIn's API reports how often a post was shared (shareCount), not by whom: reshares by a partner "
            "cannot be counted")])
    links = PartnerLinks(ledger, Signer(b"report-partners-secret-0123456789"))
    for partner, moments in CLICKS.items():
        link = links.mint(partner, "den-hartogh", "https://www.example.org/kennis/den-hartogh", at(moments[0]))
        for moment in moments:
            links.count_click(link, at(moment))


@pytest.fixture
def written(content_root, cli, tmp_path, backend):
    root = content_root()
    path = root / "stakeholder_maps" / "test.yaml"
    tln = TLN.replace('website: "https://www.tln.nl/nieuws"', 'linkedin: "https://www.linkedin.com/company/tln"')
    text = path.read_text().replace(
        "        invite: mkb\n  - id: ienw",
        "        invite: mkb\n      - name: Redactie ledenblad\n        email: redactie@tln.example.org\n"
        "        role: Redacteur\n        consent: {source: Partnerafspraak, date: 2026-01-15}\n" + tln + "  - id: ienw", 1)
    assert tln in text
    path.write_text(text.rstrip("\n") + "\n" + PARTNERS)
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + TARGET)
    assert cli("--root", str(root), "check").exit_code == 0
    seed(Ledger.for_root(root))
    out = tmp_path / "2027-Q1.html"
    result = cli("--root", str(root), "report", "--period", "2027-Q1", "--out", str(out), "--now", AS_OF.isoformat())
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text(encoding="utf-8-sig").splitlines(), delimiter=";"))
    return out.read_text(encoding="utf-8"), rows


MEASURE = {"kits": "kits verstuurd", "clicks": "klikken op partnerlinks", "boosts": "boosts op Mastodon",
           "reach": "bereik via partners"}


def test_partner_figures_in_the_csv_equal_the_seeded_sums(written):
    _, rows = written
    partners = {(r["groep"], r["maat"]): r for r in rows if r["onderdeel"] == "partners"}
    for partner in Q1:
        for key, maat in MEASURE.items():
            row = partners[(partner, maat)]
            assert row["waarde"] == str(Q1[partner][key]), (partner, key, row)
            assert row["vorige_periode"] == str(Q4[partner][key]), (partner, key, row)
    for key, maat in MEASURE.items():
        assert partners[("totaal", maat)]["waarde"] == str(sum(p[key] for p in Q1.values()))
        assert partners[("totaal", maat)]["vorige_periode"] == str(sum(p[key] for p in Q4.values()))
    # trend: tln clicks 1 -> 3 is +200 %, kennisdc kits 1 -> 0 is -100 %
    assert partners[("tln", "klikken op partnerlinks")]["trend_pct"] == "200,0"
    assert partners[("kennisdc", "kits verstuurd")]["trend_pct"] == "-100,0"
    # LinkedIn reshares: never a number, always the reason
    reshares = partners[("tln", "gedeeld op LinkedIn")]
    assert reshares["waarde"] == "" and RESHARES_NL in reshares["reden"]
    assert partners[("kennisdc", "gedeeld op LinkedIn")]["waarde"] == ""
    assert partners[("evofenedex", "boosts op Mastodon")]["waarde"] == ""
    (target,) = [r for r in rows if r["onderdeel"] == "doel"]
    assert target["groep"] == "bereik-partners-verdubbelen" and target["waarde"] == str(Q1_REACH)
    assert f"doel {2 * Q4_REACH}" in target["reden"] and "status gehaald" in target["reden"]


def test_partner_figures_in_the_html_equal_the_seeded_sums(written):
    html, _ = written
    assert '<h2 id="partners">Bereik via partners</h2>' in html
    for partner in Q1:
        row = re.search(rf'<tr id="partner-{partner}">(.*?)</tr>', html, re.S).group(1)
        shown = re.findall(r'data-waarde="([^"]*)"', row)
        assert shown[:3] == [str(Q1[partner][k]) for k in ("kits", "clicks", "boosts")] and shown[4] == str(Q1[partner]["reach"])
        assert shown[3] == ""  # reshares: n.b.
    total = re.search(r'<tr id="partner-totaal">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'data-waarde="([^"]*)"', total)[4] == str(Q1_REACH)
    target = re.search(r"Verdubbeling van ons bereik onder partners.*?</tr>", html, re.S).group(0)
    assert f">{Q1_REACH}<" in target and f">{2 * Q4_REACH}<" in target and "gehaald" in target
    # coverage: the partners that received no kit in the period
    without = re.search(r'<ul id="partners-zonder-kit">(.*?)</ul>', html, re.S).group(1)
    assert "KennisDC Logistiek (kennisdc)" in without and "Evofenedex (evofenedex)" in without
    assert "Transport en Logistiek Nederland" not in without
    assert RESHARES_NL in html


def test_the_partner_section_speaks_dutch(written):
    html, _ = written
    section = re.search(r'<section aria-labelledby="partners">(.*?)</section>', html, re.S).group(1)
    text = re.sub(r"<[^>]+>", " ", section)
    english = re.findall(r"\b(the|was|not|has|been|with|its|this|from|will|cannot|refused|published|shared)\b", text)
    assert english == [], english
