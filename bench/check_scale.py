"""How long `dissemination check` takes on a large content root.

Generates 1,000 campaigns and 5,000 knowledge items (plus a stakeholder map with 200 stakeholders
and the channels) in a temporary folder, then times the full check — load, validate, cross-check,
expand every schedule, contact budgets — in a fresh process, as a user would run it. As a baseline
in the same run it times a bare parse of the same files (PyYAML's C loader on every front matter),
so the figure says what our validation adds on top of reading.

    .venv/bin/python bench/check_scale.py [--campaigns 1000] [--knowledge 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


ACCOUNTS = 20


def account(platform: str, i: int) -> str:
    """The channel campaign `i` posts on: one of ACCOUNTS per platform."""
    return platform if i % ACCOUNTS == 0 else f"{platform}-{i % ACCOUNTS}"


def generate(root: Path, campaigns: int, knowledge: int) -> None:
    (root / "campaigns").mkdir(parents=True)
    (root / "knowledge").mkdir()
    (root / "stakeholder_maps").mkdir()
    # Twenty accounts per platform (campaign i posts on account i % 20), posting as often as they
    # like (min_gap 0): a thousand campaigns on one account would be nothing but collisions and
    # quota errors in the simulation (plan/simulate.py), and this measures a check that passes.
    accounts = ["mastodon:\n  kind: mastodon\n  base_url: https://mastodon.example\n  token_env: T1\n  min_gap: 0\n"
                "linkedin:\n  kind: linkedin\n  author: urn:li:organization:1\n  api_version: '202510'\n"
                "  token_env: T2\n  min_gap: 0\n"]
    for n in range(1, ACCOUNTS):
        accounts.append(f"mastodon-{n}:\n  kind: mastodon\n  base_url: https://mastodon.example\n  token_env: T1\n"
                        f"  min_gap: 0\nlinkedin-{n}:\n  kind: linkedin\n  author: urn:li:organization:{n + 1}\n"
                        "  api_version: '202510'\n  token_env: T2\n  min_gap: 0\n")
    (root / "channels.yaml").write_text(
        "".join(accounts) + "nieuwsbrief:\n  kind: email\n  host: localhost\n  from_address: a@example.org\n"
    )
    audiences = [f"doelgroep-{i}" for i in range(20)]
    # Every audience may be reached on every account (the stakeholder map names channel ids).
    every_channel = ", ".join([account(p, n) for n in range(ACCOUNTS) for p in ("mastodon", "linkedin")]
                              + ["nieuwsbrief"])
    lines = ["contact_budget: {manage_closely: 100000, keep_satisfied: 100000, keep_informed: 100000, monitor: 100000}",
             "audiences:"]
    for a in audiences:
        lines += [f"  - id: {a}", f"    name: Doelgroep {a}", "    description: Een doelgroep.",
                  "    tone: Concreet.", f"    channels: [{every_channel}]"]
    lines.append("stakeholders:")
    for i in range(200):
        lines += [f"  - id: organisatie-{i}", f"    name: Organisatie {i}", "    type: company",
                  f"    audiences: [{audiences[i % 20]}]", f"    power: {1 + i % 5}", f"    interest: {1 + (i * 3) % 5}",
                  "    contacts:", f"      - email: persoon{i}@example.org",
                  "        consent: {source: formulier, date: 2026-01-01}"]
    (root / "stakeholder_maps" / "map.yaml").write_text("\n".join(lines) + "\n")
    for i in range(knowledge):
        (root / "knowledge" / f"item-{i}.md").write_text(
            f"---\nid: item-{i}\ntitle: Kennisitem {i}\ntype: case\nurl: https://example.org/{i}\n"
            f"summary: Een samenvatting van item {i}.\nthemes: [leiderschap, mkb]\nimpact_goals: [1, 3]\n"
            f"programme_line: PL1\naudiences: [{audiences[i % 20]}]\npublished: 2026-01-01\n"
            f"source: Generated\n---\nTekst van item {i}.\n"
        )
    for i in range(campaigns):
        items = ", ".join(f"item-{(i * 5 + k) % knowledge}" for k in range(5))
        (root / "campaigns" / f"campagne-{i}.md").write_text(
            f"---\nid: campagne-{i}\ntitle: Campagne {i}\nstatus: draft\nowner: Communicatie\ngoal: Testen.\n"
            f"impact_goals: [2]\naudiences: [{audiences[i % 20]}, {audiences[(i + 1) % 20]}]\n"
            f"channels: [{account('mastodon', i)}, {account('linkedin', i)}]\nstart: 2027-01-01\nend: 2027-03-31\n"
            f"knowledge: [{items}]\n"
            "cadence:\n  post: uitgelicht\n  days: [tue]\n  time: '09:30'\n---\nIntro.\n\n"
            "## Uitgelicht\nid: uitgelicht\n\nPraktijkvoorbeeld.\n\n"
            "## Aftrap\nslot: 2027-01-05 10:00\naudiences: [" + audiences[i % 20] + "]\n\nDe aftrap.\n\n"
            f"### variant: {account('linkedin', i)}\nLangere tekst.\n"
        )


def bare_parse(root: Path) -> None:
    for path in sorted(root.rglob("*.md")):
        yaml.load(path.read_text().split("---\n", 2)[1], Loader=yaml.CSafeLoader)
    for path in sorted(root.rglob("*.yaml")):
        yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--knowledge", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "content"
        generate(root, args.campaigns, args.knowledge)
        exe = Path(sys.executable).parent / "dissemination"
        check_times, bare_times = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            done = subprocess.run([str(exe), "--root", str(root), "check"], capture_output=True, text=True)
            check_times.append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"check failed on generated content:\n{done.stdout[-2000:]}")
            start = time.perf_counter()
            bare_parse(root)
            bare_times.append(time.perf_counter() - start)
        check, bare = statistics.median(check_times), statistics.median(bare_times)
        print(done.stdout.strip().splitlines()[0])
        print(f"check, whole process (median of {args.repeat}): {check:.2f} s "
              f"for {args.campaigns} campaigns + {args.knowledge} knowledge items (goal <= 3 s)")
        print(f"bare YAML parse of the same files, in process: {bare:.2f} s; check / bare = {check / bare:.1f}x")


if __name__ == "__main__":
    main()
