"""A content root for the publishing benchmarks: one approved campaign with many due slots."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
VALID = REPO / "tests" / "fixtures" / "valid"


def make_root(folder: Path, slots: list[dt.datetime], tolerance: str = "90d") -> Path:
    """A copy of the test mini project plus campaign `bench` with one post per given local slot."""
    root = folder / "content"
    shutil.copytree(VALID, root)
    (root / "campaigns" / "reeks.md").unlink()
    channels = root / "channels.yaml"
    # Slots a minute apart on purpose (many due at once): no minimum gap between them.
    channels.write_text(channels.read_text().replace("kind: mastodon", f"kind: mastodon\n  late_tolerance: {tolerance}"
                                                                       "\n  min_gap: 0m")
                        .replace("kind: linkedin", f"kind: linkedin\n  late_tolerance: {tolerance}"))
    zone = ZoneInfo("Europe/Amsterdam")
    local = [s.astimezone(zone) for s in slots]
    start, end = min(local).date(), max(local).date()
    slot_lines = "\n".join(f"  - {s:%Y-%m-%d %H:%M}" for s in local)
    (root / "campaigns" / "bench.md").write_text(
        f"---\nid: bench\ntitle: Bench\nstatus: draft\nowner: Bench\ngoal: Meten.\naudiences: [mkb]\n"
        f"channels: [mastodon]\nstart: {start}\nend: {end}\nover_budget: benchmark\n---\n"
        f"## Bericht\nid: bericht\nslots:\n{slot_lines}\n\nEen bericht voor de meting.\n")
    exe = Path(sys.executable).parent / "dissemination"
    subprocess.run([str(exe), "--root", str(root), "approve", "campaigns/bench.md", "--by", "Bench"],
                   check=True, capture_output=True)
    return root
