"""The real entry point, the sample content, and the two-command quick start."""

import os
import re
import subprocess
import sys

from conftest import REPO


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "dissemination", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=REPO)


def test_sample_content_passes_check():
    done = _run("--root", str(REPO), "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("OK: no errors")
    assert "web_url" not in done.stdout  # the sample's newsletter channel says where its links point


def test_sample_content_meets_the_brief():
    from dissemination.check import run_check

    result = run_check(REPO)
    project = result.project
    assert len(project.stakeholders) >= 25 and len(project.audiences) >= 6
    assert len(project.knowledge) >= 15
    assert len(project.campaigns) >= 3
    kinds = {project.channels[c].kind for camp in project.campaigns.values() for c in camp.meta.channels}
    assert kinds == {"mastodon", "linkedin", "email"}
    assert any(c.meta.cadence for c in project.campaigns.values())
    assert any(c.meta.event for c in project.campaigns.values())
    # People's addresses are not in git; the sample subscriber list is fictitious and imports cleanly.
    # (only the partners' kit contacts keep an address: their organisation's role address)
    assert [c.email for s in project.stakeholders.values() for c in s.contacts
            if c.email and c is not s.kit_contact] == []
    assert all(s.kit_contact.email.split("@")[0] in ("kennisspoor", "redactie.ledenblad", "humancapital",
                                                     "redactie.carriere")
               for s in project.stakeholders.values() if s.partner)
    sample = (REPO / "docs" / "subscribers.example.csv").read_text()
    assert all(line.split(",")[0].endswith("@example.org") for line in sample.splitlines()[1:])


def test_root_from_environment_and_exit_codes(tmp_path):
    done = _run("check", env={"DISSEMINATION_ROOT": str(REPO / "tests" / "fixtures" / "valid")})
    assert done.returncode == 0, done.stdout
    done = _run("check", env={"DISSEMINATION_ROOT": str(tmp_path)})
    assert done.returncode == 1
    assert "no content found" in done.stdout and "Traceback" not in done.stderr


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["scripts/dev run", "scripts/dev test"]
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == ["exec scripts/dev test"]


def test_main_job_runs_on_the_sample_content_with_a_relative_root(tmp_path):
    import shutil

    root = tmp_path / "repo"
    for name in ("campaigns", "knowledge", "stakeholder_maps", "templates"):
        shutil.copytree(REPO / name, root / name)
    for name in ("channels.yaml", "programme.yaml"):
        shutil.copy(REPO / name, root / name)
    done = subprocess.run([sys.executable, "-m", "dissemination", "--root", ".", "run", "--now", "2027-01-12T09:00Z"],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "event calendar: events/slotsymposium-2027.ics" in done.stdout
    assert not (root / "events" / "masterclass-leiderschap-voorjaar-2027.ics").exists()  # a draft
    assert "DISSEMINATION_MASTODON_TOKEN not set, so nothing is published to mastodon" in done.stdout
    assert "warning: nieuwsbrief: no active subscribers in the database, so newsletters are sent to nobody" in done.stdout
    dry = subprocess.run([sys.executable, "-m", "dissemination", "--root", ".", "subscribers", "import",
                          str(REPO / "docs" / "subscribers.example.csv"), "--dry-run"], capture_output=True, text=True,
                         cwd=root)
    assert dry.returncode == 0 and "would add 18 subscriber(s)" in dry.stdout, dry.stdout + dry.stderr
    assert re.search(r"publish: [1-9]\d* published", done.stdout), done.stdout
    # it ends by reading engagement and writing this quarter's report, and says where it is
    assert re.search(r"metrics: [1-9]\d* publication\(s\) younger than 30d", done.stdout), done.stdout
    assert f"written to {root.resolve() / 'reports' / '2027-Q1.html'}" in done.stdout
    assert "Verspreidingsrapport 1e kwartaal 2027" in (root / "reports" / "2027-Q1.html").read_text()


def test_approve_reads_the_campaign_under_the_content_root_and_refuses_one_outside(tmp_path):
    """`approve campaigns/x.md --root R` means R's file, even when the current folder has one of
    that name too (the repository's sample); a file outside R is refused plainly."""
    import shutil

    root = tmp_path / "content"
    shutil.copytree(REPO / "tests" / "fixtures" / "valid", root)
    decoy = tmp_path / "campaigns" / "reeks.md"  # the same name in the current folder
    decoy.parent.mkdir()
    decoy.write_text("not a campaign", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "dissemination", "--root", str(root), "approve", "campaigns/reeks.md",
                           "--by", "Test"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert decoy.read_text(encoding="utf-8") == "not a campaign"
    assert "approved campaigns/reeks.md by Test" in done.stdout
    assert "approved_by: Test" in (root / "campaigns" / "reeks.md").read_text(encoding="utf-8")
    sample = REPO / "campaigns" / "kennisreeks-praktijkvoorbeelden.md"
    before = sample.read_bytes()
    done = _run("--root", str(root), "approve", str(sample), "--by", "Test")
    assert done.returncode == 1 and "not under the content root" in done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert sample.read_bytes() == before
