"""Publish throughput with 1, 2 and 4 parallel publishers sharing one PostgreSQL ledger, against a
Mastodon on loopback that answers every request after 50 ms (tests/fakes/mastodon.py), as a ratio
to one publisher in the same run.

Each publisher is its own process running what a `publish_due` flow run runs (`publish_due` with
the flow's batch of 50): they share the due items through the ledger's claims (`FOR UPDATE SKIP
LOCKED`). Prefect itself is left out: its per-run overhead is measured by bench/prefect_latency.py.
This is the alternative to the one-at-a-time deployment (prefect.yaml), measured so the choice is
informed: see BENCHMARKS.md.

    .venv/bin/python bench/prefect_workers.py [--items 400] [--rounds 2] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench._project import make_root  # noqa: E402
from dissemination.ledger import Ledger  # noqa: E402
from dissemination.plan.apply import plan
from dissemination.publish.loop import publish_due  # noqa: E402

UTC = dt.timezone.utc
BASE = dt.datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def publisher(root: str, now: dt.datetime, ready, go, done) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger.for_root(Path(root))  # DISSEMINATION_DB_URL: the shared PostgreSQL schema
    ready.put(os.getpid())
    go.wait()
    report = publish_due(Path(root), ledger, now, batch=50)
    done.put(len(report.published))
    ledger.close()


def one_round(folder: Path, items: int, publishers: int, latency: float) -> float:
    from fakes.mastodon import FakeMastodon
    from publishing import PgSchema

    fake = FakeMastodon().start()
    fake.latency = latency
    os.environ["TEST_MASTODON_TOKEN"] = fake.token
    root = make_root(folder, [BASE + dt.timedelta(minutes=i) for i in range(items)])
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("base_url: https://mastodon.example", f"base_url: {fake.url}"))
    schema = PgSchema()
    os.environ["DISSEMINATION_DB_URL"] = schema.url
    try:
        ledger = Ledger.for_root(root)
        plan(root, ledger, BASE - dt.timedelta(days=1))
        ledger.close()
        ctx = mp.get_context("spawn")
        ready, go, done = ctx.Queue(), ctx.Event(), ctx.Queue()
        now = BASE + dt.timedelta(minutes=items + 1)
        procs = [ctx.Process(target=publisher, args=(str(root), now, ready, go, done)) for _ in range(publishers)]
        for proc in procs:
            proc.start()
        for _ in procs:  # every publisher imported and connected before the clock starts
            ready.get(timeout=300)
        start = time.perf_counter()
        go.set()
        published = sum(done.get(timeout=600) for _ in procs)
        elapsed = time.perf_counter() - start
        for proc in procs:
            proc.join(timeout=60)
        assert published == items == len(fake.statuses), "an item went out twice or not at all"
        return elapsed
    finally:
        schema.drop()
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], 2: [], 4: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # alternating, so a busy moment of the machine hits all three
            for n in times:
                times[n].append(one_round(Path(tmp) / f"r{r}-{n}", args.items, n, args.latency))
    base = statistics.median(times[1])
    print(f"items: {args.items}, platform latency {args.latency * 1000:.0f} ms per request, PostgreSQL ledger, "
          f"median of {args.rounds} alternating rounds; cores: {os.cpu_count()}, load average at the end "
          f"{os.getloadavg()[0]:.1f}")
    for n, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{n} publisher(s): {median:6.2f} s = {args.items / median:6.1f} items/s = "
              f"{base / median:.2f}x one publisher")


if __name__ == "__main__":
    main()
