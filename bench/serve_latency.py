"""Slot-to-published latency of `dissemination serve` (the embedded scheduler), real clock.

Plans one post per minute for the next few minutes, runs `serve` with its default intervals in a
subprocess, and reads from the ledger how long after its slot each item was published.

    .venv/bin/python bench/serve_latency.py [--minutes 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._project import make_root  # noqa: E402
from dissemination.ledger import Ledger  # noqa: E402

UTC = dt.timezone.utc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=4)
    args = parser.parse_args()
    first = dt.datetime.now(UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    slots = [first + dt.timedelta(minutes=i) for i in range(args.minutes)]
    with tempfile.TemporaryDirectory() as tmp:
        root = make_root(Path(tmp), slots, tolerance="2h")
        exe = Path(sys.executable).parent / "dissemination"
        proc = subprocess.Popen([str(exe), "--root", str(root), "serve"], stderr=subprocess.DEVNULL)
        try:
            while dt.datetime.now(UTC) < slots[-1] + dt.timedelta(seconds=75):
                time.sleep(5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        rows = Ledger.for_root(root).items()
        lags = [(r["published_at"] - r["slot_utc"]).total_seconds() for r in rows if r["published_at"]]
        assert len(lags) == len(rows) == len(slots), [r["state"] for r in rows]
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]
        print(f"{len(lags)} items, slot-to-published latency: median {statistics.median(lags):.2f} s, "
              f"p99 {p99:.2f} s, max {lags[-1]:.2f} s (goal p99 <= 60 s; serve publishes every 30 s)")


if __name__ == "__main__":
    main()
