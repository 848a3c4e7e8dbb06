"""`dissemination resend-unknown`: an operator re-opens newsletter recipients whose delivery is
unknown (the connection dropped after the final "."), against a real SMTP server on loopback."""

import pytest
from mail import (contact, first_issue, import_contacts, mail_env, newsletter_project, smtp,  # noqa: F401
                  stakeholder_map, states)
from publishing import cli
from reporting import backend  # noqa: F401  (a fixture: SQLite, then PostgreSQL)

from dissemination.ledger import Ledger
from dissemination.ledger.subscribers import Subscribers
from dissemination.ledger.deliveries import Deliveries

LATER = "2027-03-02T09:30Z"
LATER_STILL = "2027-03-02T10:00Z"


def publish(root, now):
    result = cli(root, "publish", "--now", now, env=mail_env())
    assert result.exit_code == 0, result.output
    return result


def resend(root, *args):
    return cli(root, "resend-unknown", *args, env=mail_env())


def dropped_after_the_dot(tmp_path, smtp, contacts=6):
    """A send in which the server took message 3 and dropped the connection before answering:
    one recipient `unknown`, the others sent, the item published. Returns (root, item, address)."""
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(contacts)])
    smtp.sink.drop_after_data = 2
    publish(root, "2027-03-02T09:05Z")
    item = first_issue(root)
    rows = states(root, item["id"])
    [unknown] = [a for a, state in rows.items() if state == "unknown"]
    assert item["state"] == "published" and list(rows.values()).count("sent") == contacts - 1
    return root, item, unknown


def test_an_unknown_recipient_is_sent_again_once_only_after_the_operator_reopens_it(tmp_path, smtp, backend):
    root, item, unknown = dropped_after_the_dot(tmp_path, smtp)
    before = len(smtp.sink.messages)
    publish(root, LATER)  # a normal run: the unknown recipient is not sent again
    assert len(smtp.sink.messages) == before and states(root, item["id"])[unknown] == "unknown"
    # A contact who subscribed after the newsletter went out: not part of this edition.
    (root / "stakeholder_maps" / "test.yaml").write_text(
        stakeholder_map([contact(i) for i in range(6)] + [contact(9)]), encoding="utf-8")
    import_contacts(root)

    result = resend(root, item["id"], "--by", "Operator Test")
    assert result.exit_code == 0, result.output
    assert f"re-opened  {unknown}  (was unknown: connection dropped after the message was handed over" in result.output
    assert f"item {item['id']}: 1 recipient(s) re-opened for resending by Operator Test" in result.output
    reopened = first_issue(root)
    assert reopened["state"] == "unknown" and "re-opened for resending by Operator Test" in reopened["reason"]
    assert states(root, item["id"])[unknown] == "pending"
    [audit] = Deliveries(Ledger.for_root(root)).resends(item["id"])
    assert (audit["address"], audit["requested_by"]) == (unknown, "Operator Test")
    assert audit["requested_at"] is not None and "connection dropped" in audit["previous_detail"]
    assert "nothing re-opened; it has no unknown recipients" in resend(root, item["id"], "--by", "Operator Test").output

    publish(root, LATER_STILL)
    assert smtp.sink.recipients()[before:] == [unknown]  # exactly that recipient, once
    after = first_issue(root)
    assert after["state"] == "published" and after["reason"] is None
    assert (after["published_at"], after["remote_id"]) == (item["published_at"], item["remote_id"])  # the first publication
    rows = states(root, item["id"])
    assert rows[unknown] == "sent" and set(rows.values()) == {"sent"} and "lid9@example.org" not in rows
    publish(root, "2027-03-02T11:00Z")
    assert len(smtp.sink.messages) == before + 1
    summary = cli(root, "newsletters", "--item", item["id"]).output
    assert f"re-opened {unknown} by Operator Test at " in summary


def test_a_reopened_newsletter_waiting_for_a_retry_keeps_its_text_when_the_campaign_is_replanned(tmp_path, smtp):
    root, item, unknown = dropped_after_the_dot(tmp_path, smtp)
    before = len(smtp.sink.messages)
    assert resend(root, item["id"], "--by", "Operator Test").exit_code == 0
    smtp.sink.down = True  # the relay is unreachable during the resend run: the item waits for a retry
    assert "1 to retry" in publish(root, LATER_STILL).output
    assert first_issue(root)["state"] == "planned"
    campaign = root / "campaigns" / "brief.md"
    campaign.write_text(campaign.read_text().replace("Één nieuwsbrief met ideeën", "Een latere tekst"))
    assert cli(root, "approve", "campaigns/brief.md", "--by", "Test").exit_code == 0
    assert cli(root, "plan", "--now", LATER_STILL).exit_code == 0
    assert first_issue(root)["payload"] == item["payload"]  # what the others got
    smtp.sink.down = False
    publish(root, "2027-03-02T12:00Z")
    [message] = smtp.sink.parsed()[before:]
    assert message["To"].addresses[0].addr_spec == unknown
    assert "Één nieuwsbrief met ideeën" in message.get_body(("plain",)).get_content()
    assert first_issue(root)["state"] == "published"


@pytest.mark.parametrize("change", ["unsubscribed", "consent withdrawn"])
def test_a_reopened_recipient_who_unsubscribed_or_lost_consent_meanwhile_is_not_sent(tmp_path, smtp, change):
    root, item, unknown = dropped_after_the_dot(tmp_path, smtp)
    before = len(smtp.sink.messages)
    assert resend(root, item["id"], "--by", "Operator Test").exit_code == 0
    if change == "unsubscribed":
        Deliveries(Ledger.for_root(root)).suppress(unknown, "nieuwsbrief", "unsubscribed", _now(), item["id"])
    else:
        assert Subscribers(Ledger.for_root(root)).unsubscribe(unknown, _now()) == 1  # consent withdrawn
    publish(root, LATER_STILL)
    assert len(smtp.sink.messages) == before
    assert states(root, item["id"])[unknown] == ("suppressed" if change == "unsubscribed" else "withdrawn")
    assert first_issue(root)["state"] == "published"


def test_a_recipient_already_suppressed_is_not_reopened(tmp_path, smtp):
    root, item, unknown = dropped_after_the_dot(tmp_path, smtp)
    before = len(smtp.sink.messages)
    assert cli(root, "suppress", unknown, "--reason", "complained").exit_code == 0
    result = resend(root, item["id"], "--by", "Operator Test")
    assert result.exit_code == 0, result.output
    assert f"not sent   {unknown}  on the suppression list (complained); it stays unknown" in result.output
    assert f"item {item['id']}: nothing re-opened" in result.output
    assert first_issue(root)["state"] == "published" and states(root, item["id"])[unknown] == "unknown"
    assert Deliveries(Ledger.for_root(root)).resends(item["id"]) == []
    publish(root, LATER_STILL)
    assert len(smtp.sink.messages) == before


def test_only_the_named_address_is_reopened(tmp_path, smtp):
    root, item, unknown = dropped_after_the_dot(tmp_path, smtp)
    before = len(smtp.sink.messages)
    result = resend(root, item["id"], "--by", "Operator Test", "--address", f" {unknown.upper()} ")
    assert result.exit_code == 0, result.output
    publish(root, LATER_STILL)
    assert smtp.sink.recipients()[before:] == [unknown]


def test_bad_input_is_refused_with_what_to_do_and_changes_nothing(tmp_path, smtp):
    root, item, unknown = dropped_after_the_dot(tmp_path, smtp)
    sent = next(a for a, state in states(root, item["id"]).items() if state == "sent")
    post = next(r for r in Ledger.for_root(root).items() if r["channel"] == "linkedin")
    cases = [
        ((item["id"], "--by", "Operator Test", "--address", unknown, "--address", sent),
         f"{sent} is sent for item {item['id']}, not unknown; only unknown recipients can be resent "
         f"(`dissemination newsletters --item {item['id']}` lists them); nothing was changed"),
        ((item["id"], "--by", "Operator Test", "--address", "niemand@example.org"),
         f"niemand@example.org is not a recipient of item {item['id']}"),
        (("0123456789abcdef", "--by", "Operator Test"),
         "no item '0123456789abcdef' in the ledger; `dissemination newsletters` lists the newsletter items"),
        ((post["id"], "--by", "Operator Test"), f"item {post['id']} is a post on linkedin, not a newsletter"),
        ((item["id"], "--by", "  "), "--by: say who decides to resend"),
    ]
    for args, message in cases:
        result = resend(root, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
    assert states(root, item["id"])[unknown] == "unknown" and first_issue(root)["state"] == "published"
    assert Deliveries(Ledger.for_root(root)).resends(item["id"]) == []


def test_a_failed_newsletter_is_not_reopened(tmp_path, smtp):
    root, item, unknown = dropped_after_the_dot(tmp_path, smtp)
    ledger = Ledger.for_root(root)
    with ledger.engine.begin() as conn:  # as the publisher leaves an item it gave up on
        from sqlalchemy import update

        from dissemination.ledger.schema import items
        conn.execute(update(items).where(items.c.id == item["id"]).values(state="failed", reason="gave up"))
    result = resend(root, item["id"], "--by", "Operator Test")
    assert result.exit_code == 2
    assert f"item {item['id']} is failed (gave up); only recipients of a newsletter that is published or still " \
           "being sent can be resent" in result.stderr
    assert states(root, item["id"])[unknown] == "unknown"


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)
