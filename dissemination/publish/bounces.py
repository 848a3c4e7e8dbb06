"""What an SMTP refusal means for the recipient, from its enhanced status code (RFC 3463).

The basic reply code says only "permanent" or "temporary"; the enhanced code says whose fault it
is. Reading every 5xx as "this address is dead" turned a relay's `554 5.7.1 Relay access denied`
into a hard bounce for every recipient: a whole list suppressed because our own settings were
wrong. So:

- `sender`: 5.7.x (policy, authentication, relay refused) or a reply that says so without an
  enhanced code. Our side is wrong: the run stops, nobody is suppressed, a person must act.
- `hard`: 5.1.x (bad address) and 5.2.1 (mailbox disabled). Only that address is suppressed.
- `soft`: any 4xx, and 5.2.2 (mailbox full). Counted; suppressed after several in a row.
- `refused`: any other permanent refusal of this one message (content, size, protocol). Not
  sent, reported, nobody suppressed.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# Refusals that blame the sender, from servers that send no enhanced code.
_SENDER_WORDS = re.compile(r"relay(ing)? (access )?(denied|not permitted|prohibited)|authentication required|"
                           r"not authori[sz]ed to send|sender address rejected", re.IGNORECASE)
# Without an enhanced code, these basic codes at RCPT mean "no such mailbox" (RFC 5321 4.2.3).
_HARD_BASIC = (550, 551, 553)


@dataclass(frozen=True)
class Verdict:
    kind: str  # sender | hard | soft | refused
    status: str | None  # the enhanced code, e.g. "5.1.1", when the server gave one


def enhanced_code(text: str) -> str | None:
    match = _ENHANCED.search(text)
    return ".".join(match.groups()) if match else None


def classify(code: int, text: str) -> Verdict:
    """The meaning of a refusal: `code` the basic reply code (or the DSN's class digit times
    100), `text` the server's words (where the enhanced code is)."""
    status = enhanced_code(text)
    if status and status[0] != str(code)[0]:
        status = None  # "550 4.2.2" is contradictory: trust the basic code
    return Verdict(_kind(code, status, text), status)


def _kind(code: int, status: str | None, text: str) -> str:
    if status is not None:
        klass, subject, detail = (int(p) for p in status.split("."))
        if subject == 7:
            return "sender" if klass == 5 else "soft"
        if klass == 4:
            return "soft"
        if subject == 1 or (subject, detail) == (2, 1):
            return "hard"
        if (subject, detail) == (2, 2):
            return "soft"
        return "refused"
    if _SENDER_WORDS.search(text) and code >= 500:
        return "sender"
    if 400 <= code < 500:
        return "soft"
    if code in _HARD_BASIC:
        return "hard"
    return "refused"


# --- reports that arrive later, by mail (RFC 3464 DSNs, RFC 5965 ARF complaints) ---------------

@dataclass(frozen=True)
class Report:
    """One recipient's fate as a report in the bounce mailbox says it."""

    kind: str  # bounce (the server gave up), delay (still trying), complaint (marked as spam)
    addressed_to: tuple[str, ...]  # where the report was sent: our per-message return path (VERP)
    message_id: str | None  # of our original message, when the report quotes its headers
    recipient: str | None  # Final-Recipient / Original-Rcpt-To
    status: str | None  # the enhanced status code, e.g. "5.1.1"
    diagnostic: str | None  # the remote server's words
    verdict: Verdict | None  # for a bounce: what it means (hard, soft, sender, refused)


def _address_field(value: str | None) -> str | None:
    """`rfc822; user@example.org` -> user@example.org."""
    if not value:
        return None
    value = value.split(";", 1)[-1].strip().strip("<>")
    return value or None


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    # Some generators write the fields as plain text: parse the blank-line separated blocks.
    text = payload if isinstance(payload, str) else ""
    return [email.message_from_string(block) for block in re.split(r"\r?\n\s*\r?\n", text.strip()) if block.strip()]


def _headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    if isinstance(payload, str):
        return email.message_from_string(payload)
    return None


def parse_report(raw: bytes) -> list[Report]:
    """The reports in one message of the bounce mailbox; empty for anything else (an
    auto-reply, spam, a person writing to the bounce address)."""
    message = email.message_from_bytes(raw, policy=compat32)
    addressed = tuple(dict.fromkeys(a.strip().strip("<>").lower() for h in ("Delivered-To", "X-Original-To",
                                                                           "Envelope-To", "To")
                                    for v in message.get_all(h) or [] for a in v.split(",") if "@" in a))
    if message.get_content_type() != "multipart/report":
        return []
    param = message.get_param("report-type")
    report_type = param.lower() if isinstance(param, str) else ""
    original: Message | None = None
    status_part = feedback = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            status_part = part
        elif kind == "message/feedback-report":
            feedback = part
        elif kind in ("text/rfc822-headers", "message/rfc822", "message/rfc822-headers", "message/global-headers",
                      "message/global") and original is None:
            original = _headers(part)
    return_path = original.get("Return-Path") if original is not None else None
    if return_path:
        addressed += (return_path.strip().strip("<>").lower(),)
    message_id = original.get("Message-ID", "").strip() or None if original is not None else None
    if report_type == "feedback-report" or feedback is not None:
        fields = _blocks(feedback)[0] if feedback is not None and _blocks(feedback) else Message()
        recipient = _address_field(fields.get("Original-Rcpt-To")) or (
            _address_field(original.get("To")) if original is not None else None)
        return [Report("complaint", addressed, message_id, recipient, None, fields.get("Feedback-Type"), None)]
    if status_part is None:
        return []
    reports = []
    for block in _blocks(status_part)[1:]:  # the first block is about the message, the rest one per recipient
        action = (block.get("Action") or "").strip().lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: nothing went wrong
        status = enhanced_code(block.get("Status") or "")
        diagnostic = " ".join((block.get("Diagnostic-Code") or "").split()) or None
        detail = " ".join(filter(None, [status, (diagnostic or "").split(";", 1)[-1].strip()]))
        code = int(status[0]) * 100 if status else (500 if action == "failed" else 400)
        recipient = _address_field(block.get("Final-Recipient")) or _address_field(block.get("Original-Recipient"))
        reports.append(Report("bounce" if action == "failed" else "delay", addressed, message_id, recipient, status,
                              detail or None, classify(code, detail) if action == "failed" else None))
    return reports
