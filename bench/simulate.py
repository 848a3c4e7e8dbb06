"""How long `dissemination plan --simulate` takes for 1,000 campaigns over a year.

The content is check_scale.py's (stakeholder map, knowledge items, twenty accounts per platform),
with every campaign running the whole of 2027: a weekly series on one of the five working days
at its own time of day and a kick-off post, and one campaign in forty a monthly newsletter to its
two audiences: about 53,000 post slots and 105,000 publications to simulate (collisions, quotas, budgets, newsletter
recipients and finish times). Timed as a user runs it, in a fresh process. Baseline in the same
run: a bare parse of the same files (PyYAML's C loader), as in check_scale.py.

    .venv/bin/python bench/simulate.py [--campaigns 1000] [--knowledge 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_scale import account, bare_parse, generate  # noqa: E402

DAYS = ["mon", "tue", "wed", "thu", "fri"]


def generate_year(root: Path, campaigns: int, knowledge: int) -> None:
    generate(root, 0, knowledge)
    audiences = [f"doelgroep-{i}" for i in range(20)]
    for i in range(campaigns):
        social = f"[{account('mastodon', i)}, {account('linkedin', i)}]"
        minute = 8 * 60 + (i * 37) % (9 * 60)  # spread over 08:00-16:59
        # one campaign in forty also sends a monthly newsletter, each on its own day of the month
        newsletter = i % 40 == 0
        monthly = ", ".join(f"2027-{m:02d}-{1 + (i // 40) % 25:02d} 10:00" for m in range(1, 13))
        (root / "campaigns" / f"campagne-{i}.md").write_text(
            f"---\nid: campagne-{i}\ntitle: Campagne {i}\nstatus: draft\nowner: Communicatie\ngoal: Testen.\n"
            f"impact_goals: [2]\naudiences: [{audiences[i % 20]}, {audiences[(i + 1) % 20]}]\n"
            f"channels: [{account('mastodon', i)}, {account('linkedin', i)}{', nieuwsbrief' if newsletter else ''}]\n"
            f"start: 2027-01-01\nend: 2027-12-31\n"
            f"cadence:\n  post: uitgelicht\n  days: [{DAYS[i % 5]}]\n  time: '{minute // 60:02d}:{minute % 60:02d}'\n"
            "---\nIntro.\n\n"
            f"## Uitgelicht\nid: uitgelicht\nchannels: {social}\n\nPraktijkvoorbeeld.\n\n"
            f"## Aftrap\nslot: 2027-01-{4 + i % 25:02d} 17:{i % 60:02d}\naudiences: [{audiences[i % 20]}]\n"
            f"channels: {social}\n\nDe aftrap.\n\n### variant: {account('linkedin', i)}\nLangere tekst.\n"
            + (f"\n## Maandbrief\nid: maandbrief\nslots: [{monthly}]\nchannels: [nieuwsbrief]\n\n"
               "Nieuws van de maand.\n" if newsletter else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--knowledge", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "content"
        generate_year(root, args.campaigns, args.knowledge)
        exe = Path(sys.executable).parent / "dissemination"
        command = [str(exe), "--root", str(root), "plan", "--simulate", "--from", "2027-01-01", "--to", "2027-12-31",
                   "--out", str(Path(tmp) / "sim")]
        # as installed: with bytecode caches (a first run writes them; PYTHONDONTWRITEBYTECODE
        # would make every run compile all of SQLAlchemy, Pydantic and Rich again)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(command, capture_output=True, text=True, env=env)
        times, cpu_times, bare_times = [], [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                sys.exit(f"plan --simulate failed on generated content:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
            start = time.perf_counter()
            bare_parse(root)
            bare_times.append(time.perf_counter() - start)
        result = json.loads((Path(tmp) / "sim" / "simulation.json").read_text())
        simulate, bare = statistics.median(times), statistics.median(bare_times)
        print(done.stdout.splitlines()[0])
        print(f"{len(result['newsletters'])} newsletter editions forecast, {len(result['problems'])} problems")
        print(f"plan --simulate, whole process (median of {args.repeat}): {simulate:.2f} s wall, "
              f"{statistics.median(cpu_times):.2f} s CPU, for {args.campaigns} campaigns over 2027 + "
              f"{args.knowledge} knowledge items (goal <= 3 s)")
        print(f"bare YAML parse of the same files, in process: {bare:.2f} s; simulate / bare = {simulate / bare:.1f}x")


if __name__ == "__main__":
    main()
