"""Shared wiring for the flows: which errors are worth a retry, the ledger to use, and where
channel credentials live under Prefect."""

from __future__ import annotations

import datetime as dt
import json
import os
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


def content_root(root: str | None) -> Path:
    """The content root of a run: the `root` parameter when given, else DISSEMINATION_HOME as the
    *worker* sees it when the run starts, else the working directory. Read at run time, so one
    deployment works on every worker, wherever its content lives."""
    return Path(root or os.environ.get("DISSEMINATION_HOME") or ".").resolve()


def ledger_for(root: str | Path | None) -> Ledger:
    return Ledger.for_root(content_root(str(root) if root else None))


def run_moment(now: str | None) -> dt.datetime:
    """The `now` parameter of a rehearsal (ISO 8601 with offset, as the CLI's --now), or the clock."""
    if not now:
        return dt.datetime.now(dt.timezone.utc)
    try:
        moment = dt.datetime.fromisoformat(now)
    except ValueError:
        raise ValueError(f"now={now!r} is not an ISO 8601 moment (write e.g. 2027-03-02T09:31+01:00)") from None
    if moment.tzinfo is None:
        raise ValueError(f"now={now!r} has no UTC offset (write e.g. 2027-03-02T09:31+01:00)")
    return moment


def run_name(label: str) -> str:
    """A readable flow run name: `publish_due 2026-12-02 09:35 CET`, or `... (rehearsal ...)`
    for a run with `now`. Evaluated by Prefect when the run starts (`flow_run_name=`)."""
    from zoneinfo import ZoneInfo

    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    local = ZoneInfo("Europe/Amsterdam")
    when = flow_run.scheduled_start_time or dt.datetime.now(dt.timezone.utc)
    name = f"{label} {when.astimezone(local):%Y-%m-%d %H:%M %Z}"
    if params.get("now"):
        name += f" (rehearsal at {params['now']})"
    return name


class RunFailed(Exception):
    """Ends a flow run Failed: items failed permanently or a channel could not be used. The
    message says which, so the notification and the Prefect UI both show it."""


def notify_failure(flow, flow_run, state) -> None:  # type: ignore[no-untyped-def]
    """`on_failure` hook: tell people through Apprise ($DISSEMINATION_NOTIFY on the worker; see
    dissemination/notify.py). A crash, which the dying process cannot report, is the automation's
    (prefect.yaml, deployment `notify`)."""
    from dissemination.notify import notify

    notify(f"dissemination: {flow_run.name} {state.name}",
           f"Flow {flow.name}, run {flow_run.name} ({flow_run.id}) ended {state.name}: {state.message or ''}")


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


ENV_BLOCK_PREFIX = "dissemination-env-"


def env_block_name(variable: str) -> str:
    """The Secret block that stands in for an environment variable: SMTP_PASSWORD ->
    dissemination-env-smtp-password."""
    return ENV_BLOCK_PREFIX + re.sub(r"[^a-z0-9-]", "-", variable.lower())


def secret_variables(root: Path) -> list[str]:
    """The environment variables a run may need secrets from: the unsubscribe secret and each
    e-mail channel's SMTP login (`username_env`, `password_env` in channels.yaml)."""
    from dissemination.load.project import load_channels
    from dissemination.publish.tokens import SECRET_ENV

    channels, _ = load_channels(root)
    names = [SECRET_ENV]
    for config in (channels.channels.values() if channels else []):
        names += config.secret_envs()
    return names


def secrets_into_environment(root: Path) -> list[str]:
    """Fill each of `secret_variables` that the worker's environment lacks from its Secret block
    (`python -m flows.credentials --env NAME` writes them), so the SMTP login and the unsubscribe
    secret can live in Prefect like the channel tokens. The worker's environment wins. Scoped to the
    run: the process worker runs every flow run in a process of its own. Returns the names filled."""
    from prefect.blocks.system import Secret

    filled = []
    for name in secret_variables(root):
        if os.environ.get(name):
            continue
        try:
            value = Secret.load(env_block_name(name)).get()
        except ValueError:  # no such block: the step will say what is missing, as without Prefect
            continue
        os.environ[name] = str(value)
        filled.append(name)
    return filled


def credential_store() -> PrefectSecretStore:
    try:
        fallback = default_store()
    except CredentialStoreError:
        fallback = None
    return PrefectSecretStore(fallback)
