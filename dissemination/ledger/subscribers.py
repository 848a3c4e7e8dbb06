"""Newsletter subscribers: personal data, kept in the ledger's database and never in git.

A subscriber is an address with a name, a language and (optionally) the stakeholder it belongs to;
it is on lists (audience ids), each subscription with its own consent record: the source (e.g.
"Aanmelding website"), when consent was given and, for a double opt-in, when the confirmation link
was used and where the request came from. Newsletters go to subscribers whose subscription to the
edition's audience is active; the suppression list (`deliveries.py`) still applies on top.

Imports never re-subscribe an address that unsubscribed (that takes a new confirmation by the
person), and refuse an address that was erased at the person's request: of an erased address only
a keyed hash is kept (`erasures`), so it cannot be read back but can be recognised.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import re
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Callable, Collection, Iterable, Iterator

from sqlalchemy import delete, exists, func, insert, select, update

from dissemination.ledger.deliveries import normalise
from dissemination.ledger.schema import (clicks, deliveries, erasures, resends, subscribers, subscriptions,
                                         suppressions, unsuppressions)
from dissemination.ledger.store import Ledger, as_utc, utc_naive

if TYPE_CHECKING:
    from dissemination.load.readers import StakeholderMapFile

_EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_LIST = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REQUIRED = ("email", "lists", "consent_source", "consent_date")
OPTIONAL = ("name", "language", "tracking", "organisation", "confirmed_at", "request_origin")
Hasher = Callable[[str], str]


def keyed_hash(secret: bytes) -> Hasher:
    """The hash kept of an erased address: HMAC-SHA256 with the link secret, so the ledger alone
    cannot be used to test guessed addresses."""
    return lambda address: hmac.new(secret, b"erased\x1f" + normalise(address).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str  # normalised
    name: str | None
    tracking: bool  # consented to per-person click tracking


@dataclass(frozen=True)
class Row:
    """One subscriber to add, with where it came from (`file:line`)."""

    where: str
    address: str
    lists: tuple[str, ...]
    consent_source: str
    consent_at: dt.datetime
    name: str | None = None
    language: str = "nl"
    tracking: bool = False
    organisation: str | None = None
    confirmed_at: dt.datetime | None = None
    request_origin: str | None = None


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)  # new subscribers
    subscribed: int = 0  # new (subscriber, list) pairs, including those of new subscribers
    unchanged: int = 0  # rows that added nothing
    kept_unsubscribed: list[str] = field(default_factory=list)  # "address (list)": not re-subscribed
    problems: list[str] = field(default_factory=list)  # "file:line: message (how to fix)"


def _date(value: str) -> dt.datetime:
    value = value.strip()
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


def read_csv(name: str, text: str, lists: Collection[str] | None = None) -> tuple[list[Row], list[str]]:
    """Rows of a subscriber CSV (header: email, lists, consent_source, consent_date, and optionally
    name, language, tracking, organisation, confirmed_at, request_origin), and every problem
    as `file:line: message (how to fix)`. `lists`: the known list (audience) ids."""
    problems: list[str] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [h for h in REQUIRED if h not in header]
    unknown = [h for h in header if h not in REQUIRED + OPTIONAL]
    if missing or unknown:
        what = "; ".join(filter(None, [f"missing column(s) {', '.join(missing)}" if missing else "",
                                      f"unknown column(s) {', '.join(unknown)}" if unknown else ""]))
        return [], [f"{name}:1: {what} (the header is: {', '.join(REQUIRED + OPTIONAL)}; the last six are optional)"]
    reader.fieldnames = header
    rows: list[Row] = []
    seen: dict[str, str] = {}
    for record in reader:
        line = reader.line_num
        where = f"{name}:{line}"
        get = {k: (v or "").strip() for k, v in record.items() if k is not None}
        errors = []
        address = normalise(get.get("email", ""))
        if not _EMAIL.match(address):
            errors.append(f"'{get.get('email', '')}' is not an e-mail address")
        elif address in seen:
            errors.append(f"{address} is listed twice (first on {seen[address]})")
        row_lists = tuple(dict.fromkeys(x for x in re.split(r"[\s;,]+", get.get("lists", "")) if x))
        if not row_lists:
            errors.append("no list (lists: the audience ids to subscribe to, separated by spaces)")
        bad = [x for x in row_lists if not _LIST.match(x) or (lists is not None and x not in lists)]
        if bad:
            errors.append(f"unknown list(s) {', '.join(bad)}" + (f" (known: {', '.join(sorted(lists))})" if lists else ""))
        if not get.get("consent_source"):
            errors.append("no consent_source (where the person gave consent, e.g. 'Aanmelding website'); "
                          "nobody is subscribed without a consent record")
        consent_at = confirmed_at = None
        try:
            consent_at = _date(get.get("consent_date", ""))
        except ValueError:
            errors.append(f"consent_date '{get.get('consent_date', '')}' is not a date (YYYY-MM-DD)")
        if get.get("confirmed_at"):
            try:
                confirmed_at = _date(get["confirmed_at"])
            except ValueError:
                errors.append(f"confirmed_at '{get['confirmed_at']}' is not a date and time (YYYY-MM-DDTHH:MM)")
        tracking = get.get("tracking", "").lower()
        if tracking not in ("", "yes", "no", "true", "false", "ja", "nee"):
            errors.append(f"tracking '{get['tracking']}' is not yes or no")
        language = get.get("language") or "nl"
        if language not in ("nl", "en"):
            errors.append(f"language '{language}' is not nl or en")
        if errors:
            problems.append(f"{where}: {'; '.join(errors)}")
            continue
        seen[address] = where
        assert consent_at is not None  # a consent_date that is not a date is an error above
        rows.append(Row(where, address, row_lists, get["consent_source"], consent_at,
                        get.get("name") or None, language, tracking in ("yes", "true", "ja"),
                        get.get("organisation") or None, confirmed_at, get.get("request_origin") or None))
    return rows, problems


class Subscribers:
    def __init__(self, ledger: Ledger) -> None:
        self.engine = ledger.engine

    def import_rows(self, rows: Iterable[Row], now: dt.datetime, hasher: Hasher | None, dry_run: bool = False
                    ) -> ImportReport:
        """Add the rows' subscribers and subscriptions, all or nothing: with any problem (an
        erased address) nothing is written. Existing subscribers get the lists they lack;
        a list they unsubscribed from is kept as it is (a person re-subscribes only by confirming)."""
        report = ImportReport()
        stamp = utc_naive(now)
        rows = list(rows)
        with self.engine.begin() as conn:
            if rows and conn.execute(select(func.count()).select_from(erasures)).scalar():
                if hasher is None:
                    raise MissingKey("addresses were erased before; the import needs DISSEMINATION_UNSUBSCRIBE_SECRET "
                                     "to recognise them")
                hashes = {hasher(r.address): r for r in rows}
                erased: dict[str, dt.datetime] = {}
                for start in range(0, len(hashes), 500):
                    chunk = list(islice(hashes, start, start + 500))
                    erased.update((r.address_hash, r.erased_at) for r in conn.execute(
                        select(erasures.c.address_hash, erasures.c.erased_at).where(erasures.c.address_hash.in_(chunk))))
                report.problems = [
                    f"{row.where}: {row.address} was erased at the person's request on {erased[h]:%Y-%m-%d} (AVG); "
                    "it is never added again by an import (remove the row)" for h, row in hashes.items() if h in erased]
            if report.problems:
                return report
            existing: dict[str, int] = {}
            addresses = [r.address for r in rows]
            for start in range(0, len(addresses), 500):
                existing.update((r.address, r.id) for r in conn.execute(select(subscribers.c.address, subscribers.c.id).where(
                    subscribers.c.address.in_(addresses[start:start + 500]))))
            for row in rows:
                sid = existing.get(row.address)
                if sid is None:
                    report.added.append(row.address)
                    if dry_run:
                        report.subscribed += len(row.lists)
                        continue
                    sid = conn.execute(insert(subscribers).values(
                        address=row.address, name=row.name, language=row.language, organisation=row.organisation,
                        tracking=row.tracking, state="active", created_at=stamp, updated_at=stamp
                    ).returning(subscribers.c.id)).scalar_one()
                    have: dict[str, str] = {}
                else:
                    have = {r.list: r.state for r in conn.execute(select(subscriptions.c.list, subscriptions.c.state).where(
                        subscriptions.c.subscriber_id == sid))}
                new = [x for x in row.lists if x not in have]
                report.kept_unsubscribed += [f"{row.address} ({x})" for x in row.lists if have.get(x) == "unsubscribed"]
                if not new:
                    report.unchanged += 1
                    continue
                report.subscribed += len(new)
                if not dry_run:
                    conn.execute(insert(subscriptions), [{
                        "subscriber_id": sid, "list": x, "state": "active", "consent_source": row.consent_source,
                        "consent_at": utc_naive(row.consent_at),
                        "confirmed_at": utc_naive(row.confirmed_at) if row.confirmed_at else None,
                        "request_origin": row.request_origin, "updated_at": stamp} for x in new])
        return report

    def recipient_query(self, audience: str, earlier: Collection[str] = ()):
        """SELECT address, name, tracking of the active subscribers of `audience` who get no
        `earlier` edition of the same newsletter, in address order."""
        joined = subscribers.join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        active = (subscribers.c.state == "active") & (subscriptions.c.state == "active")
        query = select(subscribers.c.address, subscribers.c.name, subscribers.c.tracking).select_from(joined).where(
            active, subscriptions.c.list == audience)
        if earlier:
            other = subscriptions.alias("other")
            query = query.where(~exists().where(other.c.subscriber_id == subscribers.c.id, other.c.state == "active",
                                                other.c.list.in_(list(earlier))))
        return query.order_by(subscribers.c.address)

    def address_query(self, audience: str, earlier: Collection[str] = ()):
        """The same recipients as `recipient_query`, addresses only."""
        return self.recipient_query(audience, earlier).with_only_columns(subscribers.c.address)

    def details(self, addresses: Collection[str]) -> dict[str, Recipient]:
        """Name and tracking consent of these addresses (a chunk being sent)."""
        out: dict[str, Recipient] = {}
        wanted = list(addresses)
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                out.update((r.address, Recipient(r.address, r.name, bool(r.tracking))) for r in conn.execute(
                    select(subscribers.c.address, subscribers.c.name, subscribers.c.tracking).where(
                        subscribers.c.address.in_(wanted[start:start + 500]))))
        return out

    def recipients(self, audience: str, earlier: Collection[str] = ()) -> dict[str, Recipient]:
        """Active subscribers of `audience`, minus those who get the edition of an `earlier`
        audience of the same newsletter (one edition per person)."""
        active = (subscribers.c.state == "active") & (subscriptions.c.state == "active")
        joined = subscribers.join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        with self.engine.connect() as conn:
            elsewhere = set(conn.execute(select(subscribers.c.address).select_from(joined).where(
                active, subscriptions.c.list.in_(list(earlier)))).scalars()) if earlier else set()
            return {r.address: Recipient(r.address, r.name, bool(r.tracking)) for r in conn.execute(
                select(subscribers.c.address, subscribers.c.name, subscribers.c.tracking).select_from(joined).where(
                    active, subscriptions.c.list == audience).order_by(subscribers.c.address))
                if r.address not in elsewhere}

    def unsubscribe(self, address: str, now: dt.datetime, lists: Collection[str] | None = None) -> int:
        """End the subscriptions of `address` (to `lists`, default all): consent withdrawn. Returns
        how many ended. Coming back takes a new confirmation by the person."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            sid = conn.execute(select(subscribers.c.id).where(subscribers.c.address == normalise(address))).scalar()
            if sid is None:
                return 0
            query = update(subscriptions).where(subscriptions.c.subscriber_id == sid, subscriptions.c.state != "unsubscribed")
            if lists is not None:
                query = query.where(subscriptions.c.list.in_(list(lists)))
            ended = conn.execute(query.values(state="unsubscribed", unsubscribed_at=stamp, updated_at=stamp)).rowcount
            if not conn.execute(select(subscriptions.c.list).where(
                    subscriptions.c.subscriber_id == sid, subscriptions.c.state != "unsubscribed").limit(1)).first():
                conn.execute(update(subscribers).where(subscribers.c.id == sid).values(
                    state="unsubscribed", updated_at=stamp))
            return ended

    # --- sign-up with double opt-in (`dissemination web`) -----------------------------------------

    def request(self, address: str, name: str | None, list_id: str, origin: str | None, now: dt.datetime) -> tuple[int, str]:
        """Someone asked (on the sign-up form, or in their preferences) to receive `list_id`. The
        subscription is `pending` until the link in the confirmation mail is used; a new request
        replaces the consent record. Returns (subscriber id, the subscription's state before)."""
        address = normalise(address)
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            sid = conn.execute(select(subscribers.c.id).where(subscribers.c.address == address)).scalar()
            if sid is None:
                sid = conn.execute(insert(subscribers).values(
                    address=address, name=name or None, language="nl", tracking=False, state="pending",
                    created_at=stamp, updated_at=stamp).returning(subscribers.c.id)).scalar_one()
            before = conn.execute(select(subscriptions.c.state).where(
                subscriptions.c.subscriber_id == sid, subscriptions.c.list == list_id)).scalar()
            if before == "active":
                return sid, before
            record = {"state": "pending", "consent_source": "Aanmelding via het formulier (dubbele opt-in)",
                      "consent_at": stamp, "confirmed_at": None, "request_origin": origin, "unsubscribed_at": None,
                      "updated_at": stamp}
            if before is None:
                conn.execute(insert(subscriptions).values(subscriber_id=sid, list=list_id, **record))
            else:
                conn.execute(update(subscriptions).where(
                    subscriptions.c.subscriber_id == sid, subscriptions.c.list == list_id).values(**record))
            return sid, before or "new"

    def confirm(self, subscriber_id: int, list_id: str, now: dt.datetime) -> str:
        """The confirmation link was used: a pending subscription becomes active. Returns the
        subscription's state now ("active"; "unsubscribed" or "missing" when there is nothing to
        confirm: the request was withdrawn or erased)."""
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            state = conn.execute(select(subscriptions.c.state).where(
                subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list == list_id)).scalar()
            if state == "pending":
                conn.execute(update(subscriptions).where(
                    subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list == list_id).values(
                    state="active", confirmed_at=stamp, updated_at=stamp))
                conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(
                    state="active", updated_at=stamp))
                return "active"
            return state or "missing"

    def person(self, subscriber_id: int) -> tuple[str, dict[str, str]] | None:
        """(address, {list: state}) of a subscriber, or None."""
        with self.engine.connect() as conn:
            address = conn.execute(select(subscribers.c.address).where(subscribers.c.id == subscriber_id)).scalar()
            if address is None:
                return None
            return address, {r.list: r.state for r in conn.execute(select(subscriptions.c.list, subscriptions.c.state).where(
                subscriptions.c.subscriber_id == subscriber_id))}

    def id_of(self, address: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(subscribers.c.id).where(subscribers.c.address == normalise(address))).scalar()

    def any_active(self) -> bool:
        """Whether anyone is subscribed at all (one index probe, not a count)."""
        with self.engine.connect() as conn:
            return conn.execute(select(subscriptions.c.list).where(subscriptions.c.state == "active").limit(1)).first() \
                is not None

    def by_list(self) -> dict[str, frozenset[str]]:
        """The addresses of the active subscribers of each list (`check`'s simulation counts who
        each edition reaches)."""
        joined = subscribers.join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        found: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(subscriptions.c.list, subscribers.c.address).select_from(joined).where(
                    subscribers.c.state == "active", subscriptions.c.state == "active")):
                found.setdefault(row.list, set()).add(row.address)
        return {k: frozenset(v) for k, v in found.items()}

    def count(self, lists: Collection[str] | None = None) -> int:
        """Active subscribers (of any of `lists`)."""
        joined = subscribers.join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        query = select(func.count(func.distinct(subscribers.c.id))).select_from(joined).where(
            subscribers.c.state == "active", subscriptions.c.state == "active")
        if lists is not None:
            query = query.where(subscriptions.c.list.in_(list(lists)))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    # --- AVG rights ----------------------------------------------------------------------------

    def export(self, address: str) -> dict | None:
        """Everything held about `address` (AVG art. 15), or None when nothing is."""
        address = normalise(address)
        with self.engine.connect() as conn:
            person = conn.execute(select(subscribers).where(subscribers.c.address == address)).first()
            lists = [] if person is None else [_plain(r) for r in conn.execute(
                select(subscriptions).where(subscriptions.c.subscriber_id == person.id).order_by(subscriptions.c.list))]
            held = {
                "deliveries": [_plain(r) for r in conn.execute(select(
                    deliveries.c.item_id, deliveries.c.state, deliveries.c.detail, deliveries.c.attempts,
                    deliveries.c.sent_at, deliveries.c.updated_at).where(deliveries.c.address == address).order_by(
                    deliveries.c.updated_at))],
                "clicks": [_plain(r) for r in conn.execute(select(clicks.c.item_id, clicks.c.url, clicks.c.clicked_at).where(
                    clicks.c.address == address).order_by(clicks.c.id))],
                "suppressions": [_plain(r) for r in conn.execute(select(
                    suppressions.c.scope, suppressions.c.reason, suppressions.c.detail, suppressions.c.item_id,
                    suppressions.c.created_at).where(suppressions.c.address == address))],
                "lifted_suppressions": [_plain(r) for r in conn.execute(select(unsuppressions).where(
                    unsuppressions.c.address == address).order_by(unsuppressions.c.id))],
                "resends": [_plain(r) for r in conn.execute(select(resends).where(
                    resends.c.address == address).order_by(resends.c.id))],
            }
        if person is None and not any(held.values()):
            return None
        subscriber = None if person is None else {k: v for k, v in _plain(person).items() if k != "id"}
        if subscriber is not None:
            subscriber["lists"] = [{k: v for k, v in s.items() if k != "subscriber_id"} for s in lists]
        return {"address": address, "subscriber": subscriber, **held}

    def erase(self, address: str, hasher: Hasher, now: dt.datetime) -> bool:
        """Remove `address` from every table (AVG art. 17), keeping only a keyed hash so imports
        refuse it. Delivery rows stay for the newsletters' counts, under the hash instead of the
        address. Returns False when nothing was held."""
        address = normalise(address)
        hashed = hasher(address)
        marker = f"erased:{hashed[:40]}"
        stamp = utc_naive(now)
        with self.engine.begin() as conn:
            ids = list(conn.execute(select(subscribers.c.id).where(subscribers.c.address == address)).scalars())
            held = bool(ids)
            if ids:
                conn.execute(delete(subscriptions).where(subscriptions.c.subscriber_id.in_(ids)))
                conn.execute(delete(subscribers).where(subscribers.c.id.in_(ids)))
            for table, column, value in ((deliveries, deliveries.c.address, marker),
                                         (clicks, clicks.c.address, None),
                                         (resends, resends.c.address, marker),
                                         (unsuppressions, unsuppressions.c.address, marker)):
                held |= conn.execute(update(table).where(column == address).values({column.name: value})).rowcount > 0
            held |= conn.execute(delete(suppressions).where(suppressions.c.address == address)).rowcount > 0
            exists = conn.execute(select(erasures.c.address_hash).where(erasures.c.address_hash == hashed)).first()
            if not exists:
                conn.execute(insert(erasures).values(address_hash=hashed, erased_at=stamp))
        return held


class MissingKey(Exception):
    pass


def _plain(row) -> dict:
    out = {}
    for key, value in row._mapping.items():
        if isinstance(value, dt.datetime):
            value = as_utc(value).isoformat()
        out[key] = value
    return out


def contact_rows(maps: Iterable[tuple[str, StakeholderMapFile]]) -> Iterator[Row]:
    """Today's e-mail contacts of parsed stakeholder maps (`(path, StakeholderMap)`), with their
    consent records, as import rows: one row per address, on the lists (audiences) of every
    stakeholder it is listed under."""
    merged: dict[str, Row] = {}
    for path, parsed in maps:
        for stakeholder in parsed.stakeholders:
            for contact in stakeholder.contacts:
                if contact.email is None or contact.consent is None:
                    continue
                address = normalise(contact.email)
                consent_at = dt.datetime.combine(contact.consent.date, dt.time(), dt.timezone.utc)
                row = merged.get(address)
                lists = tuple(dict.fromkeys((*(row.lists if row else ()), *stakeholder.audiences)))
                merged[address] = Row(
                    row.where if row else path, address, lists,
                    row.consent_source if row else contact.consent.source,
                    min(row.consent_at, consent_at) if row else consent_at,
                    (row.name if row else None) or contact.name, "nl",
                    # Listed twice: per-person tracking only if every listing consents to it.
                    contact.tracking and (row.tracking if row else True),
                    row.organisation if row else stakeholder.id)
    return iter(merged.values())


__all__ = ["ImportReport", "MissingKey", "Recipient", "Row", "Subscribers", "contact_rows", "keyed_hash", "read_csv"]
