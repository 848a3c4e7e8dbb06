"""Per-item overhead of the publish path vs calling the outbox adapter directly, in one run.

Plans N due items, then publishes them through `publish_due` (claim under lease, attempt rows,
receipts, state changes in the SQLite ledger) and, as the baseline, sends the same claims straight
to the outbox adapter. The difference per item is what exactly-once bookkeeping costs.
With --prefect it also runs the `publish_due` flow under a local Prefect test server.

    .venv/bin/python bench/publish_overhead.py [--items 2000] [--prefect]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._project import make_root  # noqa: E402
from dissemination.ledger import Ledger, Receipt  # noqa: E402
from dissemination.load import load_project  # noqa: E402
from dissemination.plan.apply import plan
from dissemination.publish.loop import publish_due  # noqa: E402
from dissemination.publish.channels import open_channel  # noqa: E402

UTC = dt.timezone.utc


def prepare(folder: Path, items: int) -> tuple[Path, Ledger, dt.datetime]:
    base = dt.datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    root = make_root(folder, [base + dt.timedelta(minutes=i) for i in range(items)])
    ledger = Ledger.for_root(root)
    plan(root, ledger, base - dt.timedelta(days=1))
    return root, ledger, base + dt.timedelta(minutes=items + 1)


def _round(folder: Path, items: int) -> tuple[float, float, float]:
    """One round: (publish_due, adapter alone, ledger bookkeeping alone) in seconds."""
    root, ledger, now = prepare(folder / "a", items)
    start = time.perf_counter()
    report = publish_due(root, ledger, now)
    ours = time.perf_counter() - start
    assert len(report.published) == items, report

    root2, ledger2, now2 = prepare(folder / "b", items)
    project, _ = load_project(root2)
    claims = ledger2.claim_due("bench", now2, limit=items + 10)
    channel = open_channel("mastodon", project.channels["mastodon"], root2).channel
    start = time.perf_counter()
    for claim in claims:
        channel.publish(claim)
    bare = time.perf_counter() - start

    root3, ledger3, now3 = prepare(folder / "c", items)
    start = time.perf_counter()
    while claims := ledger3.claim_due("bench", now3, limit=50):
        for claim in claims:
            ledger3.record_published(claim, Receipt(claim.idempotency_key), now3)
    books = time.perf_counter() - start
    return ours, bare, books


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefect", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rounds = [_round(Path(tmp) / f"r{i}", args.items) for i in range(args.rounds)]
        ours, bare, books = (statistics.median(r[k] for r in rounds) for k in range(3))
        per = lambda seconds: seconds / args.items * 1000  # noqa: E731
        print(f"items: {args.items}, median of {args.rounds} alternating rounds")
        print(f"publish_due (ledger + outbox): {per(ours):.2f} ms/item")
        print(f"outbox adapter alone:          {per(bare):.2f} ms/item")
        print(f"overhead of the publish path:  {per(ours - bare):.2f} ms/item (goal <= 2 ms)")
        print(f"ledger bookkeeping alone (claim + record, no channel I/O): {per(books):.2f} ms/item")
        bare_s = bare
        if args.prefect:
            from prefect.testing.utilities import prefect_test_harness

            # the flow uses the real clock, so its slots lie just behind the real time
            now_real = dt.datetime.now(UTC).replace(second=0, microsecond=0)
            root3 = make_root(Path(tmp) / "d", [now_real - dt.timedelta(minutes=i + 1) for i in range(args.items)])
            plan(root3, Ledger.for_root(root3), now_real - dt.timedelta(days=1))
            from flows.publish_due import publish_due_flow

            with prefect_test_harness(server_startup_timeout=120):
                start = time.perf_counter()
                result = publish_due_flow(root=str(root3), batch=200)
                flow = time.perf_counter() - start
            assert len(result["published"]) == args.items, len(result["published"])
            print(f"publish_due flow under Prefect: {flow:.2f} s = {flow / args.items * 1000:.2f} ms/item; "
                  f"overhead vs adapter {(flow - bare_s) / args.items * 1000:.2f} ms/item")


if __name__ == "__main__":
    main()
