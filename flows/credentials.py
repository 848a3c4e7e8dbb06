"""Copy channel credentials that `dissemination auth` stored in this user's credential store (keyring or credentials file) into
Prefect Secret blocks, where the flows read (and renew) them:

    dissemination auth linkedin linkedin      # signs in; stores in ~/.config/dissemination/
    python -m flows.credentials linkedin      # -> Secret block dissemination-credentials-linkedin
"""

from __future__ import annotations

import sys

from dissemination.publish.credentials import default_store
from flows._common import PrefectSecretStore


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


if __name__ == "__main__":
    for name in upload(sys.argv[1:]):
        print(f"stored in Prefect Secret block {name}")
