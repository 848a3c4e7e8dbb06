"""The steps as jobs: plan, publish what is due, report status. The CLI, the embedded scheduler
(`serve`) and the Prefect flows all call these; none of them adds logic of its own."""

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
from typing import TYPE_CHECKING, Callable
from zoneinfo import ZoneInfo

from dissemination.check import CheckResult, ledger_facts, run_check
from dissemination.ledger import Ledger, PlanStats
from dissemination.load.project import load_channels
from dissemination.partners import KIT_CAMPAIGN
from dissemination.load.models import CampaignStatus
from dissemination.plan.planner import Held, plan_items, write_event_calendar
from dissemination.problems import ContentErrors, Problem, SharedContentErrors
from dissemination.ledger import Claim
from dissemination.publish.channels import Health, PublishError, ReadBackError, bind_channel, open_channel
from dissemination.publish.credentials import CredentialStore
from dissemination.redact import redact

if TYPE_CHECKING:
    from dissemination.publish.bouncebox import BounceRun

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
class PlanReport:
    check: CheckResult
    stats: PlanStats
    held: list[Held]
    calendars: list[Path]
    # Campaigns not planned because of errors in their own files: they keep their previous plan.
    failed: dict[str, list[Problem]] = field(default_factory=dict)

    @property
    def failed_problems(self) -> list[Problem]:
        return sorted(p for problems in self.failed.values() for p in problems)


def plan(root: Path, ledger: Ledger, now: dt.datetime, checked: CheckResult | None = None) -> PlanReport:
    """Check the content (unless `checked` already holds the result), expand approved campaigns
    into items, and make the ledger match.

    Errors isolate: a campaign with errors (in its own file, a knowledge item it uses, or its
    rendering) is not re-planned and keeps the items it had, and every other campaign is planned;
    the report names it (`failed`). Errors in a file every campaign depends on (channels,
    programme, stakeholder maps, templates) raise `SharedContentErrors`: nothing is planned."""
    root = root.resolve()
    result = checked or run_check(root, ledger_facts(ledger))
    failed, shared = split_errors(result)
    if shared:
        raise SharedContentErrors(shared)
    from dissemination.render import Renderer

    items, held, problems = plan_items(result.project, result.slots, Renderer(result.project), skip=set(failed))
    for problem in problems:
        if problem.severity == "error":
            failed.setdefault(_campaign_of_path(problem.path) or "", []).append(problem)
    if "" in failed:  # a rendering error outside any campaign file: a template every campaign may use
        raise SharedContentErrors(failed[""])
    items = [item for item in items if item.campaign not in failed]
    held = [h for h in held if h.campaign not in failed]
    # Partner kits are queued by `kits --send`, not by the plan: re-planning leaves them alone.
    stats = ledger.apply_plan(items, now, keep=set(failed) | {KIT_CAMPAIGN})
    calendars = [path for c in result.project.campaigns.values()
                 if c.meta.event and c.meta.status == CampaignStatus.approved and c.id not in failed
                 and (path := write_event_calendar(c, root))]
    log.info("plan: %d added, %d updated, %d unchanged, %d cancelled, %d held",
             stats.added, stats.updated, stats.unchanged, stats.cancelled, stats.held)
    for campaign, trouble in sorted(failed.items()):
        log.error("plan: campaign %s not planned, %d error(s); its previous plan stands: %s", campaign,
                  len(trouble), "; ".join(str(p) for p in trouble[:3]))
    return PlanReport(result, stats, held, calendars, failed)


CAMPAIGNS_DIR = "campaigns/"
KNOWLEDGE_DIR = "knowledge/"


def _campaign_of_path(path: str) -> str | None:
    if path.startswith(CAMPAIGNS_DIR) and path.endswith(".md") and "/" not in path[len(CAMPAIGNS_DIR):]:
        return path[len(CAMPAIGNS_DIR):-3]  # a campaign's id is its file name (check enforces it)
    return None


def split_errors(result: CheckResult) -> tuple[dict[str, list[Problem]], list[Problem]]:
    """The check's errors as (campaign id -> its errors, errors in shared files). An error in a
    knowledge item belongs to every campaign that features it; one no campaign features stops
    nothing but is still reported (as that item's)."""
    failed: dict[str, list[Problem]] = {}
    shared: list[Problem] = []
    for problem in result.problems.errors:
        campaign = _campaign_of_path(problem.path)
        if campaign is not None:
            failed.setdefault(campaign, []).append(problem)
        elif problem.path.startswith(KNOWLEDGE_DIR):
            item = Path(problem.path).stem
            users = [c.id for c in result.project.campaigns.values()
                     if item in c.meta.knowledge or any(item in p.meta.knowledge for p in c.posts)]
            for campaign in users or [problem.path]:
                failed.setdefault(campaign, []).append(problem)
        else:
            shared.append(problem)
    return failed, shared


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


def _needs_read_back(channel: object, claim: Claim, now: dt.datetime) -> bool:
    """An earlier attempt may have published the item, and the platform may no longer
    recognise a repeat: only reading the account's posts can tell."""
    retention = getattr(getattr(channel, "capabilities", None), "key_retention", None)
    return (claim.outcome_unknown and retention is not None and claim.first_claimed_at is not None
            and now - claim.first_claimed_at >= retention - READ_BACK_MARGIN)


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
                if _needs_read_back(channel, claim, clock()):
                    try:
                        receipt = channel.read_back(claim, claim.first_claimed_at)  # type: ignore[attr-defined]
                    except ReadBackError as exc:
                        reason = (f"outcome unknown since {claim.first_claimed_at:%Y-%m-%d %H:%M} UTC and "
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


def collect_metrics(root: Path, ledger: Ledger, now: dt.datetime | None = None,
                    credentials: CredentialStore | None = None) -> int:
    """Read the engagement of recent publications (see `dissemination.measure`); returns how
    many readings were added."""
    from dissemination.measure import collect_metrics as collect

    return collect(root, ledger, now, credentials=credentials).added


@dataclass
class ChannelHealth:
    channel: str
    kind: str  # the configured kind (mastodon, linkedin, ...)
    publishes_to: str  # the kind actually used: "outbox" when credentials are missing
    health: Health
    note: str | None


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


OVERDUE_AFTER = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class NextSlot:
    """The next moment something goes out: every planned item of one post at that slot."""
    slot: dt.datetime  # UTC
    timezone: str
    campaign: str
    post: str
    channels: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"slot": self.slot.isoformat().replace("+00:00", "Z"), "timezone": self.timezone,
                "local": self.slot.astimezone(ZoneInfo(self.timezone)).isoformat(), "campaign": self.campaign,
                "post": self.post, "channels": list(self.channels)}

    def describe(self) -> str:
        local = self.slot.astimezone(ZoneInfo(self.timezone))
        return (f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} {self.campaign}/{self.post} "
                f"({', '.join(self.channels)})")


def next_slot(ledger: Ledger, now: dt.datetime) -> NextSlot | None:
    """What will be published next after `now`, or None when nothing is planned (held items wait
    for approval and are not counted)."""
    rows = ledger.next_planned(now)
    if not rows:
        return None
    first = rows[0]
    channels = sorted({r["channel"] for r in rows if (r["campaign"], r["post"]) == (first["campaign"], first["post"])})
    return NextSlot(first["slot_utc"].replace(tzinfo=UTC), first["timezone"], first["campaign"], first["post"],
                    tuple(channels))


def status_rows(ledger: Ledger, now: dt.datetime) -> list[dict]:  # type: ignore[type-arg]
    """Items for `status`: overdue and waiting for a person first, then held, then the rest by slot."""
    rows = []
    for row in ledger.items():
        slot = row["slot_utc"].replace(tzinfo=UTC)
        lease = row["lease_expires"].replace(tzinfo=UTC) if row["lease_expires"] else None
        overdue = (row["state"] in ("planned", "unknown") and slot + OVERDUE_AFTER < now) or (
            row["state"] == "claimed" and lease is not None and lease < now)
        rows.append({
            "id": row["id"], "campaign": row["campaign"], "post": row["post"], "audience": row["audience"],
            "channel": row["channel"], "slot": slot.isoformat().replace("+00:00", "Z"),
            "timezone": row["timezone"], "state": row["state"], "overdue": overdue, "reason": row["reason"],
            "attempts": row["attempt_count"], "remote_id": row["remote_id"], "url": row["url"],
        })
    order = {"waiting": 0, "held": 1}  # waiting: a person must look (`dissemination resolve`)
    rows.sort(key=lambda r: (0 if r["overdue"] else order.get(r["state"], 2), r["slot"], r["id"]))
    return rows


@dataclass
class BounceReport:
    channel: str
    soft_bounce_limit: int
    run: "BounceRun | None" = None
    error: str | None = None  # the mailbox could not be read (what to fix)


def read_bounces(root: Path, ledger: Ledger, channel: str | None = None, maildir: Path | None = None,
                 now: Callable[[], dt.datetime] | None = None) -> list[BounceReport]:
    """Read each e-mail channel's bounce mailbox (IMAP, or a Maildir) and apply its reports to
    the ledger (`dissemination.publish.bouncebox`). Channels without a mailbox are skipped unless
    named. Raises ContentErrors for a broken channels.yaml, MissingSecret without the link secret."""
    from dissemination.publish.bouncebox import Bouncebox, BounceboxError
    from dissemination.publish.channels.email import EmailSettings
    from dissemination.publish.tokens import Signer, secret_from_env

    channels_file, problems = load_channels(root)
    if channels_file is None or problems.errors:
        raise ContentErrors(problems.errors)
    chosen = {c: cfg for c, cfg in channels_file.channels.items() if isinstance(cfg, EmailSettings)
              and (c == channel if channel else (maildir is not None or cfg.bounce_imap_host or cfg.bounce_maildir))}
    signer = Signer(secret_from_env())
    clock = now or (lambda: dt.datetime.now(UTC))
    reports = []
    for channel_id, config in chosen.items():
        report = BounceReport(channel_id, config.soft_bounce_limit)
        box = Bouncebox(ledger, signer, channel_id, config, clock)
        folder = maildir or (Path(config.bounce_maildir) if config.bounce_maildir else None)
        try:
            if folder is not None:
                report.run = box.read_maildir(folder if folder.is_absolute() else root / folder)
            elif config.bounce_imap_host:
                report.run = box.read_imap()
            else:
                report.error = "no bounce mailbox (set bounce_imap_host or bounce_maildir)"
        except BounceboxError as exc:
            report.error = str(exc)
        if report.run and report.run.sender:
            log.error("%s: %d bounce report(s) say the receiving server refuses our mail (5.7.x)", channel_id,
                      len(report.run.sender))
        reports.append(report)
    return reports
