"""The ledger store: plan items in, claim them under a lease, record what happened.

Exactly-once rests on three rules:
1. An item is only sent by the worker that holds its lease (claimed in one transaction; on
   PostgreSQL with `FOR UPDATE SKIP LOCKED`, on SQLite inside `BEGIN IMMEDIATE`).
2. A lease that expires (the worker crashed) is claimed again, and the retry carries the same
   idempotency key, so the channel can recognise the repeat (Mastodon's Idempotency-Key,
   LinkedIn's duplicate detection, the outbox's file name).
3. Re-planning never touches an item the outside world may have seen (claimed, unknown,
   published, failed, missed, a newsletter partly sent, or one published once and re-opened for
   resending).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, overload

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, and_, bindparam, create_engine, event, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from dissemination.ledger.schema import (IN_FLIGHT, SETTLED, attempts, channel_limits, deliveries, heartbeats,
                                         item_audiences, items, receipts, snapshots)
from dissemination.records import Claim, LiveLimits, PlannedItem, Receipt, Snapshot
from dissemination.redact import redact, without_password

UTC = dt.timezone.utc
MIGRATIONS = Path(__file__).parent / "migrations"
DB_URL_ENV = "DISSEMINATION_DB_URL"


def utc_naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None)


@overload
def as_utc(stored: dt.datetime) -> dt.datetime: ...


@overload
def as_utc(stored: None) -> None: ...


def as_utc(stored: dt.datetime | None) -> dt.datetime | None:
    return stored.replace(tzinfo=UTC) if stored is not None else None


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


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
        self.shown_url = without_password(self.url)  # registers the password as a secret
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
                   campaigns: Iterable[str] | None = None, keep: Iterable[str] = ()) -> PlanStats:
        """Make the ledger match the plan. Items of `campaigns` (default: all) that the plan no
        longer contains are cancelled, unless the outside world may have seen them. Items of the
        campaigns in `keep` (that could not be planned) are left as they are."""
        stats = PlanStats()
        stamp = utc_naive(now)
        wanted = {p.id: p for p in planned}
        with self.engine.begin() as conn:
            query = select(items)
            if campaigns is not None:
                query = query.where(items.c.campaign.in_(list(campaigns)))
            if keep:
                query = query.where(items.c.campaign.not_in(list(keep)))
            existing = {row.id: row for row in conn.execute(query)}
            started = _newsletters_started(conn, [r.id for r in existing.values() if r.state in ("planned", "held")])
            ids = list(wanted)
            serving: dict[str, set[str]] = defaultdict(set)
            for start in range(0, len(ids), 500):
                for r in conn.execute(select(item_audiences).where(item_audiences.c.item_id.in_(ids[start:start + 500]))):
                    serving[r.item_id].add(r.audience)
            touched: list[PlannedItem] = []
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
                    touched.append(p)
                elif (row.state in SETTLED or row.state in IN_FLIGHT or row.published_at is not None
                      or item_id in started):
                    stats.unchanged += 1  # the outside world may have seen it: never touched
                    continue
                elif all(getattr(row, k) == v for k, v in values.items()):
                    stats.unchanged += 1
                else:
                    conn.execute(update(items).where(items.c.id == item_id).values(updated_at=stamp, **values))
                    stats.updated += 1
                    touched.append(p)
                if p.state == "held":
                    stats.held += 1
            # Who an item serves changes with its text only, and only while nobody has seen it.
            changed = [p for p in touched if serving.get(p.id, set()) != set(p.served)]
            if changed:
                conn.execute(item_audiences.delete().where(item_audiences.c.item_id.in_([p.id for p in changed])))
                rows = [{"item_id": p.id, "audience": a} for p in changed for a in dict.fromkeys(p.served)]
                if rows:
                    conn.execute(insert(item_audiences), rows)
            gone = [r.id for r in existing.values() if r.id not in wanted and r.state in ("planned", "held")
                    and r.published_at is None and r.id not in started]
            if gone:
                conn.execute(update(items).where(items.c.id.in_(gone)).values(
                    state="cancelled", reason="no longer in the approved plan", updated_at=stamp))
                stats.cancelled = len(gone)
        return stats

    # --- publishing ----------------------------------------------------------------------------

    def item_payload(self, item_id: str) -> tuple[str, dict[str, Any], str] | None:
        """(state, payload, audience) of an item, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(items.c.state, items.c.payload, items.c.audience).where(
                items.c.id == item_id)).first()
        return None if row is None else (row.state, json.loads(row.payload), row.audience)

    def has_open_items(self, channel: str) -> bool:
        """Whether the channel has items still to publish (planned or in flight)."""
        with self.engine.connect() as conn:
            return conn.execute(select(items.c.id).where(
                items.c.channel == channel, items.c.state.in_(["planned", *IN_FLIGHT])).limit(1)).first() is not None

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
            crashed = [row.id for row in rows if row.state == "claimed"]
            if crashed:  # their lease ran out: the run that held it is gone, its attempt with it
                conn.execute(update(attempts).where(attempts.c.item_id.in_(crashed), attempts.c.outcome == "started")
                             .values(outcome="abandoned", finished_at=stamp,
                                     detail="the run holding the lease stopped before recording an outcome"))
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
                    attempt_count=row.attempt_count + 1, worker=worker, published_at=as_utc(row.published_at),
                    first_claimed_at=as_utc(row.first_claimed_at) or now,
                    # (a newsletter re-opened for resending is `unknown` too, but it was published)
                    outcome_unknown=row.state in IN_FLIGHT and row.published_at is None))
        return claims

    def _finish(self, conn: Connection, claim: Claim, now: dt.datetime, outcome: str, detail: str | None) -> None:
        conn.execute(_FINISH_ATTEMPT, {"b_attempt": claim.attempt_id, "b_now": utc_naive(now),
                                       "b_outcome": outcome, "b_detail": detail})

    def _mine(self, claim: Claim):
        return and_(items.c.id == claim.id, items.c.state == "claimed", items.c.lease_owner == claim.worker)

    def extend_lease(self, claim: Claim, until: dt.datetime) -> bool:
        """Keep a long publication (a newsletter to many recipients) ours. False when the lease
        was lost: the caller must stop sending."""
        with self.engine.begin() as conn:
            return conn.execute(update(items).where(self._mine(claim)).values(
                lease_expires=utc_naive(until))).rowcount == 1

    def record_published(self, claim: Claim, receipt: Receipt, now: dt.datetime) -> bool:
        """Record success. False when the lease was lost meanwhile (another worker reclaimed
        the item; it retries with the same key, so the channel returns the same receipt). An item
        published before (a newsletter re-opened for resending) keeps its first time and receipt."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            done = conn.execute(_MARK_PUBLISHED, {"b_id": claim.id, "b_worker": claim.worker, "b_now": stamp}).rowcount == 1
            if done:
                add_receipt = _ADD_RECEIPT_SQLITE if self.is_sqlite else _ADD_RECEIPT_POSTGRESQL
                conn.execute(add_receipt, {"item_id": claim.id, "remote_id": receipt.remote_id,
                                           "url": receipt.url, "published_at": stamp})
            self._finish(conn, claim, now, "published" if done else "lease-lost", receipt.remote_id)
        return done

    def record_retry(self, claim: Claim, now: dt.datetime, detail: str, after: dt.timedelta,
                     outcome_unknown: bool = False) -> None:
        """A transient failure: try again after `after`, with the same key. `outcome_unknown`
        when the request may have reached the channel (timeout, 5xx after sending). An item whose
        earlier attempt may have reached it stays unknown whatever this attempt's failure (a 429
        says nothing about the earlier one)."""
        unknown = outcome_unknown or claim.outcome_unknown
        detail = redact(detail)  # the ledger stores what servers said: never a secret they echoed
        with self.engine.begin() as conn:
            conn.execute(update(items).where(self._mine(claim)).values(
                state="unknown" if unknown else "planned", reason=detail, lease_owner=None,
                lease_expires=utc_naive(now + after), updated_at=utc_naive(now)))
            self._finish(conn, claim, now, "unknown" if outcome_unknown else "retry", detail)

    def record_failed(self, claim: Claim, now: dt.datetime, reason: str) -> None:
        reason = redact(reason)
        with self.engine.begin() as conn:
            conn.execute(update(items).where(self._mine(claim)).values(
                state="failed", reason=reason, lease_owner=None, lease_expires=None, updated_at=utc_naive(now)))
            self._finish(conn, claim, now, "failed", reason)

    def record_waiting(self, claim: Claim, now: dt.datetime, reason: str) -> None:
        """The outcome is unknown and the channel cannot find it out: a person decides
        (`dissemination resolve`); nothing is sent meanwhile."""
        with self.engine.begin() as conn:
            conn.execute(update(items).where(self._mine(claim)).values(
                state="waiting", reason=reason, lease_owner=None, lease_expires=None, updated_at=utc_naive(now)))
            self._finish(conn, claim, now, "waiting", reason)

    def resolve(self, item_id: str, now: dt.datetime, by: str, published_url: str | None = None,
                remote_id: str | None = None) -> str | None:
        """A person's answer for a `waiting` item: published at `published_url` (recorded as its
        receipt), or absent (None: planned again, to be sent at the next run). Returns why it
        cannot be resolved, or None. Who decided is kept as an attempt of the item."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            row = conn.execute(select(items.c.state, items.c.reason).where(items.c.id == item_id)).first()
            if row is None:
                return f"no item '{item_id}' in the ledger (see `dissemination status`)"
            if row.state != "waiting":
                return f"item '{item_id}' is {row.state}, not waiting for a person"
            if published_url:
                conn.execute(update(items).where(items.c.id == item_id).values(
                    state="published", published_at=func.coalesce(items.c.published_at, stamp), reason=None,
                    lease_owner=None, lease_expires=None, updated_at=stamp))
                add_receipt = _ADD_RECEIPT_SQLITE if self.is_sqlite else _ADD_RECEIPT_POSTGRESQL
                conn.execute(add_receipt, {"item_id": item_id, "remote_id": remote_id or published_url,
                                           "url": published_url, "published_at": stamp})
                detail = f"{by}: published at {published_url}"
            else:
                # Found absent by a person: sent again. Its first attempt stays on record, so should
                # this one end unknown too, it is read back again rather than repeated.
                conn.execute(update(items).where(items.c.id == item_id).values(
                    state="planned", reason=f"absent according to {by}; will be sent again", lease_owner=None,
                    lease_expires=None, updated_at=stamp))
                detail = f"{by}: absent; send again"
            conn.execute(insert(attempts).values(item_id=item_id, worker=f"person:{by}", started_at=stamp,
                                                 finished_at=stamp, outcome="resolved",
                                                 detail=f"{detail} (was: {row.reason})"))
        return None

    # --- channel limits ------------------------------------------------------------------------

    def store_limits(self, limits: LiveLimits) -> None:
        values = {k: getattr(limits, k) for k in ("server", "max_characters", "characters_per_url",
                                                   "description_limit", "max_media", "image_size_limit")}
        values["read_at"] = utc_naive(limits.read_at)
        upsert = (sqlite_insert if self.is_sqlite else postgresql_insert)(channel_limits).values(
            channel=limits.channel, **values)
        with self.engine.begin() as conn:  # several workers' preflights may write at once
            conn.execute(upsert.on_conflict_do_update(index_elements=["channel"], set_=values))

    def live_limits(self) -> dict[str, LiveLimits]:
        """channel id -> its server's limits, as last read."""
        with self.engine.connect() as conn:
            return {r.channel: LiveLimits(r.channel, r.server, r.max_characters, r.characters_per_url,
                                          r.description_limit, r.max_media, r.image_size_limit, as_utc(r.read_at))
                    for r in conn.execute(select(channel_limits))}

    # --- metrics -------------------------------------------------------------------------------

    def add_snapshots(self, rows: Iterable[Snapshot]) -> int:
        """Append readings. At most one reading per (item, metric, source) and minute is kept, so
        a collector run twice in the same minute, or two runs at once, add nothing twice. Returns
        how many were added.

        The readings go to the database as one JSON array and one INSERT … SELECT whose NOT EXISTS
        does the same-minute check on ix_snapshots_item_metric: the per-row work is the
        database's, not the interpreter's. A collector writes while its reader threads wait on
        the network; per-row Python work here (and the driver's per-row executemany) held the
        interpreter lock those threads need for every answer (bench/metrics.py)."""
        times: dict[dt.datetime, tuple[str, str, str]] = {}  # a run's readings share one time
        fresh: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}
        for row in rows:
            when = times.get(row.fetched_at)
            if when is None:
                stamp = utc_naive(row.fetched_at)
                minute = stamp.replace(second=0, microsecond=0)
                when = times[row.fetched_at] = (_stamp_text(stamp), _stamp_text(minute),
                                                _stamp_text(minute + dt.timedelta(minutes=1)))
            # The first reading of a key in this call wins, as the database's own does.
            fresh.setdefault((row.item_id, row.metric, row.source, when[1]),
                             (row.item_id, row.metric, row.value, *when, row.source, row.available, row.reason))
        if not fresh:
            return 0
        payload = json.dumps(list(fresh.values()), ensure_ascii=False, allow_nan=False)
        with self.engine.begin() as conn:
            if self.is_sqlite:
                return conn.execute(_SQLITE_ADD_SNAPSHOTS, {"rows": payload}).rowcount
            # Check-then-insert must not interleave with another collector (SQLite's BEGIN
            # IMMEDIATE already serialises writers).
            conn.execute(text("SELECT pg_advisory_xact_lock(727466)"))
            return conn.execute(_POSTGRESQL_ADD_SNAPSHOTS, {"rows": payload}).rowcount

    def published_since(self, since: dt.datetime) -> list[tuple[str, str, str, str | None]]:
        """(item id, channel, remote id, url) of the items published at or after `since` with a
        receipt, oldest first. Plain tuples: the collector reads tens of thousands of them before
        its first request."""
        query = select(items.c.id, items.c.channel, receipts.c.remote_id, receipts.c.url).join(
            receipts, receipts.c.item_id == items.c.id).where(
            items.c.state == "published", items.c.published_at >= utc_naive(since)).order_by(
            items.c.published_at, items.c.id)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def items_between(self, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        """Items whose slot or publication falls in [start, end), with their receipt."""
        a, b = utc_naive(start), utc_naive(end)
        query = select(items.c.id, items.c.campaign, items.c.post, items.c.audience, items.c.channel,
                       items.c.slot_utc, items.c.state, items.c.reason, items.c.published_at, items.c.knowledge,
                       receipts.c.url).join(receipts, receipts.c.item_id == items.c.id, isouter=True).where(
            or_(and_(items.c.slot_utc >= a, items.c.slot_utc < b),
                and_(items.c.published_at >= a, items.c.published_at < b))).order_by(items.c.slot_utc, items.c.id)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
            served = _audiences_of(conn, [r["id"] for r in rows])
        for row in rows:
            row["audiences"] = served.get(row["id"]) or ((row["audience"],) if row["audience"] != "*" else ())
        return rows

    def latest_readings(self, published_from: dt.datetime, published_to: dt.datetime, until: dt.datetime,
                        metrics: Iterable[str]) -> list[dict[str, Any]]:
        """For items published in [published_from, published_to) and each of `metrics`: the last
        reading taken before `until` and, where that one is unavailable, the last available one.

        One index seek per item and metric (on ix_snapshots_item_metric), not a scan of every
        reading: a year of 6-hourly readings is millions of rows (bench/report.py)."""
        stamp = utc_naive(until)
        last = snapshots.alias("last")
        published = and_(items.c.published_at >= utc_naive(published_from),
                         items.c.published_at < utc_naive(published_to))

        def seek(metric: str, available_only: bool):
            query = select(last.c.id).where(last.c.item_id == items.c.id, last.c.metric == metric,
                                            last.c.fetched_at < stamp)
            if available_only:
                query = query.where(last.c.available.is_(True))
            return query.order_by(last.c.fetched_at.desc()).limit(1).scalar_subquery()

        def fetch(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
            out = []
            for start in range(0, len(ids), 500):
                out += [dict(r._mapping) for r in conn.execute(select(
                    snapshots.c.id, snapshots.c.item_id, snapshots.c.metric, snapshots.c.available,
                    snapshots.c.value, snapshots.c.reason, snapshots.c.source, snapshots.c.fetched_at).where(
                    snapshots.c.id.in_(ids[start:start + 500])))]
            return out

        with self.engine.connect() as conn:
            found: list[int] = []
            for metric in metrics:
                found += [r[0] for r in conn.execute(select(seek(metric, False)).where(published)) if r[0] is not None]
            rows = fetch(conn, found)
            retry: dict[str, list[str]] = {}
            for row in rows:
                if not row["available"]:
                    retry.setdefault(row["metric"], []).append(row["item_id"])
            earlier: list[int] = []
            for metric, item_ids in retry.items():
                for start in range(0, len(item_ids), 500):
                    earlier += [r[0] for r in conn.execute(select(seek(metric, True)).where(
                        items.c.id.in_(item_ids[start:start + 500]))) if r[0] is not None]
            return rows + fetch(conn, earlier)

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

    def next_planned(self, after: dt.datetime) -> list[dict[str, Any]]:
        """The planned items at the first slot after `after` (held items wait for approval)."""
        planned = and_(items.c.state == "planned", items.c.slot_utc > utc_naive(after))
        with self.engine.connect() as conn:
            first = conn.execute(select(func.min(items.c.slot_utc)).where(planned)).scalar()
            if first is None:
                return []
            return [dict(row._mapping) for row in conn.execute(
                select(items.c.campaign, items.c.post, items.c.channel, items.c.slot_utc, items.c.timezone).where(
                    planned, items.c.slot_utc == first).order_by(items.c.campaign, items.c.post, items.c.channel))]

    # --- liveness (`serve`) -------------------------------------------------------------------

    def beat(self, worker: str, now: dt.datetime, every_seconds: int, started_at: dt.datetime) -> None:
        """`serve`'s heartbeat: one row per running serve, replaced on every beat."""
        row = {"worker": worker, "beat_at": utc_naive(now), "every_seconds": every_seconds,
               "started_at": utc_naive(started_at)}
        with self.engine.begin() as conn:
            updated = conn.execute(update(heartbeats).where(heartbeats.c.worker == worker).values(**row)).rowcount
            if not updated:
                conn.execute(insert(heartbeats).values(**row))

    def stop_beating(self, worker: str) -> None:
        """A clean stop: an absent serve is a decision, not a failure."""
        with self.engine.begin() as conn:
            conn.execute(heartbeats.delete().where(heartbeats.c.worker == worker))

    def heartbeats(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [{**row._mapping, "beat_at": as_utc(row.beat_at), "started_at": as_utc(row.started_at)}
                    for row in conn.execute(select(heartbeats).order_by(heartbeats.c.worker))]

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
).values(state="published", published_at=func.coalesce(items.c.published_at, bindparam("b_now")), lease_owner=None, lease_expires=None, reason=None,
         updated_at=bindparam("b_now"))
_ADD_RECEIPT_SQLITE = sqlite_insert(receipts).on_conflict_do_nothing(index_elements=["item_id"])
_ADD_RECEIPT_POSTGRESQL = postgresql_insert(receipts).on_conflict_do_nothing(index_elements=["item_id"])
_FINISH_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("b_attempt")).values(
    finished_at=bindparam("b_now"), outcome=bindparam("b_outcome"), detail=bindparam("b_detail"))


def _newsletters_started(conn: Connection, item_ids: list[str]) -> set[str]:
    """Of `item_ids`, the newsletters some recipient may already have: one edition is sent to
    all its recipients (the rest after a 4xx or a dropped connection), so re-planning neither
    rewrites nor cancels it, whatever happens to the campaign meanwhile."""
    found: set[str] = set()
    for start in range(0, len(item_ids), 500):
        found.update(conn.execute(select(deliveries.c.item_id).where(
            deliveries.c.item_id.in_(item_ids[start:start + 500]),
            deliveries.c.state.in_(("sent", "sending", "unknown"))).distinct()).scalars())
    return found


def _audiences_of(conn: Connection, item_ids: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for start in range(0, len(item_ids), 500):
        for row in conn.execute(select(item_audiences).where(item_audiences.c.item_id.in_(item_ids[start:start + 500]))
                                .order_by(item_audiences.c.item_id, item_audiences.c.audience)):
            found.setdefault(row.item_id, []).append(row.audience)
    return {k: tuple(v) for k, v in found.items()}


def _stamp_text(moment: dt.datetime) -> str:
    """A naive UTC time as SQLAlchemy stores a DateTime on SQLite (always with microseconds:
    the string comparisons of the same-minute check depend on one format); PostgreSQL casts it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


# Each element of :rows is [item_id, metric, value, fetched_at, minute, next minute, source,
# available, reason]. A reading is added unless one of the same item, metric and source was
# taken in the same minute.
_SQLITE_ADD_SNAPSHOTS = text("""
INSERT INTO snapshots (item_id, metric, value, fetched_at, source, available, reason)
SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'),
       json_extract(j.value, '$[3]'), json_extract(j.value, '$[6]'), json_extract(j.value, '$[7]'),
       json_extract(j.value, '$[8]')
FROM json_each(:rows) AS j
WHERE NOT EXISTS (
    SELECT 1 FROM snapshots AS s
    WHERE s.item_id = json_extract(j.value, '$[0]') AND s.metric = json_extract(j.value, '$[1]')
      AND s.fetched_at >= json_extract(j.value, '$[4]') AND s.fetched_at < json_extract(j.value, '$[5]')
      AND s.source = json_extract(j.value, '$[6]'))
ORDER BY j.key
""")
_POSTGRESQL_ADD_SNAPSHOTS = text("""
INSERT INTO snapshots (item_id, metric, value, fetched_at, source, available, reason)
SELECT r ->> 0, r ->> 1, (r ->> 2)::double precision, (r ->> 3)::timestamp, r ->> 6, (r ->> 7)::boolean, r ->> 8
FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS j(r, n)
WHERE NOT EXISTS (
    SELECT 1 FROM snapshots AS s
    WHERE s.item_id = r ->> 0 AND s.metric = r ->> 1
      AND s.fetched_at >= (r ->> 4)::timestamp AND s.fetched_at < (r ->> 5)::timestamp
      AND s.source = r ->> 6)
ORDER BY j.n
""")


def _driver_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_immediate_transactions(engine: Engine) -> None:
    """SQLite: WAL for concurrent readers, and every transaction takes the write lock up front
    (BEGIN IMMEDIATE), so two workers can never both read an item as due and both claim it."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
