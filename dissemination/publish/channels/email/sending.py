"""Sending e-mail newsletters over SMTP (or, without SMTP settings, into the outbox), exactly once per recipient.

One item is one audience's edition of a newsletter. Its recipients are the audience's active
subscribers (`dissemination.ledger.subscribers`, read at send time), minus the suppression list (checked again in the same
transaction that marks each message as being sent). Every recipient is a ledger row
(`dissemination.ledger.deliveries`); a run that is interrupted (crash, dropped connection, 4xx)
leaves the unsent rows for the next run, and the item is published once every row is settled.

Per message, on one reused connection: MAIL, RCPT and DATA are sent (in one write where the
server offers PIPELINING); the row is committed as `sending`; once the server has said 354, the
body with its final "." is sent and the answer recorded. With PIPELINING, the next recipient's
RSET, MAIL, RCPT and DATA go in the same write as this message's "." (RFC 2920 §3.1 lets message
content start a group): one round trip per message instead of two. One thread drives all of a
send's connections in turn: while the server works on one connection's message, the thread reads
the answer on another and starts its next message there. A crash before the commit
cannot have delivered anything (a transaction without its "." is dropped by the server); a crash
after it leaves at most one row per connection `unknown`, which is reported and not resent unless
an operator re-opens it (`dissemination resend-unknown`, after checking it did not arrive).

Answers are read by their enhanced status code (`dissemination.publish.bounces`): 5.7.x to MAIL
or RCPT means the relay refuses us, so the run stops, nobody is suppressed and the item fails
with the reason; 5.1.x/5.2.1 to RCPT is a hard bounce (that address suppressed on every list);
other 5xx refuse that one message; 4xx defers the recipient, retried on a growing back-off
(`retry_backoff`) until the edition expires (`edition_expires_after` past its slot, or the list's
next edition has gone out: then `failed`, a soft bounce; `soft_bounce_limit` of them in a row
suppress the address); a refused message is followed by RSET; a dropped connection is reopened
and the send resumes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import secrets
import signal
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, cast

from dissemination.addresses import BadAddress, display_name, mailbox
from dissemination.files import remove_orphans, write_atomically
from dissemination.ledger import Ledger
from dissemination.records import Claim, Receipt, Snapshot
from dissemination.ledger.deliveries import Deliveries, Outcome, SendLog
from dissemination.ledger.subscribers import Subscribers
from dissemination.load import models as m
from dissemination.publish import bounces, mime
from dissemination.publish.channels.base import Health, PublishError
from dissemination.publish.channels.email import WEB_URL_HINT, EmailChannel, EmailSettings
from dissemination.publish.credentials import Token
from dissemination.publish.pacing import RateLimit
from dissemination.publish.recipients import Recipient, UnreadableMap, kit_recipient
from dissemination.publish.tokens import MissingSecret, Signer, return_path, secret_from_env
from dissemination.redact import register
from dissemination.render.newsletter import UNSUBSCRIBE_PLACEHOLDER, WEB_VERSION_PLACEHOLDER

if TYPE_CHECKING:
    from email.message import EmailMessage

log = logging.getLogger("dissemination.email")
UTC = dt.timezone.utc
RECONNECTS = 3  # fresh connections tried per message before the run leaves the rest for later
CHUNK = 200  # recipients read per query and handed to the connections
HANDFUL = 20  # recipients handed to a connection at a time
DKIM_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id", b"list-unsubscribe",
                b"list-unsubscribe-post", b"mime-version", b"content-type"]
FAULT_ENV = "DISSEMINATION_FAULT"  # crash tests: "email_before_dot:K" / "email_after_reply:K" kill at message K

Progress = Callable[[str, int, int], None]  # (label, settled so far, total)


def _fault(point: str, count: int) -> None:
    wanted = _FAULT
    if wanted and wanted == f"{point}:{count}":
        os.kill(os.getpid(), signal.SIGKILL)


_FAULT = os.environ.get(FAULT_ENV, "")  # read once: this is checked twice per message


class _Dropped(Exception):
    """The connection broke. `delivered_unknown`: it broke after the final "." was sent."""

    def __init__(self, detail: str, delivered_unknown: bool) -> None:
        super().__init__(detail)
        self.delivered_unknown = delivered_unknown


class _Stop(Exception):
    """The whole run must stop (e.g. the server refuses our sender): the rest waits."""


class _LoginRefused(_Stop):
    """The relay refused our login (SMTP AUTH): the credential is wrong or was changed."""


class _SenderRefused(_Stop):
    """The server refuses mail from us (5.7.x: relay, policy, authentication): our settings are
    wrong, not the recipients. Nobody is suppressed and the newsletter is not published."""


# (verdict kind, permanent reply) -> the delivery row's state. A permanent soft refusal (5.2.2
# mailbox full) is not retried but counts as a soft bounce.
_STATE = {("hard", True): "bounced", ("soft", True): "failed", ("soft", False): "deferred",
          ("refused", True): "rejected", ("refused", False): "deferred", ("hard", False): "deferred"}


class _Abandon(Exception):
    """The row may not be sent after all (suppressed or taken over); the DATA phase was cut."""


Envelope = tuple[str, str]  # (MAIL FROM, RCPT TO) of one message


class Transport(Protocol):
    def open(self) -> object: ...

    def send(self, conn: object, sender: str, address: str, data: bytes, commit: Callable[[], str],
             name: str, then: Envelope | None = None) -> tuple[str, str | None] | None:
        """The message's outcome, or None: handed over, its answer to be read by `answer`."""

    def answer(self, conn: object) -> tuple[str, str | None]: ...

    def close(self, conn: object) -> None: ...


def _envelope(sender: str, address: str) -> bytes:
    utf8 = " SMTPUTF8" if not address.isascii() else ""
    return f"MAIL FROM:<{sender}>{utf8}\r\nRCPT TO:<{address}>\r\nDATA\r\n".encode()


@dataclass
class _Session:
    """One SMTP connection, and the envelope sent ahead on it behind the last message's "."
    whose answers (RSET, MAIL, RCPT, DATA) are still to be read."""

    smtp: smtplib.SMTP
    pipelining: bool
    ahead: Envelope | None = None
    reset_after: bool = False  # a refused message needs an RSET of its own (none went ahead)


class SmtpTransport:
    def __init__(self, config: EmailSettings, root: Path) -> None:
        self.config = config
        self.ca_file = str(root / config.tls_ca_file) if config.tls_ca_file else None
        user_env, password_env = config.username_env, config.password_env
        self._user = os.environ.get(user_env) if user_env else None
        self._password = os.environ.get(password_env) if password_env else None
        register(self._password)

    def open(self) -> _Session:
        c = self.config
        timeout = c.timeout.total_seconds()
        context = ssl.create_default_context(cafile=self.ca_file)
        try:
            if c.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=timeout, context=context)
            else:
                conn = smtplib.SMTP(c.host, c.port, timeout=timeout)
            # The body and the final "." are two writes with a ledger commit between them; with
            # Nagle's algorithm the "." would wait for the server's delayed ACK (~40 ms a message).
            assert conn.sock is not None  # connected by the constructor
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.ehlo()
            if c.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if self._user:
                conn.login(self._user, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise _LoginRefused(f"{c.host} refused the login of {self.config.username_env}: {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise _Stop(f"{c.host}:{c.port}: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise _Stop(f"{c.host}:{c.port}: its TLS certificate is not trusted ({exc.verify_message}); set "
                        f"tls_ca_file if a private CA signed it") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _Dropped(f"cannot connect to {c.host}:{c.port}: {type(exc).__name__}: {exc}", False) from None
        return _Session(conn, bool(conn.does_esmtp and conn.has_extn("pipelining")))

    def send(self, session: _Session, sender: str, address: str, data: bytes, commit: Callable[[], str],
             name: str, then: Envelope | None = None) -> tuple[str, str | None] | None:
        """One transaction up to its final "."; `data` is dot-stuffed already. Returns None once
        the message is handed over (`answer` reads what the server says to it), or the outcome
        of a recipient refused before. With PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in
        one write: one round trip instead of three; and `then`, the envelope of the message this
        connection sends next, goes out behind this one's "." (after an RSET, so a refused
        message leaves no transaction open for it)."""
        conn = session.smtp
        dot_sent = False
        ahead, session.ahead = session.ahead, None
        if ahead is not None and ahead != (sender, address):
            # Not the message the connection expected next: the transaction sent ahead may be
            # open for content already (354), and only hanging up ends it without a message.
            conn.close()
            raise _Dropped("the connection had another recipient's envelope open; reconnecting", False)
        if not address.isascii() and not conn.has_extn("smtputf8"):  # RFC 6531: only a server that offers it takes such an address
            return "rejected", (f"not sent: the address has non-ASCII characters before the @ and {self.config.host} "
                                "does not offer SMTPUTF8")
        mark: str | None = None  # what committing the `sending` mark said
        try:
            if session.pipelining:
                if ahead is None:
                    conn.send(_envelope(sender, address))
                # The `sending` mark is committed while the server reads the envelope (or after
                # the answer to the previous message, with the envelope already there). A
                # recipient refused after it is settled from `sending` like any other; a crash in
                # between leaves an `unknown` row for a message that never went, never one sent twice.
                mark = commit()
                replies = [conn.getreply() for _ in range(4 if ahead else 3)][-3:]  # an RSET's answer first
            else:
                replies = []
                for command in _envelope(sender, address).splitlines(keepends=True):
                    conn.send(command)
                    replies.append(conn.getreply())
                    if replies[-1][0] >= 400:
                        break
            (mail_code, mail_answer), *rest = replies
            rcpt_code, rcpt_answer = rest[0] if rest else (0, b"")
            data_code, data_answer = rest[1] if len(rest) > 1 else (0, b"")
            if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
                conn.send(b".\r\n")  # a server that opened DATA anyway gets an empty message, refused
                conn.getreply()
            if mail_code != 250:
                conn.rset()
                said = f"{mail_code} {mail_answer.decode(errors='replace')}"
                if 400 <= mail_code < 500:
                    raise _Dropped(f"{said} to MAIL FROM", False)
                raise _SenderRefused(f"the server refused the sender {sender}: {said}")
            if rcpt_code not in (250, 251):
                conn.rset()  # RFC 5321 4.1.1.5: the next MAIL starts clean (Postfix: "503 nested MAIL")
                said = f"{rcpt_code} {rcpt_answer.decode(errors='replace')}"
                verdict = bounces.classify(rcpt_code, said)
                if verdict.kind == "sender":
                    raise _SenderRefused(f"the server refused to take mail from {sender} for {address}: {said}")
                return _STATE[verdict.kind, rcpt_code >= 500], said
            if data_code != 354:
                conn.rset()
                return ("rejected" if data_code >= 500 else "deferred"), f"{data_code} {data_answer.decode(errors='replace')}"
            mark = mark or commit()
            if mark != "go":
                conn.close()  # the only way out of DATA without a "."; the server drops the message
                raise _Abandon(mark)
            dot_sent = True  # from here on the message may arrive, whatever happens to us
            if then is not None and session.pipelining and (then[1].isascii() or conn.has_extn("smtputf8")):
                conn.send(data + b".\r\nRSET\r\n" + _envelope(*then))
                session.ahead = then
            else:
                conn.send(data + b".\r\n")
                session.reset_after = True
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(f"{type(exc).__name__}: {exc}", dot_sent) from None
        return None

    def answer(self, session: _Session) -> tuple[str, str | None]:
        """What the server said to the message `send` handed over."""
        conn = session.smtp
        reset, session.reset_after = session.reset_after, False
        try:
            code, answer = conn.getreply()
            if code != 250 and reset:
                _reset(conn)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(f"{type(exc).__name__}: {exc}", True) from None
        if code == 250:
            return "sent", None
        text = f"{code} {answer.decode(errors='replace')}"
        kind = bounces.classify(code, text).kind
        # After the message, a 5.7.x is about this message (content, DMARC of this domain), not the relay.
        return _STATE["refused" if kind == "sender" else kind, code >= 500], text

    def close(self, session: _Session) -> None:
        if session.ahead is not None:  # in DATA already, a QUIT would be read as the message
            session.smtp.close()
            return
        try:
            session.smtp.quit()
        except (smtplib.SMTPException, OSError):
            session.smtp.close()


def _reset(conn: smtplib.SMTP) -> None:
    """RSET after a refused message: Postfix keeps the refused transaction's state and answers
    the next MAIL with "503 nested MAIL command". The answer to the message is known already, so
    a server that hung up instead only costs a new connection for the next recipient."""
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        conn.close()


class OutboxTransport:
    """Without SMTP settings: one .eml file per recipient, exactly what would have been sent,
    under the same consent, suppression and per-recipient ledger rules. A repeat overwrites."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> Path:
        if self.folder.is_dir():
            remove_orphans(self.folder)  # of a writer killed mid-file in an earlier run
        return self.folder

    def send(self, conn: Path, sender: str, address: str, data: bytes, commit: Callable[[], str],
             name: str, then: Envelope | None = None) -> tuple[str, str | None]:
        conn.mkdir(parents=True, exist_ok=True)

        def committed() -> None:
            verdict = commit()
            if verdict != "go":
                raise _Abandon(verdict)

        write_atomically(conn / name, data, before_replace=committed)
        return "sent", None

    def answer(self, conn: object) -> tuple[str, str | None]:
        raise AssertionError("the outbox's send says the outcome itself")

    def close(self, conn: object) -> None:
        pass


def _unknown(address: str, exc: _Dropped) -> Outcome:
    return Outcome(address, "unknown", f"connection dropped after the message was handed over ({exc}); not sent again")


@dataclass
class _Line:
    """One of a send's connections: its transport connection (None: to open), the recipient
    whose message's answer is awaited on it, the recipient it sends next, and that one's
    envelope once worked out (to send it ahead)."""

    conn: object = None
    in_flight: str | None = None
    next: str | None = None
    next_envelope: Envelope | None = None


@dataclass
class _Run:
    claim: Claim
    template: mime.MessageTemplate
    recipients: dict[str, Recipient]
    queue: "queue.Queue[list[str] | None]"
    rate: RateLimit
    stop: threading.Event
    error: list[str]
    sent_count: list[int]  # for the crash tests' fault points (one connection there)
    handled: list[int] = field(default_factory=lambda: [0])  # for the progress bar; approximate across threads
    crashed: list[BaseException] = field(default_factory=list)
    anonymous_clicks: dict[str, bytes] = field(default_factory=dict)  # the same for every recipient
    sender_refused: bool = False  # the server refused our sender (5.7.x): stop, suppress nobody
    streamed: bool = False  # `recipients` holds only the chunks being sent (read from the subscriber database)


class EmailSender(EmailChannel):
    """The e-mail channel's adapter (`EmailChannel.open` makes it): its transport is SMTP, or the
    outbox's .eml files."""

    def __init__(self, channel_id: str, config: m.ChannelSettings, root: Path, token: Token | None = None,
                 transport: Any = None) -> None:
        super().__init__(channel_id, config, root, token, transport)
        assert isinstance(config, EmailSettings)
        self.config: EmailSettings = config
        # SmtpTransport's send takes the SMTP connection its own open() made, narrower than the
        # protocol's `object`: sound, since a transport only ever gets its own connections back.
        self.transport: Transport = transport or cast(Transport, SmtpTransport(config, root))
        self.outbox = isinstance(self.transport, OutboxTransport)
        # Set (tests, benchmarks): a callable returning the recipients; otherwise the subscriber
        # database, streamed (`publish`).
        self._recipients_given = False
        self._recipients: Callable[[str, list[str]], dict[str, Recipient]] = lambda audience, earlier: {}
        domain = config.from_address.rsplit("@", 1)[1]
        self.domain = domain
        self.list_id = config.list_id or f"{channel_id}.{domain}"
        self.list_name = config.list_name or config.description or channel_id
        self.mailbox = config.unsubscribe_mailbox or config.reply_to or config.from_address
        self.ledger: Ledger | None = None
        self.deliveries: Deliveries | None = None
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)
        self.lease = dt.timedelta(minutes=5)
        self.progress: Progress | None = None
        self.signer: Signer | None = None
        self._dkim: tuple[bytes, bytes, bytes] | None = None  # selector, domain, private key (preflight)

    def bind(self, ledger: Ledger, clock: Callable[[], dt.datetime] | None = None,
             lease: dt.timedelta | None = None, progress: Progress | None = None) -> None:
        """The ledger (recipient rows, suppression list), the run's clock and lease, and a
        progress callback for long sends. Called by the pipeline before preflight."""
        self.ledger = ledger
        self.deliveries = Deliveries(ledger)
        self.clock = clock or self.clock
        self.lease = lease or self.lease
        self.progress = progress

    # --- contract ------------------------------------------------------------------------------

    def preflight(self) -> Health:
        """Settings only: no connection is opened unless a newsletter is due (a connection problem
        then leaves the unsent recipients for the next run)."""
        try:
            self.signer = Signer(secret_from_env())
        except MissingSecret as exc:
            if not self.outbox:
                return Health(False, str(exc))
            # A rehearsal: the files show the real layout, but their links cannot work.
            self.signer = Signer(secrets.token_bytes(32))
        if self.config.dkim_selector:
            key = os.environ.get(self.config.dkim_key_env or "", "")
            if "PRIVATE KEY" not in key:
                return Health(False, f"{self.id}: dkim_selector is set but {self.config.dkim_key_env or 'dkim_key_env'} "
                                     "does not hold a PEM private key; set it (or remove dkim_selector to leave "
                                     "signing to the relay)")
            self._dkim = (self.config.dkim_selector.encode(), (self.config.dkim_domain or self.domain).encode(),
                          key.encode())
        nobody = self._no_subscribers()
        if self.outbox:
            return Health(True, f"writing one .eml per recipient to {self.transport.folder}",  # type: ignore[attr-defined]
                          warning=nobody)
        if self.config.web_url is None:
            return Health(False, f"{self.id}: {WEB_URL_HINT}")
        refused = self._login_refused()
        if refused:
            return Health(False, f"{refused}; set the relay's current password in {self.config.password_env}",
                          credential_broken=True)
        return Health(True, f"sending through {self.config.host}:{self.config.port} ({self.config.security})",
                      warning=nobody)

    def _login_refused(self) -> str | None:
        """Why the relay refuses our login, checked only with a login configured and newsletters
        planned (a connection per run otherwise): a changed password then shows at preflight as a
        broken credential, not as recipients deferred until the edition expires.
        Any other connection problem is left to the send, which leaves the rest for the next run."""
        if not self.config.username_env or self.ledger is None or not self.ledger.has_open_items(self.id):
            return None
        try:
            conn = self.transport.open()
        except _LoginRefused as exc:
            return str(exc)
        except (_Stop, _Dropped):
            return None
        self.transport.close(conn)
        return None

    def _no_subscribers(self) -> str | None:
        """Said on every run while newsletters are planned on this channel and the subscriber
        database is empty: they would reach nobody."""
        if self.ledger is None or self._recipients_given or not self.ledger.has_open_items(self.id) \
                or Subscribers(self.ledger).any_active():
            return None
        return ("no active subscribers in the database, so newsletters are sent to nobody (add them with "
                "`dissemination subscribers import FILE.csv`, e.g. docs/subscribers.example.csv, or move the "
                "stakeholder maps' contacts with `dissemination subscribers import-contacts`)")

    def publish(self, claim: Claim) -> Receipt:
        if self.deliveries is None or self.signer is None:
            raise RuntimeError("EmailChannel.bind() and preflight() must run before publish()")
        payload = claim.payload
        if not payload.get("html") or UNSUBSCRIBE_PLACEHOLDER not in payload["html"] \
                or UNSUBSCRIBE_PLACEHOLDER not in (payload.get("text") or ""):
            raise PublishError("the newsletter has no unsubscribe link in both parts ({{ unsubscribe_url }} in "
                               "the HTML and text templates); the law requires one in every mail", permanent=True)
        audience = (payload.get("audiences") or [claim.audience])[0]
        editions = payload.get("editions") or [audience]
        earlier = editions[:editions.index(audience)] if audience in editions else []
        started = self.clock()
        expired = self._expired(claim, started)
        # A newsletter published before and re-opened for resending: only the rows it had.
        add_new = claim.published_at is None and expired is None
        kit_for = payload.get("kit_for")  # a partner's content kit goes to that partner's kit contact only
        if kit_for or self._recipients_given:
            try:
                recipients = kit_recipient(self.root, kit_for) if kit_for else self._recipients(audience, earlier)
            except UnreadableMap as exc:
                raise PublishError(f"cannot tell who consented: {exc}") from None
            self.deliveries.prepare(claim.id, claim.worker, recipients, self.signer.address_key, self.id, started,
                                    add_new=add_new)
        else:
            # From the subscriber database, streamed: names and tracking consent are read per
            # chunk as it is sent (`_send_all`), so a million subscribers never sit in memory.
            recipients = {}
            assert self.ledger is not None  # bound with the deliveries
            self.deliveries.prepare_streamed(claim.id, claim.worker, Subscribers(self.ledger).address_query(
                audience, earlier), self.signer.address_key, self.id, started, add_new=add_new)
        if not self.deliveries.counts(claim.id):
            log.warning("%s: %s to %s: the list has no active subscribers, so nobody is sent this edition "
                        "(`dissemination subscribers import FILE.csv` adds them)", self.id, claim.id, audience)
        run = _Run(claim, None, recipients, queue.Queue(maxsize=2 * CHUNK // HANDFUL),  # type: ignore[arg-type]
                   RateLimit(self.capabilities.rate_per_minute), threading.Event(), [], [0])
        run.streamed = not (kit_for or self._recipients_given)
        if expired:
            self.deliveries.expire(claim.id, expired, started)
        else:
            web_version = self.web_version_url(claim.id)
            run.template = template = mime.build_template(
                from_address=self.config.from_address, from_name=self.config.from_name, reply_to=self.config.reply_to,
                subject=payload.get("subject") or claim.post, text=payload["text"].replace(WEB_VERSION_PLACEHOLDER,
                                                                                           web_version),
                html_body=payload["html"].replace(WEB_VERSION_PLACEHOLDER, web_version),
                list_id=self.list_id, list_name=self.list_name, placeholder=UNSUBSCRIBE_PLACEHOLDER,
                track_clicks=self.config.track_clicks and self.config.web_url is not None, now=started)
            run.anonymous_clicks = {slot: mime.qp_value(f"{self.base_url}/klik/{self.signer.click(claim.id, target)}")
                                    for slot, target in template.clicks.items()}
            self._send_all(run, started)
        counts = self.deliveries.counts(claim.id)
        if counts.get("failed"):
            for address in self.deliveries.suppress_soft_bounces(
                    self.deliveries.addresses(claim.id, "failed"), self.config.soft_bounce_limit, self.clock()):
                log.warning("%s: %s suppressed: %d editions in a row not accepted by its server", self.id, address,
                            self.config.soft_bounce_limit)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no recipients"
        log.info("%s: %s to %s: %s", self.id, claim.id, audience, summary)
        open_rows = sum(counts.get(s, 0) for s in ("pending", "claimed", "sending", "deferred"))
        for crash in run.crashed:  # a sending thread died: its error is the item's reason, not "4xx deferrals"
            run.error.insert(0, f"a sending thread failed: {type(crash).__name__}: {crash}")
            log.error("%s: %s: sending thread failed: %s: %s", self.id, claim.id, type(crash).__name__, crash)
        if run.sender_refused:
            # Not a recipient's fault: retrying would only repeat it, and publishing it would hide it.
            raise PublishError(f"stopped: {run.error[0]}. The relay or its settings are wrong (channels.yaml: host, "
                               f"username_env/password_env, from_address; the relay's permitted senders); nobody "
                               f"was suppressed, {open_rows} of {sum(counts.values())} recipients not sent ({summary})",
                               permanent=True)
        if open_rows or run.crashed:
            why = run.error[0] if run.error else f"{counts.get('deferred', 0)} deferred by the server (4xx)"
            due = None if run.error else self.deliveries.next_retry(claim.id)
            # The edition's expiry bounds the tries, not the pipeline's count of attempts.
            raise PublishError(f"{open_rows} of {sum(counts.values())} recipients not reached yet ({why}); "
                               f"the next run sends only those ({summary})", bounded=True,
                               retry_after=max(due - started, dt.timedelta(minutes=1)) if due else None)
        if expired and not counts.get("sent"):
            raise PublishError(f"not sent to anyone: {expired} ({summary})", permanent=True)
        return Receipt(remote_id=f"<{claim.idempotency_key}@{self.domain}>", url=None)

    def _expired(self, claim: Claim, now: dt.datetime) -> str | None:
        """Why the edition may no longer be sent to anyone still waiting for it, or None. A
        December edition must not arrive in March, nor after the list's next one."""
        deadline = claim.slot_utc + self.config.edition_expires_after
        if now >= deadline:
            return (f"the edition expired at {deadline:%Y-%m-%d %H:%M} UTC (edition_expires_after "
                    f"{self.config.edition_expires_after} after its slot)")
        later = self.deliveries.superseded_by(claim.id) if self.deliveries else None
        if later:
            return f"the list's next edition (item {later}) has gone out"
        return None

    # --- sending -------------------------------------------------------------------------------

    def _send_all(self, run: _Run, started: dt.datetime) -> None:
        assert self.deliveries is not None and self.ledger is not None
        claim = run.claim
        total = sum(self.deliveries.counts(claim.id).values()) if run.streamed else len(run.recipients)
        details = Subscribers(self.ledger).details if run.streamed else None
        label = f"{self.id} {claim.campaign}/{claim.post} to {claim.audience}"
        settled_before = total - sum(self.deliveries.counts(claim.id).get(s, 0) for s in ("pending", "deferred"))
        workers = [threading.Thread(target=self._guarded, args=(run,), daemon=True)]  # it drives every connection
        for w in workers:
            w.start()
        renewed = time.monotonic()
        chunks = self.deliveries.due(claim.id, CHUNK, self.clock(), since=started)
        try:
            while not run.stop.is_set():
                addresses = next(chunks, None)
                if not addresses:
                    break
                if details is not None:
                    run.recipients.update(details(addresses))  # taken out again as each is sent
                for start in range(0, len(addresses), HANDFUL):  # handfuls: a queue hand-off per message cost ~20 us
                    while not run.stop.is_set():
                        try:
                            run.queue.put(addresses[start:start + HANDFUL], timeout=0.2)
                            break
                        except queue.Full:
                            continue
                    if time.monotonic() - renewed > self.lease.total_seconds() / 3:
                        renewed = time.monotonic()
                        if not self.ledger.extend_lease(claim, self.clock() + self.lease):
                            run.error.append("the item's lease was taken over by another worker")
                            run.stop.set()
                if self.progress:
                    self.progress(label, settled_before + run.handled[0], total)
                if not any(w.is_alive() for w in workers):
                    break
        finally:
            for _ in workers:
                while any(w.is_alive() for w in workers):
                    try:
                        run.queue.put(None, timeout=0.2)
                        break
                    except queue.Full:
                        continue
            for w in workers:
                w.join()
            if self.progress:
                self.progress(label, settled_before + run.handled[0], total)

    def _guarded(self, run: _Run) -> None:
        try:
            self._connection(run)
        except BaseException as exc:  # re-raised by publish(): never a silently dead connection
            run.crashed.append(exc)
            run.stop.set()

    def _connection(self, run: _Run) -> None:
        assert self.deliveries is not None
        db = SendLog(self.deliveries, run.claim.id, run.claim.worker, self.id)
        try:
            self._connection_loop(run, db)
        finally:
            db.close()

    def _connection_loop(self, run: _Run, db: SendLog) -> None:
        """The connections' loop, in one thread: each connection in turn reads the answer to its
        message in flight and starts its next one there, so the server works on one
        connection's message while this thread handles another's. (A thread per connection
        spent more on taking turns for the interpreter and the ledger than on sending.)"""
        done: list[Outcome] = []  # outcomes not yet committed (committed with the next message)
        handed = self._handed(run)
        lines = [_Line() for _ in range(1 if self.outbox else self.config.connections)]
        try:
            while True:
                started = False
                for line in lines:
                    if line.in_flight is not None:
                        self._finish(run, line, done)
                    if run.stop.is_set():
                        continue  # once stopped, the rest stays pending, for the next run
                    address = line.next if line.next is not None else next(handed, None)
                    if address is None:
                        continue
                    line.next = next(handed, None)  # its envelope can go behind this message's "."
                    self._send_one(run, db, address, line, done)
                    started = True
                    if len(done) >= 50:  # only when no message follows soon; normally begin_send commits them
                        db.record(done, self.clock())
                        done.clear()
                if not started and all(line.in_flight is None for line in lines):
                    break
        finally:
            db.record(done, self.clock())
            for line in lines:
                if line.conn is not None:
                    self.transport.close(line.conn)

    @staticmethod
    def _handed(run: _Run) -> Iterator[str]:
        while not run.stop.is_set() and (handful := run.queue.get()) is not None:
            yield from handful

    def _usable(self, run: _Run, address: str, recipient: Recipient | None) -> Envelope:
        """The envelope (MAIL FROM, RCPT TO) of a message to `address`, or BadAddress."""
        envelope = mailbox(address)
        if recipient is not None and recipient.name:
            display_name(recipient.name)
        return self._envelope_sender(run, address), envelope

    def _send_one(self, run: _Run, db: SendLog, address: str, line: _Line, done: list[Outcome]) -> None:
        """Start the message to one recipient on `line` (reconnecting if needed): its outcome goes
        to `done`, or, once handed over, its answer is awaited (`line.in_flight`). A recipient
        whose address or name cannot be used is skipped with the reason; the others go."""
        recipient = run.recipients.pop(address, None) if run.streamed else run.recipients.get(address)
        try:
            known, line.next_envelope = line.next_envelope, None
            sender, envelope = known or self._usable(run, address, recipient)
        except BadAddress as exc:
            done.append(Outcome(address, "rejected", f"not sent: the address or name {exc}"))
            run.handled[0] += 1
            return
        then: Envelope | None = None
        if line.next is not None and not self.outbox:
            try:
                then = line.next_envelope = self._usable(run, line.next, run.recipients.get(line.next))
            except BadAddress:
                pass  # skipped with its reason when its turn comes; nothing is sent ahead for it
        data = self._fill(run, address, recipient, wire=not self.outbox)
        if self._dkim is not None:
            data = self._dkim_sign(run, address, recipient) + data
        # The edition is in the name: a second newsletter to the same person is a second file.
        name = f"{run.claim.id}-{self.signer.address_key(address)}.eml" if self.outbox else ""  # type: ignore[union-attr]

        def commit() -> str:
            verdict = db.begin_send(address, self.clock(), done)
            done.clear()
            _fault("email_before_dot", run.sent_count[0] + 1)
            return verdict

        for attempt in range(RECONNECTS + 1):
            try:
                if line.conn is None:
                    line.conn = self.transport.open()
                run.rate.wait()
                said = self.transport.send(line.conn, sender, envelope, data, commit, name, then)
            except _Abandon:
                line.conn = None  # closed by the transport to leave the DATA phase
                return
            except _Dropped as exc:
                line.conn = None
                if exc.delivered_unknown:
                    done.append(_unknown(address, exc))
                    return
                if attempt < RECONNECTS:
                    time.sleep(0.1 * 2 ** attempt)
                    continue
                run.error.append(str(exc))
            except _Stop as exc:
                run.error.append(str(exc))
                run.sender_refused = run.sender_refused or isinstance(exc, _SenderRefused)
            else:
                if said is None:
                    line.in_flight = address
                else:
                    self._settled(run, address, *said, done)
                return
            done.append(Outcome(address, "pending"))  # not sent: the next run tries again
            run.stop.set()
            return

    def _finish(self, run: _Run, line: _Line, done: list[Outcome]) -> None:
        """Read the answer to the message in flight on `line`."""
        address, line.in_flight = line.in_flight, None
        assert address is not None
        try:
            state, detail = self.transport.answer(line.conn)
        except _Dropped as exc:
            line.conn = None
            done.append(_unknown(address, exc))
            return
        self._settled(run, address, state, detail, done)

    def _settled(self, run: _Run, address: str, state: str, detail: str | None, done: list[Outcome]) -> None:
        if state == "sent":
            run.sent_count[0] += 1
            _fault("email_after_reply", run.sent_count[0])
        else:
            log.warning("%s: %s: %s (%s)", self.id, run.claim.id, state, detail)
        done.append(Outcome(address, state, detail))
        run.handled[0] += 1

    def _dkim_sign(self, run: _Run, address: str, recipient: Recipient | None) -> bytes:
        """The DKIM-Signature header for this recipient's message (the message as the recipient
        gets it, before SMTP dot-stuffing); its folded lines never start with a dot."""
        import dkim

        assert self._dkim is not None
        selector, domain, key = self._dkim
        raw = self._fill(run, address, recipient, wire=False)
        return dkim.sign(raw, selector, domain, key, include_headers=DKIM_HEADERS, linesep=b"\r\n")

    def _envelope_sender(self, run: _Run, address: str) -> str:
        """MAIL FROM: with `bounce_address`, one per message (VERP), so a bounce that arrives
        later by mail names this newsletter and recipient (`dissemination bounces`)."""
        if self.config.bounce_address is None or self.outbox:
            return self.config.from_address
        assert self.signer is not None
        return return_path(self.signer, self.config.bounce_address, run.claim.id, self.signer.address_key(address))

    def _message(self, run: _Run, address: str, wire: bool = False) -> bytes:
        recipient = run.recipients.pop(address, None) if run.streamed else run.recipients.get(address)
        return self._fill(run, address, recipient, wire)

    def _fill(self, run: _Run, address: str, recipient: Recipient | None, wire: bool) -> bytes:
        assert self.signer is not None
        claim, key = run.claim, self.signer.address_key(address)
        url = f"{self.base_url}/afmelden/{self.signer.unsubscribe(self.id, claim.id, address, key)}"
        values = {
            "to": mime.recipient_header(recipient.name if recipient else None, mailbox(address)),
            "message_id": f"<{claim.id}.{key}@{self.domain}>".encode(),
            "list_unsubscribe": mime.list_unsubscribe(url, self.mailbox),
            mime.UNSUBSCRIBE_SLOT: mime.qp_value(url),
        }
        if recipient is not None and recipient.tracking:
            for slot, target in run.template.clicks.items():
                values[slot] = mime.qp_value(f"{self.base_url}/klik/{self.signer.click(claim.id, target, address)}")
        else:
            values.update(run.anonymous_clicks)
        return run.template.fill_wire(values) if wire else run.template.fill(values)

    def web_version_url(self, item_id: str) -> str:
        """The edition in a browser, served by `dissemination web` (the same for every recipient)."""
        return f"{self.base_url}/editie/{item_id}"

    @property
    def base_url(self) -> str:
        return (self.config.web_url or "https://unsubscribe.invalid").rstrip("/")

    # --- metrics -------------------------------------------------------------------------------

    METRICS = ("sent", "rejected", "unsubscribed", "clicks")  # as declared in `EmailChannel.capabilities_of`

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Per newsletter item (one audience): read from the ledger, where sending, the suppression
        list and the web endpoint record them."""
        source = f"{'outbox' if self.outbox else 'email'}:{self.id}"
        if self.deliveries is None:
            return [Snapshot.unavailable(item, metric, now, source, "no ledger bound")
                    for item in receipts for metric in self.METRICS]
        # Per-person clicks are kept for `click_retention` only (AVG: no longer than needed); then
        # the click stays, without the address. This runs with every reading of the metrics.
        self.deliveries.anonymise_clicks(now - self.config.click_retention)
        found = self.deliveries.metrics(list(receipts))
        return [Snapshot(item, metric, float(found[item][metric]), now, source)
                for item in receipts for metric in self.METRICS]


def send_single(config: EmailSettings, root: Path, message: "EmailMessage") -> None:
    """One mail outside a newsletter (a sign-up confirmation) through the channel's relay, with
    the same TLS and login settings. Raises PublishError when the relay does not take it."""
    transport = SmtpTransport(config, root)
    try:
        conn = transport.open()
    except (_Stop, _Dropped) as exc:
        raise PublishError(str(exc)) from None
    try:
        conn.smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise PublishError(f"the relay did not take the mail: {type(exc).__name__}: {exc}") from None
    finally:
        transport.close(conn)


def write_single(folder: Path, message: "EmailMessage") -> Path:
    """Without SMTP settings: the mail as a file, as the outbox does for newsletters."""
    folder.mkdir(parents=True, exist_ok=True)
    name = (message["Message-ID"] or secrets.token_hex(8)).strip("<>").replace("/", "_") + ".eml"
    path = folder / name
    path.write_bytes(bytes(message))
    return path
