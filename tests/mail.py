"""Helpers for newsletter tests: a real SMTP server on loopback (aiosmtpd) that records what it
accepts and can refuse recipients or drop the connection, and a project with a due newsletter."""

from __future__ import annotations

import email
import shutil
import socket
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from conftest import VALID
from publishing import cli

from dissemination.ledger import Ledger
from dissemination.ledger.deliveries import Deliveries

SECRET = "test-secret-0123456789abcdef"
WEB = "https://nieuwsbrief.example.org"
PLAN_AT = "2027-02-01T00:00Z"
DUE = "2027-03-02T09:05Z"  # the first issue's slot is 10:00 Amsterdam = 09:00 UTC
SECOND = "2027-03-09T09:05Z"  # the second issue

CAMPAIGN = """---
id: brief
title: Nieuwsbrief maart
status: draft
owner: Test
goal: Kennis delen met het mkb.
audiences: [mkb]
channels: [nieuwsbrief]
start: 2027-03-01
end: 2027-03-31
knowledge: [den-hartogh]
---
Ideeën voor ĳverige ondernemers.

## Editie maart
id: maart
slot: 2027-03-02 10:00

Één nieuwsbrief met ideeën: café-overleg over de ĳzeren werkweek.

## Editie twee
id: twee
slot: 2027-03-09 10:00

De tweede editie.
"""


def contact(i: int, consent: bool = True, tracking: bool = False) -> str:
    lines = [f"      - name: Lid {i} Tiëlemans", f"        email: Lid{i}@Example.org"]
    if consent:
        lines += ["        consent:", "          source: Aanmelding website", "          date: 2026-01-15"]
    if tracking:
        lines.append("        tracking: true")
    return "\n".join(lines)


def stakeholder_map(contacts: list[str]) -> str:
    return f"""audiences:
  - id: mkb
    name: Mkb-ondernemers
    description: Eigenaren van kleine logistieke bedrijven.
    tone: Concreet en praktisch.
    channels: [linkedin, mastodon, nieuwsbrief]
  - id: beleid
    name: Beleidsmakers
    description: Ministeries en regio's.
    tone: Feitelijk.
    channels: [linkedin, mastodon, nieuwsbrief]

stakeholders:
  - id: tln
    name: Transport en Logistiek Nederland
    type: branch_organisation
    audiences: [mkb]
    power: 4
    interest: 5
    contacts:
{chr(10).join(contacts)}
  - id: ienw
    name: Ministerie van Infrastructuur en Waterstaat
    type: government
    audiences: [beleid]
    power: 5
    interest: 2
    contacts:
      - name: Beleid Persoon
        email: beleid@example.org
        consent:
          source: Aanmelding website
          date: 2026-01-15
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """What the server accepted. `refuse` maps an address to an RCPT answer ("550 ...", "451 ...");
    `drop_after` k: the connection is dropped at the first RCPT after k accepted messages;
    `drop_after_data` k: the k+1st message is accepted and the connection dropped before answering;
    `refuse_all`: the RCPT answer for everyone (a relay refusing us); `reject_data` maps an address
    to the answer to its message after DATA. `commands` is the order of MAIL, RCPT, DATA and RSET seen.
    `pipelining`: whether EHLO offers PIPELINING (RFC 2920)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.drop_after: int | None = None
        self.drop_after_data: int | None = None
        self.connections = 0
        self.down = False  # refuse every new connection (after a drop with `stay_down`)
        self.stay_down = False
        self.refuse_all: str | None = None
        self.reject_data: dict[str, str] = {}
        self.commands: list[str] = []
        self.pipelining = True

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.down:
            server.transport.close()
            return responses
        self.connections += 1
        session.host_name = hostname
        if self.pipelining:  # as Postfix and every relay we send to offer it (aiosmtpd does not by itself)
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.commands.append("MAIL")
        if getattr(session, "refused_open", False):
            return "503 5.5.1 Error: nested MAIL command"  # what Postfix says without an RSET
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        self.commands.append("RSET")
        session.refused_open = False
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.commands.append(f"RCPT {address}")
        if self.refuse_all:
            return self.refuse_all
        if address in self.refuse:
            return self.refuse[address]
        if self.drop_after is not None and len(self.messages) >= self.drop_after:
            self.drop_after = None
            self.down = self.stay_down
            server.transport.close()
            return "421 closing"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.commands.append("DATA")
        refused = next((self.reject_data[r] for r in envelope.rcpt_tos if r in self.reject_data), None)
        if refused:
            session.refused_open = True  # like Postfix after a refused message: RSET expected
            return refused
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if self.drop_after_data is not None and len(self.messages) > self.drop_after_data:
            self.drop_after_data = None
            server.transport.close()
        return "250 OK: queued"

    def recipients(self) -> list[str]:
        return [r for _, rcpts, _ in self.messages for r in rcpts]

    def parsed(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=policy.default) for _, _, raw in self.messages]


class SmtpServer:
    def __init__(self, sink: Sink | None = None, port: int | None = None, **kwargs) -> None:
        self.sink = sink or Sink()
        self.port = port or free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


def newsletter_rows(root: Path) -> list[dict]:
    return [r for r in Ledger.for_root(root).items() if r["channel"] == "nieuwsbrief"]


def first_issue(root: Path) -> dict:
    return next(r for r in newsletter_rows(root) if r["post"] == "maart")


def deliveries(root: Path) -> Deliveries:
    return Deliveries(Ledger.for_root(root))


def states(root: Path, item_id: str) -> dict[str, str]:
    return {r["address"]: r["state"] for r in deliveries(root).rows(item_id)}


def newsletter_project(tmp: Path, port: int, contacts: list[str], extra: str = "") -> Path:
    root = tmp / "content"
    shutil.copytree(VALID, root)
    (root / "stakeholder_maps" / "test.yaml").write_text(stakeholder_map(contacts), encoding="utf-8")
    (root / "campaigns" / "brief.md").write_text(CAMPAIGN, encoding="utf-8")
    channels = root / "channels.yaml"
    text = channels.read_text().replace("port: 2525", f"port: {port}").replace("host: localhost", "host: 127.0.0.1")
    assert f"web_url: {WEB}\n" in text  # the fixture's; unsubscribe and click links point there
    channels.write_text(text + "  rate_per_minute: 100000\n  from_name: Nieuwsbrief SI Logistiek\n" + extra)
    assert cli(root, "approve", "campaigns/brief.md", "--by", "Test").exit_code == 0
    result = cli(root, "plan", "--now", PLAN_AT)
    assert result.exit_code == 0, result.output
    import_contacts(root)
    return root


def import_contacts(root: Path) -> None:
    """The contacts written into the test map become subscribers (the one-time migration)."""
    result = cli(root, "subscribers", "import-contacts", env=mail_env())
    assert result.exit_code == 0, result.output


def mail_env(**extra: str) -> dict[str, str]:
    return {"DISSEMINATION_UNSUBSCRIBE_SECRET": SECRET, **extra}
