"""Per-recipient newsletter deliveries, the suppression list and clicks, in the ledger.

A newsletter item is claimed like any other item (one worker holds its lease). Its recipients are
rows of `deliveries`. A row is marked `sending` only by the holder of the item's lease (checked in
the same statement) and settled only by the worker that marked it, so a worker whose item lease
was taken over can never send a row:

    pending/deferred --begin_send--> sending --record--> sent | bounced | deferred | ...

`sending` is committed before the final "." of the SMTP transaction. A row a dead worker left in
`sending` may have been delivered; it is settled as `unknown` and never resent (a second copy in
someone's inbox is what must not happen; the row says plainly what is not known) unless an
operator, having checked that it did not arrive, re-opens it (`resend_unknown`, recorded in
`resends`): it is pending again, and consent and the suppression list are checked as for any send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Collection, Iterable, Iterator

from sqlalchemy import (DateTime, Integer, String, Text, and_, bindparam, case, delete, exists, func, insert, null, or_, select,
                        update)
from sqlalchemy.engine import Connection

from dissemination.ledger.schema import (clicks, deliveries, items, resends, subscribers, suppressions,
                                         unsuppressions)
from dissemination.ledger.store import Ledger, as_utc, utc_naive

ALL_LISTS = "*"  # the scope of a hard bounce or complaint: no list may mail the address again
# Item states in which re-opened recipients are sent by the next publish run.
RESENDABLE = ("published", "planned", "claimed", "unknown")


def retry_backoff(attempts: int) -> dt.timedelta:
    """How long a deferred (4xx) recipient waits before the next try, as a mail server's queue
    does it: 5 minutes, doubling, at most 4 hours; the edition's expiry ends the tries."""
    return min(dt.timedelta(minutes=5) * 2 ** max(attempts - 1, 0), dt.timedelta(hours=4))


def normalise(address: str) -> str:
    return address.strip().lower()


@dataclass(frozen=True)
class Outcome:
    address: str
    state: str  # one of DELIVERY_SETTLED, or "deferred" (4xx: try again next run), or "pending"
    detail: str | None = None


class CannotResend(Exception):
    """A resend that must not happen as asked: the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Resend:
    reopened: dict[str, str | None]  # address -> why it was unknown
    suppressed: dict[str, str]  # address -> why it may not be mailed (it stays unknown)
    item_due: bool  # the item was published and is due again for the next publish run


_SUPPRESSED = exists().where(
    suppressions.c.address == deliveries.c.address,
    or_(suppressions.c.scope == bindparam("b_scope"), suppressions.c.scope == ALL_LISTS))

# A recipient is sent only by the worker holding the item's lease, checked in the statement that
# marks the row `sending`: a worker whose lease was taken over sends nobody, and rows need no
# claim of their own before that (a claim per row was a write per recipient, made under the same
# write lock as every message's mark).
_HOLDS_LEASE = exists().where(items.c.id == bindparam("b_item"), items.c.state == "claimed",
                              items.c.lease_owner == bindparam("b_owner"))
_SENDABLE = or_(deliveries.c.state == "pending", deliveries.c.state == "deferred")  # no IN: executemany
_MARKED = and_(deliveries.c.owner == bindparam("b_owner"),
               or_(deliveries.c.state == "claimed", deliveries.c.state == "sending"))

_BEGIN_SEND = update(deliveries).where(
    deliveries.c.item_id == bindparam("b_item"), deliveries.c.address == bindparam("b_address"),
    _SENDABLE, _HOLDS_LEASE, ~_SUPPRESSED,
).values(state="sending", owner=bindparam("b_owner"), updated_at=bindparam("b_now"))

# An outcome: of a row this worker marked `sending`, or of one it never marked (an address it
# could not use, a recipient it did not get to) while it holds the lease.
_SETTLE = update(deliveries).where(
    deliveries.c.item_id == bindparam("b_item"), deliveries.c.address == bindparam("b_address"),
    or_(_MARKED, and_(_SENDABLE, _HOLDS_LEASE)),
).values(state=bindparam("b_state"), detail=bindparam("b_detail"), updated_at=bindparam("b_now"),
         sent_at=bindparam("b_sent_at"), attempts=deliveries.c.attempts + bindparam("b_attempt"), owner=None)


_NEXT = deliveries.c.address == bindparam("b_address")

# The usual message: settle the previous one and mark this one `sending` in one statement (one
# implicit transaction). Both rows must change; anything else goes the long way.
_ADVANCE = update(deliveries).where(
    deliveries.c.item_id == bindparam("b_item"),
    or_(and_(_NEXT, _SENDABLE, _HOLDS_LEASE, ~_SUPPRESSED),
        and_(deliveries.c.address == bindparam("p_address"), or_(_MARKED, and_(_SENDABLE, _HOLDS_LEASE)))),
).values(
    state=case((_NEXT, "sending"), else_=bindparam("p_state", type_=String)),
    detail=case((_NEXT, deliveries.c.detail), else_=bindparam("p_detail", type_=Text)),
    sent_at=case((_NEXT, deliveries.c.sent_at), else_=bindparam("p_sent_at", type_=DateTime)),
    attempts=case((_NEXT, deliveries.c.attempts), else_=deliveries.c.attempts + bindparam("p_attempt", type_=Integer)),
    owner=case((_NEXT, bindparam("b_owner", type_=String)), else_=null()),
    updated_at=bindparam("b_now"),
)


class Deliveries:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.engine = ledger.engine
        # SQLite takes one writer at a time, and its busy handler makes a waiting writer sleep
        # whole milliseconds: the threads of one process writing (the send's, one commit per
        # message, and the lease renewals beside it) take turns on a lock of ours instead.
        # PostgreSQL needs none.
        self.writing: contextlib.AbstractContextManager[object] = (
            threading.RLock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext())

    # --- suppression list --------------------------------------------------------------------

    def suppress(self, address: str, scope: str, reason: str, now: dt.datetime, item_id: str | None = None,
                 detail: str | None = None, conn: Connection | None = None) -> bool:
        """Add an address; False when it was already suppressed for this scope (the first reason stays)."""
        if conn is None:
            with self.engine.begin() as own:
                return self.suppress(address, scope, reason, now, item_id, detail, own)
        values = {"address": normalise(address), "scope": scope, "reason": reason, "item_id": item_id,
                  "detail": detail, "created_at": utc_naive(now)}
        if reason == "bounced":  # the subscriber record says so too (export, preference page)
            conn.execute(update(subscribers).where(subscribers.c.address == values["address"],
                                                   subscribers.c.state == "active").values(
                state="bounced", updated_at=values["created_at"]))
        return conn.execute(_insert_ignore(conn, suppressions, ["address", "scope"]).values(**values)).rowcount == 1

    def suppressed(self, address: str, scope: str) -> str | None:
        """The reason `address` may not be mailed on list `scope`, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(suppressions.c.reason).where(
                suppressions.c.address == normalise(address),
                suppressions.c.scope.in_([scope, ALL_LISTS])).limit(1)).scalar()

    def unsuppress(self, address: str, by: str, reason: str, now: dt.datetime, scope: str | None = None) -> list[dict]:
        """Lift the suppressions of `address` (every list, or only `scope`), keeping an audit row
        each (`unsuppressions`). Returns the lifted entries; empty when there were none. Consent
        is not restored: the address is mailed only where it still has a consent record."""
        address = normalise(address)
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            where = [suppressions.c.address == address] + ([suppressions.c.scope == scope] if scope else [])
            rows = [dict(r._mapping) for r in conn.execute(select(suppressions).where(*where))]
            if not rows:
                return []
            conn.execute(delete(suppressions).where(*where))
            conn.execute(update(subscribers).where(subscribers.c.address == address, subscribers.c.state == "bounced")
                         .values(state="active", updated_at=stamp))
            conn.execute(insert(unsuppressions), [
                {"address": address, "scope": r["scope"], "previous_reason": r["reason"],
                 "previous_detail": r["detail"], "suppressed_at": r["created_at"], "lifted_by": by,
                 "lifted_reason": reason, "lifted_at": stamp} for r in rows])
        return rows

    def unsuppressions(self, address: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(unsuppressions).where(
                unsuppressions.c.address == normalise(address)).order_by(unsuppressions.c.id))]

    def suppression_list(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(suppressions).order_by(suppressions.c.created_at, suppressions.c.address))]

    # --- one newsletter item -----------------------------------------------------------------

    def prepare(self, item_id: str, worker: str, recipients: Collection[str], address_key: Callable[[str], str],
                scope: str, now: dt.datetime, add_new: bool = True) -> None:
        """Make the item's rows match `recipients` (normalised addresses) at the start of an
        attempt by the holder of the item's lease. `add_new` False: an item published before
        (re-opened for resending) gets no recipients it did not have then."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            rows = {address: state for address, state in conn.execute(
                select(deliveries.c.address, deliveries.c.state).where(deliveries.c.item_id == item_id))}
            new = (a for a in recipients if a not in rows and add_new)
            while batch := [{"item_id": item_id, "address": a, "address_key": address_key(a), "state": "pending",
                             "attempts": 0, "updated_at": stamp} for a in islice(new, 2000)]:
                conn.execute(_insert_ignore(conn, deliveries, ["item_id", "address"]), batch)
            base = update(deliveries).where(deliveries.c.item_id == item_id)
            gone = [a for a, state in rows.items() if a not in recipients and state in ("pending", "claimed", "deferred")]
            for start in range(0, len(gone), 500):
                conn.execute(base.where(deliveries.c.address.in_(gone[start:start + 500]),
                                        deliveries.c.state.in_(["pending", "claimed", "deferred"])).values(
                    state="withdrawn", owner=None, updated_at=stamp,
                    detail="no consent recorded any more (or no longer in the audience); not sent"))
            self._take_over(conn, item_id, worker, scope, stamp)

    def _take_over(self, conn: Connection, item_id: str, worker: str, scope: str, stamp: dt.datetime) -> None:
        base = update(deliveries).where(deliveries.c.item_id == item_id)
        # A previous holder of the item's lease stopped: what it was in the middle of sending may
        # have arrived, so it is not sent again. (Rows `claimed` one by one, as before per-row
        # claims were dropped, are simply pending.)
        conn.execute(base.where(deliveries.c.state == "claimed").values(state="pending", owner=None, updated_at=stamp))
        conn.execute(base.where(deliveries.c.state == "sending", deliveries.c.owner != worker).values(
            state="unknown", owner=None, updated_at=stamp,
            detail="the sender stopped between handing the message over and recording the answer; "
                   "it may have arrived, so it was not sent again"))
        # Led by the suppression list (hundreds of rows), not by the item's rows (a million).
        listed = select(suppressions.c.address).where(suppressions.c.scope.in_([scope, ALL_LISTS]))
        conn.execute(base.where(deliveries.c.state.in_(["pending", "deferred"]), deliveries.c.address.in_(
            listed.scalar_subquery())).values(state="suppressed", owner=None, updated_at=stamp,
                                              detail="on the suppression list"))

    def prepare_streamed(self, item_id: str, worker: str, wanted, address_key: Callable[[str], str],
                         scope: str, now: dt.datetime, add_new: bool = True) -> None:
        """`prepare` for a list read from the subscriber database: `wanted` is a SELECT of the
        recipients' addresses. Read in batches on the same connection (SQLite's write lock is
        per connection) and compared by the database, so no recipient list sits in memory."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            first = conn.execute(select(deliveries.c.address).where(deliveries.c.item_id == item_id).limit(1)).first() \
                is None
            if add_new:
                rows = _PendingRows(conn, item_id, stamp)
                result = conn.execute(wanted.execution_options(yield_per=2000))
                for part in result.partitions():
                    rows.insert((a, address_key(a)) for (a,) in part)
            if not first:  # rows made just now from `wanted` are all wanted
                conn.execute(update(deliveries).where(
                    deliveries.c.item_id == item_id, deliveries.c.state.in_(["pending", "claimed", "deferred"]),
                    deliveries.c.address.not_in(wanted.order_by(None).scalar_subquery())).values(
                    state="withdrawn", owner=None, updated_at=stamp,
                    detail="no longer subscribed to the list (or no longer in the audience); not sent"))
            self._take_over(conn, item_id, worker, scope, stamp)

    def due(self, item_id: str, size: int, now: dt.datetime, since: dt.datetime) -> Iterator[list[str]]:
        """The item's recipients to send now, in chunks of `size`: the pending ones in address
        order, then the deferred (4xx) ones whose back-off (`retry_backoff`) has passed, and that
        were deferred before this run (`since`). Nothing is written: a row becomes a worker's when
        `begin_send` marks it, under the item's lease. Each chunk is its own short read, so a
        long send holds no read transaction open (SQLite's WAL could not be checkpointed)."""
        after = ""
        while True:  # an index range scan on (item_id, state, address) per chunk
            with self.engine.connect() as conn:
                chunk = list(conn.execute(select(deliveries.c.address).where(
                    deliveries.c.item_id == item_id, deliveries.c.state == "pending",
                    deliveries.c.address > after).order_by(deliveries.c.address).limit(size)).scalars())
            if not chunk:
                break
            yield chunk
            after = chunk[-1]
        with self.engine.connect() as conn:  # deferred rows are few; their back-off depends on their attempts
            deferred = [r.address for r in conn.execute(select(
                deliveries.c.address, deliveries.c.attempts, deliveries.c.updated_at).where(
                deliveries.c.item_id == item_id, deliveries.c.state == "deferred",
                deliveries.c.updated_at < utc_naive(since)).order_by(deliveries.c.address))
                if as_utc(r.updated_at) + retry_backoff(r.attempts) <= now]
        for start in range(0, len(deferred), size):
            yield deferred[start:start + size]

    def begin_send(self, item_id: str, worker: str, address: str, scope: str, now: dt.datetime,
                   settled: Iterable[Outcome] = (), conn: Connection | None = None) -> str:
        """Commit that `address` is being sent (with earlier outcomes of this connection, in the
        same transaction). Returns "go", "suppressed" (unsubscribed meanwhile: do not send) or
        "lost" (another worker owns the row now: do not send). A sender passes its own `conn`
        (one per send): a pool checkout per message cost more than the statement."""
        if conn is None:
            with self.engine.connect() as own:
                return self.begin_send(item_id, worker, address, scope, now, settled, own)
        stamp = utc_naive(now)
        with self.writing, conn.begin():
            self._settle(conn, item_id, worker, settled, scope, stamp)
            if conn.execute(_BEGIN_SEND, {"b_item": item_id, "b_address": address, "b_owner": worker,
                                          "b_scope": scope, "b_now": stamp}).rowcount == 1:
                return "go"
            reason = conn.execute(select(suppressions.c.reason).where(
                suppressions.c.address == address, suppressions.c.scope.in_([scope, ALL_LISTS])).limit(1)).scalar()
            if reason is None:
                return "lost"
            self._settle(conn, item_id, worker, [Outcome(address, "suppressed", f"on the suppression list ({reason})")],
                         scope, stamp)
            return "suppressed"

    def record(self, item_id: str, worker: str, outcomes: Iterable[Outcome], scope: str, now: dt.datetime,
               conn: Connection | None = None) -> None:
        outcomes = list(outcomes)
        if not outcomes:
            return
        if conn is None:
            with self.engine.connect() as own:
                return self.record(item_id, worker, outcomes, scope, now, own)
        with self.writing, conn.begin():
            self._settle(conn, item_id, worker, outcomes, scope, utc_naive(now))

    def _settle(self, conn: Connection, item_id: str, worker: str, outcomes: Iterable[Outcome], scope: str,
                stamp: dt.datetime) -> None:
        params = []
        for o in outcomes:
            params.append({"b_item": item_id, "b_address": o.address, "b_owner": worker, "b_state": o.state,
                           "b_detail": o.detail, "b_now": stamp, "b_sent_at": stamp if o.state == "sent" else None,
                           "b_attempt": 0 if o.state == "pending" else 1})
            if o.state == "bounced":
                self.suppress(o.address, ALL_LISTS, "bounced", stamp.replace(tzinfo=dt.timezone.utc), item_id,
                              o.detail, conn)
        if params:
            # One row (the usual case: the previous message) as a plain execute: cheaper than executemany.
            conn.execute(_SETTLE, params[0] if len(params) == 1 else params)

    def resend_unknown(self, item_id: str, addresses: Collection[str], by: str, now: dt.datetime) -> Resend:
        """Re-open the item's `unknown` recipients (all, or only `addresses`) for the next publish
        run, and record who decided it and when. Addresses on the suppression list stay unknown;
        consent and the suppression list are checked again when the rows are sent. For an
        operator who checked (the mail server's log) that the messages did not arrive."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            item = conn.execute(select(items.c.channel, items.c.state, items.c.reason, items.c.payload,
                                       items.c.slot_utc).where(items.c.id == item_id)).first()
            if item is None:
                raise CannotResend(f"no item '{item_id}' in the ledger; `dissemination newsletters` lists the "
                                   "newsletter items with their ids")
            rows = {r.address: r for r in conn.execute(select(deliveries.c.address, deliveries.c.state,
                                                              deliveries.c.detail).where(deliveries.c.item_id == item_id))}
            if not rows and "editions" not in json.loads(item.payload):
                raise CannotResend(f"item {item_id} is a post on {item.channel}, not a newsletter; only newsletter "
                                   "recipients can be resent (`dissemination newsletters` lists them)")
            if item.state not in RESENDABLE:
                raise CannotResend(f"item {item_id} is {item.state}" + (f" ({item.reason})" if item.reason else "")
                                   + "; only recipients of a newsletter that is published or still being sent can "
                                     "be resent")
            unknown = {a: r.detail for a, r in rows.items() if r.state == "unknown"}
            wanted = list(dict.fromkeys(normalise(a) for a in addresses)) or sorted(unknown)
            wrong = [f"{a} is {rows[a].state} for item {item_id}, not unknown" if a in rows
                     else f"{a} is not a recipient of item {item_id}" for a in wanted if a not in unknown]
            if wrong:
                raise CannotResend("; ".join(wrong) + "; only unknown recipients can be resent (`dissemination "
                                   f"newsletters --item {item_id}` lists them); nothing was changed")
            suppressed: dict[str, str] = {}
            for start in range(0, len(wanted), 500):
                suppressed.update((r.address, r.reason) for r in conn.execute(
                    select(suppressions.c.address, suppressions.c.reason).where(
                        suppressions.c.address.in_(wanted[start:start + 500]),
                        suppressions.c.scope.in_([item.channel, ALL_LISTS]))))
            reopen = [a for a in wanted if a not in suppressed]
            reopened: list[str] = []
            for start in range(0, len(reopen), 500):
                reopened += conn.execute(update(deliveries).where(
                    deliveries.c.item_id == item_id, deliveries.c.address.in_(reopen[start:start + 500]),
                    deliveries.c.state == "unknown",  # another resend at the same moment re-opens each row once
                ).values(state="pending", owner=None, updated_at=stamp,
                         detail=f"re-opened for resending by {by} at {stamp:%Y-%m-%d %H:%M} UTC").returning(
                    deliveries.c.address)).scalars().all()
            if reopened:
                conn.execute(insert(resends), [{"item_id": item_id, "address": a, "requested_by": by,
                                                "requested_at": stamp, "previous_detail": unknown[a]}
                                               for a in reopened])
            item_due = bool(reopened) and item.state == "published"
            if item_due:
                # Due at once (its slot has passed); `unknown` keeps re-planning away from it, as
                # for any item the outside world may have seen, and the publish run claims it.
                conn.execute(update(items).where(items.c.id == item_id, items.c.state == "published").values(
                    state="unknown", lease_expires=item.slot_utc, updated_at=stamp,
                    reason=f"{len(reopened)} recipient(s) re-opened for resending by {by}; the next publish run "
                           "sends them"))
        return Resend({a: unknown[a] for a in sorted(reopened)}, suppressed, item_due)

    def resends(self, item_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(resends).where(resends.c.item_id == item_id).order_by(resends.c.id))]

    def counts(self, item_id: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {r.state: r.n for r in conn.execute(select(deliveries.c.state, func.count().label("n")).where(
                deliveries.c.item_id == item_id).group_by(deliveries.c.state))}

    def rows(self, item_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(deliveries).where(deliveries.c.item_id == item_id).order_by(deliveries.c.address))]

    def recipient_of(self, item_id: str, key_prefix: str) -> str | None:
        """The address of the item's recipient whose address_key starts with `key_prefix`."""
        with self.engine.connect() as conn:
            return conn.execute(select(deliveries.c.address).where(
                deliveries.c.item_id == item_id,
                func.substr(deliveries.c.address_key, 1, len(key_prefix)) == key_prefix).limit(1)).scalar()

    def settle_late(self, item_id: str, address: str, state: str, detail: str, now: dt.datetime) -> bool:
        """A report that arrived after sending (a bounce by mail) changes a sent row's state."""
        with self.engine.begin() as conn:
            return conn.execute(update(deliveries).where(
                deliveries.c.item_id == item_id, deliveries.c.address == address,
                deliveries.c.state.in_(["sent", "unknown"])).values(
                state=state, detail=detail, updated_at=utc_naive(now))).rowcount == 1

    def addresses(self, item_id: str, state: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(deliveries.c.address).where(
                deliveries.c.item_id == item_id, deliveries.c.state == state)).scalars())

    def attempts_of(self, item_id: str, address: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(deliveries.c.attempts).where(
                deliveries.c.item_id == item_id, deliveries.c.address == address)).scalar() or 0)

    def expire(self, item_id: str, why: str, now: dt.datetime) -> list[str]:
        """The edition may no longer be sent (`why`): its unsent rows are settled. A deferred row
        is `failed` (the server never took it: a soft bounce), a pending one `expired`. Returns
        the failed addresses."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            failed = conn.execute(update(deliveries).where(
                deliveries.c.item_id == item_id, deliveries.c.state == "deferred").values(
                state="failed", owner=None, updated_at=stamp,
                detail=func.coalesce(deliveries.c.detail, "") + f" (gave up: {why})").returning(
                deliveries.c.address)).scalars().all()
            conn.execute(update(deliveries).where(
                deliveries.c.item_id == item_id, deliveries.c.state == "pending").values(
                state="expired", owner=None, updated_at=stamp, detail=f"not sent: {why}"))
        return sorted(failed)

    def superseded_by(self, item_id: str) -> str | None:
        """A later edition of the same list (channel and audience) that has reached someone."""
        with self.engine.connect() as conn:
            item = conn.execute(select(items.c.channel, items.c.audience, items.c.slot_utc).where(
                items.c.id == item_id)).first()
            if item is None:
                return None
            later = select(items.c.id).where(
                items.c.channel == item.channel, items.c.audience == item.audience, items.c.slot_utc > item.slot_utc,
                items.c.id != item_id,
                exists().where(deliveries.c.item_id == items.c.id, deliveries.c.state == "sent"))
            return conn.execute(later.order_by(items.c.slot_utc).limit(1)).scalar()

    def next_retry(self, item_id: str) -> dt.datetime | None:
        """When the first deferred recipient of the item is due again (its back-off)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.attempts, deliveries.c.updated_at).where(
                deliveries.c.item_id == item_id, deliveries.c.state == "deferred")).all()
        return min((as_utc(r.updated_at) + retry_backoff(r.attempts) for r in rows), default=None)

    def suppress_soft_bounces(self, addresses: Collection[str], limit: int, now: dt.datetime) -> list[str]:
        """Suppress (every list) each address whose last `limit` editions all ended `failed`
        (never accepted: 4xx until the edition expired, or mailbox full). Returns those suppressed."""
        done = []
        with self.engine.begin() as conn:
            for address in addresses:
                last = conn.execute(select(deliveries.c.state, deliveries.c.detail).where(
                    deliveries.c.address == address, deliveries.c.state.in_(["sent", "failed"])).order_by(
                    deliveries.c.updated_at.desc()).limit(limit)).all()
                if len(last) == limit and all(r.state == "failed" for r in last):
                    if self.suppress(address, ALL_LISTS, "bounced", now, None,
                                     f"{limit} editions in a row not accepted (last: {last[0].detail})", conn):
                        done.append(address)
        return done

    # --- the web endpoint --------------------------------------------------------------------

    def address_for_key(self, address_key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(deliveries.c.address).where(
                deliveries.c.address_key == address_key).limit(1)).scalar()

    def sent_at(self, item_id: str, address: str) -> dt.datetime | None:
        with self.engine.connect() as conn:
            return as_utc(conn.execute(select(deliveries.c.sent_at).where(
                deliveries.c.item_id == item_id, deliveries.c.address == address)).scalar())

    def anonymise_clicks(self, before: dt.datetime) -> int:
        """Clicks older than `before` lose their address (the count stays)."""
        with self.engine.begin() as conn:
            return conn.execute(update(clicks).where(clicks.c.address.is_not(None),
                                                     clicks.c.clicked_at < utc_naive(before)).values(address=None)).rowcount

    def clicked(self, item_id: str, url: str, address: str) -> bool:
        """Whether this recipient's click on this link was counted already."""
        with self.engine.connect() as conn:
            return conn.execute(select(clicks.c.id).where(
                clicks.c.item_id == item_id, clicks.c.address == address, clicks.c.url == url).limit(1)).first() is not None

    def add_click(self, item_id: str, url: str, address: str | None, now: dt.datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(clicks).values(item_id=item_id, url=url, address=address, clicked_at=utc_naive(now)))

    def clicks(self, item_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(clicks).where(clicks.c.item_id == item_id).order_by(clicks.c.id))]

    # --- metrics -----------------------------------------------------------------------------

    def metrics(self, item_ids: list[str]) -> dict[str, dict[str, int]]:
        """Per item: sent, rejected (bounced or refused), unsubscribed (through this item's
        links), clicks, and the recipients not (yet) reached."""
        out = {i: {"sent": 0, "rejected": 0, "unsubscribed": 0, "clicks": 0, "suppressed": 0, "unknown": 0,
                   "not_sent": 0} for i in item_ids}
        with self.engine.connect() as conn:
            for start in range(0, len(item_ids), 500):
                chunk = item_ids[start:start + 500]
                for r in conn.execute(select(deliveries.c.item_id, deliveries.c.state, func.count().label("n")).where(
                        deliveries.c.item_id.in_(chunk)).group_by(deliveries.c.item_id, deliveries.c.state)):
                    key = {"sent": "sent", "bounced": "rejected", "rejected": "rejected", "suppressed": "suppressed",
                           "unknown": "unknown"}.get(r.state, "not_sent")
                    out[r.item_id][key] += r.n
                for r in conn.execute(select(suppressions.c.item_id, func.count().label("n")).where(
                        suppressions.c.item_id.in_(chunk), suppressions.c.reason == "unsubscribed"
                ).group_by(suppressions.c.item_id)):
                    out[r.item_id]["unsubscribed"] = r.n
                for r in conn.execute(select(clicks.c.item_id, func.count().label("n")).where(
                        clicks.c.item_id.in_(chunk)).group_by(clicks.c.item_id)):
                    out[r.item_id]["clicks"] = r.n
        return out


class _PendingRows:
    """New pending rows of one item, inserted on the DBAPI cursor of the transaction's own
    connection: SQLAlchemy's per-row parameter handling cost more than SQLite's insert (a
    million rows: ~15 s). The statement is compiled once, its parameters built once and only
    the address and its key set per row."""

    def __init__(self, conn: Connection, item_id: str, stamp: dt.datetime) -> None:
        statement = _insert_ignore(conn, deliveries, ["item_id", "address"]).values(
            item_id=bindparam("b_item"), address=bindparam("b_address"), address_key=bindparam("b_key"),
            state="pending", attempts=0, updated_at=bindparam("b_now"))
        compiled = _Compiled(statement, conn.dialect)
        now = (DateTime().bind_processor(conn.dialect) or (lambda value: value))(stamp)
        self.sql = compiled.sql
        self.template = compiled.params({"b_item": item_id, "b_address": "", "b_key": "", "b_now": now})
        self.cursor = conn.connection.cursor()
        if compiled.order is not None:  # positional (SQLite): a tuple per row
            where = [compiled.order.index(name) for name in ("b_address", "b_key")]

            def row(address: str, key: str) -> Any:
                values = list(self.template)
                values[where[0]], values[where[1]] = address, key
                return values
        else:  # named (PostgreSQL)
            def row(address: str, key: str) -> Any:
                return {**self.template, "b_address": address, "b_key": key}
        self.row = row

    def insert(self, addresses: Iterable[tuple[str, str]]) -> None:
        self.cursor.executemany(self.sql, [self.row(a, k) for a, k in addresses])


def _insert_ignore(conn: Connection, table, keys: list[str]):
    """INSERT that leaves an existing row (same key) alone, on SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)


__all__ = ["ALL_LISTS", "CannotResend", "Deliveries", "Outcome", "Resend", "normalise"]


class SendLog:
    """The statement of every message (settle the previous one, mark this one `sending`) on a
    raw DBAPI connection of its own, one per send (one thread drives its SMTP connections).

    SQLAlchemy statements compiled once for the dialect and executed on the DBAPI cursor: going
    through SQLAlchemy cost ~250 us a message, more than SQLite itself, and was the largest cost
    of a send. Anything unusual (a bounce to suppress, a row that could not be marked) goes
    through `Deliveries` as usual.
    """

    def __init__(self, store: Deliveries, item_id: str, worker: str, scope: str) -> None:
        from sqlalchemy import DateTime

        self.store, self.item_id, self.worker, self.scope = store, item_id, worker, scope
        dialect = store.engine.dialect
        self.sqlite = dialect.name == "sqlite"
        self.raw = store.engine.raw_connection()
        if self.sqlite:
            # Recipients go in address order, so a message touches the same few leaf pages as the
            # one before: 8 MB holds them. (With a connection per sending thread, each one's cache
            # was emptied by the other's every write and 64 MB was needed; with one, 64 MB only
            # filled up: +30 MB peak RSS at a million, no faster. 300k: 4 MB 55.8 s, 16 MB 56.9 s,
            # 64 MB 58.2 s.)
            cursor = self.raw.cursor()
            cursor.execute("PRAGMA cache_size=-8192")
            cursor.close()
        self._begin = _Compiled(_BEGIN_SEND, dialect)
        self._advance = _Compiled(_ADVANCE, dialect)
        self._time = DateTime().bind_processor(dialect) or (lambda value: value)

    def begin_send(self, address: str, now: dt.datetime, settled: list[Outcome]) -> str:
        if any(o.state == "bounced" for o in settled) or len(settled) > 1:
            return self.store.begin_send(self.item_id, self.worker, address, self.scope, now, settled)
        stamp = self._time(utc_naive(now))
        values = {"b_item": self.item_id, "b_address": address, "b_owner": self.worker, "b_scope": self.scope,
                  "b_now": stamp}
        with self.store.writing:
            cursor = self.raw.cursor()
            try:
                if settled:
                    o = settled[0]
                    values.update({"p_address": o.address, "p_state": o.state, "p_detail": o.detail,
                                   "p_sent_at": stamp if o.state == "sent" else None,
                                   "p_attempt": 0 if o.state == "pending" else 1})
                    cursor.execute(self._advance.sql, self._advance.params(values))
                else:
                    cursor.execute(self._begin.sql, self._begin.params(values))
                changed = cursor.rowcount
                self.raw.commit()  # SQLite runs in autocommit here; PostgreSQL needs it
            except BaseException:
                self.raw.rollback()
                raise
            finally:
                cursor.close()
        if changed == 1 + len(settled):
            return "go"
        with self.store.engine.connect() as conn:  # unusual: a row was taken over or unsubscribed
            row = conn.execute(select(deliveries.c.state, deliveries.c.owner).where(
                deliveries.c.item_id == self.item_id, deliveries.c.address == address)).first()
        if row is not None and (row.state, row.owner) == ("sending", self.worker):
            # This one is marked; the previous outcome (if it did not change) goes the long way,
            # which settles it if it still may be and says nothing otherwise.
            self.store.record(self.item_id, self.worker, settled, self.scope, now)
            return "go"
        return self.store.begin_send(self.item_id, self.worker, address, self.scope, now)  # says why not

    def record(self, outcomes: list[Outcome], now: dt.datetime) -> None:
        self.store.record(self.item_id, self.worker, outcomes, self.scope, now)

    def close(self) -> None:
        self.raw.close()


class _Compiled:
    def __init__(self, statement, dialect) -> None:
        self.compiled = statement.compile(dialect=dialect)
        self.sql = self.compiled.string
        self.order = self.compiled.positiontup if self.compiled.positional else None

    def params(self, values: dict):
        full = self.compiled.construct_params(values)
        return [full[name] for name in self.order] if self.order is not None else full
