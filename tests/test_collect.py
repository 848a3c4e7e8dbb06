"""Collecting engagement through the real Mastodon client against the loopback fake: only
publications younger than the age limit, in batches of 20, never more requests in flight than the
channel allows nor faster than its rate, and one reading per metric and minute however often (or
however concurrently) the collector runs."""

import datetime as dt
import threading
import time

import pytest
from fakes.mastodon import FakeMastodon
from publishing import cli, make_project
from reporting import backend  # noqa: F401  (a fixture)

from dissemination.ledger import Ledger, PlannedItem, Receipt, Snapshot
from dissemination.measure import collect_metrics

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 4, 1, 9, 0, 10, tzinfo=UTC)


@pytest.fixture
def mastodon():
    fake = FakeMastodon().start()
    yield fake
    fake.stop()


def project(tmp_path, mastodon, monkeypatch, settings: str = ""):
    root = make_project(tmp_path)
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("base_url: https://mastodon.example",
                                                     f"base_url: {mastodon.url}{settings}"))
    monkeypatch.setenv("TEST_MASTODON_TOKEN", mastodon.token)
    return root


def publish_statuses(ledger: Ledger, mastodon: FakeMastodon, published: list[dt.datetime]) -> list[str]:
    """Mastodon publications in the ledger (through its API) with a status on the fake each."""
    planned = [PlannedItem("reeks", f"p{i}", "mkb", "mastodon", i, moment, "Europe/Amsterdam", {"text": f"{i}"})
               for i, moment in enumerate(published)]
    ledger.apply_plan(planned, min(published) - dt.timedelta(days=1))
    for item in sorted(planned, key=lambda p: p.slot_utc):
        (claim,) = ledger.claim_due("test", item.slot_utc, limit=1)
        status = mastodon._status(f"status {item.post}", "public", "nl")
        status["favourites_count"] = int(item.post[1:])
        mastodon.statuses[status["id"]] = status
        assert ledger.record_published(claim, Receipt(status["id"], status["url"]), item.slot_utc)
    return [p.id for p in planned]


def test_only_publications_younger_than_the_age_limit_are_read(tmp_path, mastodon, monkeypatch):
    root = project(tmp_path, mastodon, monkeypatch)
    ledger = Ledger.for_root(root)
    old, young = publish_statuses(ledger, mastodon, [NOW - dt.timedelta(days=31), NOW - dt.timedelta(days=29)])
    report = collect_metrics(root, ledger, NOW)
    assert report.publications == 1
    assert {s["item_id"] for s in ledger.snapshots()} == {young}
    # a longer limit reaches the older one too
    assert collect_metrics(root, ledger, NOW + dt.timedelta(minutes=1), max_age=dt.timedelta(days=40)).publications == 2
    assert {s["item_id"] for s in ledger.snapshots()} == {old, young}
    assert cli(root, "metrics", "--now", NOW.isoformat(), "--max-age", "1d").output.startswith(
        "metrics: 0 publication(s) younger than 1d")


def test_reads_are_batched_bounded_in_flight_and_spaced_by_the_rate(tmp_path, mastodon, monkeypatch):
    # 45 statuses: 3 batched requests (20 + 20 + 5); at most 2 in flight; at most 300 a minute
    root = project(tmp_path, mastodon, monkeypatch, "\n  metrics_concurrency: 2\n  metrics_per_minute: 300")
    ledger = Ledger.for_root(root)
    ids = publish_statuses(ledger, mastodon, [NOW - dt.timedelta(hours=i + 1) for i in range(45)])
    mastodon.latency = 0.2  # long enough for the reads to overlap
    began = time.monotonic()
    progress: list[tuple[int, int]] = []
    report = collect_metrics(root, ledger, NOW, progress=lambda done, total: progress.append((done, total)))
    assert (report.publications, report.reads) == (45, 3)
    # the progress bar's feed: publications done of all, per finished read
    assert progress[0] == (0, 45) and progress[-1] == (45, 45) and len(progress) == 4
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert sum(1 for r in mastodon.requests if r == ("GET", "/api/v1/statuses")) == 3
    assert mastodon.max_in_flight == 2
    assert len(mastodon.read_connections) == 2  # each reader keeps its connection for its next read
    # 60 s / 300 = 0.2 s between read starts: the third cannot start before 0.4 s (any delay
    # of the machine only makes it later)
    assert max(mastodon.reads_started) - began >= 0.4
    favourites = {s["item_id"]: s["value"] for s in ledger.snapshots() if s["metric"] == "favourites"}
    assert favourites == {item: float(i) for i, item in enumerate(ids)}


def test_the_cli_prints_a_summary(tmp_path, mastodon, monkeypatch):
    root = project(tmp_path, mastodon, monkeypatch)
    publish_statuses(Ledger.for_root(root), mastodon, [NOW - dt.timedelta(days=2)])
    result = cli(root, "metrics", "--now", NOW.isoformat())
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("metrics: 1 publication(s) younger than 30d read in 1 request(s); "
                                     "5 reading(s) added (0 unavailable, with the reason)")
    assert cli(root, "metrics", "--max-age", "soon").exit_code == 2


@pytest.mark.parametrize("start", [NOW, NOW.replace(second=0)], ids=["10s-past", "whole-minute"])
def test_a_second_run_in_the_same_minute_adds_nothing(tmp_path, mastodon, monkeypatch, start):
    # A run at a whole minute is the edge: its time must be stored in the same text form as the
    # bounds the same-minute check compares it with.
    root = project(tmp_path, mastodon, monkeypatch)
    ledger = Ledger.for_root(root)
    publish_statuses(ledger, mastodon, [NOW - dt.timedelta(days=1), NOW - dt.timedelta(days=2)])
    first = collect_metrics(root, ledger, start).added
    assert first == 2 * 5  # favourites, reblogs, replies, quotes, followers
    mastodon.followers += 1  # even a changed value: one reading per minute
    assert collect_metrics(root, ledger, start).added == 0
    assert collect_metrics(root, ledger, start + dt.timedelta(seconds=40)).added == 0
    assert collect_metrics(root, ledger, start + dt.timedelta(seconds=60)).added == first  # the next minute
    assert len(ledger.snapshots()) == 2 * first


def test_the_ledger_keeps_one_reading_per_item_metric_source_and_minute(tmp_path, mastodon, monkeypatch, backend):
    root = project(tmp_path, mastodon, monkeypatch)
    ledger = Ledger.for_root(root)
    a, b = publish_statuses(ledger, mastodon, [NOW - dt.timedelta(days=1), NOW - dt.timedelta(days=2)])
    last_moment = NOW.replace(second=59, microsecond=999_999)
    next_minute = last_moment + dt.timedelta(microseconds=1)
    amsterdam = dt.timezone(dt.timedelta(hours=2))
    added = ledger.add_snapshots([
        Snapshot(a, "favourites", 3.0, NOW, "mastodon:x"),
        Snapshot(a, "favourites", 4.0, NOW, "mastodon:x"),  # the same key in one call: the first wins
        Snapshot(a, "favourites", 5.0, NOW, "mastodon:y"),  # another source counts on its own
        Snapshot(a, "favourites", 6.0, last_moment, "mastodon:x"),  # same minute, later
        Snapshot(a, "favourites", 7.0, next_minute, "mastodon:x"),  # the next minute
        Snapshot(b, "views", None, NOW, "linkedin:x", False, "geen scope r_member_postAnalytics – ‘n.b.’"),
        Snapshot(b, "reactions", 2.5, NOW.astimezone(amsterdam), "linkedin:x"),  # the same moment elsewhere
    ])
    assert added == 5
    assert ledger.add_snapshots([Snapshot(b, "reactions", 9.0, NOW.replace(second=0), "linkedin:x"),
                                 Snapshot(b, "reactions", 9.0, next_minute, "linkedin:x"),
                                 Snapshot(a, "favourites", 8.0, NOW, "mastodon:z"),  # another source
                                 Snapshot(a, "replies", 1.0, NOW, "mastodon:x")]) == 3  # another metric
    rows = [(r["item_id"], r["metric"], r["value"], r["fetched_at"], r["source"], r["available"], r["reason"])
            for r in ledger.snapshots()]
    naive = NOW.replace(tzinfo=None)
    assert rows == [
        (a, "favourites", 3.0, naive, "mastodon:x", True, None),
        (a, "favourites", 5.0, naive, "mastodon:y", True, None),
        (a, "favourites", 7.0, next_minute.replace(tzinfo=None), "mastodon:x", True, None),
        (b, "views", None, naive, "linkedin:x", False, "geen scope r_member_postAnalytics – ‘n.b.’"),
        (b, "reactions", 2.5, naive, "linkedin:x", True, None),
        (b, "reactions", 9.0, next_minute.replace(tzinfo=None), "linkedin:x", True, None),
        (a, "favourites", 8.0, naive, "mastodon:z", True, None),
        (a, "replies", 1.0, naive, "mastodon:x", True, None),
    ]
    assert ledger.add_snapshots([]) == 0


def test_concurrent_runs_in_the_same_minute_add_each_reading_once(tmp_path, mastodon, monkeypatch, backend):
    root = project(tmp_path, mastodon, monkeypatch)
    publish_statuses(Ledger.for_root(root), mastodon, [NOW - dt.timedelta(hours=h + 1) for h in range(60)])
    mastodon.latency = 0.02
    added: list[int] = []
    barrier = threading.Barrier(4)

    def run(second: int) -> None:
        ledger = Ledger.for_root(root)  # an engine (and connections) of its own, as a separate worker has
        barrier.wait()
        added.append(collect_metrics(root, ledger, NOW + dt.timedelta(seconds=second)).added)
        ledger.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in (0, 11, 23, 41)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = Ledger.for_root(root).snapshots()
    assert sum(added) == len(rows) == 60 * 5
    assert len({(r["item_id"], r["metric"]) for r in rows}) == len(rows)


def test_a_channel_without_its_token_is_not_read_and_says_why(tmp_path, mastodon, monkeypatch):
    root = project(tmp_path, mastodon, monkeypatch)
    ledger = Ledger.for_root(root)
    (item,) = publish_statuses(ledger, mastodon, [NOW - dt.timedelta(days=1)])
    monkeypatch.delenv("TEST_MASTODON_TOKEN")
    report = collect_metrics(root, ledger, NOW)
    assert report.notes and "TEST_MASTODON_TOKEN not set" in report.notes[0]
    (row,) = ledger.snapshots()
    assert row["item_id"] == item and not row["available"] and "TEST_MASTODON_TOKEN not set" in row["reason"]
