"""Where platform tokens live: outside the repository, never in a message.

A token comes from the environment variable a channel names in channels.yaml (`token_env`; wins
when set, for CI and servers), or from a credential store that `dissemination auth` filled
(`default_store` picks one):

- `KeyringStore`: the operating system's keyring (macOS Keychain, Windows Credential Locker,
  Secret Service), when the optional `keyring` package is installed (`dissemination[keyring]`)
  and finds a usable backend.
- `FileStore`: otherwise one JSON file under the user's config directory
  ($XDG_CONFIG_HOME/dissemination/credentials.json), mode 0600 in a 0700 directory, replaced
  atomically, never inside the content root. `DISSEMINATION_CREDENTIALS` names another file (and
  then is always used).
- a Prefect Secret block per channel when running under Prefect (`flows/_common.py`; the flows
  pass that store in, so nothing here imports Prefect).

A stored credential remembers when it expires, its refresh token, and when a platform refused it
(so `status` can say so until someone signs in again).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Iterator, Protocol

from dissemination.files import write_atomically
from dissemination.redact import register

UTC = dt.timezone.utc
STORE_ENV = "DISSEMINATION_CREDENTIALS"


class CredentialStoreError(Exception):
    """The store cannot be used (e.g. a file inside the content root, or unreadable)."""


@dataclass(frozen=True)
class Credential:
    channel: str
    kind: str
    endpoint: str  # the server the token is for (Mastodon base_url, LinkedIn oauth base + author)
    access_token: str = field(repr=False)
    obtained_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None  # None: does not expire (Mastodon)
    refresh_token: str | None = field(default=None, repr=False)
    refresh_expires_at: dt.datetime | None = None
    scope: str | None = None
    account: str | None = None  # who signed in, as the platform names them
    client_id: str | None = None  # Mastodon: the app registered on the instance
    client_secret: str | None = field(default=None, repr=False)
    broken: str | None = None  # why and when the platform refused the token

    def __post_init__(self) -> None:
        register(self.access_token, self.refresh_token, self.client_secret)

    def to_json(self) -> dict:
        data = asdict(self)
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict) -> "Credential":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("obtained_at", "expires_at", "refresh_expires_at"):
            if values.get(key):
                values[key] = dt.datetime.fromisoformat(values[key])
        return cls(**values)


class CredentialStore(Protocol):
    description: str

    def get(self, channel: str) -> Credential | None: ...

    def put(self, credential: Credential) -> None: ...


def default_path() -> Path:
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    import click  # typer's own dependency; its app dir honours XDG_CONFIG_HOME (and macOS/Windows)

    return Path(click.get_app_dir("dissemination")) / "credentials.json"


class FileStore:
    """A 0600 JSON file: {channel id: credential}. Writers hold an exclusive lock, so two publish
    runs refreshing at once cannot lose each other's token."""

    def __init__(self, path: Path | None = None, root: Path | None = None) -> None:
        self.path = (path or default_path()).absolute()
        if root is not None and self.path.resolve().is_relative_to(root.resolve()):
            raise CredentialStoreError(
                f"{self.path} is inside the content root {root}: tokens must never be committed; "
                f"point {STORE_ENV} at a file outside it")
        self.description = f"the file {self.path}"

    def _read(self) -> dict:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CredentialStoreError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise CredentialStoreError(f"{self.path} is not valid JSON; remove it and sign in again") from None
        return data if isinstance(data, dict) else {}

    def get(self, channel: str) -> Credential | None:
        data = self._read().get(channel)
        return Credential.from_json(data) if isinstance(data, dict) else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.path.parent / ".credentials.lock", "a") as lock:
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - not POSIX: no concurrent writers to guard against
                pass
            yield

    def put(self, credential: Credential) -> None:
        with self._locked():
            data = self._read()
            data[credential.channel] = credential.to_json()
            write_atomically(self.path, json.dumps(data, indent=2), mode=0o600)


class KeyringStore:
    """One keyring entry per channel (service "dissemination"), holding the credential as JSON."""

    SERVICE = "dissemination"

    def __init__(self, keyring) -> None:
        self.keyring = keyring
        self.description = f"the system keyring ({type(keyring.get_keyring()).__name__}, service '{self.SERVICE}')"

    def get(self, channel: str) -> Credential | None:
        try:
            value = self.keyring.get_password(self.SERVICE, channel)
        except Exception as exc:  # keyring backends raise their own errors (locked, D-Bus gone)
            raise CredentialStoreError(f"cannot read the system keyring ({type(exc).__name__})") from None
        return Credential.from_json(json.loads(value)) if value else None

    def put(self, credential: Credential) -> None:
        try:
            self.keyring.set_password(self.SERVICE, credential.channel, json.dumps(credential.to_json()))
        except Exception as exc:
            raise CredentialStoreError(f"cannot write to the system keyring ({type(exc).__name__})") from None


def _usable_keyring():
    try:
        import keyring
    except ImportError:
        return None
    # the "fail" and "null" backends (priority 0 and below) are what keyring offers without one
    return keyring if getattr(keyring.get_keyring(), "priority", 0) >= 1 else None


def default_store(root: Path | None = None) -> CredentialStore:
    """The file named by DISSEMINATION_CREDENTIALS if set, else the system keyring when there is a
    usable one, else the credentials file under the user's config directory."""
    if not os.environ.get(STORE_ENV):
        keyring = _usable_keyring()
        if keyring is not None:
            return KeyringStore(keyring)
    return FileStore(root=root)


@dataclass
class Token:
    """The token a channel publishes with, and where it came from (named in messages instead of
    the value)."""

    value: str = field(repr=False)
    source: str  # e.g. "the token in MASTODON_TOKEN" or "the stored token of channel 'x'"
    credential: Credential | None = None  # when it came from a store
    store: CredentialStore | None = None

    def __post_init__(self) -> None:
        register(self.value)

    @property
    def from_environment(self) -> bool:
        return self.credential is None

    def refused(self, reason: str, now: dt.datetime | None = None) -> None:
        """Remember that the platform refused a stored token, so `status` shows it until someone
        signs in again. An environment token cannot be marked; the next preflight tells."""
        if self.credential is None or self.store is None:
            return
        when = (now or dt.datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
        self.credential = replace(self.credential, broken=f"{reason} (at {when})")
        with contextlib.suppress(CredentialStoreError, OSError):
            self.store.put(self.credential)

    def renewed(self, credential: Credential) -> None:
        self.credential = credential
        self.value = credential.access_token
        register(self.value)
        if self.store is not None:
            self.store.put(credential)


def auth_command(kind: str, channel: str) -> str:
    return f"dissemination auth {kind} {channel}"


def token_for(channel: str, endpoint: str, token_env: str | None,
              store: CredentialStore | None) -> tuple[Token | None, str | None]:
    """The token to publish with, or why there is none (said to the user)."""
    if token_env and os.environ.get(token_env):
        return Token(os.environ[token_env], f"the token in {token_env}"), None
    unset = f"{token_env} not set" if token_env else "no token_env"
    if store is None:
        return None, unset
    try:
        credential = store.get(channel)
    except CredentialStoreError as exc:
        return None, f"{unset} and {exc}"
    if credential is None:
        return None, f"{unset}" + (" and nothing stored by `dissemination auth`" if not token_env else "")
    if credential.endpoint != endpoint:
        return None, f"{unset} and the stored token is for {credential.endpoint}, not {endpoint}"
    return Token(credential.access_token, f"the stored token of channel '{channel}'", credential, store), None
