"""Exactly once: concurrent publishers and publishers killed at any point, on the real CLI.

The outbox stands in for the remote side: like the platforms, it keys what it receives by the
idempotency key. The ledger must end with every due item published once, one receipt each, and
the outbox must hold exactly those items: nothing lost, nothing extra.
"""

import datetime as dt
import random
import re
import signal
import time

import pytest
from publishing import PgSchema, cli, make_project, outbox_keys, pg_available, subprocess_cli

from dissemination.ledger import Ledger

DUE = "2027-03-01T09:00:00+00:00"
# A daily series Jan 1 – Feb 28 for mkb and beleid: on Mastodon beleid has its own template
# (templates/mastodon/post.beleid.j2), so 2 items there and 1 shared on LinkedIn; plus the kick-off
# (mkb only) on both channels.
ITEMS = 3 * 59 + 2
FUTURE = 2 * 3  # the two series occurrences of `reeks` in March, not due yet


def _published(ledger: Ledger) -> list[dict]:
    return ledger.items(["published"])


def _assert_exactly_once(root, ledger: Ledger) -> None:
    rows = ledger.items()
    assert len(rows) == ITEMS + FUTURE
    published = [r for r in rows if r["state"] == "published"]
    assert len(published) == ITEMS, {r["state"] for r in rows}
    assert all(r["remote_id"] == r["idempotency_key"] for r in published)  # one receipt each
    keys = outbox_keys(root)
    assert sorted(keys) == sorted(r["idempotency_key"] for r in published)  # no duplicate, none lost


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        yield {}
        return
    if not pg_available():
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    schema = PgSchema()
    yield {"DISSEMINATION_DB_URL": schema.url}
    schema.drop()


def test_four_concurrent_publishers_publish_each_item_once(tmp_path, backend, monkeypatch):
    for key, value in backend.items():
        monkeypatch.setenv(key, value)
    root = make_project(tmp_path, daily=True, tolerance="90d")
    assert cli(root, "plan", "--now", "2026-12-01T00:00Z").exit_code == 0
    workers = [subprocess_cli(root, "publish", "--now", DUE, "--batch", "3", env=backend) for _ in range(4)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], outputs
    counts = [int(re.search(r"publish: (\d+) published", out).group(1)) for out, _ in outputs]
    assert sum(counts) == ITEMS, counts
    ledger = Ledger.for_root(root)
    _assert_exactly_once(root, ledger)
    for row in _published(ledger):
        attempts = ledger.attempts_of(row["id"])
        assert [a["outcome"] for a in attempts] == ["published"], attempts  # never claimed twice


def test_remote_succeeded_but_ledger_write_did_not_happen(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    crashed = subprocess_cli(root, "publish", "--now", DUE, "--batch", "1",
                             env={"DISSEMINATION_FAULT": "after_remote"})
    crashed.communicate(timeout=60)
    assert crashed.returncode == -signal.SIGKILL
    ledger = Ledger.for_root(root)
    in_flight = ledger.items(["claimed"])
    assert len(in_flight) == 1 and len(outbox_keys(root)) == 1  # sent, but not recorded
    # Before the lease expires nobody touches the in-flight item (only the other due item goes);
    # after it expires, the retry carries the same key and the outbox keeps one copy.
    assert "publish: 1 published" in cli(root, "publish", "--now", "2027-03-01T09:02Z").output
    assert ledger.items(["claimed"])[0]["id"] == in_flight[0]["id"]
    assert "publish: 1 published" in cli(root, "publish", "--now", "2027-03-01T09:06Z").output
    rows = ledger.items(["published"])
    assert len(rows) == 2 and sorted(outbox_keys(root)) == sorted(r["idempotency_key"] for r in rows)
    retried = ledger.attempts_of(in_flight[0]["id"])
    # killed (its attempt closed as abandoned when the lease was reclaimed), then the same key again
    assert [a["outcome"] for a in retried] == ["abandoned", "published"]
    assert retried[0]["finished_at"] is not None


def test_publishers_killed_at_random_points_lose_and_repeat_nothing(tmp_path):
    """55 publisher processes, each killed: at a named point (after claiming, before or after the
    remote call, after recording) or by SIGKILL at a random moment. Then one clean run."""
    root = make_project(tmp_path, daily=True, tolerance="90d")
    cli(root, "plan", "--now", "2026-12-01T00:00Z")
    rng = random.Random(20261122)
    start = dt.datetime.fromisoformat(DUE)
    points = ["after_claim", "before_remote", "after_remote", "after_record"]
    kills = 0
    named: set[str] = set()  # fault points at which a publisher did die
    for i in range(55):
        now = (start + dt.timedelta(minutes=6 * i)).isoformat()  # leases (5 min) of earlier runs expired
        batch = str(rng.choice([1, 2, 5]))
        point = None
        # The first runs die at each named point in turn: later ones may find nothing left due
        # (how much a run killed at a random moment publishes first depends on the machine).
        if i < len(points) or rng.random() < 0.5:
            point = points[i] if i < len(points) else rng.choice(points)
            proc = subprocess_cli(root, "publish", "--now", now, "--batch", batch,
                                  env={"DISSEMINATION_FAULT": point})
        else:
            proc = subprocess_cli(root, "publish", "--now", now, "--batch", batch)
            time.sleep(rng.uniform(0.3, 1.6))
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        kills += proc.returncode == -signal.SIGKILL
        if point and proc.returncode == -signal.SIGKILL:
            named.add(point)
    # The kills happened: at every named point, and others at random moments. How many of the
    # random ones land mid-run depends on the machine's speed, so no count of those is asserted.
    assert named == set(points) and kills >= len(points) + 10
    recovery = (start + dt.timedelta(minutes=6 * 56)).isoformat()
    result = cli(root, "publish", "--now", recovery)
    assert result.exit_code == 0, result.output
    ledger = Ledger.for_root(root)
    _assert_exactly_once(root, ledger)
    interrupted = [r for r in _published(ledger) if len(ledger.attempts_of(r["id"])) > 1]
    assert interrupted, "no item was ever interrupted: the test did not exercise recovery"
