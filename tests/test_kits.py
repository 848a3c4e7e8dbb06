"""Partner kits: the sample content's partners get their kit pages; a kit is mailed once to the
partner's kit contact through the ledger (a real SMTP server, aiosmtpd); the page in Chromium."""

import re
import shutil

import pytest
from browser import assert_clean, open_page
from conftest import REPO, VALID
from mail import SECRET, WEB, SmtpServer, mail_env, stakeholder_map
from publishing import cli, tiny_png

from dissemination.ledger import Ledger
from dissemination.ledger.deliveries import Deliveries
from dissemination.partners.links import PartnerLinks
from dissemination.publish.tokens import Signer

CONTENT = ("campaigns", "knowledge", "stakeholder_maps", "templates", "channels.yaml", "programme.yaml")
IN_DECEMBER = "2026-12-02T08:00Z"  # the next quarter is 2027-Q1
LINK = re.compile(re.escape(WEB) + r"/d/([A-Za-z0-9_-]{16})")

PARTNER = """    partner:
      channels:
        mastodon: "@tln@mastodon.example"
        linkedin: https://www.linkedin.com/company/tln
        newsletter: Ledenblad P&A
      contact_role: Redacteur ledenblad
      audiences: [mkb]
"""
KIT_CONTACT = """      - name: Karim Bouzid
        email: K.Bouzid@example.org
        role: Redacteur ledenblad
        consent:
          source: Mondelinge toestemming, per e-mail bevestigd
          date: 2026-04-02
      - name: Noor van Velzen
        email: n.vanvelzen@example.org
        role: Beleidsadviseur
        consent:
          source: Aanmelding website
          date: 2026-02-11"""


def sample_content(tmp_path):
    root = tmp_path / "content"
    for name in CONTENT:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
    return root


def partner_project(tmp_path, port: int = 2525):
    """The valid mini project with TLN as a partner, its kit contact and a second contact."""
    root = tmp_path / "content"
    shutil.copytree(VALID, root)
    text = stakeholder_map([KIT_CONTACT]).replace("    contacts:\n      - name: Karim", PARTNER + "    contacts:\n      - name: Karim", 1)
    (root / "stakeholder_maps" / "test.yaml").write_text(text, encoding="utf-8")
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("port: 2525", f"port: {port}").replace("host: localhost", "host: 127.0.0.1"))
    return root


def codes_in(html: str) -> set[str]:
    return set(LINK.findall(html))


def test_the_sample_partners_get_kits_for_the_next_quarter_with_links_of_their_own(tmp_path):
    root = sample_content(tmp_path)
    checked = cli(root, "check")
    assert checked.exit_code == 0 and "4 partners" in checked.output, checked.output
    result = cli(root, "kits", "--now", IN_DECEMBER, env=mail_env())
    assert result.exit_code == 0, result.output
    folder = root / "kits" / "2027-Q1"
    pages = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.html")}
    assert set(pages) == {"tln", "evofenedex", "kennisdc-logistiek", "logistiek-nl"}
    links = PartnerLinks(Ledger.for_root(root), Signer(SECRET.encode()))
    seen: dict[str, str] = {}
    for partner, html in pages.items():
        assert "Contentkit 1e kwartaal 2027" in html and "Blok voor uw nieuwsbrief of website" in html
        codes = codes_in(html)
        assert len(codes) >= 5, partner
        for code in codes:
            link = links.resolve(code)
            assert link is not None and link.partner == partner  # every link in a kit is that partner's own
            assert f"utm_source={partner}" in link.target and "utm_medium" not in link.target
            assert seen.setdefault(code, partner) == partner
        # our own channels' links are all replaced by the partner's
        assert "utm_source=mastodon" not in html and "utm_source=linkedin" not in html
    assert "Tekst voor Mastodon" in pages["tln"] and "Tekst voor Mastodon" not in pages["evofenedex"]
    assert "Tekst voor LinkedIn" in pages["evofenedex"]
    again = cli(root, "kits", "--now", IN_DECEMBER, env=mail_env())
    assert again.exit_code == 0
    assert codes_in((folder / "tln.html").read_text(encoding="utf-8")) == codes_in(pages["tln"])  # stable links


def test_a_draft_campaign_is_not_in_a_kit(tmp_path):
    root = partner_project(tmp_path)
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("status: approved", "status: draft"))
    result = cli(root, "kits", "--period", "2027-Q1", "--now", "2027-02-20T08:00Z", env=mail_env())
    assert result.exit_code == 0 and "kit 2027-Q1 for tln: 0 publication(s)" in result.output, result.output
    page = (root / "kits" / "2027-Q1" / "tln.html").read_text(encoding="utf-8")
    assert "staan geen publicaties gepland" in page and not codes_in(page)


def test_kits_need_the_secret_and_a_valid_period(tmp_path):
    root = sample_content(tmp_path)
    missing = cli(root, "kits", "--now", IN_DECEMBER, env={"DISSEMINATION_UNSUBSCRIBE_SECRET": ""})
    assert missing.exit_code == 2 and "DISSEMINATION_UNSUBSCRIBE_SECRET is not set" in missing.output
    bad = cli(root, "kits", "--period", "2027-Q5", env=mail_env())
    assert bad.exit_code == 2 and "'2027-Q5' is not a period" in bad.output
    assert not (root / "kits").exists()


def test_a_kit_is_mailed_once_to_the_partners_kit_contact(tmp_path):
    smtp = SmtpServer()
    try:
        root = partner_project(tmp_path, smtp.port)
        first = cli(root, "kits", "--period", "2027-Q1", "--send", "--now", "2027-02-20T08:00Z", env=mail_env())
        assert first.exit_code == 0, first.output
        assert "tln: queued for its contact (Redacteur ledenblad) on nieuwsbrief" in first.output
        # re-planning leaves the queued kit alone
        assert cli(root, "plan", "--now", "2027-02-20T08:00Z").exit_code == 0
        published = cli(root, "publish", "--now", "2027-02-20T08:01Z", env=mail_env())
        assert published.exit_code == 0, published.output
        assert smtp.sink.recipients() == ["k.bouzid@example.org"]  # the kit contact, not the other one
        (message,) = smtp.sink.parsed()
        assert message["Subject"] == "Contentkit 1e kwartaal 2027 voor Transport en Logistiek Nederland"
        assert message["List-Unsubscribe"]
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        page = (root / "kits" / "2027-Q1" / "tln.html").read_text(encoding="utf-8")
        assert codes_in(html) == codes_in(page) == codes_in(text) != set()
        # exactly once: queued again, published again, nothing more is sent
        second = cli(root, "kits", "--period", "2027-Q1", "--send", "--now", "2027-02-21T08:00Z", env=mail_env())
        assert "tln: already queued or sent" in second.output
        assert cli(root, "publish", "--now", "2027-02-21T08:01Z", env=mail_env()).exit_code == 0
        assert len(smtp.sink.messages) == 1
        rows = [r for r in Ledger.for_root(root).items() if r["campaign"] == "partnerkits"]
        assert [(r["post"], r["audience"], r["state"]) for r in rows] == [("kit-2027-Q1", "tln", "published")]
        status = cli(root, "status", "--now", "2027-02-21T08:02Z")
        assert "partnerkits / kit-2027-Q1" in status.output
    finally:
        smtp.stop()


def test_a_kit_contact_whose_consent_was_withdrawn_is_not_mailed(tmp_path):
    smtp = SmtpServer()
    try:
        root = partner_project(tmp_path, smtp.port)
        assert cli(root, "kits", "--period", "2027-Q1", "--send", "--now", "2027-02-20T08:00Z",
                   env=mail_env()).exit_code == 0
        # the consent is taken out of the map after the kit was queued: read again at sending
        path = root / "stakeholder_maps" / "test.yaml"
        path.write_text(path.read_text().replace(
            "        consent:\n          source: Mondelinge toestemming, per e-mail bevestigd\n          date: 2026-04-02\n", ""))
        assert cli(root, "publish", "--now", "2027-02-20T08:01Z", env=mail_env()).exit_code == 0
        assert smtp.sink.messages == []
        (row,) = [r for r in Ledger.for_root(root).items() if r["campaign"] == "partnerkits"]
        assert Deliveries(Ledger.for_root(root)).rows(row["id"]) == []
    finally:
        smtp.stop()


def test_a_suppressed_kit_contact_is_not_mailed(tmp_path):
    smtp = SmtpServer()
    try:
        root = partner_project(tmp_path, smtp.port)
        assert cli(root, "suppress", "k.bouzid@example.org", "--list", "nieuwsbrief").exit_code == 0
        assert cli(root, "kits", "--period", "2027-Q1", "--send", "--now", "2027-02-20T08:00Z",
                   env=mail_env()).exit_code == 0
        assert cli(root, "publish", "--now", "2027-02-20T08:01Z", env=mail_env()).exit_code == 0
        assert smtp.sink.messages == []
        (row,) = [r for r in Ledger.for_root(root).items() if r["campaign"] == "partnerkits"]
        assert [(d["address"], d["state"]) for d in Deliveries(Ledger.for_root(root)).rows(row["id"])] == [
            ("k.bouzid@example.org", "suppressed")]
    finally:
        smtp.stop()


@pytest.fixture(scope="module")
def kit_page(tmp_path_factory):
    root = partner_project(tmp_path_factory.mktemp("kit"))
    item = root / "knowledge" / "den-hartogh.md"
    item.write_text(item.read_text().replace(
        "source:", "image: knowledge/img/chauffeur.png\nimage_alt: Een chauffeur bij zijn truck\nsource:"))
    tiny_png(root / "knowledge" / "img" / "chauffeur.png")
    # the knowledge item changed: approved again (a draft's posts are not in a kit)
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    result = cli(root, "kits", "--period", "2027-Q1", "--now", "2027-02-20T08:00Z", env=mail_env())
    assert result.exit_code == 0, result.output
    return root / "kits" / "2027-Q1" / "tln.html"


def test_a_kit_page_in_chromium(kit_page):
    page = open_page(kit_page.as_uri(), 600, "partner-kit")
    assert_clean(page)
    for expected in ["Contentkit 1e kwartaal 2027 voor Transport en Logistiek Nederland", "Tekst voor Mastodon",
                     "Tekst voor LinkedIn", "Blok voor uw nieuwsbrief of website", "Ledenblad P&A",
                     "Den Hartogh", "SHAREHOUSE", "Alt-tekst: Een chauffeur bij zijn truck",
                     "in de toon voor Mkb-ondernemers"]:
        assert expected in page.text, expected
    # every text to paste carries the partner's link, LinkedIn's too (ours goes out as a link card)
    for share in re.findall(r'<pre class="text share (?:mastodon|linkedin)">(.*?)</pre>', page.html, re.S):
        assert codes_in(share), share
    codes = codes_in(page.text)
    assert codes and codes == codes_in(page.html)
    assert 'alt="Een chauffeur bij zijn truck"' in page.html and 'src="data:image/png;base64,' in page.html
    assert "<script" not in page.html
    assert page.screenshot is not None and page.screenshot.stat().st_size > 0


def test_the_kits_flow_writes_and_queues_the_kits_under_prefect(tmp_path, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    from flows.kits import kits_flow

    monkeypatch.setenv("DISSEMINATION_UNSUBSCRIBE_SECRET", SECRET)
    root = partner_project(tmp_path)
    with prefect_test_harness(server_startup_timeout=120):
        result = kits_flow(root=str(root), period="2027-Q1", send=True)
        again = kits_flow(root=str(root), period="2027-Q1", send=True)
    assert result["entries"] == {"tln": 2} and (root / "kits" / "2027-Q1" / "tln.html").is_file()
    assert [line.split(":")[0] for line in result["queued"]] == ["tln"] and "queued for" in result["queued"][0]
    assert "already queued or sent" in again["queued"][0]
    assert len([r for r in Ledger.for_root(root).items() if r["campaign"] == "partnerkits"]) == 1
