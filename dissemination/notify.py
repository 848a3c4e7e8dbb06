"""Tell people when publishing goes wrong, through Apprise (e-mail, Matrix, Teams, Slack, ntfy, a
JSON webhook, ...): used by the Prefect flows when a run fails and by `dissemination serve`.

The targets are configured once, in the environment of whatever runs the steps (a Prefect worker,
`serve`): `DISSEMINATION_NOTIFY` holds one or more Apprise URLs separated by spaces or commas, e.g.
`mailtos://user:pass@mail.example.org?to=redactie@example.org ntfy://ntfy.sh/roadmap-publish`.
Not in programme.yaml: most Apprise URLs carry a token or password, which must not live in git.
"""

from __future__ import annotations

import logging
import os
import re

log = logging.getLogger("dissemination.notify")

ENV = "DISSEMINATION_NOTIFY"


def configured_urls() -> list[str]:
    return [url for url in re.split(r"[\s,]+", os.environ.get(ENV, "")) if url]


def notify(title: str, body: str, urls: list[str] | None = None) -> bool:
    """Send one notification to `urls` (default: $DISSEMINATION_NOTIFY). True when every target
    took it; False when nothing is configured or a target failed (logged, never raised: a broken
    notifier must not stop publishing). URLs are never logged, they may hold secrets."""
    targets = configured_urls() if urls is None else urls
    if not targets:
        return False
    import apprise

    sender = apprise.Apprise()
    unusable = [i for i, url in enumerate(targets, 1) if not sender.add(url)]
    if unusable:
        log.error("notify: target(s) %s of %s are not valid Apprise URLs", ", ".join(map(str, unusable)),
                  ENV if urls is None else "the given URLs")
    if not len(sender):
        return False
    try:
        sent = bool(sender.notify(title=title, body=body))
    except Exception as exc:  # a plugin's own error: report it, keep publishing
        log.error("notify: sending failed: %s", type(exc).__name__)
        return False
    if not sent:
        log.error("notify: at least one target did not accept the notification %r", title)
    return sent and not unusable
