"""Slot -> published latency under the real Prefect scheduler and a process worker: the setup of
tests/test_prefect_server.py (a `prefect server start` subprocess, this repository's prefect.yaml
deployed, `prefect worker start` with Prefect's default polling), with `publish-due` every minute
and posts due at the coming whole minutes (two channels per slot, both writing to the outbox).
Reports p50/p99 over all items (goal: p99 <= 60 s).

    .venv/bin/python bench/prefect_latency.py [--slots 6] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench._project import make_root  # noqa: E402
from dissemination.ledger import Ledger  # noqa: E402

UTC = dt.timezone.utc
CLI = [str(Path(sys.executable).parent / "dissemination")]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> None:
    from prefect_server import PrefectStack

    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=6)
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    os.environ.pop("DISSEMINATION_DB_URL", None)  # the content root's own SQLite ledger
    with tempfile.TemporaryDirectory() as tmp:
        stack = PrefectStack(Path(tmp), args.database)
        try:
            stack.start_server()
            stack.deploy({"publish-due": "* * * * *", "plan": None, "collect-metrics": None, "report": None})
            # the first slot leaves the worker time to start; then one slot a minute
            first = (dt.datetime.now(UTC) + dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
            slots = [first + dt.timedelta(minutes=i) for i in range(args.slots)]
            root = make_root(Path(tmp), slots)
            campaign = root / "campaigns" / "bench.md"
            campaign.write_text(campaign.read_text().replace("channels: [mastodon]", "channels: [mastodon, linkedin]"))
            for step in (["approve", "campaigns/bench.md", "--by", "Bench"], ["plan"]):
                subprocess.run([*CLI, "--root", str(root), *step], check=True, capture_output=True)
            # Prefect's default polling (every 10 s, runs taken up to 10 s before they start)
            stack.start_worker({"DISSEMINATION_HOME": str(root), "PREFECT_WORKER_QUERY_SECONDS": "10"})
            ledger = Ledger.for_root(root)
            expected = 2 * args.slots
            deadline = time.monotonic() + (slots[-1] - dt.datetime.now(UTC)).total_seconds() + 300
            while len(done := ledger.items(["published"])) < expected:
                assert time.monotonic() < deadline, f"{len(done)} of {expected} published:\n{stack.log('worker')}"
                time.sleep(5)
        finally:
            stack.close()
    latencies = [(row["published_at"] - row["slot_utc"]).total_seconds() for row in done]
    print(f"{len(latencies)} items at {args.slots} slots, Prefect server on {args.database}, publish-due every "
          f"minute, process worker; cores: {os.cpu_count()}")
    print(f"slot -> published: p50 {statistics.median(latencies):.1f} s, p99 {percentile(latencies, 99):.1f} s, "
          f"min {min(latencies):.1f} s, max {max(latencies):.1f} s (goal p99 <= 60 s)")


if __name__ == "__main__":
    main()
