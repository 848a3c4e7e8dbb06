"""Newsletter messages: built once per audience as a byte template, filled in per recipient.

Building a MIME message with the `email` package costs 1.5–2.8 ms; for 100,000 recipients that
is the whole budget. Everything shared (headers, both parts, quoted-printable encoding) is done
once; per recipient only a few slots are filled: `To`, `Message-ID`, `List-Unsubscribe`, the
unsubscribe link in both parts and, for contacts who consented to tracking, their click links.

Encoding stays correct because each body segment is quoted-printable encoded on its own and ends
with a soft line break, so a slot always starts at the beginning of an encoded line; a slot's
value is encoded the same way (`=` becomes `=3D`, lines stay under 76 characters).
"""

from __future__ import annotations

import binascii
import datetime as dt
import html
import re
import secrets
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

UNSUBSCRIBE_SLOT = "unsubscribe_url"
_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)
_MAX_LINE = 76


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def qp_value(value: str) -> bytes:
    """An ASCII slot value as quoted-printable lines, each ending in a soft line break."""
    encoded = binascii.b2a_qp(value.encode("utf-8"), quotetabs=True, istext=False)
    # b2a_qp already breaks long values; make sure the value ends with a soft break of its own.
    return encoded + b"=\r\n" if not encoded.endswith(b"=\r\n") else encoded


@dataclass
class Part:
    """One body part as encoded segments: bytes, or the name of a slot."""

    segments: list[bytes | str] = field(default_factory=list)

    @classmethod
    def encode(cls, text: str, slots: dict[str, str]) -> "Part":
        """`slots` maps a placeholder in `text` to its slot name."""
        part = cls()
        if not slots:
            part.segments.append(binascii.b2a_qp(_crlf(text).encode("utf-8"), istext=True))
            return part
        pattern = re.compile("|".join(re.escape(p) for p in sorted(slots, key=len, reverse=True)))
        position = 0
        for match in pattern.finditer(text):
            part._text(text[position:match.start()])
            part.segments.append(slots[match.group(0)])
            position = match.end()
        part._text(text[position:])
        return part

    def _text(self, text: str) -> None:
        if not text:
            return
        encoded = binascii.b2a_qp(_crlf(text).encode("utf-8"), istext=True)
        if not encoded.endswith(b"\r\n"):
            encoded = _soft_break(encoded)
        self.segments.append(encoded)


def _soft_break(encoded: bytes) -> bytes:
    """End an encoded segment with a soft line break, keeping lines within 76 characters and
    trailing white space encoded (RFC 2045 6.7)."""
    if encoded[-1:] in (b" ", b"\t"):
        encoded = encoded[:-1] + b"=%02X" % encoded[-1]
    start = encoded.rfind(b"\r\n") + 2 if b"\r\n" in encoded else 0
    if len(encoded) - start + 1 > _MAX_LINE:
        cut = start + _MAX_LINE - 4
        while b"=" in encoded[cut - 2:cut]:  # never split an =XX escape
            cut -= 1
        encoded = encoded[:cut] + b"=\r\n" + encoded[cut:]
    return encoded + b"=\r\n"


@dataclass
class MessageTemplate:
    """The bytes of one audience's newsletter with per-recipient slots."""

    segments: list[bytes | str]
    clicks: dict[str, str]  # slot name -> the newsletter's original URL
    sender_domain: str

    def fill(self, values: dict[str, bytes]) -> bytes:
        return b"".join(s if isinstance(s, bytes) else values[s] for s in self.segments)

    @property
    def slots(self) -> set[str]:
        return {s for s in self.segments if isinstance(s, str)}


def header_line(name: str, value: str) -> bytes:
    """One header, encoded as the stdlib does it (RFC 2047 for non-ASCII, folded)."""
    message = EmailMessage(policy=policy.SMTP)
    message[name] = value
    return bytes(message).split(b"\r\n\r\n", 1)[0] + b"\r\n"


def build_template(*, from_address: str, from_name: str | None, reply_to: str | None, subject: str,
                   text: str, html_body: str, list_id: str, list_name: str, placeholder: str,
                   track_clicks: bool, now: dt.datetime) -> MessageTemplate:
    """The newsletter for one audience. `placeholder` marks the unsubscribe link in both parts."""
    domain = from_address.rsplit("@", 1)[1]
    clicks: dict[str, str] = {}
    html_slots = {placeholder: UNSUBSCRIBE_SLOT}
    if track_clicks:
        def rewrite(match: re.Match[str]) -> str:
            url = html.unescape(match.group(1))
            if placeholder in url:
                return match.group(0)
            name = next((k for k, v in clicks.items() if v == url), None) or f"click{len(clicks)}"
            clicks[name] = url
            return f'href="%%{name}%%"'

        html_body = _HREF.sub(rewrite, html_body)
        html_slots.update({f"%%{name}%%": name for name in clicks})
    boundary = "=_" + secrets.token_hex(16)  # "=" never occurs in quoted-printable text
    segments: list[bytes | str] = [
        header_line("From", formataddr((from_name or "", from_address))),
        b"To: ", "to", b"\r\n",
        header_line("Subject", subject),
        header_line("Date", format_datetime(now.astimezone(dt.timezone.utc))),
        b"Message-ID: ", "message_id", b"\r\n",
    ]
    if reply_to:
        segments.append(header_line("Reply-To", reply_to))
    segments += [
        header_line("List-Id", f"{list_name} <{list_id}>"),
        b"List-Unsubscribe: ", "list_unsubscribe", b"\r\n",
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
    ]
    part_head = "--{b}\r\nContent-Type: text/{sub}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    segments.append(part_head.format(b=boundary, sub="plain").encode())
    segments += Part.encode(text, {placeholder: UNSUBSCRIBE_SLOT}).segments
    segments.append(("\r\n" + part_head.format(b=boundary, sub="html")).encode())
    segments += Part.encode(html_body, html_slots).segments
    segments.append(f"\r\n--{boundary}--\r\n".encode())
    merged: list[bytes | str] = []
    for segment in segments:  # adjacent bytes joined once here, not per recipient
        if isinstance(segment, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += segment
        elif segment != b"":
            merged.append(segment)
    return MessageTemplate(merged, clicks, domain)


def recipient_header(name: str | None, address: str) -> bytes:
    if not name:
        return address.encode("ascii", "strict") if address.isascii() else header_line("To", address)[4:-2]
    value = formataddr((name, address), charset="utf-8")
    return value.encode("ascii")


def list_unsubscribe(url: str, mailbox: str) -> bytes:
    return f"<{url}>,\r\n <mailto:{mailbox}?subject=afmelden>".encode("ascii")
