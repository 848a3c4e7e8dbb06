"""Crash loop: publishers killed with SIGKILL at random points, then one recovery run.

Each iteration starts `dissemination publish` and kills it: either at a named point (after
claiming, before the remote call, after the remote call but before the ledger write, after the
ledger write) or at a random moment. After all iterations one clean run recovers. Then every due
item must be published exactly once: one receipt each, one outbox file each, no file without a
published item (0 duplicates, 0 lost).

    .venv/bin/python bench/crash.py [--iterations 500] [--items 600] [--db-url postgresql://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._project import make_root  # noqa: E402
from dissemination.ledger import Ledger  # noqa: E402
from dissemination.plan.apply import plan  # noqa: E402

UTC = dt.timezone.utc
POINTS = ["after_claim", "before_remote", "after_remote", "after_record"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db-url", help="ledger database (default: SQLite in the temporary root)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = dict(os.environ)
    if args.db_url:
        env["DISSEMINATION_DB_URL"] = args.db_url
        os.environ["DISSEMINATION_DB_URL"] = args.db_url
    base = dt.datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_root(Path(tmp), [base + dt.timedelta(minutes=i) for i in range(args.items)], tolerance="365d")
        ledger = Ledger.for_root(root)
        plan(root, ledger, base - dt.timedelta(days=1))
        exe = Path(sys.executable).parent / "dissemination"
        now = base + dt.timedelta(minutes=args.items)
        modes: Counter[str] = Counter()
        started = time.monotonic()
        for i in range(args.iterations):
            now += dt.timedelta(minutes=6)  # leases (5 min) of the previous run have expired
            command = [str(exe), "--root", str(root), "publish", "--now", now.isoformat(),
                       "--batch", str(rng.choice([1, 2, 5, 20]))]
            if rng.random() < 0.5:
                point = rng.choice(POINTS)
                proc = subprocess.Popen(command, env={**env, "DISSEMINATION_FAULT": point},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                modes[point] += 1
            else:
                proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.2, 1.5))
                proc.send_signal(signal.SIGKILL)
                modes["random moment"] += 1
            proc.wait(timeout=120)
            if (i + 1) % 50 == 0:
                counts = ledger.counts()
                print(f"  {i + 1} iterations, {time.monotonic() - started:.0f} s: {dict(sorted(counts.items()))}",
                      flush=True)
        subprocess.run(command[:5] + [(now + dt.timedelta(minutes=6)).isoformat()], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        rows = ledger.items()
        published = [r for r in rows if r["state"] == "published"]
        files = [p for p in (root / "outbox").rglob("*") if p.is_file()]
        keys = Counter(json.loads(p.read_text())["idempotency_key"] for p in files if not p.name.startswith(".tmp-"))
        expected = {r["idempotency_key"] for r in rows}
        lost = len(expected - set(keys)) + (len(rows) - len(published))
        duplicates = sum(n - 1 for n in keys.values()) + len(set(keys) - expected)
        retried = sum(1 for r in published if r["attempt_count"] > 1)
        print(f"iterations: {args.iterations} ({', '.join(f'{k}: {v}' for k, v in sorted(modes.items()))})")
        print(f"items: {len(rows)}, published: {len(published)}, published after an interrupted attempt: {retried}")
        print(f"duplicates: {duplicates}, lost: {lost}, temp files left: "
              f"{sum(p.name.startswith('.tmp-') for p in files)}")
        if duplicates or lost or len(published) != len(rows):
            sys.exit("FAILED: not exactly once")


if __name__ == "__main__":
    main()
