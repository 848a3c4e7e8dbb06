"""A newsletter over SMTP to a real server on loopback (aiosmtpd, tests/mail.py) that asks for a
login, to subscribers in the ledger; clicks go through the web endpoint (`dissemination web`)."""

from __future__ import annotations

import datetime as dt
import email
import re
from collections import Counter
from email import policy
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword
from contract import Harness
from mail import SECRET, WEB, SmtpServer

from dissemination.ledger.subscribers import Row, Subscribers
from dissemination.publish.tokens import SECRET_ENV
from dissemination.records import Claim, Receipt
from dissemination.render.newsletter import UNSUBSCRIBE_PLACEHOLDER

USER_ENV, PASSWORD_ENV = "CONTRACT_SMTP_USER", "CONTRACT_SMTP_PASSWORD"
SUBSCRIBERS = ("lid0@example.org", "lid1@example.org", "lid2@example.org")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class EmailHarness(Harness):
    kind = "email"
    channel_id = "nieuwsbrief"
    not_applicable = {
        "read_back": "each recipient is a row in the ledger, so a repeat never mails anyone twice and there is "
                     "nothing to read back (no key_retention)",
    }

    def start(self) -> None:
        self.password = "relay-password-5e6f"  # the relay's; break_credential changes it there, not in our settings

        def authenticate(server, session, envelope, mechanism, data) -> AuthResult:  # type: ignore[no-untyped-def]
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == \
                (b"nieuwsbrief", self.password.encode())
            return AuthResult(success=ok, handled=False)

        self.smtp = SmtpServer(authenticator=authenticate, auth_require_tls=False)
        for name, value in ((SECRET_ENV, SECRET), (USER_ENV, "nieuwsbrief"), (PASSWORD_ENV, self.password)):
            self.monkeypatch.setenv(name, value)
        rows = [Row(f"contract:{i}", address, (self.audience(),), "Aanmelding website", self.now - dt.timedelta(days=30))
                for i, address in enumerate(SUBSCRIBERS)]
        assert not Subscribers(self.ledger).import_rows(rows, self.now, None).problems

    def stop(self) -> None:
        self.smtp.stop()

    def channel(self) -> Any:
        return self.open_configured(
            f"  kind: email\n  host: 127.0.0.1\n  port: {self.smtp.port}\n  security: none\n"
            f"  from_address: nieuwsbrief@example.org\n  web_url: {WEB}\n  rate_per_minute: 100000\n"
            f"  username_env: {USER_ENV}\n  password_env: {PASSWORD_ENV}\n")

    def payload(self, label: str) -> dict[str, Any]:
        audience = self.audience()
        return {"subject": f"Editie {label}", "audiences": [audience], "editions": [audience],
                "text": f"Editie {label}: het rooster staat op https://example.org/rooster\n\n"
                        f"Afmelden: {UNSUBSCRIBE_PLACEHOLDER}\n",
                "html": f'<p>Editie {label}: <a href="https://example.org/rooster">het rooster</a></p>'
                        f'<p><a href="{UNSUBSCRIBE_PLACEHOLDER}">Afmelden</a></p>'}

    def _received(self, claim: Claim) -> list[email.message.EmailMessage]:
        messages = [email.message_from_bytes(raw, policy=policy.default) for _, _, raw in self.smtp.sink.messages]
        return [m for m in messages if m["Message-ID"].startswith(f"<{claim.id}.")]

    def publications(self, claim: Claim) -> int:
        copies = Counter(m["To"].addresses[0].addr_spec for m in self._received(claim))
        if not copies:
            return 0
        assert set(copies) == set(SUBSCRIBERS) and len(set(copies.values())) == 1, \
            f"the edition reached its recipients unevenly: {dict(copies)}"
        return next(iter(copies.values()))

    def trigger_rate_limit(self) -> None:
        # A relay that takes no more for now defers every recipient with 4.7.1, as Postfix's
        # anvil and hosted relays do; the channel's own pacing (rate_per_minute) stays under it.
        self.smtp.sink.refuse_all = "451 4.7.1 Too many messages, slow down"

    def let_time_pass(self, delta: dt.timedelta) -> None:
        super().let_time_pass(delta)
        self.smtp.sink.refuse_all = None  # the relay's window is over

    def break_credential(self) -> str:
        old = self.password  # what the channel's settings still hold, and send
        self.password = "changed-on-the-relay-9a8b"
        return old

    def add_engagement(self, claim: Claim, receipt: Receipt) -> dict[str, float]:
        """A reader clicks the edition's link, served by the web endpoint over a real socket."""
        import httpx
        from test_email_web import WebServer

        from dissemination.publish.tokens import Signer
        from dissemination.web import create_app

        message = self._received(claim)[0]  # a subscriber without click-tracking consent: an anonymous link
        link = re.search(rf'href="({re.escape(WEB)}/klik/[^"]+)"', message.get_body(("html",)).get_content()).group(1)
        web = WebServer(create_app(self.ledger, Signer(SECRET.encode()), clock=lambda: self.now))
        try:
            answer = httpx.get(web.url(link), headers={"User-Agent": BROWSER}, follow_redirects=False)
        finally:
            web.stop()
        assert answer.status_code == 302 and answer.headers["location"] == "https://example.org/rooster"
        return {"clicks": 1}
