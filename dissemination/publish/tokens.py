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
        return hmac.new(self._secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()[:16]

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
