"""Copy channel credentials that `dissemination auth` stored in this user's credential store (keyring or credentials file) into
Prefect Secret blocks, where the flows read (and renew) them:

    .venv/bin/dissemination auth linkedin linkedin      # signs in; stores in ~/.config/dissemination/
    .venv/bin/python -m flows.credentials linkedin      # -> Secret block dissemination-credentials-linkedin

and secrets that the steps read from environment variables (the SMTP login named by an e-mail
channel's `username_env`/`password_env`, the unsubscribe secret) from this shell's environment:

    .venv/bin/python -m flows.credentials --env SMTP_PASSWORD DISSEMINATION_UNSUBSCRIBE_SECRET
    # -> Secret blocks dissemination-env-smtp-password, dissemination-env-dissemination-unsubscribe-secret
"""

from __future__ import annotations

import os
import sys

from dissemination.publish.credentials import default_store
from flows._common import PrefectSecretStore, env_block_name


def upload(channels: list[str]) -> list[str]:
    """The block names written; a channel with nothing stored is an error, said plainly."""
    source, target = default_store(), PrefectSecretStore()
    written = []
    for channel in channels:
        credential = source.get(channel)
        if credential is None:
            raise SystemExit(f"nothing stored for channel '{channel}' in {source.description}: "
                             f"run `dissemination auth <kind> {channel}` first")
        target.put(credential)
        written.append(target.block_name(channel))
    return written


def upload_env(variables: list[str]) -> list[str]:
    """The block names written, one per environment variable; an unset variable is an error."""
    from prefect.blocks.system import Secret

    missing = [name for name in variables if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"not set in this environment: {', '.join(missing)} (export them first; "
                         "their values are never printed)")
    for name in variables:
        Secret(value=os.environ[name]).save(env_block_name(name), overwrite=True)
    return [env_block_name(name) for name in variables]


if __name__ == "__main__":
    args = sys.argv[1:]
    written = upload_env(args[1:]) if args[:1] == ["--env"] else upload(args)
    for name in written:
        print(f"stored in Prefect Secret block {name}")
