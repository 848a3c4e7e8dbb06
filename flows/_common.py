"""Shared wiring for the flows: which errors are worth a retry, the ledger to use, and where
channel credentials live under Prefect."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy.exc import OperationalError

from dissemination.ledger import Ledger
from dissemination.publish.credentials import Credential, CredentialStore, CredentialStoreError, default_store

# Worth a retry: the database or the file system was briefly unavailable. Content errors and
# bugs are not: retrying them only repeats the failure.
TRANSIENT = (OperationalError, ConnectionError, TimeoutError)


def transient_only(task, task_run, state) -> bool:  # type: ignore[no-untyped-def]
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:
        return False
    return False


def ledger_for(root: str) -> Ledger:
    return Ledger.for_root(Path(root).resolve())


class PrefectSecretStore:
    """Channel credentials in Prefect Secret blocks (`dissemination-credentials-<channel>`), for
    workers that have no user config directory worth the name. A renewed token is written back to
    the block. Falls back to the user's credentials file (where `dissemination auth` wrote) for a
    channel that has no block yet; `python -m flows.credentials CHANNEL` copies it into a block."""

    PREFIX = "dissemination-credentials-"

    def __init__(self, fallback: CredentialStore | None = None) -> None:
        self.fallback = fallback
        self.description = f"the Prefect Secret block {self.PREFIX}<channel>"

    @classmethod
    def block_name(cls, channel: str) -> str:
        # block names allow lower-case letters, digits and dashes only
        return cls.PREFIX + re.sub(r"[^a-z0-9-]", "-", channel.lower())

    def get(self, channel: str) -> Credential | None:
        from prefect.blocks.system import Secret

        try:
            secret = Secret.load(self.block_name(channel))
        except ValueError:  # no such block
            return self.fallback.get(channel) if self.fallback else None
        value = secret.get()
        return Credential.from_json(json.loads(value) if isinstance(value, str) else value)

    def put(self, credential: Credential) -> None:
        from prefect.blocks.system import Secret

        Secret(value=json.dumps(credential.to_json())).save(self.block_name(credential.channel), overwrite=True)


def credential_store() -> PrefectSecretStore:
    try:
        fallback = default_store()
    except CredentialStoreError:
        fallback = None
    return PrefectSecretStore(fallback)
