"""Fill a ledger fast for the measuring and reporting benchmarks: published items, receipts and
snapshots written with multi-row inserts (the publish path itself is measured elsewhere)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import insert

from dissemination.ledger import Ledger
from dissemination.ledger.schema import items, receipts, snapshots

REPO = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


def sample_root(folder: Path) -> Path:
    """A copy of the repository's sample content (campaigns, maps, programme with targets)."""
    root = folder / "content"
    for name in ("campaigns", "knowledge", "stakeholder_maps", "templates"):
        shutil.copytree(REPO / name, root / name)
    for name in ("channels.yaml", "programme.yaml"):
        shutil.copy(REPO / name, root / name)
    return root


def item_id(n: int) -> str:
    return hashlib.sha256(f"bench-{n}".encode()).hexdigest()[:16]


def add_published(ledger: Ledger, rows: Iterable[tuple[int, str, str, str, dt.datetime, str]]) -> None:
    """rows: (n, campaign, audience, channel, published_at, remote_id)."""
    item_rows, receipt_rows = [], []
    for n, campaign, audience, channel, published, remote in rows:
        stamp = published.astimezone(UTC).replace(tzinfo=None)
        key = hashlib.sha256(f"bench-{n}".encode()).hexdigest()[:40]
        item_rows.append({"id": item_id(n), "idempotency_key": key, "campaign": campaign, "post": f"post-{n % 7}",
                          "audience": audience, "channel": channel, "occurrence": n, "slot_utc": stamp,
                          "timezone": "Europe/Amsterdam", "state": "published", "payload": "{}",
                          "payload_digest": "-", "attempt_count": 1, "planned_at": stamp, "updated_at": stamp,
                          "published_at": stamp})
        receipt_rows.append({"item_id": item_id(n), "remote_id": remote, "url": f"https://example.org/{remote}",
                             "published_at": stamp})
    with ledger.engine.begin() as conn:
        for start in range(0, len(item_rows), 5000):
            conn.execute(insert(items), item_rows[start:start + 5000])
            conn.execute(insert(receipts), receipt_rows[start:start + 5000])


def add_snapshots(ledger: Ledger, rows: Iterator[dict], chunk: int = 50_000) -> int:
    total = 0
    batch: list[dict] = []
    with ledger.engine.begin() as conn:
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                conn.execute(insert(snapshots), batch)
                total += len(batch)
                batch.clear()
        if batch:
            conn.execute(insert(snapshots), batch)
            total += len(batch)
    return total
