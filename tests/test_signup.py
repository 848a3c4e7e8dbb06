"""Sign-up with double opt-in, over a real socket (uvicorn) with the confirmation mail through a
real SMTP server (aiosmtpd): sign-up -> confirmation mail -> confirm -> first newsletter ->
preference change -> unsubscribe; and the form in headless Chromium with scripts disabled."""

import json
import re

import pytest
from mail import DUE, SECOND, WEB, mail_env, newsletter_project, smtp  # noqa: F401  (smtp: a fixture)
from publishing import cli
from test_email_web import WebServer, serve  # noqa: F401  (serve: a fixture)

from dissemination.ledger import Ledger
from dissemination.ledger.subscribers import Subscribers
from dissemination.load.project import load_channels
from dissemination.publish.channels.email import send_single
from dissemination.publish.tokens import Signer
from dissemination.signup import RateLimit, SignupSettings
from dissemination.web import create_app

NO_ADDRESS = "      - name: Zonder Adres\n        invite: mkb"
SECRET = b"test-secret-0123456789abcdef"


def signup_app(root):
    channels, _ = load_channels(root)
    config = channels.channels["nieuwsbrief"]
    settings = SignupSettings({"mkb": "Mkb-ondernemers", "beleid": "Beleidsmakers"}, WEB, config.from_address,
                              config.from_name, lambda message: send_single(config, root, message),
                              per_address=RateLimit(3, 3600), per_client=RateLimit(50, 3600))
    return create_app(Ledger.for_root(root), Signer(SECRET), {"nieuwsbrief": "Nieuwsbrief SI"}, settings)


def local(url: str, port: int) -> str:
    return url.replace(WEB, f"http://127.0.0.1:{port}")


def confirmation_links(smtp, address):
    links = []
    for message in smtp.sink.parsed():
        if message["To"] == address and message["Subject"].startswith("Bevestig uw aanmelding"):
            links += re.findall(r"https://\S+/bevestigen/\S+", message.get_content())
    return links


def publish(root, now):
    result = cli(root, "publish", "--now", now, env=mail_env())
    assert result.exit_code == 0, result.output


def state_of(root, address):
    found = Subscribers(Ledger.for_root(root)).person(Subscribers(Ledger.for_root(root)).id_of(address))
    return found[1] if found else None


def test_sign_up_confirm_newsletter_preferences_unsubscribe_over_a_real_socket(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [NO_ADDRESS])
    server = WebServer(signup_app(root))
    try:
        import httpx

        client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", follow_redirects=False)
        form = client.get("/aanmelden/mkb")
        assert form.status_code == 200 and "<script" not in form.text and 'name="website"' in form.text
        assert client.get("/aanmelden/onbekend").status_code == 404
        # A bot fills the honeypot: the same answer, nothing recorded, no mail.
        bot = client.post("/aanmelden/mkb", data={"email": "bot@example.org", "website": "http://spam", "akkoord": "ja"})
        assert bot.status_code == 200 and "Bijna klaar" in bot.text
        assert Subscribers(Ledger.for_root(root)).id_of("bot@example.org") is None and smtp.sink.messages == []
        bad = client.post("/aanmelden/mkb", data={"email": "geen adres", "akkoord": "ja"})
        assert bad.status_code == 400 and "Dit is geen geldig e-mailadres." in bad.text

        done = client.post("/aanmelden/mkb", data={"email": "Nieuw@Example.org", "naam": "Nieuw Lid", "akkoord": "ja"})
        assert done.status_code == 200 and "Bevestig daarin uw aanmelding" in done.text
        assert state_of(root, "nieuw@example.org") == {"mkb": "pending"}
        [link] = confirmation_links(smtp, "nieuw@example.org")
        # Asking again and again: the rate limit per address stops a mail bomb.
        codes = [client.post("/aanmelden/mkb", data={"email": "nieuw@example.org", "akkoord": "ja"}).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        assert "nieuw@example.org" not in Subscribers(Ledger.for_root(root)).recipients("mkb")  # not confirmed yet

        page = client.get(local(link, server.port))  # a mail scanner opening the link changes nothing
        assert page.status_code == 200 and "Ja, bevestig mijn aanmelding" in page.text
        assert state_of(root, "nieuw@example.org") == {"mkb": "pending"}
        tampered = local(link, server.port)[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert client.post(tampered).status_code == 403
        confirmed = client.post(local(link, server.port))
        assert confirmed.status_code == 200 and "Aanmelding bevestigd" in confirmed.text
        assert state_of(root, "nieuw@example.org") == {"mkb": "active"}
        held = json.loads(cli(root, "subscribers", "export", "nieuw@example.org").output)["subscriber"]
        [mkb] = held["lists"]
        assert mkb["request_origin"] == "127.0.0.1" and mkb["confirmed_at"] and "dubbele opt-in" in mkb["consent_source"]

        publish(root, DUE)  # the first newsletter
        newsletter = next(m for m in smtp.sink.parsed() if m["To"].addresses[0].addr_spec == "nieuw@example.org"
                          and "Bevestig" not in m["Subject"])
        unsubscribe = re.search(r"<(https://[^>]+)>", newsletter["List-Unsubscribe"]).group(1)
        page = client.get(local(unsubscribe, server.port))
        preferences = re.search(r'href="(/voorkeuren/[^"]+)"', page.text).group(1)
        mine = client.get(preferences)
        assert 'value="mkb" checked' in mine.text and 'value="beleid">' in mine.text
        # Leave mkb, join beleid: leaving is at once, joining takes a new confirmation.
        changed = client.post(preferences, data={"lijst": ["beleid"], "actie": "opslaan"})
        assert "Bevestig Beleidsmakers via de link in de e-mail" in changed.text
        assert state_of(root, "nieuw@example.org") == {"mkb": "unsubscribed", "beleid": "pending"}
        publish(root, SECOND)
        newsletters = [m["Subject"] for m in smtp.sink.parsed()
                       if m["To"].addresses[0].addr_spec == "nieuw@example.org" and "Bevestig" not in m["Subject"]]
        assert newsletters == ["Editie maart – Nieuwsbrief maart"]  # not the second edition: left mkb
        # Back on mkb after unsubscribing: only through a new confirmation.
        client.post(preferences, data={"lijst": ["mkb", "beleid"], "actie": "opslaan"})
        assert state_of(root, "nieuw@example.org")["mkb"] == "pending"
        latest = confirmation_links(smtp, "nieuw@example.org")[-1]
        assert client.post(local(latest, server.port)).status_code == 200
        assert state_of(root, "nieuw@example.org")["mkb"] == "active"
        gone = client.post(preferences, data={"actie": "alles"})
        assert "U bent afgemeld voor alle nieuwsbrieven." in gone.text
        assert set(state_of(root, "nieuw@example.org").values()) == {"unsubscribed"}
    finally:
        server.stop()


def test_the_form_works_in_chromium_without_javascript(tmp_path, smtp):
    from browser import submit_form

    root = newsletter_project(tmp_path, smtp.port, [NO_ADDRESS])
    server = WebServer(signup_app(root))
    try:
        page = submit_form(f"http://127.0.0.1:{server.port}/aanmelden/mkb",
                           {"#naam": "Browser Lid", "#email": "browser@example.org"}, ["#akkoord"],
                           "button[type=submit]", "signup-form")
        assert "Bijna klaar" in page.text, page.text
        assert not page.console_errors
        assert state_of(root, "browser@example.org") == {"mkb": "pending"}
        [link] = confirmation_links(smtp, "browser@example.org")
        confirmed = submit_form(local(link, server.port), {}, [], "button[type=submit]", "signup-confirm")
        assert "Aanmelding bevestigd" in confirmed.text
        assert state_of(root, "browser@example.org") == {"mkb": "active"}
    finally:
        server.stop()


@pytest.mark.parametrize("limit", [2])
def test_the_rate_limit_per_client_and_address(limit):
    clock = [0.0]
    rate = RateLimit(limit, 60, lambda: clock[0])
    assert [rate.allow("a"), rate.allow("a"), rate.allow("a"), rate.allow("b")] == [True, True, False, True]
    clock[0] = 61
    assert rate.allow("a")
