"""`dissemination web`: one-click unsubscribe (RFC 8058) and click redirects, over a real socket
(uvicorn on an ephemeral port, and the `web` command itself in a subprocess)."""

import datetime as dt
import re
import threading
import time

import httpx
import pytest
import uvicorn
from mail import DUE, SECOND, SECRET, WEB, contact, mail_env, newsletter_project, smtp  # noqa: F401  (smtp: a fixture)
from publishing import cli

from dissemination.ledger import Ledger
from dissemination.ledger.deliveries import Deliveries
from dissemination.measure import collect_metrics
from dissemination.publish.tokens import Signer
from dissemination.web import create_app


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class WebServer:
    def __init__(self, app) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def url(self, public: str) -> str:
        return public.replace(WEB, f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve():
    """serve(app) -> an httpx client for it over a real socket; stopped after the test."""
    servers = []

    def start(app) -> httpx.Client:
        server = WebServer(app)
        servers.append(server)
        # A person's browser: library user agents (python-httpx) are link scanners, not clicks.
        return httpx.Client(base_url=f"http://127.0.0.1:{server.port}", follow_redirects=False,
                            headers={"User-Agent": BROWSER})

    yield start
    for server in servers:
        server.stop()


def sent_project(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(0), contact(1, tracking=True), contact(2)])
    assert cli(root, "publish", "--now", DUE, env=mail_env()).exit_code == 0
    messages = {m["To"].addresses[0].addr_spec: m for m in smtp.sink.parsed()}
    return root, messages


def unsubscribe_url(message) -> str:
    return re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"]).group(1)


def test_one_click_post_over_a_real_socket_suppresses_before_the_next_send(tmp_path, smtp):
    root, messages = sent_project(tmp_path, smtp)
    ledger = Ledger.for_root(root)
    web = WebServer(create_app(ledger, Signer(SECRET.encode()), {"nieuwsbrief": "Nieuwsbrief SI Logistiek"}))
    try:
        url = web.url(unsubscribe_url(messages["lid0@example.org"]))
        page = httpx.get(url)  # what a link scanner does: nothing changes
        assert page.status_code == 200 and "Afmelden" in page.text and '<form method="post">' in page.text
        assert Deliveries(ledger).suppressed("lid0@example.org", "nieuwsbrief") is None
        answer = httpx.post(url, content=b"List-Unsubscribe=One-Click", follow_redirects=False,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 200 and "U bent afgemeld" in answer.text and "l…@example.org" in answer.text
        assert "lid0@example.org" not in answer.text  # the address is not shown in full
        assert Deliveries(ledger).suppressed("lid0@example.org", "nieuwsbrief") == "unsubscribed"
        assert "al afgemeld" in httpx.get(url).text
        assert httpx.post(url, content=b"List-Unsubscribe=One-Click").status_code == 200  # a repeat is fine
    finally:
        web.stop()
    assert cli(root, "publish", "--now", SECOND, env=mail_env()).exit_code == 0
    assert sorted(smtp.sink.recipients()[3:]) == ["lid1@example.org", "lid2@example.org"]
    [entry] = Deliveries(ledger).suppression_list()
    assert (entry["address"], entry["scope"], entry["reason"]) == ("lid0@example.org", "nieuwsbrief", "unsubscribed")


def test_tampered_or_borrowed_tokens_are_refused(tmp_path, smtp, serve):
    root, messages = sent_project(tmp_path, smtp)
    ledger = Ledger.for_root(root)
    client = serve(create_app(ledger, Signer(SECRET.encode())))
    token = unsubscribe_url(messages["lid0@example.org"]).rsplit("/", 1)[1]
    other = unsubscribe_url(messages["lid1@example.org"]).rsplit("/", 1)[1]
    payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    attempts = {
        "signature changed": f"{payload}.{flipped}",
        "lid1's signature on lid0's claims": f"{payload}.{other.split('.')[1]}",
        "lid0's signature on lid1's claims": f"{other.split('.')[0]}.{signature}",
        "signed with another secret": Signer(b"another-secret-0123456789").unsubscribe(
            "nieuwsbrief", "x", "lid0@example.org").replace(token.split(".")[0][:4], token.split(".")[0][:4]),
        "garbage": "bm90LWEtdG9rZW4.AAAA",
    }
    for why, bad in attempts.items():
        for method in ("GET", "POST"):
            answer = client.request(method, f"/afmelden/{bad}", content=b"List-Unsubscribe=One-Click")
            assert answer.status_code in (400, 403), why
            assert "Ongeldige link" in answer.text, why
    assert Deliveries(ledger).suppression_list() == []
    assert client.post(f"/afmelden/{token}").status_code == 200
    assert [e["address"] for e in Deliveries(ledger).suppression_list()] == ["lid0@example.org"]


def test_clicks_are_counted_anonymously_and_only_newsletter_links_redirect(tmp_path, smtp, monkeypatch, serve):
    root, messages = sent_project(tmp_path, smtp)
    ledger = Ledger.for_root(root)
    client = serve(create_app(ledger, Signer(SECRET.encode())))

    def links(address):
        html = messages[address].get_body(("html",)).get_content()
        return re.findall(rf'href="{re.escape(WEB)}(/klik/[^"]+)"', html)

    anonymous, personal = links("lid0@example.org")[0], links("lid1@example.org")[0]
    for path in (anonymous, anonymous, personal):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["location"].startswith("https://www.kennisbanksocialeinnovatie.nl/")
    item = next(r for r in ledger.items() if r["channel"] == "nieuwsbrief" and r["post"] == "maart")
    clicks = Deliveries(ledger).clicks(item["id"])
    assert [c["address"] for c in clicks] == [None, None, "lid1@example.org"]  # per person only with consent
    # A click token for a URL that was not in the newsletter cannot be made without the secret.
    forged = Signer(b"not-the-secret-000000000000").click(item["id"], "https://evil.example/")
    token = anonymous.rsplit("/", 1)[1]
    swapped = forged.split(".")[0] + "." + token.split(".")[1]
    for bad in (forged, swapped):
        assert client.get(f"/klik/{bad}").status_code == 400
    assert len(Deliveries(ledger).clicks(item["id"])) == 3

    # Metrics per newsletter item, stored as snapshots like the social channels.
    client.post(f"/afmelden/{unsubscribe_url(messages['lid2@example.org']).rsplit('/', 1)[1]}")
    assert cli(root, "publish", "--now", "2027-03-02T09:10Z", env=mail_env()).exit_code == 0
    monkeypatch.setenv("DISSEMINATION_UNSUBSCRIBE_SECRET", SECRET)  # the collector runs like the publisher
    collect_metrics(root, ledger, dt.datetime(2027, 3, 3, tzinfo=dt.timezone.utc))
    readings = {s["metric"]: s["value"] for s in ledger.snapshots(item["id"])}
    assert readings == {"sent": 3.0, "rejected": 0.0, "unsubscribed": 1.0, "clicks": 3.0}
    assert {s["source"] for s in ledger.snapshots(item["id"])} == {"email:nieuwsbrief"}


def test_the_web_command_serves_and_needs_the_secret(tmp_path, smtp):
    from mail import free_port
    from publishing import subprocess_cli

    root, messages = sent_project(tmp_path, smtp)
    result = cli(root, "web", env={"DISSEMINATION_UNSUBSCRIBE_SECRET": ""})
    assert result.exit_code == 2 and "DISSEMINATION_UNSUBSCRIBE_SECRET is not set" in result.output
    port = free_port()
    proc = subprocess_cli(root, "web", "--port", str(port), env=mail_env())
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health").text == "ok"
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        url = unsubscribe_url(messages["lid2@example.org"]).replace(WEB, f"http://127.0.0.1:{port}")
        page = httpx.get(url)
        assert "niet meer ontvangen" in page.text
        assert httpx.post(url, content=b"List-Unsubscribe=One-Click").status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert Deliveries(Ledger.for_root(root)).suppressed("lid2@example.org", "nieuwsbrief") == "unsubscribed"


def test_clicks_are_honest_no_head_no_scanners_no_gateway_on_arrival_one_per_recipient_per_link(tmp_path, smtp, serve):
    root, messages = sent_project(tmp_path, smtp)
    ledger = Ledger.for_root(root)
    now = [dt.datetime(2027, 3, 2, 9, 5, 3, tzinfo=dt.timezone.utc)]  # 3 seconds after the delivery
    client = serve(create_app(ledger, Signer(SECRET.encode()), clock=lambda: now[0]))
    html = {a: m.get_body(("html",)).get_content() for a, m in messages.items()}
    anonymous = re.findall(rf'href="{re.escape(WEB)}(/klik/[^"]+)"', html["lid0@example.org"])[0]
    personal = re.findall(rf'href="{re.escape(WEB)}(/klik/[^"]+)"', html["lid1@example.org"])[0]
    person = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"}
    assert client.head(anonymous, headers=person).status_code == 302  # redirected, not counted
    for agent in ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "python-requests/2.32", "Slackbot-LinkExpanding 1.0"):
        assert client.get(anonymous, headers={"User-Agent": agent}).status_code == 302
    assert client.get(personal, headers=person).status_code == 302  # a gateway's request on arrival
    now[0] += dt.timedelta(minutes=20)
    for _ in range(3):
        assert client.get(personal, headers=person).status_code == 302  # counted once
        assert client.get(anonymous, headers=person).status_code == 302  # anonymous: each counts
    item = next(r for r in ledger.items() if r["channel"] == "nieuwsbrief" and r["post"] == "maart")
    assert [c["address"] for c in Deliveries(ledger).clicks(item["id"])] == [
        "lid1@example.org", None, None, None]


def test_the_footer_names_the_sender_and_links_a_web_version_served_by_web(tmp_path, smtp, serve):
    from mail import first_issue

    root = newsletter_project(tmp_path / "p", smtp.port, [contact(0)])
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + "\nsender:\n  organisation: Taskforce SI Logistiek\n"
                         "  postal_address: Postbus 1234, 2500 AA Den Haag\n  contact: info@example.org\n"
                         "  privacy_url: https://www.example.org/privacy\n")
    assert "updated" in cli(root, "plan", "--now", "2027-02-02T00:00Z").output
    assert cli(root, "publish", "--now", DUE, env=mail_env()).exit_code == 0
    [message] = smtp.sink.parsed()
    text, html = message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Taskforce SI Logistiek, Postbus 1234, 2500 AA Den Haag" in part and "info@example.org" in part
    assert "Privacyverklaring: https://www.example.org/privacy" in text and "Privacyverklaring</a>" in html
    item = first_issue(root)["id"]
    client = serve(create_app(Ledger.for_root(root), Signer(SECRET.encode())))
    page = client.get(f"/editie/{item}")
    assert page.status_code == 200 and "ĳzeren werkweek" in page.text and "Taskforce SI Logistiek" in page.text
    assert "/afmelden/" not in page.text and "%%" not in page.text  # nobody's personal link
    assert client.get("/editie/0000000000000000").status_code == 404


def test_per_person_clicks_lose_the_address_after_the_retention(tmp_path, smtp):
    root, _ = sent_project(tmp_path, smtp)
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text() + "  click_retention: 10d\n")
    ledger = Ledger.for_root(root)
    item = next(r for r in ledger.items() if r["channel"] == "nieuwsbrief" and r["post"] == "maart")["id"]
    store = Deliveries(ledger)
    day = dt.datetime(2027, 3, 2, 10, tzinfo=dt.timezone.utc)
    store.add_click(item, "https://example.org/a", "lid1@example.org", day)
    store.add_click(item, "https://example.org/b", "lid1@example.org", day + dt.timedelta(days=5))
    collect_metrics(root, ledger, day + dt.timedelta(days=12))  # the metrics job, well within 30 days
    assert [c["address"] for c in store.clicks(item)] == [None, "lid1@example.org"]  # the older one anonymised
    assert store.metrics([item])[item]["clicks"] == 2
