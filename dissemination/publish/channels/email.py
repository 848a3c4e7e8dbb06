"""E-mail newsletters over SMTP (or, without SMTP settings, into the outbox), exactly once per recipient.

One item is one audience's edition of a newsletter. Its recipients are the audience's contacts
with a consent record (read at send time), minus the suppression list (checked again in the same
transaction that marks each message as being sent). Every recipient is a ledger row
(`dissemination.ledger.deliveries`); a run that is interrupted (crash, dropped connection, 4xx)
leaves the unsent rows for the next run, and the item is published once every row is settled.

Per message, on one reused connection: MAIL, RCPT and DATA are sent (in one write where the
server offers PIPELINING); once the server has said 354, the row is committed as `sending`; then
the body with its final "." is sent and the answer recorded. A crash before the commit cannot
have delivered anything (a transaction without its "." is dropped by the server); a crash after
it leaves at most one row per connection `unknown`, which is reported and not resent unless an
operator re-opens it (`dissemination resend-unknown`, after checking it did not arrive).

Answers: 5xx to RCPT is a hard bounce (suppressed on every list); 5xx to the message is a
rejection of that message; 4xx defers the recipient to the next run (failed after
RECIPIENT_MAX_ATTEMPTS); a dropped connection is reopened and the send resumes.
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
from typing import Callable, Protocol

from dissemination.addresses import BadAddress, display_name, mailbox
from dissemination.files import remove_orphans, write_atomically
from dissemination.ledger import Claim, Ledger, Receipt, Snapshot
from dissemination.ledger.deliveries import Deliveries, Outcome, SendLog
from dissemination.load import models as m
from dissemination.publish import mime
from dissemination.publish.channels.base import Capabilities, Health, PublishError
from dissemination.publish.pacing import RateLimit
from dissemination.publish.recipients import Recipient, UnreadableMap, consented_recipients, kit_recipient
from dissemination.publish.tokens import MissingSecret, Signer, secret_from_env
from dissemination.redact import register
from dissemination.render.newsletter import UNSUBSCRIBE_PLACEHOLDER

log = logging.getLogger("dissemination.email")
UTC = dt.timezone.utc
RECIPIENT_MAX_ATTEMPTS = 5  # 4xx answers before a recipient is given up (failed, reported)
RECONNECTS = 3  # fresh connections tried per message before the run leaves the rest for later
CHUNK = 200  # recipients claimed per transaction
HANDFUL = 20  # recipients handed to a connection at a time
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


class _Abandon(Exception):
    """The row may not be sent after all (suppressed or taken over); the DATA phase was cut."""


class Transport(Protocol):
    def open(self) -> object: ...

    def send(self, conn: object, sender: str, address: str, data: bytes, commit: Callable[[], str],
             name: str) -> tuple[str, str | None]: ...

    def close(self, conn: object) -> None: ...


class SmtpTransport:
    def __init__(self, config: m.EmailChannel, root: Path) -> None:
        self.config = config
        self.ca_file = str(root / config.tls_ca_file) if config.tls_ca_file else None
        user_env, password_env = config.username_env, config.password_env
        self._user = os.environ.get(user_env) if user_env else None
        self._password = os.environ.get(password_env) if password_env else None
        register(self._password)

    def open(self) -> smtplib.SMTP:
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
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.ehlo()
            if c.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if self._user:
                conn.login(self._user, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise _Stop(f"{c.host} refused the login of {self.config.username_env}: {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise _Stop(f"{c.host}:{c.port}: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise _Stop(f"{c.host}:{c.port}: its TLS certificate is not trusted ({exc.verify_message}); set "
                        f"tls_ca_file if a private CA signed it") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _Dropped(f"cannot connect to {c.host}:{c.port}: {type(exc).__name__}: {exc}", False) from None
        return conn

    def send(self, conn: smtplib.SMTP, sender: str, address: str, data: bytes, commit: Callable[[], str],
             name: str) -> tuple[str, str | None]:
        """One transaction; `data` is dot-stuffed already. With PIPELINING (RFC 2920), MAIL, RCPT
        and DATA go out in one write: one round trip instead of three."""
        dot_sent = False
        utf8 = not address.isascii()
        if utf8 and not conn.has_extn("smtputf8"):  # RFC 6531: only a server that offers it takes such an address
            return "rejected", (f"not sent: the address has non-ASCII characters before the @ and {self.config.host} "
                                "does not offer SMTPUTF8")
        envelope = [f"MAIL FROM:<{sender}>{' SMTPUTF8' if utf8 else ''}\r\n".encode(),
                    f"RCPT TO:<{address}>\r\n".encode(), b"DATA\r\n"]
        try:
            if conn.does_esmtp and conn.has_extn("pipelining"):
                conn.send(b"".join(envelope))
                replies = [conn.getreply() for _ in envelope]
            else:
                replies = []
                for command in envelope:
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
                if 400 <= mail_code < 500:
                    raise _Dropped(f"{mail_code} {mail_answer.decode(errors='replace')} to MAIL FROM", False)
                raise _Stop(f"the server refused the sender {sender}: {mail_code} {mail_answer.decode(errors='replace')}")
            if rcpt_code not in (250, 251):
                conn.rset()
                return ("bounced" if rcpt_code >= 500 else "deferred"), f"{rcpt_code} {rcpt_answer.decode(errors='replace')}"
            if data_code != 354:
                conn.rset()
                return ("rejected" if data_code >= 500 else "deferred"), f"{data_code} {data_answer.decode(errors='replace')}"
            verdict = commit()
            if verdict != "go":
                conn.close()  # the only way out of DATA without a "."; the server drops the message
                raise _Abandon(verdict)
            dot_sent = True  # from here on the message may arrive, whatever happens to us
            conn.send(data + b".\r\n")
            code, answer = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(f"{type(exc).__name__}: {exc}", dot_sent) from None
        if code == 250:
            return "sent", None
        return ("rejected" if code >= 500 else "deferred"), f"{code} {answer.decode(errors='replace')}"

    def close(self, conn: smtplib.SMTP) -> None:
        try:
            conn.quit()
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
             name: str) -> tuple[str, str | None]:
        conn.mkdir(parents=True, exist_ok=True)

        def committed() -> None:
            verdict = commit()
            if verdict != "go":
                raise _Abandon(verdict)

        write_atomically(conn / name, data, before_replace=committed)
        return "sent", None

    def close(self, conn: object) -> None:
        pass


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


class EmailChannel:
    kind = "email"

    def __init__(self, channel_id: str, config: m.EmailChannel, root: Path, transport: Transport | None = None,
                 recipients: Callable[[str, list[str]], dict[str, Recipient]] | None = None) -> None:
        self.id = channel_id
        self.config = config
        self.root = root
        self.transport: Transport = transport or SmtpTransport(config, root)
        self.outbox = isinstance(self.transport, OutboxTransport)
        self._recipients = recipients or (lambda audience, earlier: consented_recipients(root, audience, earlier))
        self.capabilities = Capabilities(max_length=None, url_weight=None, media=False,
                                         rate_per_minute=config.rate_per_minute, idempotent=True)
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
        if self.outbox:
            return Health(True, f"writing one .eml per recipient to {self.transport.folder}")  # type: ignore[attr-defined]
        if self.config.web_url is None:
            return Health(False, f"{self.id}: {m.WEB_URL_HINT}")
        return Health(True, f"sending through {self.config.host}:{self.config.port} ({self.config.security})")

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
        try:
            # A partner's content kit (issue 16) goes to that partner's kit contact only.
            recipients = (kit_recipient(self.root, payload["kit_for"]) if payload.get("kit_for")
                          else self._recipients(audience, earlier))
        except UnreadableMap as exc:
            raise PublishError(f"cannot tell who consented: {exc}") from None
        started = self.clock()
        # A newsletter published before and re-opened for resending: only the rows it had.
        self.deliveries.prepare(claim.id, claim.worker, recipients, self.signer.address_key, self.id, started,
                                add_new=claim.published_at is None)
        template = mime.build_template(
            from_address=self.config.from_address, from_name=self.config.from_name, reply_to=self.config.reply_to,
            subject=payload.get("subject") or claim.post, text=payload["text"], html_body=payload["html"],
            list_id=self.list_id, list_name=self.list_name, placeholder=UNSUBSCRIBE_PLACEHOLDER,
            track_clicks=self.config.track_clicks and self.config.web_url is not None, now=started)
        run = _Run(claim, template, recipients, queue.Queue(maxsize=2 * CHUNK // HANDFUL), RateLimit(self.config.rate_per_minute),
                   threading.Event(), [], [0])
        run.anonymous_clicks = {slot: mime.qp_value(f"{self.base_url}/klik/{self.signer.click(claim.id, target)}")
                                for slot, target in template.clicks.items()}
        try:
            self._send_all(run, started)
        finally:
            self.deliveries.release(claim.id, claim.worker, self.clock())
        self.deliveries.give_up(claim.id, RECIPIENT_MAX_ATTEMPTS, self.clock())
        counts = self.deliveries.counts(claim.id)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no recipients"
        log.info("%s: %s to %s: %s", self.id, claim.id, audience, summary)
        open_rows = sum(counts.get(s, 0) for s in ("pending", "claimed", "sending", "deferred"))
        for exc in run.crashed:  # a sending thread died: its error is the item's reason, not "4xx deferrals"
            run.error.insert(0, f"a sending thread failed: {type(exc).__name__}: {exc}")
            log.error("%s: %s: sending thread failed: %s: %s", self.id, claim.id, type(exc).__name__, exc)
        if open_rows or run.crashed:
            why = run.error[0] if run.error else f"{counts.get('deferred', 0)} deferred by the server (4xx)"
            raise PublishError(f"{open_rows} of {sum(counts.values())} recipients not reached yet ({why}); "
                               f"the next run sends only those ({summary})")
        return Receipt(remote_id=f"<{claim.idempotency_key}@{self.domain}>", url=None)

    # --- sending -------------------------------------------------------------------------------

    def _send_all(self, run: _Run, started: dt.datetime) -> None:
        assert self.deliveries is not None and self.ledger is not None
        claim = run.claim
        total = len(run.recipients)
        label = f"{self.id} {claim.campaign}/{claim.post} to {claim.audience}"
        settled_before = total - sum(self.deliveries.counts(claim.id).get(s, 0) for s in ("pending", "deferred"))
        workers = [threading.Thread(target=self._guarded, args=(run,), daemon=True)
                   for _ in range(1 if self.outbox else self.config.connections)]
        for w in workers:
            w.start()
        renewed = time.monotonic()
        try:
            while not run.stop.is_set():
                addresses = self.deliveries.claim(claim.id, claim.worker, CHUNK, self.clock(), since=started)
                if not addresses:
                    break
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
        """One connection's loop: take recipients from the queue until it says stop."""
        done: list[Outcome] = []  # outcomes not yet committed (committed with the next message)
        conn = None
        while not run.stop.is_set() and (handful := run.queue.get()) is not None:
            for address in handful:
                if run.stop.is_set():
                    break  # the rest of the handful stays claimed and is released at the end
                conn = self._send_one(run, db, address, conn, done)
                if len(done) >= 50:  # only when no message follows soon; normally begin_send commits them
                    db.record(done, self.clock())
                    done.clear()
        db.record(done, self.clock())
        if conn is not None:
            self.transport.close(conn)

    def _send_one(self, run: _Run, db: SendLog, address: str, conn: object, done: list[Outcome]) -> object:
        """Send to one recipient (reconnecting if needed); its outcome goes to `done`. Returns the
        connection to go on with (None: open a new one). A recipient whose address or name cannot
        be used is skipped with the reason; the others go."""
        recipient = run.recipients.get(address)
        try:
            envelope = mailbox(address)
            if recipient is not None and recipient.name:
                display_name(recipient.name)
        except BadAddress as exc:
            done.append(Outcome(address, "rejected", f"not sent: the address or name {exc}"))
            run.handled[0] += 1
            return conn
        data = self._message(run, address, wire=not self.outbox)
        # The edition is in the name: a second newsletter to the same person is a second file.
        name = f"{run.claim.id}-{self.signer.address_key(address)}.eml"  # type: ignore[union-attr]

        def commit() -> str:
            verdict = db.begin_send(address, self.clock(), done)
            done.clear()
            _fault("email_before_dot", run.sent_count[0] + 1)
            return verdict

        for attempt in range(RECONNECTS + 1):
            try:
                if conn is None:
                    conn = self.transport.open()
                run.rate.wait()
                state, detail = self.transport.send(conn, self.config.from_address, envelope, data, commit, name)
            except _Abandon:
                return None  # closed by the transport to leave the DATA phase
            except _Dropped as exc:
                conn = None
                if exc.delivered_unknown:
                    done.append(Outcome(address, "unknown", f"connection dropped after the message was handed "
                                                             f"over ({exc}); not sent again"))
                    return None
                if attempt < RECONNECTS:
                    time.sleep(0.1 * 2 ** attempt)
                    continue
                run.error.append(str(exc))
            except _Stop as exc:
                run.error.append(str(exc))
            else:
                if state == "sent":
                    run.sent_count[0] += 1
                    _fault("email_after_reply", run.sent_count[0])
                else:
                    log.warning("%s: %s: %s (%s)", self.id, run.claim.id, state, detail)
                done.append(Outcome(address, state, detail))
                run.handled[0] += 1
                return conn
            done.append(Outcome(address, "pending"))  # not sent: the next run tries again
            run.stop.set()
            return conn
        raise AssertionError("unreachable: every attempt returns")

    def _message(self, run: _Run, address: str, wire: bool = False) -> bytes:
        assert self.signer is not None
        claim, recipient, key = run.claim, run.recipients.get(address), self.signer.address_key(address)
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

    @property
    def base_url(self) -> str:
        return (self.config.web_url or "https://unsubscribe.invalid").rstrip("/")

    # --- metrics -------------------------------------------------------------------------------

    METRICS = ("sent", "rejected", "unsubscribed", "clicks")

    def fetch_metrics(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        """Per newsletter item (one audience): read from the ledger, where sending, the suppression
        list and the web endpoint record them."""
        source = f"{'outbox' if self.outbox else 'email'}:{self.id}"
        if self.deliveries is None:
            return [Snapshot.unavailable(item, metric, now, source, "no ledger bound")
                    for item in receipts for metric in self.METRICS]
        found = self.deliveries.metrics(list(receipts))
        return [Snapshot(item, metric, float(found[item][metric]), now, source)
                for item in receipts for metric in self.METRICS]
