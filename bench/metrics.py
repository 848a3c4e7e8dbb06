"""Refreshing the engagement of 10,000 Mastodon publications against a loopback Mastodon that
answers every request after 50 ms, compared in the same run with the lower bound.

The collector reads 20 statuses per request (GET /api/v1/statuses?id[]=…), so 10,000 publications
are R = 500 requests. With C requests in flight and L seconds per answer no collector can finish in
less than L × R / C. The goal (≤ 1.2×) is held to this bound, counted per request; the issue's
L × n / C counts publications (one request each), which batching beats twentyfold, and is printed
too. The rate limit is set high here so that latency, not the limit, is what is measured; with
a limit of P requests a minute the bound would be max(L × R / C, 60 × R / P).

Also measured, as a practical floor: the same R batch requests sent by a bare httpx client from
C threads, with no ledger and no snapshot rows. Both run --repeat times, alternating; medians.

The fake runs in a child process so that its JSON encoding does not compete with the collector
for the interpreter lock, and keeps connections open (HTTP/1.1), as a Mastodon server does.

    .venv/bin/python bench/metrics.py [--publications 10000] [--concurrency 8] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench._ledger import add_published, sample_root  # noqa: E402
from dissemination.ledger import Ledger  # noqa: E402
from dissemination.measure import collect_metrics  # noqa: E402

UTC = dt.timezone.utc
BATCH = 20


def serve(n: int, latency: float, ready, stop) -> None:  # type: ignore[no-untyped-def]
    from fakes.mastodon import FakeMastodon

    fake = FakeMastodon()
    for i in range(n):
        status = fake._status(f"status {i}", "public", "nl")
        status["id"] = str(10**17 + i)
        status["favourites_count"] = i % 13
        fake.statuses[status["id"]] = status
    fake.latency = latency
    fake.server.request_queue_size = 128
    fake.start()
    ready.send((fake.url, fake.token))
    stop.wait()
    fake.stop()


def bare(url: str, token: str, ids: list[str], concurrency: int) -> float:
    import httpx

    clients = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) for _ in range(concurrency)]
    batches = [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]

    def read(k: int) -> int:
        response = clients[k % concurrency].get("/api/v1/statuses", params=[("id[]", i) for i in batches[k]])
        return len(response.json())

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        assert sum(pool.map(read, range(len(batches)))) == len(ids)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publications", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, c, latency = args.publications, args.concurrency, args.latency

    ready_recv, ready_send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    child = multiprocessing.Process(target=serve, args=(n, latency, ready_send, stop), daemon=True)
    child.start()
    url, token = ready_recv.recv()
    import os

    os.environ["BENCH_MASTODON_TOKEN"] = token
    with tempfile.TemporaryDirectory() as folder:
        root = sample_root(Path(folder))
        channels = root / "channels.yaml"
        channels.write_text(channels.read_text().replace("base_url: https://mastodon.nl", f"base_url: {url}\n"
                                                         f"  metrics_concurrency: {c}\n  metrics_per_minute: 1000000")
                            .replace("DISSEMINATION_MASTODON_TOKEN", "BENCH_MASTODON_TOKEN"))
        ledger = Ledger.for_root(root)
        now = dt.datetime.now(UTC)
        ids = [str(10**17 + i) for i in range(n)]
        add_published(ledger, ((i, "kennisreeks-praktijkvoorbeelden", "mkb", "mastodon",
                                now - dt.timedelta(minutes=1 + i % 20_000), ids[i]) for i in range(n)))
        requests = math.ceil(n / BATCH)
        bound = latency * requests / c
        # Imported once per process (a CLI run pays ~0.3 s for it, whatever the number of
        # publications); measured here is the refresh itself.
        import dissemination.publish.channels.mastodon  # noqa: F401

        floors, runs = [], []
        for k in range(args.repeat):  # alternating, so both see the same machine load
            floors.append(bare(url, token, ids, c))
            start = time.perf_counter()
            report = collect_metrics(root, ledger, now + dt.timedelta(minutes=k + 1))
            runs.append(time.perf_counter() - start)
            assert report.publications == n and report.reads == requests, report
            # Five readings per status, plus one per partner whose boosts are counted (issue 16).
            assert report.added >= n * 5 and report.added % n == 0 and report.unavailable == 0, report
        ledger.close()
        floor, ours = statistics.median(floors), statistics.median(runs)
    stop.set()
    child.join(10)
    print(f"{n} publications, {requests} requests of {BATCH}, {c} in flight, {latency * 1000:.0f} ms per answer")
    print(f"lower bound L x R / C : {bound:6.2f} s  (per request; the issue's L x n / C per publication: "
          f"{latency * n / c:.2f} s, ours {ours / (latency * n / c):.2f} x)")
    print(f"bare httpx, no ledger : {floor:6.2f} s  ({floor / bound:.2f} x bound)")
    print(f"collect_metrics       : {ours:6.2f} s  ({ours / bound:.2f} x bound; goal <= 1.2)  "
          f"{report.added} readings written per run")
    print("runs (collect / bare): " + ", ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(runs, floors)))


if __name__ == "__main__":
    main()
