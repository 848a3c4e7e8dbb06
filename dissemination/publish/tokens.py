"""Signed tokens for the links in newsletters: unsubscribe and click redirects.

A token is `<payload>.<signature>`, both base64url. The signature is an HMAC-SHA256 (truncated to
128 bits) with the secret from DISSEMINATION_UNSUBSCRIBE_SECRET over the payload and, for an
unsubscribe, the recipient's address itself: a token cannot be guessed, edited, or used for
another address. Links carry a keyed hash of the address (`address_key`), never the address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from dissemination.redact import register

SECRET_ENV = "DISSEMINATION_UNSUBSCRIBE_SECRET"
MIN_SECRET_LENGTH = 16


class MissingSecret(Exception):
    pass


class BadToken(Exception):
    pass


def secret_from_env() -> bytes:
    value = os.environ.get(SECRET_ENV, "")
    if len(value) < MIN_SECRET_LENGTH:
        problem = "is not set" if not value else f"is shorter than {MIN_SECRET_LENGTH} characters"
        raise MissingSecret(
            f"{SECRET_ENV} {problem}: it signs the unsubscribe and click links in newsletters; set it to a "
            f"long random value (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) and "
            f"keep it: links in newsletters already sent stop working when it changes")
    register(value)
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _unb64(text: str) -> bytes:
    """Canonical unpadded base64url only: one encoding per value, so a token cannot be varied
    (an appended `==`, other unused bits in the last character, junk the decoder skips)."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise BadToken("not a token")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise BadToken("not a token")
    return data


@dataclass(frozen=True)
class Unsubscribe:
    scope: str  # the list: the e-mail channel's id
    item_id: str
    address_key: str


@dataclass(frozen=True)
class Click:
    item_id: str
    url: str
    address_key: str  # empty: anonymous


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, *parts: str) -> bytes:
        # One-shot HMAC (OpenSSL): a third of the time of hmac.new(); a million-recipient send
        # makes several per recipient.
        return hmac.digest(self._secret, "\x1f".join(parts).encode(), "sha256")[:16]

    def address_key(self, address: str) -> str:
        return _b64(self._mac("address", address))

    def unsubscribe(self, scope: str, item_id: str, address: str, address_key: str | None = None) -> str:
        payload = "\x1f".join(["u", scope, item_id, address_key or self.address_key(address)])
        return f"{_b64(payload.encode())}.{_b64(self._mac(payload, address))}"

    def click(self, item_id: str, url: str, address: str | None = None) -> str:
        payload = "\x1f".join(["c", item_id, self.address_key(address) if address else "", url])
        return f"{_b64(payload.encode())}.{_b64(self._mac(payload))}"

    def partner_link(self, partner: str, publication: str, url: str) -> str:
        """The code of a partner's short link (/d/<code>, dissemination/partners/links.py): 96 bits
        of the MAC, so it cannot be guessed, and it is the same every time a kit is built."""
        return _b64(self._mac("partner-link", partner, publication, url)[:12])

    @staticmethod
    def _split(token: str, kind: str, fields: int) -> tuple[str, list[str], bytes]:
        if token.count(".") != 1:
            raise BadToken("not a token")
        payload_b64, _, signature_b64 = token.partition(".")
        try:
            payload = _unb64(payload_b64).decode()
        except UnicodeDecodeError as exc:
            raise BadToken("not a token") from exc
        parts = payload.split("\x1f")
        if len(parts) != fields or parts[0] != kind:
            raise BadToken("not a token of this kind")
        # Only what we sign: no other control character (a NUL reaches the database before the
        # signature can be checked, which needs the address the key stands for).
        if any(c < " " or c == "\x7f" for part in parts for c in part):
            raise BadToken("not a token")
        signature = _unb64(signature_b64)
        if len(signature) != 16:
            raise BadToken("not a token")
        return payload, parts, signature

    def read_unsubscribe(self, token: str) -> Unsubscribe:
        """The claims of a well-formed token; verify them with `verify_unsubscribe` once the
        address is known."""
        _, parts, _ = self._split(token, "u", 4)
        return Unsubscribe(parts[1], parts[2], parts[3])

    def verify_unsubscribe(self, token: str, address: str) -> Unsubscribe:
        payload, parts, signature = self._split(token, "u", 4)
        if parts[3] != self.address_key(address) or not hmac.compare_digest(signature, self._mac(payload, address)):
            raise BadToken("signature does not match")
        return Unsubscribe(parts[1], parts[2], parts[3])

    def verify_click(self, token: str) -> Click:
        payload, parts, signature = self._split(token, "c", 4)
        if not hmac.compare_digest(signature, self._mac(payload)):
            raise BadToken("signature does not match")
        return Click(parts[1], parts[3], parts[2])


@dataclass(frozen=True)
class ReturnPath:
    item_id: str
    key_prefix: str  # the first 16 characters of the recipient's address_key


def _verp_mac(secret: bytes, item_id: str, key_hex: str) -> str:
    return hmac.new(secret, f"verp\x1f{item_id}\x1f{key_hex}".encode(), hashlib.sha256).hexdigest()[:8]


def return_path(signer: Signer, bounce_address: str, item_id: str, address_key: str) -> str:
    """The per-message envelope sender (VERP): `bounces+<item>.<key>.<mac>@domain`, so a bounce
    names the newsletter and the recipient. Lower-case hex only: mail servers may change the
    case of a local part, and it must stay within 64 characters (RFC 5321 4.5.3.1.1)."""
    local, domain = bounce_address.rsplit("@", 1)
    key_hex = _unb64(address_key)[:12].hex()
    return f"{local}+{item_id}.{key_hex}.{_verp_mac(signer._secret, item_id, key_hex)}@{domain}"


def read_return_path(signer: Signer, address: str) -> ReturnPath | None:
    """The newsletter and recipient named by a VERP address, or None when it is not one of ours
    (or was forged: the MAC does not match)."""
    local = address.strip().strip("<>").rsplit("@", 1)[0].lower()
    _, plus, tag = local.partition("+")
    parts = tag.split(".")
    if not plus or len(parts) != 3 or len(parts[0]) != 16 or len(parts[1]) != 24:
        return None
    item_id, key_hex, mac = parts
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _verp_mac(signer._secret, item_id, key_hex)):
        return None
    return ReturnPath(item_id, _b64(key))


@dataclass(frozen=True)
class Personal:
    """A subscriber's own link: confirming a subscription (double opt-in) or their preferences."""

    kind: str  # "confirm" | "preferences"
    subscriber_id: int
    list_id: str  # the list to confirm; empty for preferences
    issued_day: int  # days since 1970-01-01 (UTC): confirmation links expire


_PERSONAL = {"confirm": "b", "preferences": "v"}


def personal_token(signer: Signer, kind: str, subscriber_id: int, address: str, list_id: str = "",
                   issued_day: int = 0) -> str:
    """A link token bound to the subscriber's address (the MAC covers it) without carrying it."""
    payload = "\x1f".join([_PERSONAL[kind], str(subscriber_id), list_id, str(issued_day)])
    return f"{_b64(payload.encode())}.{_b64(signer._mac(payload, address))}"


def read_personal(token: str, kind: str) -> Personal:
    """The claims of a well-formed token (not yet verified: see `verify_personal`)."""
    _, parts, _ = Signer._split(token, _PERSONAL[kind], 4)
    if not parts[1].isdigit() or not parts[3].isdigit():
        raise BadToken("not a token of this kind")
    return Personal(kind, int(parts[1]), parts[2], int(parts[3]))


def verify_personal(signer: Signer, token: str, kind: str, address: str) -> Personal:
    payload, _, signature = Signer._split(token, _PERSONAL[kind], 4)
    if not hmac.compare_digest(signature, signer._mac(payload, address)):
        raise BadToken("signature does not match")
    return read_personal(token, kind)
