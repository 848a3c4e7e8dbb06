"""The process's secrets, and the one redaction every text leaving the process passes.

A secret is registered where it enters the process (a platform token, an SMTP password, the
unsubscribe secret, the ledger URL's password). Whatever a remote server answers may echo one of
them (a 401 that quotes the bearer token, a refusal that repeats the request), so every text
that is stored in the ledger or printed goes through `redact` first: the channel errors
(`PublishError`, `Health`), the pipeline's unexpected errors, and the CLI's consoles.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

REDACTED = "[redacted]"
_MIN_LENGTH = 6  # shorter values are no secrets worth the name, and would redact ordinary words
_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()


def register(*values: str | None) -> None:
    """Remember secrets (and their URL-encoded forms) for `redact`."""
    global _secrets
    found = set()
    for value in values:
        if value and len(value) >= _MIN_LENGTH:
            found.update({value, quote(value, safe=""), quote(value, safe="/:")})
    if found - _secrets:
        with _lock:
            _secrets = _secrets | found


def redact(text: Any) -> Any:
    """`text` with every registered secret replaced by [redacted]; anything but str unchanged."""
    if not isinstance(text, str) or not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):  # a longer secret may contain a shorter one
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def without_password(url: str) -> str:
    """A database URL as it may be shown: the password replaced (and registered as a secret)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    register(unquote(parts.password), parts.password)
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{netloc[2]}"))


class RedactingStream:
    """A text stream for the CLI's consoles: writes go to the current sys.stdout or sys.stderr
    (looked up at each write, so test runners that swap them still see the output), redacted."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def target(self) -> TextIO:
        return getattr(sys, self.name)

    def write(self, text: str) -> int:
        return self.target.write(redact(text))

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.target, "encoding", "utf-8") or "utf-8"
