"""Bounces that arrive later: the bounce mailbox read over IMAP or as a Maildir.

With a relay, a recipient's server usually refuses a message after the relay accepted it; the
relay then mails a delivery status notification (RFC 3464) to the message's envelope sender.
Every newsletter message has its own envelope sender (`bounce_address` with a signed tag, see
`tokens.return_path`), so each report names its newsletter item and recipient; a report quoting
our Message-ID (`<item.address_key@domain>`) is understood too. What a report means is decided
as for an answer during sending (`bounces.classify`):

- hard (5.1.x, 5.2.1): the delivery becomes `bounced` and the address is suppressed everywhere;
- soft (5.2.2 and the like): `failed`, counted; `soft_bounce_limit` in a row suppress the address;
- sender (5.7.x: the receiving server refuses *us*, e.g. SPF/DKIM/DMARC): nobody is suppressed,
  the run reports it so a person fixes the sending setup;
- an ARF complaint (someone pressed "this is spam"): unsubscribed from every list, at once;
- delays (still trying) change nothing.

A message is marked read (IMAP \\Seen, Maildir `cur/` with flag S) once its reports are applied, so
a second run does not apply it again; applying twice would change nothing anyway.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import logging
import mailbox
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from dissemination.ledger import Ledger
from dissemination.load.project import load_channels
from dissemination.problems import ContentErrors
from dissemination.ledger.deliveries import ALL_LISTS, Deliveries, normalise
from dissemination.ledger.subscribers import Subscribers
from dissemination.publish.bounces import Report, parse_report
from dissemination.publish.channels.email import EmailSettings
from dissemination.publish.tokens import Signer, read_return_path

log = logging.getLogger("dissemination")
UTC = dt.timezone.utc
_MESSAGE_ID = re.compile(r"<([0-9a-f]{16})\.([A-Za-z0-9_-]{16,})@[^>]+>")


class BounceboxError(Exception):
    """The mailbox cannot be read; the message says what to fix."""


@dataclass
class BounceRun:
    messages: int = 0  # read from the mailbox
    hard: list[str] = field(default_factory=list)  # addresses suppressed (bounced)
    soft: list[str] = field(default_factory=list)  # soft bounces counted
    soft_suppressed: list[str] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)  # unsubscribed everywhere
    sender: list[str] = field(default_factory=list)  # 5.7.x: our sending setup is refused (details)
    refused: list[str] = field(default_factory=list)  # one message refused (content, size)
    delays: int = 0
    unmatched: int = 0  # reports that name no newsletter of ours (or a forged tag)
    ignored: int = 0  # messages that are no report at all


class Bouncebox:
    def __init__(self, ledger: Ledger, signer: Signer, channel_id: str, config: EmailSettings,
                 clock: Callable[[], dt.datetime]) -> None:
        self.deliveries = Deliveries(ledger)
        self.subscribers = Subscribers(ledger)
        self.signer = signer
        self.channel_id = channel_id
        self.config = config
        self.clock = clock

    # --- applying ----------------------------------------------------------------------------

    def apply(self, raw: bytes, run: BounceRun) -> None:
        reports = parse_report(raw)
        run.messages += 1
        if not reports:
            run.ignored += 1
        for report in reports:
            self._apply(report, run)

    def _locate(self, report: Report) -> tuple[str, str] | None:
        for address in report.addressed_to:
            tag = read_return_path(self.signer, address)
            if tag is not None:
                recipient = self.deliveries.recipient_of(tag.item_id, tag.key_prefix)
                if recipient:
                    return tag.item_id, recipient
        match = _MESSAGE_ID.search(report.message_id or "")
        if match:
            recipient = self.deliveries.recipient_of(match.group(1), match.group(2))
            if recipient:
                return match.group(1), recipient
        return None

    def _apply(self, report: Report, run: BounceRun) -> None:
        if report.kind == "delay":
            run.delays += 1
            return
        found = self._locate(report)
        if found is None:
            run.unmatched += 1
            return
        item_id, address = found
        now = self.clock()
        detail = f"reported later by mail: {report.diagnostic or report.status or report.kind}"
        if report.kind == "complaint":
            self.deliveries.suppress(address, ALL_LISTS, "complained", now, item_id, detail)
            self.subscribers.unsubscribe(address, now)
            run.complaints.append(address)
            return
        verdict = report.verdict
        kind = verdict.kind if verdict else "refused"
        if kind == "hard":
            self.deliveries.settle_late(item_id, address, "bounced", detail, now)
            self.deliveries.suppress(address, ALL_LISTS, "bounced", now, item_id, detail)
            run.hard.append(address)
        elif kind == "soft":
            self.deliveries.settle_late(item_id, address, "failed", detail, now)
            run.soft.append(address)
            run.soft_suppressed += self.deliveries.suppress_soft_bounces([address], self.config.soft_bounce_limit, now)
        elif kind == "sender":
            # Their server refuses us, not this address: nobody is suppressed; a person must act.
            self.deliveries.settle_late(item_id, address, "rejected", detail, now)
            run.sender.append(f"{address}: {report.diagnostic or report.status}")
        else:
            self.deliveries.settle_late(item_id, address, "rejected", detail, now)
            run.refused.append(address)

    # --- reading -----------------------------------------------------------------------------

    def read_maildir(self, path: Path) -> BounceRun:
        run = BounceRun()
        if not (path / "new").is_dir():
            raise BounceboxError(f"{path} is not a Maildir (it has no new/ folder); set bounce_maildir to the "
                                 "bounce mailbox's Maildir")
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in list(box.iterkeys()):
            message = box.get_message(key)
            if message.get_subdir() != "new":
                continue
            self.apply(box.get_bytes(key), run)
            message.set_subdir("cur")
            message.add_flag("S")
            box[key] = message
        return run

    def read_imap(self) -> BounceRun:
        c = self.config
        user = os.environ.get(c.bounce_username_env or "", "")
        password = os.environ.get(c.bounce_password_env or "", "")
        missing = [name for name, value in ((c.bounce_username_env, user), (c.bounce_password_env, password))
                   if name and not value]
        if missing:
            raise BounceboxError(f"{', '.join(missing)} not set: the login of the bounce mailbox")
        run = BounceRun()
        try:
            context = ssl.create_default_context()
            host = c.bounce_imap_host or ""  # the caller reads IMAP only when a host is set
            if c.bounce_imap_security == "ssl":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, c.bounce_imap_port, ssl_context=context,
                                                        timeout=c.timeout.total_seconds())
            else:
                imap = imaplib.IMAP4(host, c.bounce_imap_port, timeout=c.timeout.total_seconds())
                if c.bounce_imap_security == "starttls":
                    imap.starttls(ssl_context=context)
            try:
                if user:
                    imap.login(user, password)
                status, _ = imap.select(_quote(c.bounce_imap_folder))
                if status != "OK":
                    raise BounceboxError(f"the bounce mailbox has no folder '{c.bounce_imap_folder}' "
                                         "(bounce_imap_folder)")
                for uid, raw in _unseen(imap):
                    self.apply(raw, run)
                    imap.uid("STORE", uid, "+FLAGS", r"(\Seen)")
            finally:
                try:
                    imap.logout()
                except (imaplib.IMAP4.error, OSError):
                    pass
        except imaplib.IMAP4.error as exc:
            # The server's words; the password is never part of them.
            raise BounceboxError(f"{c.bounce_imap_host}:{c.bounce_imap_port}: {exc}") from None
        except (OSError, ssl.SSLError) as exc:
            raise BounceboxError(f"cannot reach the bounce mailbox at {c.bounce_imap_host}:{c.bounce_imap_port}: "
                                 f"{type(exc).__name__}: {exc}") from None
        return run


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unseen(imap: imaplib.IMAP4) -> Iterator[tuple[str, bytes]]:
    status, data = imap.uid("SEARCH", None, "UNSEEN")  # type: ignore[arg-type]  # no charset: imaplib takes None
    if status != "OK":
        return
    for uid in (data[0] or b"").decode("ascii").split():  # message numbers: ASCII digits
        status, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")  # PEEK: \Seen only once applied
        raw = next((part[1] for part in fetched if isinstance(part, tuple)), None) if status == "OK" else None
        if raw is not None:
            yield uid, raw


__all__ = ["BounceReport", "BounceRun", "Bouncebox", "BounceboxError", "normalise", "read_bounces"]


@dataclass
class BounceReport:
    channel: str
    soft_bounce_limit: int
    run: BounceRun | None = None
    error: str | None = None  # the mailbox could not be read (what to fix)


def read_bounces(root: Path, ledger: Ledger, channel: str | None = None, maildir: Path | None = None,
                 now: Callable[[], dt.datetime] | None = None) -> list[BounceReport]:
    """Read each e-mail channel's bounce mailbox (IMAP, or a Maildir) and apply its reports to
    the ledger (`dissemination.publish.bouncebox`). Channels without a mailbox are skipped unless
    named. Raises ContentErrors for a broken channels.yaml, MissingSecret without the link secret."""
    from dissemination.publish.tokens import secret_from_env

    channels_file, problems = load_channels(root)
    if channels_file is None or problems.errors:
        raise ContentErrors(problems.errors)
    chosen = {c: cfg for c, cfg in channels_file.channels.items() if isinstance(cfg, EmailSettings)
              and (c == channel if channel else (maildir is not None or cfg.bounce_imap_host or cfg.bounce_maildir))}
    signer = Signer(secret_from_env())
    clock = now or (lambda: dt.datetime.now(UTC))
    reports = []
    for channel_id, config in chosen.items():
        report = BounceReport(channel_id, config.soft_bounce_limit)
        box = Bouncebox(ledger, signer, channel_id, config, clock)
        folder = maildir or (Path(config.bounce_maildir) if config.bounce_maildir else None)
        try:
            if folder is not None:
                report.run = box.read_maildir(folder if folder.is_absolute() else root / folder)
            elif config.bounce_imap_host:
                report.run = box.read_imap()
            else:
                report.error = "no bounce mailbox (set bounce_imap_host or bounce_maildir)"
        except BounceboxError as exc:
            report.error = str(exc)
        if report.run and report.run.sender:
            log.error("%s: %d bounce report(s) say the receiving server refuses our mail (5.7.x)", channel_id,
                      len(report.run.sender))
        reports.append(report)
    return reports
