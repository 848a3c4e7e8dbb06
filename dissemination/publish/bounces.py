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

import re
from dataclasses import dataclass

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
