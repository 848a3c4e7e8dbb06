"""Partner links (/d/<code>) over a real socket: uvicorn on an ephemeral port, driven by httpx,
on SQLite and on PostgreSQL."""

import datetime as dt

import httpx
import pytest
from publishing import PgSchema, pg_available
from sqlalchemy import update
from test_email_web import WebServer

from dissemination.ledger import Ledger
from dissemination.ledger.schema import partner_links
from dissemination.partners.links import PartnerLinks
from dissemination.periods import ZONE
from dissemination.publish.tokens import Signer
from dissemination.web import create_app

SECRET = b"partner-links-test-secret-0123456789"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
TARGET = "https://www.example.org/kennis/den-hartogh?thema=leiderschap"
NOW = dt.datetime(2027, 1, 12, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        found = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield found
        found.close()
        return
    if not pg_available():
        pytest.fail("PostgreSQL is not running at 127.0.0.1:5432 (scripts/install-test-tools)")
    schema = PgSchema()
    found = Ledger(schema.url)
    yield found
    found.close()
    schema.drop()


@pytest.fixture
def web(ledger):
    server = WebServer(create_app(ledger, Signer(SECRET)))
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", follow_redirects=False, headers=BROWSER)
    yield client
    client.close()
    server.stop()


def total(ledger) -> int:
    return sum(PartnerLinks(ledger, Signer(SECRET)).clicks().values())


def test_a_valid_link_redirects_to_its_target_with_the_partner_and_counts_for_that_partner(ledger, web):
    links = PartnerLinks(ledger, Signer(SECRET))
    tln = links.mint("tln", "den-hartogh", TARGET, NOW)
    evo = links.mint("evofenedex", "den-hartogh", TARGET, NOW)
    assert tln.code != evo.code and len(tln.code) == 16
    assert links.mint("tln", "den-hartogh", TARGET, NOW) == tln  # building the kit again: the same link

    answer = web.get(f"/d/{tln.code}")
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://www.example.org/kennis/den-hartogh?thema=leiderschap&utm_source=tln"
    assert web.get(f"/d/{tln.code}").status_code == 302
    assert web.get(f"/d/{evo.code}").headers["location"].endswith("&utm_source=evofenedex")
    today = dt.datetime.now(ZONE).date()  # the programme's calendar day
    assert links.clicks() == {("tln", "den-hartogh", today): 2, ("evofenedex", "den-hartogh", today): 1}


def test_head_requests_and_scanners_are_redirected_but_not_counted(ledger, web):
    link = PartnerLinks(ledger, Signer(SECRET)).mint("tln", "den-hartogh", TARGET, NOW)
    assert web.head(f"/d/{link.code}").status_code == 302
    for agent in ["Mastodon/4.3.2 (http.rb/5.2.0; +https://mastodon.nl/)", "Mozilla/5.0 (compatible; bingbot/2.0)",
                  "Barracuda Sentinel (EE)", "python-requests/2.32", ""]:
        answer = web.get(f"/d/{link.code}", headers={"User-Agent": agent})
        assert answer.status_code == 302, agent
    assert total(ledger) == 0
    web.get(f"/d/{link.code}")
    assert total(ledger) == 1


def test_tampered_unknown_and_open_redirect_attempts_are_refused_and_count_nothing(ledger, web):
    links = PartnerLinks(ledger, Signer(SECRET))
    link = links.mint("tln", "den-hartogh", TARGET, NOW)
    flipped = link.code[:-1] + ("A" if link.code[-1] != "A" else "B")
    foreign = PartnerLinks(ledger, Signer(b"another-secret-of-someone-else-42")).signer.partner_link(
        "tln", "den-hartogh", "https://evil.example/")
    attempts = {
        f"/d/{flipped}": 404,  # one character changed
        f"/d/{foreign}": 404,  # made with another key: never stored
        f"/d/{link.code[:-2]}": 400,  # cut short
        f"/d/{link.code}x": 400,
        f"/d/{link.code}?url=https://evil.example/": 400,  # open redirect through a parameter
        f"/d/{link.code}?next=//evil.example": 400,
        "/d/https%3A%2F%2Fevil.example%2F": 404,  # decoded to more than one segment: no route
        "/d//evil.example": 404,
        "/d/evil.example": 400,
        f"/d/{link.code}/https://evil.example": 404,
    }
    for path, status in attempts.items():
        answer = web.get(path)
        assert answer.status_code == status, path
        assert "location" not in answer.headers, path
    # A row pointed elsewhere in the database no longer matches its code.
    with ledger.engine.begin() as conn:
        conn.execute(update(partner_links).where(partner_links.c.code == link.code).values(url="https://evil.example/"))
    answer = web.get(f"/d/{link.code}")
    assert answer.status_code == 403 and "location" not in answer.headers
    assert total(ledger) == 0


def test_only_web_addresses_can_be_minted(ledger):
    links = PartnerLinks(ledger, Signer(SECRET))
    for bad in ["javascript:alert(1)", "//evil.example/", "ftp://example.org/x", "https://"]:
        with pytest.raises(ValueError):
            links.mint("tln", "x", bad, NOW)
