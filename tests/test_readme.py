"""The README's rehearsal, run as written on a fresh copy of the sample content."""

import os
import re
import shutil
import subprocess
import sys

from conftest import REPO

CONTENT = ("campaigns", "knowledge", "stakeholder_maps", "templates", "channels.yaml", "programme.yaml")


def test_the_readmes_rehearsal_publishes_what_it_says(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"^\.venv/bin/dissemination (run --now \S+)$", readme, re.M)
    for name in CONTENT:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    # no secrets and no database of the person running the tests: the outbox, as on a fresh clone
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DISSEMINATION_") or k == "DISSEMINATION_CREDENTIALS"}
    done = subprocess.run([sys.executable, "-m", "dissemination", "--root", str(tmp_path), *command.split()],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"publish: 2 published, 0 to retry, 0 failed, \d+ missed", out), out
    assert "next: Tue 2027-01-12 10:00 CET slotsymposium-2027/save-the-date" in out
    written = {p.parent.name: p for p in (tmp_path / "outbox").rglob("*.json")}
    assert set(written) == {"mastodon", "linkedin"}
    assert "Praktijkvoorbeeld uitgelicht" in written["linkedin"].read_text(encoding="utf-8")
    assert (tmp_path / "reports" / "2027-Q1.html").is_file()
    for claim in ("publishes the kennisreeks post of 09:30 to `outbox/mastodon/` and `outbox/linkedin/`",
                  "the symposium's save-the-date at 10:00", "`reports/2027-Q1.html`"):
        assert claim in readme.replace("\n", " ")
