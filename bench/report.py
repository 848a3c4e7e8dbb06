"""The stuurgroep report over one year of snapshots for 10,000 publications (goal: ≤ 5 s).

The ledger holds 10,000 publications spread over 2026 on the sample content's campaigns,
audiences and channels (half Mastodon, half LinkedIn), each read every 6 hours for the 30 days the
collector follows it (120 readings of 5 or 6 metrics: ~6.6 million snapshot rows). One LinkedIn
publication in ten has no statistics scope (unavailable with the reason). The report for 2026-Q4
reads Q4 and Q3 (the previous period and the baseline of the sample targets) and writes the HTML
and both CSVs; the report for the whole year 2026 (all 10,000 publications) likewise. Measured end to end (`make_report`, as `dissemination report` runs it), median of
--repeat runs, with the part spent in the snapshot query shown separately.

    .venv/bin/python bench/report.py [--publications 10000] [--readings 120] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._ledger import add_published, item_id, sample_root  # noqa: E402
from dissemination.ledger import Ledger  # noqa: E402
from dissemination.periods import parse_period  # noqa: E402
from dissemination.report import make_report  # noqa: E402
from dissemination.report.figures import report_metrics  # noqa: E402

UTC = dt.timezone.utc
CAMPAIGNS = ["kennisreeks-praktijkvoorbeelden", "slotsymposium-2027", "nieuwsbrief-kwartaal",
             "masterclass-leiderschap-voorjaar-2027"]
AUDIENCES = ["mkb", "verladers", "hr", "leidinggevenden", "beleid", "onderwijs", "onderzoek", "brancheorganisaties"]
MASTODON = ("favourites", "reblogs", "replies", "quotes", "followers")
LINKEDIN = ("impressions", "clicks", "likes", "comments", "shares", "reactions")
SCOPE = "needs the rw_organization_admin scope (LinkedIn: 403 ACCESS_DENIED)"


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's DateTime text on SQLite


def fill(root: Path, n: int, readings: int) -> int:
    ledger = Ledger.for_root(root)
    rng = random.Random(7)
    year = dt.datetime(2026, 1, 1, tzinfo=UTC)
    pubs = []
    for i in range(n):
        published = year + dt.timedelta(seconds=rng.randrange(365 * 86400))
        channel = "mastodon" if i % 2 else "linkedin"
        pubs.append((i, CAMPAIGNS[i % len(CAMPAIGNS)], AUDIENCES[i % len(AUDIENCES)], channel, published, f"r{i}"))
    add_published(ledger, pubs)
    ledger.close()
    db = sqlite3.connect(root / ".dissemination" / "ledger.db")
    insert = ("INSERT INTO snapshots (item_id, metric, value, fetched_at, source, available, reason) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)")
    total = 0
    for i, _, _, channel, published, _ in pubs:
        rows = []
        item = item_id(i)
        scope_missing = channel == "linkedin" and i % 10 == 0
        for k in range(readings):
            at = _stamp((published + dt.timedelta(hours=6 * (k + 1))).replace(tzinfo=None))
            for metric in (MASTODON if channel == "mastodon" else LINKEDIN):
                if scope_missing and metric != "reactions":
                    rows.append((item, metric, None, at, "linkedin:organizationalEntityShareStatistics", 0, SCOPE))
                else:
                    rows.append((item, metric, float(k + i % 5), at, channel, 1, None))
        db.executemany(insert, rows)
        total += len(rows)
    db.commit()
    db.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publications", type=int, default=10_000)
    parser.add_argument("--readings", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = sample_root(Path(folder))
        start = time.perf_counter()
        rows = fill(root, args.publications, args.readings)
        print(f"ledger: {args.publications} publications in 2026, {rows:,} snapshot rows "
              f"(filled in {time.perf_counter() - start:.0f} s)")
        now = dt.datetime(2027, 1, 15, tzinfo=UTC)
        for label in ("2026-Q4", "2026"):
            period = parse_period(label)
            totals, queries = [], []
            for k in range(args.repeat):
                ledger = Ledger.for_root(root)
                start = time.perf_counter()
                ledger.latest_readings(period.start_utc, period.end_utc, now, report_metrics())
                ledger.latest_readings(period.previous().start_utc, period.previous().end_utc, now, report_metrics())
                queries.append(time.perf_counter() - start)
                start = time.perf_counter()
                report, files = make_report(root, ledger, period, Path(folder) / "out" / f"{label}-{k}.html", now)
                totals.append(time.perf_counter() - start)
                ledger.close()
            pubs = int(report.totals.current["publications"].value)
            print(f"report {label} ({pubs} publications; previous period and baselines included): "
                  f"median {statistics.median(totals):.2f} s end to end (goal <= 5 s), runs "
                  + ", ".join(f"{t:.2f}" for t in totals))
            print(f"  of which the snapshot queries for it and its previous period: median "
                  f"{statistics.median(queries):.2f} s; html {files.html.stat().st_size // 1024} KiB, "
                  f"figures csv {files.figures_csv.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
