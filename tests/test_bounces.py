"""Bounces that arrive later, by mail: real Postfix DSNs (tests/fixtures/dsn, see its README) read
from a Maildir and from a real IMAP server on loopback (Debian's dovecot-imapd, started here),
applied to the ledger of the newsletter they came back from. Sent through aiosmtpd with the same
project, secret and edition as when Postfix wrote them, so the per-message return paths match."""

import imaplib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from mail import DUE, contact, deliveries, first_issue, mail_env, newsletter_project, smtp, states  # noqa: F401
from publishing import cli
from reporting import backend  # noqa: F401  (a fixture: SQLite, then PostgreSQL)

from dissemination.ledger import Ledger
from dissemination.ledger.subscribers import Subscribers

FIXTURES = Path(__file__).parent / "fixtures" / "dsn"
LOCAL = ("      - name: Niemand Hier\n        email: niemand@mail.test.internal\n        consent:\n"
         "          source: Aanmelding website\n          date: 2026-01-15")
BOUNCES = "  bounce_address: bounces@mail.test.internal\n"


def sent_newsletter(tmp_path, smtp, extra=""):
    """The project the fixtures were made with, its first edition sent to all six (aiosmtpd takes all)."""
    root = newsletter_project(tmp_path, smtp.port, [contact(i) for i in range(5)] + [LOCAL], BOUNCES + extra)
    result = cli(root, "publish", "--now", DUE, env=mail_env())
    assert result.exit_code == 0, result.output
    item = first_issue(root)
    assert set(states(root, item["id"]).values()) == {"sent"} and len(smtp.sink.messages) == 6
    return root, item["id"]


def fixture_maildir(folder: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True)
    for number, path in enumerate(sorted(FIXTURES.glob("*.eml"))):
        shutil.copy(path, folder / "new" / f"1700000000.{number}.test")
    return folder


def assert_applied(root, item):
    rows = states(root, item)
    assert rows == {"lid0@example.org": "sent",  # the complaint does not change the delivery
                    "lid1@example.org": "bounced", "niemand@mail.test.internal": "bounced",  # 5.1.1
                    "lid2@example.org": "failed", "lid4@example.org": "failed",  # 5.2.2, 4.2.0: soft
                    "lid3@example.org": "rejected"}  # 5.7.1: their server refuses us
    suppressed = {(e["address"], e["scope"], e["reason"]) for e in deliveries(root).suppression_list()}
    assert suppressed == {("lid1@example.org", "*", "bounced"), ("niemand@mail.test.internal", "*", "bounced"),
                          ("lid0@example.org", "*", "complained")}  # nobody else
    held = json.loads(cli(root, "subscribers", "export", "lid0@example.org").output)
    assert [s["state"] for s in held["subscriber"]["lists"]] == ["unsubscribed"]  # a complaint unsubscribes
    # The hard bounces are marked bounced on their subscriber record too; soft bounces and our own
    # refusal (5.7.1) leave the subscription as it is.
    assert Subscribers(Ledger.for_root(root)).recipients("mkb").keys() == {
        "lid2@example.org", "lid3@example.org", "lid4@example.org"}
    assert json.loads(cli(root, "subscribers", "export", "niemand@mail.test.internal").output)["subscriber"][
        "state"] == "bounced"


def test_the_envelope_sender_is_a_signed_return_path_per_message(tmp_path, smtp):
    root, item = sent_newsletter(tmp_path, smtp)
    senders = {rcpts[0]: sender for sender, rcpts, _ in smtp.sink.messages}
    assert len(set(senders.values())) == 6 and all(len(s.split("@")[0]) <= 64 for s in senders.values())
    dsn = (FIXTURES / "postfix-5.1.1-lid1.eml").read_text()
    assert f"X-Original-To: {senders['lid1@example.org']}\n" in dsn  # the fixture came back to this address
    assert senders["lid1@example.org"].startswith(f"bounces+{item}.")


def test_postfix_dsns_in_a_maildir_suppress_the_right_recipients_and_nobody_else(tmp_path, smtp, backend):
    root, item = sent_newsletter(tmp_path, smtp)
    box = fixture_maildir(tmp_path / "Maildir")
    result = cli(root, "bounces", "--maildir", str(box), env=mail_env())
    assert result.exit_code == 1, result.output  # the 5.7.1 needs a person
    assert "6 message(s) read: 2 hard bounce(s) suppressed, 2 soft bounce(s) (0 suppressed after 3 in a row), " \
           "1 complaint(s) unsubscribed" in result.output
    assert "refused us  lid3@example.org: 5.7.1 554 5.7.1 <lid3@example.org>: Recipient address rejected: Message " \
           "rejected due to DMARC policy" in result.output
    assert "nobody was suppressed" in result.output
    assert_applied(root, item)
    assert sorted(os.listdir(box / "new")) == [] and len(os.listdir(box / "cur")) == 6  # read once
    again = cli(root, "bounces", "--maildir", str(box), env=mail_env())
    assert again.exit_code == 0 and "0 message(s) read" in again.output


def test_a_forged_return_path_or_a_stranger_s_bounce_suppresses_nobody(tmp_path, smtp):
    root, _ = sent_newsletter(tmp_path, smtp)
    raw = (FIXTURES / "postfix-5.1.1-lid1.eml").read_text()
    tag = raw.split("X-Original-To: bounces+", 1)[1].split("@", 1)[0]
    item, key, mac = tag.split(".")
    forged = raw.replace(tag, f"{item}.{key}.{'0' * 8}")
    # Without the signed tag and without our Message-ID, a report names nobody of ours.
    forged = forged.replace(f"<{item}.", "<0000000000000000.")
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.forged").write_text(forged)
    (box / "new" / "2.note").write_text("From: iemand@example.net\nSubject: vraag\n\nGeen bounce.\n")
    result = cli(root, "bounces", "--maildir", str(box), env=mail_env())
    assert result.exit_code == 0 and "1 not ours, 1 not a report" in result.output
    assert deliveries(root).suppression_list() == []


# --- a real IMAP server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def imap_server():
    """dovecot (Debian's dovecot-imapd) in the foreground with a config of its own in a temporary
    folder, on a free loopback port; one user with a password."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    assert Path(binary).exists(), "dovecot is missing: scripts/install-test-tools installs dovecot-imapd"
    # Not under tmp_path: pytest's base folder is private to its user, and dovecot's own processes
    # (running as the dovecot user) must reach their files.
    folder = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
    (folder / "run").mkdir(parents=True)
    port = _free_port()
    owner = pwd.getpwnam("dovecot") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    (folder / "users").write_text("bounces:{PLAIN}geheim-imap-7\n")
    (folder / "dovecot.conf").write_text(f"""
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = test-{port}
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{folder}/mail/%u
first_valid_uid = {owner.pw_uid}
default_internal_user = {owner.pw_name}
default_login_user = {"dovenull" if os.getuid() == 0 else owner.pw_name}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={folder}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
    if os.getuid() == 0:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
    proc = subprocess.Popen([binary, "-F", "-c", str(folder / "dovecot.conf")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (folder / "dovecot.log").read_text() if (folder / "dovecot.log").exists() else ""
                proc.kill()
                raise AssertionError(f"dovecot did not start: {proc.stdout.read().decode()} {log}")
            time.sleep(0.1)
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(folder, ignore_errors=True)


def test_postfix_dsns_read_over_imap_from_dovecot(tmp_path, smtp, imap_server):
    settings = (f"  bounce_imap_host: 127.0.0.1\n  bounce_imap_port: {imap_server}\n  bounce_imap_security: none\n"
                "  bounce_username_env: TEST_BOUNCE_USER\n  bounce_password_env: TEST_BOUNCE_PASSWORD\n")
    root, item = sent_newsletter(tmp_path, smtp, settings)
    imap = imaplib.IMAP4("127.0.0.1", imap_server)  # the reports arrive in the mailbox over IMAP
    imap.login("bounces", "geheim-imap-7")
    for path in sorted(FIXTURES.glob("*.eml")):
        assert imap.append("INBOX", None, None, path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))[0] == "OK"
    imap.append("INBOX", r"(\Seen)", None, b"Subject: al gelezen\r\n\r\nniet opnieuw\r\n")  # already read: skipped
    imap.logout()
    env = mail_env(TEST_BOUNCE_USER="bounces", TEST_BOUNCE_PASSWORD="fout")
    wrong = cli(root, "bounces", env=env)
    assert wrong.exit_code == 1 and "fout" not in wrong.output and "127.0.0.1" in wrong.output
    assert deliveries(root).suppression_list() == []
    env["TEST_BOUNCE_PASSWORD"] = "geheim-imap-7"
    result = cli(root, "bounces", env=env)
    assert result.exit_code == 1 and "6 message(s) read: 2 hard bounce(s) suppressed" in result.output, result.output
    assert_applied(root, item)
    again = cli(root, "bounces", env=env)
    assert "0 message(s) read" in again.output  # \Seen: every report is applied once
    imap = imaplib.IMAP4("127.0.0.1", imap_server)
    imap.login("bounces", "geheim-imap-7")
    imap.select("INBOX")
    assert imap.search(None, "UNSEEN")[1] == [b""] and len(imap.search(None, "ALL")[1][0].split()) == 7
    imap.logout()
