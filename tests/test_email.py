"""E-mail newsletters against a real SMTP server on loopback (aiosmtpd), through the real CLI."""

import datetime as dt
import email
import json
import random
import re
import time
from email import policy
import signal

import pytest
from mail import (DUE, SECOND, SECRET, SmtpServer, contact, deliveries, first_issue, import_contacts, mail_env,
                  newsletter_project, newsletter_rows, smtp, stakeholder_map, states)  # noqa: F401  (smtp: a fixture)
from publishing import PgSchema, cli, pg_available, subprocess_cli
from reporting import backend  # noqa: F401  (a fixture: SQLite, then PostgreSQL)

from dissemination.ledger import Ledger
from dissemination.ledger.deliveries import Deliveries, Outcome

UTC = dt.timezone.utc
DUTCH = "Één nieuwsbrief met ideeën: café-overleg over de ĳzeren werkweek."


def publish(root, now=DUE, **env):
    result = cli(root, "publish", "--now", now, env=mail_env(**env))
    assert result.exit_code == 0, result.output
    return result


def unsubscribe_url(message) -> str:
    return re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"]).group(1)


def test_structure_headers_both_parts_dutch_and_only_consented_unsuppressed_recipients(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(0), contact(1, tracking=True), contact(2), contact(3)])
    # After planning: a contact without consent is added, and one contact unsubscribed by reply.
    (root / "stakeholder_maps" / "test.yaml").write_text(stakeholder_map(
        [contact(0), contact(1, tracking=True), contact(2), contact(3), contact(9, consent=False)]), encoding="utf-8")
    import_contacts(root)  # a contact without a consent record is not imported
    assert "suppressed on list nieuwsbrief" in cli(root, "suppress", " LID2@example.org", "--list", "nieuwsbrief").output

    publish(root)

    assert sorted(smtp.sink.recipients()) == ["lid0@example.org", "lid1@example.org", "lid3@example.org"]
    messages = {m["To"].addresses[0].addr_spec: m for m in smtp.sink.parsed()}
    for _, _, raw in smtp.sink.messages:
        assert re.search(rb"(?<!\r)\n", raw) is None  # CRLF only: no bare LF anywhere
        assert max(len(line) for line in raw.split(b"\r\n")[raw.split(b"\r\n").index(b""):]) <= 76  # QP lines
    ids = set()
    for address, message in messages.items():
        assert message.get_content_type() == "multipart/alternative"
        text, html = message.iter_parts()
        assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
        assert text.get_content_charset() == html.get_content_charset() == "utf-8"
        assert DUTCH in text.get_content() and DUTCH in html.get_content()
        assert message["Subject"] == "Editie maart – Nieuwsbrief maart"
        assert message["To"].addresses[0].display_name.endswith("Tiëlemans")
        assert message["From"].addresses[0].addr_spec == "nieuwsbrief@example.org"
        assert re.fullmatch(r"<[0-9a-f]{16}\.[A-Za-z0-9_-]+@example\.org>", message["Message-ID"])
        ids.add(message["Message-ID"])
        assert message["List-Id"] == "nieuwsbrief <nieuwsbrief.example.org>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = unsubscribe_url(message)
        assert url.startswith("https://nieuwsbrief.example.org/afmelden/")
        assert "<mailto:nieuwsbrief@example.org?subject=afmelden>" in message["List-Unsubscribe"]
        assert f"Afmelden of voorkeuren aanpassen: {url}" in text.get_content()  # in both parts, the same link
        assert f'<a href="{url}" style="color: #5b6673;">Afmelden of voorkeuren aanpassen</a>' in html.get_content()
        web_version = f"https://nieuwsbrief.example.org/editie/{first_issue(root)['id']}"
        assert f"In de browser: {web_version}" in text.get_content()
        assert "%%" not in text.get_content() + html.get_content()
    assert len(ids) == 3 and len({unsubscribe_url(m) for m in messages.values()}) == 3
    # Clicks: anonymous links are the same for everyone; personal only for the consenting contact.
    links = {a: re.findall(r'href="(https://nieuwsbrief\.example\.org/klik/[^"]+)"', m.get_body(("html",)).get_content())
             for a, m in messages.items()}
    assert links["lid0@example.org"] and links["lid0@example.org"] == links["lid3@example.org"]
    assert set(links["lid1@example.org"]).isdisjoint(links["lid0@example.org"])

    item = first_issue(root)
    assert item["state"] == "published"
    assert states(root, item["id"]) == {"lid0@example.org": "sent", "lid1@example.org": "sent",
                                        "lid2@example.org": "suppressed", "lid3@example.org": "sent"}
    publish(root, "2027-03-02T10:00Z")  # nothing twice
    assert len(smtp.sink.messages) == 3


def test_dropped_connection_next_run_sends_exactly_the_rest(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(10)])
    smtp.sink.drop_after, smtp.sink.stay_down = 4, True  # drop after message 4, then refuse connections
    result = publish(root)
    assert "1 to retry" in result.output
    assert len(smtp.sink.messages) == 4
    item = first_issue(root)
    assert item["state"] == "planned" and "6 of 10 recipients not reached yet" in item["reason"]
    smtp.sink.down = False
    publish(root, "2027-03-02T09:30Z")  # after the retry back-off
    recipients = smtp.sink.recipients()
    assert len(recipients) == 10 and len(set(recipients)) == 10  # exactly n - k more, no duplicate
    assert first_issue(root)["state"] == "published"


def test_dropped_connection_is_reopened_within_the_run(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(10)])
    smtp.sink.drop_after = 3
    publish(root)
    recipients = smtp.sink.recipients()
    assert sorted(recipients) == sorted(f"lid{i}@example.org" for i in range(10))
    assert smtp.sink.connections >= 2 and first_issue(root)["state"] == "published"


def test_connection_dropped_after_the_message_is_not_resent(tmp_path, smtp):
    """The server took message 3 but the answer never came: it may have arrived, so it is
    `unknown` (reported), never sent a second time."""
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(6)])
    smtp.sink.drop_after_data = 2
    publish(root)
    recipients = smtp.sink.recipients()
    assert len(recipients) == 6 and len(set(recipients)) == 6
    rows = states(root, first_issue(root)["id"])
    assert sorted(rows.values()) == ["sent"] * 5 + ["unknown"]


def test_550_is_a_hard_bounce_suppressed_everywhere_and_the_rest_delivered(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(5)])
    smtp.sink.refuse["lid2@example.org"] = "550 5.1.1 <lid2@example.org>: no such user"
    publish(root)
    assert sorted(smtp.sink.recipients()) == [f"lid{i}@example.org" for i in (0, 1, 3, 4)]
    item = first_issue(root)
    assert item["state"] == "published"
    rows = {r["address"]: r for r in deliveries(root).rows(item["id"])}
    assert rows["lid2@example.org"]["state"] == "bounced" and "550" in rows["lid2@example.org"]["detail"]
    [entry] = deliveries(root).suppression_list()
    assert (entry["address"], entry["scope"], entry["reason"]) == ("lid2@example.org", "*", "bounced")
    subscriber = json.loads(cli(root, "subscribers", "export", "lid2@example.org").output)["subscriber"]
    assert subscriber["state"] == "bounced"
    # The address is imported again (with other capitals): still never mailed.
    smtp.sink.refuse.clear()
    path = root / "stakeholder_maps" / "test.yaml"
    path.write_text(stakeholder_map([contact(i) for i in range(5)]).replace("Lid2@Example.org", "LID2@example.ORG"),
                    encoding="utf-8")
    import_contacts(root)
    publish(root, SECOND)
    second = smtp.sink.recipients()[4:]
    assert sorted(second) == [f"lid{i}@example.org" for i in (0, 1, 3, 4)]


def test_4xx_defers_the_recipient_to_the_next_run(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(4)])
    smtp.sink.refuse["lid1@example.org"] = "451 4.7.1 greylisted, try again later"
    publish(root)
    assert sorted(smtp.sink.recipients()) == [f"lid{i}@example.org" for i in (0, 2, 3)]
    item = first_issue(root)
    assert item["state"] == "planned" and "1 deferred" in item["reason"]
    assert states(root, item["id"])["lid1@example.org"] == "deferred"
    smtp.sink.refuse.clear()
    publish(root, "2027-03-02T09:30Z")
    recipients = smtp.sink.recipients()
    assert sorted(recipients) == [f"lid{i}@example.org" for i in range(4)]  # lid1 once, nobody twice
    assert first_issue(root)["state"] == "published"


@pytest.mark.parametrize("change", ["edited", "removed"])
def test_a_partly_sent_newsletter_keeps_its_edition_whatever_happens_to_the_campaign(tmp_path, smtp, change):
    # lid1 is greylisted: the others have the edition, so lid1 gets the same one later, even when the
    # campaign is edited (and approved again) or the edition taken out of it meanwhile
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(3)])
    smtp.sink.refuse["lid1@example.org"] = "451 4.7.1 greylisted, try again later"
    publish(root)
    item = first_issue(root)
    campaign = root / "campaigns" / "brief.md"
    if change == "edited":
        campaign.write_text(campaign.read_text().replace("café-overleg over de ĳzeren werkweek", "iets heel anders"))
    else:
        text = campaign.read_text()
        campaign.write_text(text[:text.index("## Editie maart")] + text[text.index("## Editie twee"):])
    assert cli(root, "approve", "campaigns/brief.md", "--by", "Test").exit_code == 0
    assert cli(root, "plan", "--now", "2027-03-02T09:10Z").exit_code == 0
    after = next(r for r in newsletter_rows(root) if r["id"] == item["id"])
    assert (after["state"], after["payload"]) == ("planned", item["payload"])
    smtp.sink.refuse.clear()
    publish(root, "2027-03-02T09:30Z")
    assert sorted(smtp.sink.recipients()) == ["lid0@example.org", "lid1@example.org", "lid2@example.org"]
    for message in smtp.sink.parsed():
        assert DUTCH in message.get_body(("plain",)).get_content()
    assert first_issue(root)["state"] == "published"


def test_a_recipient_always_deferred_is_retried_with_growing_back_off_until_the_edition_expires(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(2)])
    smtp.sink.refuse["lid1@example.org"] = "452 4.2.2 mailbox full"
    publish(root)
    item = first_issue(root)["id"]
    tries = lambda: smtp.sink.commands.count("RCPT lid1@example.org")  # noqa: E731
    assert tries() == 1
    publish(root, "2027-03-02T09:08Z")  # within the first back-off (5 minutes): not tried
    assert tries() == 1
    now = dt.datetime(2027, 3, 2, 9, 11, tzinfo=UTC)
    for expected in (2, 3):  # 5 minutes, then 10 minutes later
        publish(root, now.isoformat())
        assert tries() == expected
        now += dt.timedelta(minutes=5)
        publish(root, now.isoformat())
        assert tries() == expected, "tried again before its back-off"
        now += dt.timedelta(minutes=6)
    while now < dt.datetime(2027, 3, 5, 12, 0, tzinfo=UTC):  # every 4 hours, past the expiry 3 days after the slot
        publish(root, now.isoformat())
        now += dt.timedelta(hours=4)
    row = {r["address"]: r for r in deliveries(root).rows(item)}["lid1@example.org"]
    assert row["state"] == "failed" and "gave up: the edition expired at 2027-03-05 09:00 UTC" in row["detail"]
    assert 10 <= row["attempts"] <= 25 and first_issue(root)["state"] == "published"
    assert smtp.sink.recipients() == ["lid0@example.org"]
    assert deliveries(root).suppression_list() == []  # one soft bounce is not a dead address


def test_a_450_recipient_whose_edition_expired_never_gets_it(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(3)])
    smtp.sink.refuse["lid1@example.org"] = "450 4.2.0 mailbox unavailable, try later"
    publish(root)
    smtp.sink.refuse.clear()
    result = publish(root, "2027-03-05T09:30Z")  # the server would take it now, but the edition is 3 days old
    assert smtp.sink.recipients().count("lid1@example.org") == 0
    item = first_issue(root)
    assert item["state"] == "published", result.output
    assert states(root, item["id"]) == {"lid0@example.org": "sent", "lid1@example.org": "failed",
                                        "lid2@example.org": "sent"}


def test_a_deferred_recipient_does_not_get_an_edition_once_the_next_one_went_out(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(2)],
                              "  edition_expires_after: 30d\n")
    smtp.sink.refuse["lid1@example.org"] = "451 4.3.0 try later"
    publish(root)
    publish(root, SECOND)  # still refused: deferred for both editions; the second reached lid0
    smtp.sink.refuse.clear()
    publish(root, "2027-03-09T13:30Z")
    got = [(m["To"].addresses[0].addr_spec, m["Subject"]) for m in smtp.sink.parsed()]
    assert got.count(("lid1@example.org", "Editie maart – Nieuwsbrief maart")) == 0
    assert [address for address, _ in got].count("lid1@example.org") == 1  # the current edition only
    row = {r["address"]: r for r in deliveries(root).rows(first_issue(root)["id"])}["lid1@example.org"]
    assert row["state"] == "failed" and "the list's next edition" in row["detail"]


def test_editions_not_accepted_several_times_in_a_row_suppress_the_address(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(2)], "  soft_bounce_limit: 2\n")
    smtp.sink.refuse["lid1@example.org"] = "552 5.2.2 mailbox full"
    publish(root)
    assert deliveries(root).suppression_list() == []
    publish(root, SECOND)
    [entry] = deliveries(root).suppression_list()
    assert (entry["address"], entry["reason"]) == ("lid1@example.org", "bounced")
    assert "2 editions in a row not accepted" in entry["detail"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_authentication(tmp_path):
    from aiosmtpd.smtp import AuthResult

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=auth_data.login == b"roadmap" and auth_data.password == b"geheim-42", handled=False)

    server = SmtpServer(authenticator=authenticate, auth_require_tls=False, auth_required=True)
    try:
        root = newsletter_project(tmp_path, server.port, [contact(0)],
                                  "  username_env: TEST_SMTP_USER\n  password_env: TEST_SMTP_PASSWORD\n")
        result = publish(root, TEST_SMTP_USER="roadmap", TEST_SMTP_PASSWORD="fout")
        # found by the preflight (a login is tried while newsletters are planned): nothing claimed
        assert "nieuwsbrief: not publishing: 127.0.0.1 refused the login of TEST_SMTP_USER: 535; set the relay's " \
               "current password in TEST_SMTP_PASSWORD" in result.output and "fout" not in result.output
        assert first_issue(root)["state"] == "planned" and server.sink.messages == []
        publish(root, "2027-03-02T09:30Z", TEST_SMTP_USER="roadmap", TEST_SMTP_PASSWORD="geheim-42")
        assert server.sink.recipients() == ["lid0@example.org"]
    finally:
        server.stop()


def test_without_smtp_settings_the_outbox_gets_one_message_per_consented_recipient(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(0), contact(1)],
                              "  username_env: TEST_SMTP_USER\n  password_env: TEST_SMTP_PASSWORD\n")
    (root / "stakeholder_maps" / "test.yaml").write_text(stakeholder_map(
        [contact(0), contact(1), contact(7, consent=False)]), encoding="utf-8")
    cli(root, "suppress", "lid1@example.org")
    result = publish(root)
    assert "TEST_SMTP_USER, TEST_SMTP_PASSWORD not set, so no e-mail is sent" in result.output
    files = sorted((root / "outbox" / "nieuwsbrief").rglob("*.eml"))
    assert len(files) == 1 and smtp.sink.messages == []
    message = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert str(message["To"]) == "Lid 0 Tiëlemans <lid0@example.org>" and DUTCH in message.get_body(("plain",)).get_content()
    assert first_issue(root)["state"] == "published"


def test_a_newsletter_without_unsubscribe_link_is_never_sent(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(0)])
    (root / "templates" / "email").mkdir(parents=True)
    (root / "templates" / "email" / "newsletter.txt.j2").write_text("{{ body }}\n")
    assert cli(root, "approve", "campaigns/brief.md", "--by", "Test").exit_code == 0  # covers the new template
    assert "2 updated" in cli(root, "plan", "--now", "2027-02-02T00:00Z").output  # both editions
    publish(root)
    assert smtp.sink.messages == []
    item = first_issue(root)
    assert item["state"] == "failed" and "no unsubscribe link" in item["reason"]


@pytest.mark.parametrize("point,delivered", [("email_after_reply:3", 8), ("email_before_dot:3", 7)])
def test_publisher_killed_mid_batch_sends_nobody_twice(tmp_path, smtp, point, delivered):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(8)])
    proc = subprocess_cli(root, "publish", "--now", DUE, env=mail_env(DISSEMINATION_FAULT=point))
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(smtp.sink.messages) == 3 if point.startswith("email_after") else 2
    publish(root, "2027-03-02T09:07Z")  # the item's lease (5 min) still holds: nobody touches it
    assert len(smtp.sink.messages) in (2, 3)
    publish(root, "2027-03-02T09:12Z")
    recipients = smtp.sink.recipients()
    assert len(recipients) == delivered and len(set(recipients)) == delivered  # nobody twice
    item = first_issue(root)
    assert item["state"] == "published"
    rows = states(root, item["id"])
    # The one message in flight when the process died is reported as unknown, not resent.
    assert sorted(rows.values()) == ["sent"] * 7 + ["unknown"]


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield led
        led.close()
        return
    if not pg_available():
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    schema = PgSchema()
    led = Ledger(schema.url)
    yield led
    led.close()
    schema.drop()


def test_a_worker_that_lost_the_item_can_send_nobody(ledger):
    """Worker A held the newsletter, stalled past its lease; B took the item over. A's message in
    flight is unknown, and A can neither send another recipient nor record an outcome."""
    from dissemination.ledger import PlannedItem

    now = dt.datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    item = PlannedItem("c", "p", "mkb", "nieuwsbrief", 0, now, "Europe/Amsterdam", {"text": "x"})
    ledger.apply_plan([item], now)
    store = Deliveries(ledger)
    recipients = [f"r{i}@example.org" for i in range(6)]

    def key(address):
        return "k" + address

    [held] = ledger.claim_due("A", now, lease=dt.timedelta(minutes=5))
    store.prepare(item.id, "A", recipients, key, "nieuwsbrief", now)
    chunks = list(store.due(item.id, 4, now, since=now))
    assert chunks == [sorted(recipients)[:4], sorted(recipients)[4:]]  # read ahead, nothing written
    first, second = chunks[0][:2]
    assert store.begin_send(item.id, "A", first, "nieuwsbrief", now) == "go"
    later = now + dt.timedelta(minutes=10)
    [taken] = ledger.claim_due("B", later)  # A's lease ran out: B holds the item now
    assert taken.id == held.id
    store.prepare(item.id, "B", recipients, key, "nieuwsbrief", later)
    assert store.begin_send(item.id, "A", second, "nieuwsbrief", later) == "lost"
    store.record(item.id, "A", [Outcome(first, "sent")], "nieuwsbrief", later)  # too late: not A's row
    store.record(item.id, "A", [Outcome(second, "rejected", "bad")], "nieuwsbrief", later)  # nor this one
    rows = {r["address"]: r["state"] for r in store.rows(item.id)}
    assert rows[first] == "unknown" and list(rows.values()).count("pending") == 5
    mine = [a for chunk in store.due(item.id, 10, later, since=later) for a in chunk]
    assert sorted(mine) == sorted(set(recipients) - {first})
    for address in mine:
        assert store.begin_send(item.id, "B", address, "nieuwsbrief", later) == "go"
    store.record(item.id, "B", [Outcome(a, "sent") for a in mine], "nieuwsbrief", later)
    assert store.counts(item.id) == {"sent": 5, "unknown": 1}


def test_a_worker_without_the_items_lease_sends_nobody(ledger):
    from dissemination.ledger import PlannedItem

    now = dt.datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    item = PlannedItem("c", "p", "mkb", "nieuwsbrief", 0, now, "Europe/Amsterdam", {"text": "x"})
    ledger.apply_plan([item], now)
    store = Deliveries(ledger)
    store.prepare(item.id, "A", ["a@example.org"], lambda a: "k" + a, "nieuwsbrief", now)
    assert store.begin_send(item.id, "A", "a@example.org", "nieuwsbrief", now) == "lost"  # planned, not claimed
    ledger.claim_due("B", now)
    assert store.begin_send(item.id, "A", "a@example.org", "nieuwsbrief", now) == "lost"  # B's lease
    assert store.begin_send(item.id, "B", "a@example.org", "nieuwsbrief", now) == "go"
    assert store.begin_send(item.id, "B", "a@example.org", "nieuwsbrief", now) == "lost"  # marked already


def test_unsubscribed_meanwhile_is_not_sent(ledger):
    from dissemination.ledger import PlannedItem

    now = dt.datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    item = PlannedItem("c", "p", "mkb", "nieuwsbrief", 0, now, "Europe/Amsterdam", {"text": "x"})
    ledger.apply_plan([item], now)
    store = Deliveries(ledger)
    ledger.claim_due("A", now)
    store.prepare(item.id, "A", ["a@example.org", "b@example.org"], lambda a: "k" + a, "nieuwsbrief", now)
    store.suppress("B@Example.org ", "nieuwsbrief", "unsubscribed", now, item.id)
    assert store.begin_send(item.id, "A", "b@example.org", "nieuwsbrief", now) == "suppressed"
    assert store.begin_send(item.id, "A", "a@example.org", "andere-lijst", now) == "go"  # another list's scope
    assert {r["address"]: r["state"] for r in store.rows(item.id)}["b@example.org"] == "suppressed"
    assert store.metrics([item.id])[item.id]["unsubscribed"] == 1


def test_the_newsletters_command_says_who_was_not_reached_and_why(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(3)])
    smtp.sink.refuse["lid1@example.org"] = "550 5.1.1 no such user"
    publish(root)
    item = first_issue(root)["id"]
    summary = cli(root, "newsletters").output
    assert f"{item}  nieuwsbrief brief/maart to mkb (published): 1 bounced, 2 sent" in summary
    detail = cli(root, "newsletters", "--item", item).output
    assert "bounced    lid1@example.org  550 5.1.1 no such user" in detail and "lid0" not in detail


def test_progress_is_reported_for_a_send(tmp_path, smtp, monkeypatch):
    from dissemination.publish.loop import publish_due

    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(450)])
    monkeypatch.setenv("DISSEMINATION_UNSUBSCRIBE_SECRET", SECRET)
    seen = []
    publish_due(root, Ledger.for_root(root), dt.datetime(2027, 3, 2, 9, 5, tzinfo=UTC),
                progress=lambda label, done, total: seen.append((label, done, total)))
    assert {label for label, _, _ in seen} == {"nieuwsbrief brief/maart to mkb"}
    assert [total for _, _, total in seen] == [450] * len(seen) and len(seen) >= 3  # per chunk, then the end
    assert seen[-1][1] == 450 and [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    assert len(smtp.sink.messages) == 450


def test_a_send_with_every_outcome_on_both_backends(tmp_path, smtp, backend):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(12)])
    smtp.sink.refuse["lid3@example.org"] = "550 5.1.1 no such user"
    smtp.sink.refuse["lid4@example.org"] = "451 4.3.0 try later"
    cli(root, "suppress", "lid5@example.org", "--list", "nieuwsbrief")
    publish(root)
    smtp.sink.refuse.clear()
    publish(root, "2027-03-02T09:30Z")
    recipients = smtp.sink.recipients()
    assert sorted(recipients) == sorted(f"lid{i}@example.org" for i in range(12) if i not in (3, 5))
    item = first_issue(root)
    assert item["state"] == "published"
    rows = states(root, item["id"])
    assert rows["lid3@example.org"] == "bounced" and rows["lid5@example.org"] == "suppressed"
    assert list(rows.values()).count("sent") == 10


def test_publishers_killed_at_random_moments_over_three_connections_send_nobody_twice(tmp_path, smtp):
    """Publishers sending over 3 connections are killed at random moments; then one clean run.
    Every recipient got the newsletter at most once; every row is settled; what was in flight when
    a process died is `unknown` (at most one per connection per kill), everything else was sent."""
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(240)],
                              "  connections: 3\n").resolve()
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("rate_per_minute: 100000", "rate_per_minute: 3000"))
    rng = random.Random(6)
    now = dt.datetime(2027, 3, 2, 9, 5, tzinfo=UTC)
    kills = 0
    for _ in range(5):
        before = len(smtp.sink.messages)
        proc = subprocess_cli(root, "publish", "--now", now.isoformat(), env=mail_env())
        deadline = time.monotonic() + 30
        while len(smtp.sink.messages) < before + 5 and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until this publisher is sending, then kill it mid-batch
        time.sleep(rng.uniform(0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        kills += proc.returncode == -signal.SIGKILL
        now += dt.timedelta(minutes=6)  # the dead publisher's lease has expired
    assert kills >= 4
    assert 0 < len(smtp.sink.messages) < 240  # the kills interrupted the send
    publish(root, now.isoformat())
    recipients = smtp.sink.recipients()
    assert len(recipients) == len(set(recipients))  # nobody twice
    rows = states(root, first_issue(root)["id"])
    assert first_issue(root)["state"] == "published" and len(rows) == 240
    assert set(rows.values()) <= {"sent", "unknown"}
    unknown = [a for a, state in rows.items() if state == "unknown"]
    assert len(unknown) <= 3 * kills
    assert sorted(a for a, state in rows.items() if state == "sent") == sorted(set(recipients) - set(unknown))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl command line tool."""
    import ssl
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return folder / "cert.pem", context


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_is_used_and_the_certificate_verified(tmp_path, certificate, security):
    import shutil

    cert, context = certificate
    options = {"tls_context": context, "require_starttls": True} if security == "starttls" else {"ssl_context": context}
    server = SmtpServer(**options)
    try:
        root = newsletter_project(tmp_path, server.port, [contact(0)], "")
        channels = root / "channels.yaml"
        channels.write_text(channels.read_text().replace("security: none", f"security: {security}"))
        publish(root)  # the self-signed certificate is not trusted: nothing is sent
        assert server.sink.messages == []
        assert "its TLS certificate is not trusted" in first_issue(root)["reason"]
        shutil.copy(cert, root / "relay-ca.pem")
        channels.write_text(channels.read_text() + "  tls_ca_file: relay-ca.pem\n")
        publish(root, "2027-03-02T09:30Z")
        assert server.sink.recipients() == ["lid0@example.org"]
    finally:
        server.stop()


def test_a_contact_in_several_audiences_gets_one_edition(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(0)])
    campaign = root / "campaigns" / "brief.md"
    campaign.write_text(campaign.read_text().replace("audiences: [mkb]", "audiences: [mkb, beleid]"))
    path = root / "stakeholder_maps" / "test.yaml"
    both = """  - id: evofenedex
    name: Evofenedex
    type: branch_organisation
    audiences: [beleid, mkb]
    power: 4
    interest: 4
    contacts:
      - name: Dubbel Persoon
        email: dubbel@example.org
        consent:
          source: Aanmelding website
          date: 2026-01-15
      - email: beleid@example.org
        consent:
          source: Aanmelding website
          date: 2026-02-01
"""
    path.write_text(path.read_text() + both, encoding="utf-8")
    import_contacts(root)
    assert cli(root, "approve", "campaigns/brief.md", "--by", "Test").exit_code == 0
    assert cli(root, "plan", "--now", "2027-02-02T00:00Z").exit_code == 0
    publish(root)
    by_edition = {}
    for message in smtp.sink.parsed():
        item = message["Message-ID"][1:17]
        by_edition.setdefault(item, []).append(message["To"].addresses[0].addr_spec)
    audience = {r["id"]: r["audience"] for r in newsletter_rows(root)}
    got = {audience[item]: sorted(addresses) for item, addresses in by_edition.items()}
    # mkb comes first in the campaign: dubbel@ gets that edition only; beleid@ (also listed under
    # a stakeholder in both audiences) gets the mkb edition as well, once.
    assert got == {"mkb": ["beleid@example.org", "dubbel@example.org", "lid0@example.org"]}
    assert sorted(smtp.sink.recipients()) == ["beleid@example.org", "dubbel@example.org", "lid0@example.org"]
    beleid = next(r for r in newsletter_rows(root) if r["audience"] == "beleid" and r["post"] == "maart")
    assert beleid["state"] == "published" and states(root, beleid["id"]) == {}


def test_554_5_7_1_at_rcpt_for_everyone_stops_the_run_suppresses_nobody_and_is_not_published(tmp_path, smtp):
    """A relay refusing us (our settings are wrong) is not a hard bounce of every recipient."""
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(6)])
    smtp.sink.refuse_all = "554 5.7.1 <lid0@example.org>: Relay access denied"
    result = publish(root)
    assert "1 failed" in result.output
    assert smtp.sink.messages == [] and deliveries(root).suppression_list() == []
    item = first_issue(root)
    assert item["state"] == "failed"
    assert "Relay access denied" in item["reason"] and "nobody was suppressed" in item["reason"]
    assert set(states(root, item["id"]).values()) == {"pending"}  # not bounced, not sent: still to send
    # The run stopped at the first refusal: one RCPT, not one per recipient.
    assert [c for c in smtp.sink.commands if c.startswith("RCPT")] == ["RCPT lid0@example.org"]


def test_a_5_7_refusal_without_an_enhanced_code_is_recognised_by_its_words(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(3)])
    smtp.sink.refuse_all = "554 Relay access denied"
    publish(root)
    assert first_issue(root)["state"] == "failed" and deliveries(root).suppression_list() == []


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_message_refused_after_data_is_followed_by_rset_and_the_rest_is_delivered(tmp_path, smtp, pipelining):
    """With PIPELINING the RSET went ahead behind the "." with the next envelope; without, it is
    sent once the refusal is read. Either way the next MAIL finds no transaction open."""
    smtp.sink.pipelining = pipelining
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(5)])
    smtp.sink.reject_data["lid1@example.org"] = "554 5.6.0 message content rejected"
    publish(root)
    assert sorted(smtp.sink.recipients()) == [f"lid{i}@example.org" for i in (0, 2, 3, 4)]
    commands = smtp.sink.commands
    refused = commands.index("DATA", commands.index("RCPT lid1@example.org"))
    assert commands[refused + 1] == "RSET" and commands[refused + 2] == "MAIL"
    item = first_issue(root)
    rows = states(root, item["id"])
    assert item["state"] == "published" and rows["lid1@example.org"] == "rejected"
    assert deliveries(root).suppression_list() == []  # a refused message is not a dead address


@pytest.mark.parametrize("answer,state", [("550 5.1.1 <x>: Recipient address rejected: User unknown", "bounced"),
                                          ("550 5.2.1 mailbox disabled", "bounced"),
                                          ("552 5.2.2 mailbox full", "failed"),
                                          ("554 5.3.4 message too big for system", "rejected")])
def test_only_a_bad_address_is_suppressed_and_only_that_one(tmp_path, smtp, answer, state):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(4)])
    smtp.sink.refuse["lid2@example.org"] = answer
    publish(root)
    assert sorted(smtp.sink.recipients()) == [f"lid{i}@example.org" for i in (0, 1, 3)]
    item = first_issue(root)
    assert item["state"] == "published" and states(root, item["id"])["lid2@example.org"] == state
    suppressed = [(e["address"], e["scope"]) for e in deliveries(root).suppression_list()]
    assert suppressed == ([("lid2@example.org", "*")] if state == "bounced" else [])


def test_a_long_accented_name_is_encoded_in_words_of_at_most_75_characters(tmp_path, smtp):
    from email.header import decode_header, make_header

    name = "Élodie-Françoise van den Ĳsselsteijn-Dûchâteau de Gerlache ë"
    assert len(name) == 60
    root = newsletter_project(tmp_path, smtp.port, [f"      - name: {name}\n        email: lang@example.org\n"
                                                    "        consent:\n          source: Aanmelding website\n"
                                                    "          date: 2026-01-15"])
    publish(root)
    [(_, _, raw)] = smtp.sink.messages
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    words = re.findall(r"=\?[^?]+\?[bqBQ]\?[^?]*\?=", head)
    assert words and max(len(w) for w in words) <= 75
    to = re.search(r"^To: (.*?)\r\n(?! )", head + "\r\n", re.M | re.S).group(1)
    assert max(len(line) for line in f"To: {to}".split("\r\n")) <= 78  # folded (RFC 5322 2.1.1)
    assert str(make_header(decode_header(to))) == f"{name} <lang@example.org>"  # RFC 2047 decoding


def test_unsuppress_lifts_a_suppression_with_an_audit_row_and_the_next_edition_reaches_the_address(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(3)])
    smtp.sink.refuse["lid1@example.org"] = "550 5.1.1 no such user"
    publish(root)
    smtp.sink.refuse.clear()
    refused = cli(root, "unsuppress", "lid1@example.org", "--by", "Test", "--reason", " ")
    assert refused.exit_code == 2 and "--reason: say who lifts the suppression and why" in refused.output
    assert cli(root, "unsuppress", "lid2@example.org", "--by", "Test", "--reason", "x").exit_code == 1
    done = cli(root, "unsuppress", "LID1@example.org", "--by", "Marieke", "--reason", "mailbox restored, ticket 12")
    assert done.exit_code == 0, done.output
    assert "lid1@example.org: no longer suppressed on every list (was bounced: 550 5.1.1 no such user)" in done.output
    assert deliveries(root).suppression_list() == []
    assert json.loads(cli(root, "subscribers", "export", "lid1@example.org").output)["subscriber"]["state"] == "active"
    [audit] = deliveries(root).unsuppressions("lid1@example.org")
    assert (audit["scope"], audit["previous_reason"], audit["lifted_by"], audit["lifted_reason"]) == (
        "*", "bounced", "Marieke", "mailbox restored, ticket 12")
    publish(root, SECOND)
    assert smtp.sink.recipients()[2:].count("lid1@example.org") == 1


def test_optional_dkim_signature_covers_the_list_unsubscribe_headers_and_verifies(tmp_path, smtp):
    import base64
    import subprocess

    import dkim

    key = subprocess.run(["openssl", "genrsa", "2048"], check=True, capture_output=True).stdout
    public = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=key, check=True,
                            capture_output=True).stdout
    root = newsletter_project(tmp_path, smtp.port, [contact(0), contact(1, tracking=True)],
                              "  dkim_selector: nb2027\n  dkim_key_env: TEST_DKIM_KEY\n")
    refused = cli(root, "publish", "--now", DUE, env=mail_env())  # the key is not set: nothing is sent
    assert "TEST_DKIM_KEY does not hold a PEM private key" in refused.output and smtp.sink.messages == []
    publish(root, "2027-03-02T09:06Z", TEST_DKIM_KEY=key.decode())
    assert len(smtp.sink.messages) == 2

    def dns(name, timeout=5):
        assert name == b"nb2027._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    for _, _, raw in smtp.sink.messages:
        assert raw.startswith(b"DKIM-Signature: ")
        assert dkim.verify(raw, dnsfunc=dns)  # the message as received verifies
        signed = re.search(rb"h=([^;]+);", raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b"").replace(b"\r\n\t", b""))
        fields = {f.strip().lower() for f in signed.group(1).split(b":")}
        assert {b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post", b"message-id"} <= fields
        assert not dkim.verify(raw.replace(b"Editie maart", b"Editie april", 1), dnsfunc=dns)  # and only it


def test_with_pipelining_the_next_envelope_goes_behind_each_message(tmp_path, smtp):
    """One round trip per message: behind a message's "." go RSET and the next recipient's MAIL,
    RCPT and DATA (RFC 2920 §3.1); the server sees that order, and everyone once. Without
    PIPELINING offered, one command at a time and no RSET between accepted messages."""
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(4)])
    publish(root)
    envelope = ["MAIL", "RCPT lid{}@example.org", "DATA"]
    order = [c.format(i) for i in range(4) for c in envelope]
    assert smtp.sink.commands == order[:3] + [c for i in range(1, 4) for c in ["RSET"] + order[3 * i:3 * i + 3]]
    assert sorted(smtp.sink.recipients()) == [f"lid{i}@example.org" for i in range(4)]

    plain = SmtpServer()
    plain.sink.pipelining = False
    try:
        root = newsletter_project(tmp_path / "plain", plain.port, [contact(i) for i in range(4)])
        publish(root)
        assert plain.sink.commands == order
        assert sorted(plain.sink.recipients()) == [f"lid{i}@example.org" for i in range(4)]
    finally:
        plain.stop()


def test_a_connection_closed_with_an_envelope_sent_ahead_delivers_nothing_for_it(tmp_path, smtp):
    """The connection ends (the run stopped) while the server has the next envelope, with DATA
    open: it is closed without a QUIT (the server would read it as message content, and the
    client would wait for an answer that never comes) and without a "."; the server keeps
    nothing for that recipient."""
    from dissemination.publish.channels.email import EmailSettings
    from dissemination.publish.channels.email.sending import SmtpTransport

    class Recording:  # the socket, with what was written kept
        def __init__(self, sock):
            self.sock, self.written = sock, []

        def sendall(self, data):
            self.written.append(bytes(data))
            return self.sock.sendall(data)

        def __getattr__(self, name):
            return getattr(self.sock, name)

    config = EmailSettings(kind="email", host="127.0.0.1", port=smtp.port, security="none",
                           from_address="nieuwsbrief@example.org", web_url="https://nieuwsbrief.example.org")
    transport = SmtpTransport(config, tmp_path)
    session = transport.open()
    session.smtp.sock = wire = Recording(session.smtp.sock)
    message = b"Subject: een\r\n\r\nEerste bericht.\r\n"
    handed_over = transport.send(session, "nieuwsbrief@example.org", "lid0@example.org", message, lambda: "go", "x",
                                 then=("nieuwsbrief@example.org", "lid1@example.org"))
    assert handed_over is None and transport.answer(session) == ("sent", None)
    assert wire.written[-1] == (message + b".\r\nRSET\r\nMAIL FROM:<nieuwsbrief@example.org>\r\n"
                                b"RCPT TO:<lid1@example.org>\r\nDATA\r\n")
    transport.close(session)
    assert wire.written[-1].endswith(b"DATA\r\n") and session.smtp.sock is None  # hung up: nothing more written
    deadline = time.monotonic() + 5
    while "RSET" not in smtp.sink.commands and time.monotonic() < deadline:
        time.sleep(0.01)
    # The server may or may not get to the RCPT before it notices the hang-up; never to a message.
    seen = ["MAIL", "RCPT lid0@example.org", "DATA", "RSET", "MAIL", "RCPT lid1@example.org"]
    assert smtp.sink.commands == seen[:len(smtp.sink.commands)] and len(smtp.sink.commands) >= 4
    assert smtp.sink.recipients() == ["lid0@example.org"]
