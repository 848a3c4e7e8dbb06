"""Subscribers as personal data: CSV import with consent records, the one-time move of the
stakeholder maps' contacts, and the AVG rights (export, erase) on SQLite and PostgreSQL, through
the real CLI, with a real newsletter sent to a real SMTP server on loopback (aiosmtpd)."""

import datetime as dt
import json

from mail import DUE, SECOND, SECRET, contact, deliveries, first_issue, mail_env, newsletter_project, smtp  # noqa: F401
from publishing import cli
from reporting import backend  # noqa: F401  (a fixture: SQLite, then PostgreSQL)

from dissemination.ledger import Ledger
from dissemination.ledger.subscribers import Subscribers

NO_ADDRESS = "      - name: Zonder Adres\n        invite: mkb"  # the map keeps people without their addresses
NOW = dt.datetime(2027, 3, 2, 9, tzinfo=dt.timezone.utc)
HEADER = "email,name,lists,consent_source,consent_date,tracking,confirmed_at,request_origin\n"


def subscribers(root):
    return Subscribers(Ledger.for_root(root))


def publish(root, now=DUE):
    result = cli(root, "publish", "--now", now, env=mail_env())
    assert result.exit_code == 0, result.output
    return result


def test_a_csv_import_with_consent_records_is_who_the_newsletter_goes_to(tmp_path, smtp, backend):
    root = newsletter_project(tmp_path, smtp.port, [NO_ADDRESS])
    csv = tmp_path / "aanmeldingen.csv"
    csv.write_text(HEADER + "Anna@Example.org,Anna de Vries,mkb,Aanmelding website,2026-02-01,ja,"
                            "2026-02-01T10:15:00Z,203.0.113.9\n"
                            "bert@example.org,,mkb beleid,Beursformulier,2026-02-03,,,\n", encoding="utf-8")
    dry = cli(root, "subscribers", "import", str(csv), "--dry-run", env=mail_env())
    assert dry.exit_code == 0, dry.output
    assert "would add 2 subscriber(s) and 3 list subscription(s)" in dry.output and "nothing written" in dry.output
    assert subscribers(root).count() == 1  # beleid@, moved from the test map
    done = cli(root, "subscribers", "import", str(csv), env=mail_env())
    assert done.exit_code == 0 and "added 2 subscriber(s) and 3 list subscription(s)" in done.output
    again = cli(root, "subscribers", "import", str(csv), env=mail_env())
    assert "added 0 subscriber(s) and 0 list subscription(s); 2 row(s) already in the database" in again.output
    publish(root)
    assert sorted(smtp.sink.recipients()) == ["anna@example.org", "bert@example.org"]
    anna = next(m for m in smtp.sink.parsed() if m["To"].addresses[0].addr_spec == "anna@example.org")
    assert anna["To"].addresses[0].display_name == "Anna de Vries"
    held = json.loads(cli(root, "subscribers", "export", "anna@example.org").output)
    [mkb] = held["subscriber"]["lists"]
    assert (mkb["list"], mkb["consent_source"], mkb["request_origin"], mkb["state"]) == (
        "mkb", "Aanmelding website", "203.0.113.9", "active")
    assert mkb["consent_at"].startswith("2026-02-01T00:00") and mkb["confirmed_at"].startswith("2026-02-01T10:15")
    assert held["subscriber"]["tracking"] is True


def test_refused_rows_are_listed_as_file_and_line_and_nothing_is_imported(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [NO_ADDRESS])
    csv = tmp_path / "lijst.csv"
    csv.write_text(HEADER + "goed@example.org,,mkb,Website,2026-02-01,,,\n"
                            "geen-adres,,mkb,Website,2026-02-01,,,\n"
                            "zonder@example.org,,mkb,,2026-02-01,,,\n"
                            "datum@example.org,,mkb,Website,1 februari,,,\n"
                            "lijst@example.org,,onbekend,Website,2026-02-01,,,\n"
                            "GOED@example.org,,beleid,Website,2026-02-01,,,\n", encoding="utf-8")
    result = cli(root, "subscribers", "import", str(csv))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[:5] == [
        f"{csv}:3: 'geen-adres' is not an e-mail address",
        f"{csv}:4: no consent_source (where the person gave consent, e.g. 'Aanmelding website'); nobody is "
        "subscribed without a consent record",
        f"{csv}:5: consent_date '1 februari' is not a date (YYYY-MM-DD)",
        f"{csv}:6: unknown list(s) onbekend (known: beleid, mkb)",
        f"{csv}:7: goed@example.org is listed twice (first on {csv}:2)",
    ]
    assert "5 row(s) refused: nothing was imported" in result.output and "Traceback" not in result.output
    assert subscribers(root).count() == 1  # beleid@ only, moved from the test map
    header = tmp_path / "kop.csv"
    header.write_text("adres,lists\nx@example.org,mkb\n", encoding="utf-8")
    wrong = cli(root, "subscribers", "import", str(header))
    assert wrong.exit_code == 1 and f"{header}:1: missing column(s) email, consent_source, consent_date; unknown " \
                                    "column(s) adres" in wrong.output


def test_contacts_move_from_the_maps_with_their_consent_records(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(0), contact(1, tracking=True)])
    held = json.loads(cli(root, "subscribers", "export", "lid1@example.org").output)
    assert held["subscriber"]["organisation"] == "tln" and held["subscriber"]["tracking"] is True
    assert [(s["list"], s["consent_source"], s["consent_at"][:10]) for s in held["subscriber"]["lists"]] == [
        ("mkb", "Aanmelding website", "2026-01-15")]
    assert cli(root, "subscribers", "export", "lid2@example.org").exit_code == 1  # not in the map: nothing held
    again = cli(root, "subscribers", "import-contacts")
    assert "added 0 subscriber(s)" in again.output  # the move can be repeated without effect


def test_an_unsubscribed_person_is_not_resubscribed_by_an_import(tmp_path, smtp):
    root = newsletter_project(tmp_path, smtp.port, [contact(0), contact(1)])
    assert subscribers(root).unsubscribe("lid1@example.org", NOW) == 1
    result = cli(root, "subscribers", "import-contacts")
    assert "kept unsubscribed: lid1@example.org (mkb)" in result.output
    publish(root)
    assert smtp.sink.recipients() == ["lid0@example.org"]


def test_export_and_erase_everything_held_and_the_next_import_refuses_the_address(tmp_path, smtp, backend):
    root = newsletter_project(tmp_path, smtp.port, [contact(0), contact(1, tracking=True), contact(2)])
    smtp.sink.refuse["lid2@example.org"] = "550 5.1.1 no such user"
    publish(root)
    item = first_issue(root)["id"]
    store = deliveries(root)
    store.add_click(item, "https://example.org/artikel", "lid1@example.org", NOW)
    held = json.loads(cli(root, "subscribers", "export", "LID1@example.org").output)
    assert held["address"] == "lid1@example.org"
    assert [(d["item_id"], d["state"]) for d in held["deliveries"]] == [(item, "sent")]
    assert [c["url"] for c in held["clicks"]] == ["https://example.org/artikel"]
    bounced = json.loads(cli(root, "subscribers", "export", "lid2@example.org").output)
    assert [(s["scope"], s["reason"]) for s in bounced["suppressions"]] == [("*", "bounced")]

    refused = cli(root, "subscribers", "erase", "lid1@example.org")
    assert refused.exit_code == 2 and "DISSEMINATION_UNSUBSCRIBE_SECRET is not set" in refused.output
    for address in ("lid1@example.org", "lid2@example.org"):
        done = cli(root, "subscribers", "erase", address, env=mail_env())
        assert done.exit_code == 0 and f"{address}: erased everywhere" in done.output
    assert cli(root, "subscribers", "export", "lid1@example.org").exit_code == 1
    ledger = Ledger.for_root(root)
    with ledger.engine.connect() as conn:  # the address is nowhere in the database any more
        from sqlalchemy import text

        for table in ("subscribers", "deliveries", "clicks", "suppressions", "unsuppressions", "resends", "items",
                      "attempts"):
            dump = " ".join(str(row) for row in conn.execute(text(f"SELECT * FROM {table}")))
            assert "lid1@" not in dump and "lid2@" not in dump, table
    assert store.metrics([item])[item]["sent"] == 2 and store.metrics([item])[item]["clicks"] == 1  # counts stay
    # The erased addresses come back in a CSV and from the map: refused, nothing imported.
    csv = tmp_path / "terug.csv"
    csv.write_text(HEADER + "nieuw@example.org,,mkb,Website,2026-03-01,,,\nLid1@example.org,,mkb,Website,2026-03-01,,,\n",
                   encoding="utf-8")
    result = cli(root, "subscribers", "import", str(csv), env=mail_env())
    assert result.exit_code == 1
    assert f"{csv}:3: lid1@example.org was erased at the person's request on" in result.output
    assert "it is never added again by an import" in result.output
    assert cli(root, "subscribers", "export", "nieuw@example.org").exit_code == 1
    assert cli(root, "subscribers", "import-contacts", env=mail_env()).exit_code == 1
    publish(root, SECOND)
    assert smtp.sink.recipients()[2:] == ["lid0@example.org"]
