"""Fault campaign: exactly once against Mastodon and LinkedIn as they really behave.

Each sequence (seeded) runs the real pipeline (`publish_due`, Mastodon.py and httpx over sockets)
against fresh loopback fakes (tests/fakes/) through a random series of steps; before each publish
run one fault may be armed:
  stored-5xx     the platform stores the post, then answers 500/502 (LinkedIn 500/504)
  5xx            a gateway error, nothing stored
  drop/timeout   Mastodon stores and closes the connection unanswered; LinkedIn stores and answers
                 after the client's timeout
  kill           the publisher dies right after the platform answered (before the ledger write)
  429            Mastodon: rate limited for 5 s .. 3 h (ISO reset); LinkedIn: the daily quota
  read-back      the account's posts cannot be read (503 / 500)
  jump           the clocks (the pipeline's `now` and both fakes') jump 50 min .. 3 h, across the
                 hour Mastodon keeps an Idempotency-Key
Then the faults stop and recovery runs follow (an hour, the next midnight UTC, two days later).
Per item the remote publications are counted (Mastodon: statuses with its text, LinkedIn: posts
with its commentary): a duplicate is an item with more than one; lost is an item neither
published once with its receipt in the ledger nor `waiting` for a person (with the reason).

    .venv/bin/python bench/faults.py [--sequences 500] [--seed 1] [--steps 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from fakes.linkedin import FakeLinkedIn  # noqa: E402
from fakes.mastodon import FakeMastodon  # noqa: E402

from dissemination.plan.apply import plan  # noqa: E402
from dissemination.publish import loop  # noqa: E402
from dissemination.ledger import Ledger  # noqa: E402

UTC = dt.timezone.utc
DUE = dt.datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
POSTS = 3  # posts, each to Mastodon and LinkedIn: 6 items a sequence
FAULTS = ["none", "stored-5xx", "5xx", "drop", "kill", "429", "read-back", "jump"]


class Crash(BaseException):
    """The publisher died (SIGKILL in production: see bench/crash.py); nothing after it runs."""


@dataclass
class Outcome:
    sequences: int = 0
    items: int = 0
    duplicates: int = 0
    lost: int = 0
    states: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def make_root(folder: Path) -> Path:
    """The test mini project with one campaign of POSTS posts due from DUE, to both platforms."""
    root = folder / "content"
    shutil.copytree(REPO / "tests" / "fixtures" / "valid", root)
    (root / "campaigns" / "reeks.md").unlink()
    # Six posts ten minutes apart on one account: a collision for `check` (min_gap), on purpose
    # here, where many items must be due at once.
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("  kind: mastodon\n", "  kind: mastodon\n  min_gap: 0\n")
                        .replace("  kind: linkedin\n", "  kind: linkedin\n  min_gap: 0\n"))
    posts = "\n".join(f"## Bericht {i}\nid: bericht-{i}\nslot: 2027-03-01 {10 + i // 6:02d}:{i % 6 * 10:02d}\n\n"
                      f"Bericht {i} van de foutencampagne.\n" for i in range(POSTS))
    (root / "campaigns" / "fouten.md").write_text(
        "---\nid: fouten\ntitle: Fouten\nstatus: draft\nowner: Bench\ngoal: Meten.\naudiences: [mkb]\n"
        "channels: [mastodon, linkedin]\nstart: 2027-03-01\nend: 2027-03-02\nover_budget: benchmark\n---\n" + posts)
    exe = Path(sys.executable).parent / "dissemination"
    import subprocess

    subprocess.run([str(exe), "--root", str(root), "approve", "campaigns/fouten.md", "--by", "Bench"],
                   check=True, capture_output=True)
    return root


def _channels(root: Path, template: str, mastodon: FakeMastodon, linkedin: FakeLinkedIn) -> None:
    (root / "channels.yaml").write_text(template.replace(
        "base_url: https://mastodon.example", f"base_url: {mastodon.url}\n  late_tolerance: 90d\n  rate_limit_wait: 0s")
        .replace('api_version: "202510"', f'api_version: "202510"\n  api_base: {linkedin.url}\n  request_timeout: 1s'
                 "\n  late_tolerance: 90d"))


def run_sequence(rng: random.Random, root: Path, planned_db: Path, template: str, steps: int,
                 outcome: Outcome, armed: dict[str, bool]) -> None:
    mastodon, linkedin = FakeMastodon().start(), FakeLinkedIn().start()
    db = planned_db.parent / "sequence.db"
    shutil.copy(planned_db, db)
    ledger = Ledger(f"sqlite:///{db}")
    try:
        _channels(root, template, mastodon, linkedin)
        now = DUE

        def publish_at(moment: dt.datetime) -> None:
            mastodon.set_now(moment)
            linkedin.set_now(moment)
            try:
                loop.publish_due(root, ledger, moment, worker=f"bench-{rng.random():.6f}")
            except Crash:
                pass
            finally:
                armed["kill"] = False

        for _ in range(steps):
            fault = rng.choice(FAULTS)
            outcome.faults[fault] += 1
            platform = rng.choice(["mastodon", "linkedin", "both"])
            on_m, on_l = platform in ("mastodon", "both"), platform in ("linkedin", "both")
            if fault == "stored-5xx":
                if on_m:
                    mastodon.faults.append(rng.choice(["stored-500", "stored-502"]))
                if on_l:
                    linkedin.faults.append(rng.choice(["stored-500", "stored-504"]))
            elif fault == "5xx":
                if on_m:
                    mastodon.faults += ["502"] * rng.randint(1, 3)
                if on_l:
                    linkedin.faults += ["504"] * rng.randint(1, 3)
            elif fault == "drop":
                if on_m:
                    mastodon.faults.append("stored-drop")
                if on_l and rng.random() < 0.2:  # a real timeout costs the client's second
                    linkedin.faults.append("hang")
            elif fault == "kill":
                armed["kill"] = True
            elif fault == "429":
                if on_m:
                    mastodon.faults.append(("429", rng.choice([5, 60, 600, 3600, 7200, 10800])))
                if on_l:
                    linkedin.rate_limited = True
            elif fault == "read-back":
                mastodon.account_statuses_error = 503 if on_m else None
                linkedin.finder_error = 500 if on_l else None
            elif fault == "jump":
                now += dt.timedelta(minutes=rng.randint(50, 180))
            publish_at(now)
            linkedin.rate_limited = False
            mastodon.account_statuses_error = None
            linkedin.finder_error = None
            now += dt.timedelta(minutes=rng.choice([1, 2, 3, 5, 8, 15, 30]))
        # recovery: no more faults; runs after an hour, after the next midnight UTC, two days on
        mastodon.faults.clear()
        linkedin.faults.clear()
        next_midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0, 5), UTC)
        for moment in (now + dt.timedelta(minutes=10), now + dt.timedelta(hours=1), now + dt.timedelta(hours=3),
                       next_midnight, next_midnight + dt.timedelta(days=2)):
            publish_at(moment)
        _count(ledger, mastodon, linkedin, outcome)
    finally:
        ledger.close()
        mastodon.stop()
        linkedin.stop()
        db.unlink(missing_ok=True)


def _count(ledger: Ledger, mastodon: FakeMastodon, linkedin: FakeLinkedIn, outcome: Outcome) -> None:
    outcome.sequences += 1
    for row in ledger.items():
        marker = f"Bericht {row['post'].split('-')[1]} van"  # each post's text is its own
        if row["channel"] == "mastodon":
            remote = [sid for sid, source in mastodon.sources.items() if marker in source]
        else:
            remote = [urn for urn, post in linkedin.posts.items() if marker in post["commentary"]]
        outcome.items += 1
        outcome.states[row["state"]] += 1
        if len(remote) > 1:
            outcome.duplicates += 1
            outcome.problems.append(f"duplicate: {row['channel']} {row['id']} {len(remote)} times")
        published_once = row["state"] == "published" and remote == [row["remote_id"]]
        waiting = row["state"] == "waiting" and bool(row["reason"]) and len(remote) <= 1
        if not (published_once or waiting):
            outcome.lost += 1
            outcome.problems.append(f"lost: {row['channel']} {row['id']} state {row['state']} "
                                    f"({row['reason']}), {len(remote)} remote")


def run_campaign(sequences: int, seed: int = 1, steps: int = 8, folder: Path | None = None) -> Outcome:
    """Run `sequences` seeded fault sequences; the pipeline's crash point raises Crash when armed."""
    rng = random.Random(seed)
    outcome = Outcome()
    armed = {"kill": False}
    original = loop._fault

    def fault(point: str) -> None:
        if armed["kill"] and point == "after_remote":
            armed["kill"] = False
            raise Crash(point)

    # the fakes' tokens, as a deployment sets them (channels.yaml names these variables)
    tokens = {"TEST_MASTODON_TOKEN": FakeMastodon.__init__.__defaults__[0],  # type: ignore[index]
              "TEST_LINKEDIN_TOKEN": FakeLinkedIn.__init__.__defaults__[0]}  # type: ignore[index]
    before = {name: os.environ.get(name) for name in tokens}
    os.environ.update(tokens)
    try:
        return _run(rng, outcome, armed, original, fault, sequences, steps, folder)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(rng, outcome, armed, original, fault, sequences, steps, folder):  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(folder or tmp)
        root = make_root(work)
        template = (root / "channels.yaml").read_text()
        planned_db = work / "planned.db"
        ledger = Ledger(f"sqlite:///{planned_db}")
        plan(root, ledger, DUE - dt.timedelta(days=30))
        ledger.close()
        loop._fault = fault  # the named crash point of bench/crash.py, in-process
        try:
            for _ in range(sequences):
                run_sequence(rng, root, planned_db, template, steps, outcome, armed)
        finally:
            loop._fault = original
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequences", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    import logging

    logging.getLogger("dissemination").setLevel(logging.CRITICAL)
    began = time.monotonic()
    outcome = run_campaign(args.sequences, args.seed, args.steps)
    elapsed = time.monotonic() - began
    print(f"{outcome.sequences} sequences of {args.steps} steps (seed {args.seed}), {outcome.items} items, "
          f"{elapsed:.0f} s")
    print(f"faults armed: {dict(sorted(outcome.faults.items()))}")
    print(f"final states: {dict(sorted(outcome.states.items()))}")
    print(f"duplicates: {outcome.duplicates}, lost: {outcome.lost}")
    for problem in outcome.problems[:20]:
        print("  " + problem)
    sys.exit(1 if outcome.duplicates or outcome.lost else 0)


if __name__ == "__main__":
    main()
