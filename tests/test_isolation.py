"""Errors isolate: a campaign with errors is reported and keeps its previous plan, every other
campaign is planned and published, and the command exits non-zero after the rest has gone out.
Errors in files every campaign depends on still stop planning, and say so."""

import json

from publishing import cli, make_project, outbox_keys

from dissemination.ledger import Ledger

BROKEN_DRAFT = """---
id: kapot
title: Een concept met een tikfout
status: draft
owner: Test
goal: Iets.
audiences: [mkb]
channels: [linkedin]
strat: 2027-03-01
end: 2027-03-31
---
## Bericht
slot: 2027-03-02 10:00

Tekst.
"""


def test_a_broken_draft_does_not_stop_a_due_approved_post_and_run_exits_non_zero_naming_it(tmp_path):
    root = make_project(tmp_path)
    (root / "campaigns" / "kapot.md").write_text(BROKEN_DRAFT)
    result = cli(root, "run", "--now", "2027-03-01T09:01Z")  # reeks/aftrap is due at 10:00 CET
    assert result.exit_code == 1, result.output
    output = result.output
    assert "campaigns/kapot.md:" in output and "strat" in output
    assert "not planned: campaign 'kapot'" in output
    assert "1 campaign(s) with errors: kapot" in output
    published = [r for r in Ledger.for_root(root).items(["published"])]
    assert {(r["campaign"], r["post"]) for r in published} == {("reeks", "aftrap")}
    assert len(outbox_keys(root)) == len(published) == 2  # Mastodon and LinkedIn
    # it went out before the errors were reported: the report and the publish line come first
    assert output.index("publish: 2 published") < output.index("1 campaign(s) with errors")


def test_an_approved_campaign_with_errors_keeps_its_previous_plan(tmp_path):
    root = make_project(tmp_path)
    assert cli(root, "plan", "--now", "2027-02-01T00:00Z").exit_code == 0
    before = {r["id"]: r["state"] for r in Ledger.for_root(root).items()}
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("channels: [mastodon, linkedin]", "channels: [mastodon, linkedn]"))
    result = cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 1
    assert "linkedn" in result.output and "not planned: campaign 'reeks'" in result.output
    assert "plan: 0 added, 0 updated, 0 unchanged, 0 cancelled" in result.output
    assert {r["id"]: r["state"] for r in Ledger.for_root(root).items()} == before  # nothing cancelled or held
    # --json: the items on stdout stay one JSON document; the errors go to stderr
    result = cli(root, "plan", "--now", "2027-02-01T00:00Z", "--json")
    assert result.exit_code == 1 and len(json.loads(result.stdout)) == len(before)


def test_errors_in_a_shared_file_stop_planning_and_say_so(tmp_path):
    root = make_project(tmp_path)
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("kind: linkedin", "kind: linkdin"))
    result = cli(root, "run", "--now", "2027-03-01T09:01Z")
    assert result.exit_code == 1
    assert "in files every campaign depends on (channels.yaml): nothing was planned or published" in result.output
    assert Ledger.for_root(root).items() == []


def test_a_broken_knowledge_item_holds_back_only_the_campaigns_that_feature_it(tmp_path):
    root = make_project(tmp_path)
    item = root / "knowledge" / "sharehouse.md"  # featured by reeks
    item.write_text(item.read_text().replace("title:", "titel:", 1))
    result = cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 1
    assert "knowledge/sharehouse.md:" in result.output and "not planned: campaign 'reeks'" in result.output
    assert Ledger.for_root(root).items() == []  # reeks is new: nothing planned for it
    item.write_text(item.read_text().replace("titel:", "title:", 1))
    assert cli(root, "plan", "--now", "2027-02-01T00:00Z").exit_code == 0
    planned = len(Ledger.for_root(root).items())
    unused = root / "knowledge" / "ongebruikt.md"  # no campaign features it: nothing is held back
    unused.write_text(item.read_text().replace("id: sharehouse", "id: ongebruikt").replace("title:", "titel:", 1))
    result = cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 1 and "errors in knowledge/ongebruikt.md" in result.output
    assert f"plan: 0 added, 0 updated, {planned} unchanged, 0 cancelled" in result.output
