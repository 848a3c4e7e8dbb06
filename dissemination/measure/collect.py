"""Collecting engagement: every publication younger than `max_age`, through its own channel.

Each channel says how many publications one read covers (`read_batch`: Mastodon reads 20
statuses per request), how many reads may be in flight (`read_concurrency`) and how many may
start per minute (`read_per_minute`, under the platform's rate limit). Channels are read at the
same time, each within its own limits. All readings of a run carry the run's time, so a second run
in the same minute adds nothing (the ledger keeps one reading per item, metric, source and minute).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dissemination.ledger import Ledger, Receipt, Snapshot
from dissemination.load import models as m
from dissemination.load.project import load_channels
from dissemination.problems import ContentErrors
from dissemination.publish.channels import Channel, bind_channel, open_channel
from dissemination.publish.channels.outbox import OutboxSettings
from dissemination.publish.credentials import CredentialStore
from dissemination.publish.pacing import RateLimit

log = logging.getLogger("dissemination")
UTC = dt.timezone.utc
DEFAULT_MAX_AGE = dt.timedelta(days=30)
# Readings per ledger transaction: at most FLUSH_EVERY; as few as FLUSH_IDLE when no answer is
# waiting, so that the writer uses the time the readers wait on the network and little is left to
# write after the last answer (bench/metrics.py: the last flush had been ~45 ms of a 3.5 s run).
FLUSH_EVERY = 2000
FLUSH_IDLE = 200

Progress = Callable[[int, int], None]  # (publications read so far, publications to read)


@dataclass
class CollectReport:
    publications: int = 0
    reads: int = 0  # fetch_metrics calls
    added: int = 0
    unavailable: int = 0  # readings added that carry a reason instead of a value
    notes: list[str] = field(default_factory=list)


class _ChannelReader:
    """One configured channel: a client per worker thread (HTTP clients are not shared)."""

    def __init__(self, channel_id: str, config: m.ChannelSettings, root: Path,
                 credentials: CredentialStore | None, ledger: Ledger) -> None:
        self.channel_id, self.config, self.root, self.credentials = channel_id, config, root, credentials
        self.ledger = ledger
        self.local = threading.local()
        opened = open_channel(channel_id, config, root, credentials)
        bind_channel(opened.channel, ledger)  # e-mail reads its figures from the ledger
        self.local.channel = opened.channel
        self.note = opened.note
        # The outbox stood in for a platform it cannot read; e-mail reads its own figures from the
        # ledger, with or without SMTP.
        self.fallback = opened.note is not None and opened.channel.kind == "outbox"
        # The same check as before publishing, made once before any worker opens its own client:
        # it renews a LinkedIn token about to expire (the workers then read the renewed one).
        self.health = opened.channel.preflight()
        caps = opened.channel.capabilities
        self.batch = max(1, caps.read_batch)
        self.concurrency = max(1, caps.read_concurrency)
        self.rate = RateLimit(caps.read_per_minute)

    def channel(self) -> Channel:
        if not hasattr(self.local, "channel"):
            self.local.channel = open_channel(self.channel_id, self.config, self.root, self.credentials).channel
            bind_channel(self.local.channel, self.ledger)
        # Clients are made before the rate limiter lets a read go, so that the spacing it keeps
        # is the spacing of the requests themselves.
        self.local.channel.prepare_reads()
        return self.local.channel

    def start(self, pool: ThreadPoolExecutor, receipts: dict[str, Receipt], now: dt.datetime,
              results: queue.SimpleQueue[tuple[list[Snapshot], int] | BaseException], stop: threading.Event) -> int:
        """Read `receipts` in batches on `read_concurrency` workers, each taking the next batch as
        soon as it is done; each batch's readings go to `results`. Returns the number of reads.
        A few long-lived workers rather than a task per batch: tens of thousands of futures cost
        the interpreter time that the readers' own answers wait for."""
        ids = list(receipts)
        starts = iter(range(0, len(ids), self.batch))
        lock = threading.Lock()

        def work() -> None:
            while not stop.is_set():
                with lock:
                    start = next(starts, None)
                if start is None:
                    return
                batch = {i: receipts[i] for i in ids[start:start + self.batch]}
                try:
                    results.put((self.read(batch, now), len(batch)))
                except BaseException as exc:  # never leave the collector waiting for this batch
                    results.put(exc)
                    raise

        reads = math.ceil(len(ids) / self.batch)
        for _ in range(min(self.concurrency, reads)):
            pool.submit(work)
        return reads

    def read(self, receipts: dict[str, Receipt], now: dt.datetime) -> list[Snapshot]:
        try:
            channel = self.channel()
            self.rate.wait()
            return channel.fetch_metrics(receipts, now)
        except Exception as exc:  # a bug or an unforeseen answer: say so per item, never drop
            log.exception("metrics: reading %s failed", self.channel_id)
            reason = f"reading failed: {type(exc).__name__}"
            return [Snapshot.unavailable(item, "engagement", now, f"collector:{self.channel_id}", reason)
                    for item in receipts]


def _unavailable(items: list[str], now: dt.datetime, channel_id: str, reason: str) -> list[Snapshot]:
    return [Snapshot.unavailable(item, "engagement", now, f"collector:{channel_id}", reason) for item in items]


def collect_metrics(root: Path, ledger: Ledger, now: dt.datetime | None = None,
                    max_age: dt.timedelta = DEFAULT_MAX_AGE, progress: Progress | None = None,
                    credentials: CredentialStore | None = None) -> CollectReport:
    """Read the engagement of every publication younger than `max_age` into the ledger."""
    channels_file, problems = load_channels(root)
    if channels_file is None or problems.errors:
        raise ContentErrors(problems.errors)
    now = now or dt.datetime.now(UTC)
    report = CollectReport()
    by_channel: dict[str, dict[str, Receipt]] = {}
    for item, channel, remote_id, url in ledger.published_since(now - max_age):
        by_channel.setdefault(channel, {})[item] = Receipt(remote_id, url)
    report.publications = sum(len(r) for r in by_channel.values())
    done = 0
    if progress:
        progress(0, report.publications)
    buffer: list[Snapshot] = []

    def keep(rows: list[Snapshot], publications: int) -> None:
        nonlocal done
        buffer.extend(rows)
        done += publications
        if len(buffer) >= FLUSH_EVERY:
            flush()
        if progress:
            progress(done, report.publications)

    def flush() -> None:
        report.added += ledger.add_snapshots(buffer)
        report.unavailable += sum(not r.available for r in buffer)
        buffer.clear()

    pools: list[ThreadPoolExecutor] = []
    results: queue.SimpleQueue[tuple[list[Snapshot], int] | BaseException] = queue.SimpleQueue()
    stop = threading.Event()
    try:
        for channel_id, receipts in by_channel.items():
            config = channels_file.channels.get(channel_id)
            if config is None:
                keep(_unavailable(list(receipts), now, channel_id,
                                  f"channel '{channel_id}' is no longer in channels.yaml"), len(receipts))
                continue
            reader = _ChannelReader(channel_id, config, root, credentials, ledger)
            if not reader.health.ok:  # e.g. an expired token: every reading says why it is missing
                report.notes.append(f"{channel_id}: not read: {reader.health.message}")
                log.warning("metrics: %s: %s", channel_id, reader.health.message)
                keep(_unavailable(list(receipts), now, channel_id, reader.health.message), len(receipts))
                continue
            if reader.fallback and not isinstance(config, OutboxSettings):
                # Items the outbox stood in for say so themselves; real publications cannot be
                # read without the credentials.
                real = [i for i, r in receipts.items() if not (r.url or "").startswith("file:")]
                if real:
                    report.notes.append(f"{channel_id}: not read: {reader.note}")
                    keep(_unavailable(real, now, channel_id, f"not read: {reader.note}"), len(real))
                unread = set(real)
                receipts = {i: r for i, r in receipts.items() if i not in unread}
            pool = ThreadPoolExecutor(reader.concurrency, thread_name_prefix=f"metrics-{channel_id}")
            pools.append(pool)
            report.reads += reader.start(pool, receipts, now, results, stop)
        # Results are written here, in this thread, as they come: one writer, while the readers
        # wait on the network.
        for _ in range(report.reads):
            result = results.get()
            if isinstance(result, BaseException):
                raise result
            keep(*result)
            if len(buffer) >= FLUSH_IDLE and results.empty():
                flush()
        flush()
    finally:
        stop.set()
        for pool in pools:
            pool.shutdown(wait=True)
    # Who passed our posts on: boosts by partners' accounts, LinkedIn reshares (n.b.): measure/partners.py
    from dissemination.measure.partners import collect_partner_reach

    reach = collect_partner_reach(root, ledger, now, max_age, credentials)
    report.added += reach.added
    report.unavailable += reach.unavailable
    report.notes += reach.notes
    log.info("metrics: %d publication(s) in %d read(s); %d reading(s) added (%d unavailable)",
             report.publications, report.reads, report.added, report.unavailable)
    return report
