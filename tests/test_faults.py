"""A smaller, seeded run of the fault campaign (bench/faults.py): random sequences of
stored-then-5xx, gateway errors, dropped connections, kills after sending, 429s from seconds to
hours, read-back failures and clock jumps across the key's life, over the Mastodon and LinkedIn
fakes; afterwards every item is on its platform exactly once with its receipt, or waits for a
person with the reason."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.faults import run_campaign  # noqa: E402


def test_seeded_fault_sequences_publish_each_item_once_and_lose_none(tmp_path, caplog):
    caplog.set_level(logging.CRITICAL, logger="dissemination")
    outcome = run_campaign(12, seed=7, folder=tmp_path)
    assert outcome.sequences == 12 and outcome.items == 12 * 6
    assert (outcome.duplicates, outcome.lost) == (0, 0), outcome.problems
    # the sequences did exercise the faults that made duplicates before read-back existed
    assert outcome.faults["stored-5xx"] and outcome.faults["jump"] and outcome.faults["429"]
    assert outcome.faults["kill"]
