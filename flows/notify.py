"""Prefect flow `notify`: send one notification through the project's notifier (Apprise URLs in
$DISSEMINATION_NOTIFY on the worker, dissemination/notify.py). prefect.yaml attaches the
automations to its deployment: a crashed flow run (its process died, so its own failure hook could
not speak) and a `publish_due` that has not completed for 15 minutes run this flow."""

from __future__ import annotations

from prefect import flow, get_run_logger

from dissemination.notify import configured_urls, notify


@flow(name="notify", timeout_seconds=120)
def notify_flow(title: str, body: str) -> bool:
    logger = get_run_logger()
    if not configured_urls():
        logger.error("notify: DISSEMINATION_NOTIFY is not set on this worker; not sent: %s", title)
        return False
    sent = notify(title, body)
    logger.info("notify: %s: %s", "sent" if sent else "NOT sent (see the log above)", title)
    return sent


if __name__ == "__main__":
    notify_flow("dissemination: test", "A test notification from flows/notify.py.")
