"""The publish step: every due item once, in batches of claims under leases, safe to run in
several processes at the same time. Read top to bottom: open and preflight each channel, mark
what is past its tolerance as missed, then claim, send (or read back) and record, batch by batch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dissemination.ledger import Ledger
from dissemination.load.project import load_channels
from dissemination.problems import ContentErrors
from dissemination.publish.channels import Health, PublishError, ReadBackError, bind_channel, open_channel
from dissemination.publish.credentials import CredentialStore
from dissemination.records import Claim
from dissemination.redact import redact

log = logging.getLogger("dissemination")
UTC = dt.timezone.utc
MAX_ATTEMPTS = 8
FAULT_ENV = "DISSEMINATION_FAULT"  # crash tests only: kill this process at a named point


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"



@dataclass
class PublishReport:
    published: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # outcome unknown and not found out: a person decides
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # channels that publish now but need attention soon
    unusable: list[str] = field(default_factory=list)  # "channel: reason" of channels that failed their preflight


def _backoff(attempt: int) -> dt.timedelta:
    return dt.timedelta(minutes=min(2 ** attempt, 60))


# Read back a little before the platform forgets the key: clocks differ, and a request sent at the
# edge may be stored after it.
READ_BACK_MARGIN = dt.timedelta(minutes=10)


def resolve_command(item_id: str) -> str:
    return (f"`dissemination resolve {item_id} --published URL --by NAME` or "
            f"`dissemination resolve {item_id} --absent --by NAME`")


def _read_back_since(channel: object, claim: Claim, now: dt.datetime) -> dt.datetime | None:
    """When an earlier attempt may have published the item and the platform may no longer
    recognise a repeat, only reading the account's posts can tell: from this moment (None: no
    need to read back)."""
    retention = getattr(getattr(channel, "capabilities", None), "key_retention", None)
    first = claim.first_claimed_at
    if claim.outcome_unknown and retention is not None and first is not None \
            and now - first >= retention - READ_BACK_MARGIN:
        return first
    return None


def publish_due(root: Path, ledger: Ledger, now: dt.datetime | None = None, worker: str | None = None,
                batch: int = 50, lease: dt.timedelta = dt.timedelta(minutes=5),
                credentials: CredentialStore | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> PublishReport:
    """Publish every due item once. Safe to run in several processes at the same time.
    `credentials`: where `dissemination auth` stored tokens (default: the user's credentials file);
    `progress(label, done, total)` hears about long sends (newsletters)."""
    channels_file, problems = load_channels(root)
    if channels_file is None or problems.errors:
        raise ContentErrors(problems.errors)
    configured = channels_file.channels
    worker = worker or worker_id()
    fixed_now = now
    report = PublishReport()
    channels = {}
    unhealthy = set()
    clock = (lambda: fixed_now) if fixed_now else (lambda: dt.datetime.now(UTC))
    for channel_id, config in configured.items():
        opened = open_channel(channel_id, config, root, credentials)
        channels[channel_id] = opened.channel
        bind_channel(opened.channel, ledger, clock, lease, progress)
        if opened.note:
            report.notes.append(opened.note)
        health = opened.channel.preflight()
        _keep_limits(opened.channel, ledger, clock())
        if not health.ok:
            # Its items stay planned (and may become missed): better than sending into a failure.
            unhealthy.add(channel_id)
            report.unusable.append(f"{channel_id}: {health.message}")
            report.notes.append(f"{channel_id}: not publishing: {health.message}")
            log.error("preflight failed for %s: %s", channel_id, health.message)
        elif health.warning:
            report.warnings.append(f"{channel_id}: {health.warning}")
            log.warning("%s: %s", channel_id, health.warning)
    report.missed = ledger.mark_missed(clock(), {c: cfg.late_tolerance for c, cfg in configured.items()})
    if report.missed:
        log.warning("%d item(s) missed: past their late tolerance, not posted late (see `dissemination status`)",
                    len(report.missed))
    while True:
        claims = ledger.claim_due(worker, clock(), limit=batch, lease=lease,
                                  channels=[c for c in channels if c not in unhealthy] if unhealthy else None)
        if not claims:
            break
        _fault("after_claim")
        for claim in claims:
            channel = channels.get(claim.channel)
            if channel is None:
                ledger.record_failed(claim, clock(), f"channel '{claim.channel}' is no longer configured")
                report.failed.append(claim.id)
                continue
            try:
                _fault("before_remote")
                receipt = None
                since = _read_back_since(channel, claim, clock())
                if since is not None:
                    try:
                        receipt = channel.read_back(claim, since)
                    except ReadBackError as exc:
                        reason = (f"outcome unknown since {since:%Y-%m-%d %H:%M} UTC and "
                                  f"{claim.channel} no longer recognises a repeat; reading back failed ({exc}): "
                                  f"look at the account, then run {resolve_command(claim.id)}")
                        ledger.record_waiting(claim, clock(), reason)
                        report.waiting.append(claim.id)
                        log.error("waiting for a person: %s on %s: %s", claim.id, claim.channel, reason)
                        continue
                    if receipt is not None:
                        log.info("read back: %s was published on %s (%s)", claim.id, claim.channel, receipt.remote_id)
                if receipt is None:  # never sent, or read-back proved it absent
                    receipt = channel.publish(claim)
                _fault("after_remote")
            except PublishError as exc:
                if not exc.permanent and not exc.bounded and claim.attempt_count >= MAX_ATTEMPTS and (
                        exc.outcome_unknown or claim.outcome_unknown):
                    # Given up, but it may exist: failing it would claim it never went out.
                    reason = (f"gave up after {claim.attempt_count} attempts ({exc.reason}); an earlier attempt "
                              f"may have published it: look at the account, then run {resolve_command(claim.id)}")
                    ledger.record_waiting(claim, clock(), reason)
                    report.waiting.append(claim.id)
                    log.error("waiting for a person: %s on %s: %s", claim.id, claim.channel, reason)
                elif exc.permanent or (claim.attempt_count >= MAX_ATTEMPTS and not exc.bounded):
                    reason = exc.reason if exc.permanent else f"gave up after {claim.attempt_count} attempts: {exc.reason}"
                    ledger.record_failed(claim, clock(), reason)
                    report.failed.append(claim.id)
                    log.error("failed: %s on %s: %s", claim.id, claim.channel, reason)
                else:
                    ledger.record_retry(claim, clock(), exc.reason, exc.retry_after or _backoff(claim.attempt_count),
                                        outcome_unknown=exc.outcome_unknown)
                    report.retried.append(claim.id)
                    log.warning("retry later: %s on %s: %s", claim.id, claim.channel, exc.reason)
                continue
            except Exception as exc:  # unforeseen: the request may have gone out
                detail = redact(f"{type(exc).__name__}: {exc}")
                if claim.attempt_count >= MAX_ATTEMPTS:  # it counts towards the limit like any failure
                    reason = f"gave up after {claim.attempt_count} attempts: {detail}"
                    ledger.record_failed(claim, clock(), reason)
                    report.failed.append(claim.id)
                    log.error("failed: %s on %s: %s", claim.id, claim.channel, reason)
                    continue
                ledger.record_retry(claim, clock(), detail, _backoff(claim.attempt_count), outcome_unknown=True)
                report.retried.append(claim.id)
                log.warning("outcome unknown, will retry with the same key: %s: %s", claim.id, detail)
                continue
            if ledger.record_published(claim, receipt, clock()):
                report.published.append(claim.id)
                log.info("published %s on %s (%s)", claim.id, claim.channel, receipt.remote_id)
            _fault("after_record")
    return report



@dataclass
class ChannelHealth:
    channel: str
    kind: str  # the configured kind (mastodon, linkedin, ...)
    publishes_to: str  # the kind actually used: "outbox" when credentials are missing
    health: Health
    note: str | None

    def as_json(self) -> dict[str, object]:
        expires = self.health.expires_at
        return {"channel": self.channel, "kind": self.kind, "publishes_to": self.publishes_to, "ok": self.health.ok,
                "message": self.health.message, "warning": self.health.warning, "note": self.note,
                "credential_broken": self.health.credential_broken,
                "expires_at": expires.isoformat().replace("+00:00", "Z") if expires else None}


def _keep_limits(channel: object, ledger: Ledger | None, now: dt.datetime) -> None:
    """The limits a preflight read from the channel's server, for `check`, rendering and `preview`."""
    live = getattr(channel, "live", None)
    if live is not None and ledger is not None:
        ledger.store_limits(dataclasses.replace(live, read_at=now))


def channel_health(root: Path, credentials: CredentialStore | None = None,
                   ledger: Ledger | None = None) -> list[ChannelHealth]:
    """Each configured channel's preflight, as `status` shows it (the same check a publish run
    makes); the limits it reads are kept in `ledger`."""
    channels_file, problems = load_channels(root)
    if channels_file is None or problems.errors:
        raise ContentErrors(problems.errors)
    rows = []
    for channel_id, config in channels_file.channels.items():
        opened = open_channel(channel_id, config, root, credentials)
        # An e-mail channel without its secrets is itself and writes .eml files: the note says so
        publishes_to = "outbox" if opened.note else opened.channel.kind
        health = opened.channel.preflight()
        _keep_limits(opened.channel, ledger, dt.datetime.now(UTC))
        rows.append(ChannelHealth(channel_id, config.kind, publishes_to, health, opened.note))
    return rows
