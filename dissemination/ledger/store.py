"""The ledger store: plan items in, claim them under a lease, record what happened.

Exactly-once rests on three rules:
1. An item is only sent by the worker that holds its lease (claimed in one transaction; on
   PostgreSQL with `FOR UPDATE SKIP LOCKED`, on SQLite inside `BEGIN IMMEDIATE`).
2. A lease that expires (the worker crashed) is claimed again, and the retry carries the same
   idempotency key, so the channel can recognise the repeat (Mastodon's Idempotency-Key,
   LinkedIn's duplicate detection, the outbox's file name).
3. Re-planning never touches an item the outside world may have seen (claimed, unknown,
   published, failed, missed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, and_, bindparam, create_engine, event, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection

from dissemination.ledger.schema import IN_FLIGHT, SETTLED, attempts, items, receipts, snapshots

UTC = dt.timezone.utc
MIGRATIONS = Path(__file__).parent / "migrations"
DB_URL_ENV = "DISSEMINATION_DB_URL"


def utc_naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None)


def as_utc(stored: dt.datetime | None) -> dt.datetime | None:
    return stored.replace(tzinfo=UTC) if stored is not None else None


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class PlannedItem:
    """One publication the plan wants: (campaign, post, audience, channel, occurrence)."""

    campaign: str
    post: str
    audience: str
    channel: str
    occurrence: int
    slot_utc: dt.datetime
    timezone: str
    payload: dict[str, Any]
    knowledge: str | None = None
    state: str = "planned"  # or "held"
    reason: str | None = None

    @property
    def idempotency_key(self) -> str:
        # Identity only: never the slot time or the text, so an edited or rescheduled post keeps
        # its key and a published one is never sent again.
        identity = "\x1f".join([self.campaign, self.post, self.audience, self.channel, str(self.occurrence)])
        return hashlib.sha256(identity.encode()).hexdigest()[:40]

    @property
    def id(self) -> str:
        return self.idempotency_key[:16]


@dataclass(frozen=True)
class Claim:
    id: str
    idempotency_key: str
    campaign: str
    post: str
    audience: str
    channel: str
    slot_utc: dt.datetime
    payload: dict[str, Any]
    attempt_id: int
    attempt_count: int
    worker: str


@dataclass(frozen=True)
class Receipt:
    remote_id: str
    url: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """One reading of one metric of a published item; `value` is None when not `available`."""
    item_id: str
    metric: str
    value: float | None
    fetched_at: dt.datetime
    source: str
    available: bool = True
    reason: str | None = None

    @classmethod
    def unavailable(cls, item_id: str, metric: str, fetched_at: dt.datetime, source: str,
                    reason: str) -> "Snapshot":
        return cls(item_id, metric, None, fetched_at, source, False, reason)


@dataclass
class PlanStats:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    held: int = 0


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = _driver_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = create_engine(self.url, connect_args={"timeout": 60})
            _sqlite_immediate_transactions(self.engine)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)
        self._migrate()

    @classmethod
    def for_root(cls, root: Path) -> "Ledger":
        url = os.environ.get(DB_URL_ENV)
        if not url:
            folder = root / ".dissemination"
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder / 'ledger.db'}"
        return cls(url)

    def close(self) -> None:
        self.engine.dispose()

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Several workers may start at once on a fresh database.
                conn.execute(text("SELECT pg_advisory_xact_lock(727465)"))
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    # --- planning ------------------------------------------------------------------------------

    def apply_plan(self, planned: Iterable[PlannedItem], now: dt.datetime,
                   campaigns: Iterable[str] | None = None) -> PlanStats:
        """Make the ledger match the plan. Items of `campaigns` (default: all) that the plan no
        longer contains are cancelled, unless the outside world may have seen them."""
        stats = PlanStats()
        stamp = utc_naive(now)
        wanted = {p.id: p for p in planned}
        with self.engine.begin() as conn:
            query = select(items)
            if campaigns is not None:
                query = query.where(items.c.campaign.in_(list(campaigns)))
            existing = {row.id: row for row in conn.execute(query)}
            for item_id, p in wanted.items():
                values = {
                    "slot_utc": utc_naive(p.slot_utc), "timezone": p.timezone, "knowledge": p.knowledge,
                    "payload": json.dumps(p.payload, ensure_ascii=False), "payload_digest": digest(p.payload),
                    "state": p.state, "reason": p.reason,
                }
                row = existing.get(item_id)
                if row is None:
                    conn.execute(insert(items).values(
                        id=item_id, idempotency_key=p.idempotency_key, campaign=p.campaign, post=p.post,
                        audience=p.audience, channel=p.channel, occurrence=p.occurrence, attempt_count=0,
                        planned_at=stamp, updated_at=stamp, **values))
                    stats.added += 1
                elif row.state in SETTLED or row.state in IN_FLIGHT:
                    stats.unchanged += 1  # the outside world may have seen it: never touched
                    continue
                elif all(getattr(row, k) == v for k, v in values.items()):
                    stats.unchanged += 1
                else:
                    conn.execute(update(items).where(items.c.id == item_id).values(updated_at=stamp, **values))
                    stats.updated += 1
                if p.state == "held":
                    stats.held += 1
            gone = [r.id for r in existing.values() if r.id not in wanted and r.state in ("planned", "held")]
            if gone:
                conn.execute(update(items).where(items.c.id.in_(gone)).values(
                    state="cancelled", reason="no longer in the approved plan", updated_at=stamp))
                stats.cancelled = len(gone)
        return stats

    # --- publishing ----------------------------------------------------------------------------

    def mark_missed(self, now: dt.datetime, tolerances: dict[str, dt.timedelta],
                    default: dt.timedelta = dt.timedelta(hours=2)) -> list[str]:
        """Items never attempted and more than their channel's tolerance past the slot are
        missed: reported, not posted late. An item whose first attempt was in time may still be
        retried later with the same key."""
        missed: list[str] = []
        with self.engine.begin() as conn:
            rows = conn.execute(select(items.c.id, items.c.channel, items.c.slot_utc).where(
                items.c.state == "planned", items.c.first_claimed_at.is_(None),
                items.c.slot_utc < utc_naive(now))).all()
            for row in rows:
                tolerance = tolerances.get(row.channel, default)
                if as_utc(row.slot_utc) + tolerance < now:
                    missed.append(row.id)
            if missed:
                conn.execute(update(items).where(items.c.id.in_(missed), items.c.state == "planned").values(
                    state="missed", reason="more than the late tolerance past its slot; not posted late",
                    updated_at=utc_naive(now)))
        return missed

    def claim_due(self, worker: str, now: dt.datetime, limit: int = 100,
                  lease: dt.timedelta = dt.timedelta(minutes=5), channels: Iterable[str] | None = None) -> list[Claim]:
        stamp = utc_naive(now)
        due = or_(
            and_(items.c.state == "planned", items.c.slot_utc <= stamp,
                 or_(items.c.lease_expires.is_(None), items.c.lease_expires <= stamp)),
            and_(items.c.state.in_(IN_FLIGHT), items.c.lease_expires <= stamp),
        )
        query = select(items).where(due).order_by(items.c.slot_utc, items.c.id).limit(limit)
        if channels is not None:
            query = query.where(items.c.channel.in_(list(channels)))
        if not self.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        claims: list[Claim] = []
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return claims
            ids = [row.id for row in rows]
            # The rows are ours for this transaction (SKIP LOCKED on PostgreSQL, the write lock
            # of BEGIN IMMEDIATE on SQLite); `due` is repeated as a belt-and-braces guard.
            claimed = conn.execute(update(items).where(items.c.id.in_(ids), due).values(
                state="claimed", lease_owner=worker, lease_expires=stamp + lease,
                first_claimed_at=func.coalesce(items.c.first_claimed_at, stamp),
                attempt_count=items.c.attempt_count + 1, updated_at=stamp)).rowcount
            if claimed != len(ids):
                raise RuntimeError(f"claimed {claimed} of {len(ids)} locked rows; refusing to continue")
            attempt_ids = {r.item_id: r.id for r in conn.execute(
                insert(attempts).returning(attempts.c.id, attempts.c.item_id, sort_by_parameter_order=True),
                [{"item_id": i, "worker": worker, "started_at": stamp, "outcome": "started"} for i in ids])}
            for row in rows:
                claims.append(Claim(
                    id=row.id, idempotency_key=row.idempotency_key, campaign=row.campaign, post=row.post,
                    audience=row.audience, channel=row.channel, slot_utc=as_utc(row.slot_utc),
                    payload=json.loads(row.payload), attempt_id=attempt_ids[row.id],
                    attempt_count=row.attempt_count + 1, worker=worker))
        return claims

    def _finish(self, conn: Connection, claim: Claim, now: dt.datetime, outcome: str, detail: str | None) -> None:
        conn.execute(_FINISH_ATTEMPT, {"b_attempt": claim.attempt_id, "b_now": utc_naive(now),
                                       "b_outcome": outcome, "b_detail": detail})

    def _mine(self, claim: Claim):  # type: ignore[no-untyped-def]
        return and_(items.c.id == claim.id, items.c.state == "claimed", items.c.lease_owner == claim.worker)

    def extend_lease(self, claim: Claim, until: dt.datetime) -> bool:
        """Keep a long publication (a newsletter to many recipients) ours. False when the lease
        was lost: the caller must stop sending."""
        with self.engine.begin() as conn:
            return conn.execute(update(items).where(self._mine(claim)).values(
                lease_expires=utc_naive(until))).rowcount == 1

    def record_published(self, claim: Claim, receipt: Receipt, now: dt.datetime) -> bool:
        """Record success. False when the lease was lost meanwhile (another worker reclaimed
        the item; it retries with the same key, so the channel returns the same receipt)."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            done = conn.execute(_MARK_PUBLISHED, {"b_id": claim.id, "b_worker": claim.worker, "b_now": stamp}).rowcount == 1
            if done:
                conn.execute(_ADD_RECEIPT, {"item_id": claim.id, "remote_id": receipt.remote_id,
                                            "url": receipt.url, "published_at": stamp})
            self._finish(conn, claim, now, "published" if done else "lease-lost", receipt.remote_id)
        return done

    def record_retry(self, claim: Claim, now: dt.datetime, detail: str, after: dt.timedelta,
                     outcome_unknown: bool = False) -> None:
        """A transient failure: try again after `after`, with the same key. `outcome_unknown`
        when the request may have reached the channel (timeout, 5xx after sending)."""
        with self.engine.begin() as conn:
            conn.execute(update(items).where(self._mine(claim)).values(
                state="unknown" if outcome_unknown else "planned", reason=detail, lease_owner=None,
                lease_expires=utc_naive(now + after), updated_at=utc_naive(now)))
            self._finish(conn, claim, now, "unknown" if outcome_unknown else "retry", detail)

    def record_failed(self, claim: Claim, now: dt.datetime, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(items).where(self._mine(claim)).values(
                state="failed", reason=reason, lease_owner=None, lease_expires=None, updated_at=utc_naive(now)))
            self._finish(conn, claim, now, "failed", reason)

    # --- metrics -------------------------------------------------------------------------------

    def add_snapshots(self, rows: Iterable[Snapshot]) -> int:
        """Append readings; an exact repeat of a reading taken in the same minute is ignored (a
        collector run twice in a row adds nothing). Returns how many were added."""
        added = 0
        with self.engine.begin() as conn:
            for row in rows:
                stamp = utc_naive(row.fetched_at)
                minute = stamp.replace(second=0, microsecond=0)
                repeat = conn.execute(select(snapshots.c.id).where(
                    snapshots.c.item_id == row.item_id, snapshots.c.metric == row.metric,
                    snapshots.c.source == row.source, snapshots.c.available == row.available,
                    (snapshots.c.value == row.value) if row.value is not None else snapshots.c.value.is_(None),
                    (snapshots.c.reason == row.reason) if row.reason is not None else snapshots.c.reason.is_(None),
                    snapshots.c.fetched_at >= minute,
                    snapshots.c.fetched_at < minute + dt.timedelta(minutes=1)).limit(1)).first()
                if repeat is None:
                    conn.execute(insert(snapshots).values(
                        item_id=row.item_id, metric=row.metric, value=row.value, fetched_at=stamp,
                        source=row.source, available=row.available, reason=row.reason))
                    added += 1
        return added

    def snapshots(self, item_id: str | None = None) -> list[dict[str, Any]]:
        query = select(snapshots).order_by(snapshots.c.id)
        if item_id is not None:
            query = query.where(snapshots.c.item_id == item_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # --- reading -------------------------------------------------------------------------------

    def items(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        query = select(items, receipts.c.remote_id, receipts.c.url).join(
            receipts, receipts.c.item_id == items.c.id, isouter=True).order_by(items.c.slot_utc, items.c.id)
        if states is not None:
            query = query.where(items.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {row.state: row.n for row in conn.execute(
                select(items.c.state, func.count().label("n")).group_by(items.c.state))}

    def attempts_of(self, item_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(attempts).where(attempts.c.item_id == item_id).order_by(attempts.c.id))]


# The per-item statements of the publish path, built once: constructing SQLAlchemy expressions
# per call cost more than the database work itself.
_MARK_PUBLISHED = update(items).where(
    items.c.id == bindparam("b_id"), items.c.state == "claimed", items.c.lease_owner == bindparam("b_worker")
).values(state="published", published_at=bindparam("b_now"), lease_owner=None, lease_expires=None, reason=None,
         updated_at=bindparam("b_now"))
_ADD_RECEIPT = insert(receipts)
_FINISH_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("b_attempt")).values(
    finished_at=bindparam("b_now"), outcome=bindparam("b_outcome"), detail=bindparam("b_detail"))


def _driver_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_immediate_transactions(engine: Engine) -> None:
    """SQLite: WAL for concurrent readers, and every transaction takes the write lock up front
    (BEGIN IMMEDIATE), so two workers can never both read an item as due and both claim it."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")
