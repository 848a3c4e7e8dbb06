"""Approval covers what the text depends on: the knowledge items, templates and images an
approved campaign's posts use. Editing one holds exactly the items rendered from it until the
campaign is approved again; `check` and `status` name the changed file."""

import json

from publishing import add_image, cli, make_project

from dissemination.ledger import Ledger

NOW = "2027-02-01T00:00Z"


def _states(root):
    return [(r["post"], r["channel"], r["knowledge"], r["state"], r["reason"]) for r in Ledger.for_root(root).items()]


def _plan(root):
    result = cli(root, "plan", "--now", NOW)
    assert result.exit_code == 0, result.output
    return result.output


def _held_after_editing(root, path, edit):
    before = _states(root)
    assert before and {s[3] for s in before} == {"planned"}
    target = root / path
    edit(target)
    output = _plan(root)
    after = _states(root)
    held = [s for s in after if s[3] == "held"]
    assert held, "editing a source of an approved post must hold it"
    for _, _, _, _, reason in held:
        assert reason.startswith(f"{path} changed since approval; approve again: dissemination approve "
                                 "campaigns/reeks.md --by NAME")
    assert f"held: campaign 'reeks': {path} changed since approval" in output
    checked = cli(root, "check")
    assert f"warning: items using {path} are held: changed since approval" in checked.output
    status = cli(root, "status", "--no-channels", "--now", NOW)
    assert f"{path} changed since approval" in status.output
    # approved again: planned again
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    _plan(root)
    assert {s[3] for s in _states(root)} == {"planned"}
    return held, after


def test_editing_a_knowledge_item_holds_the_items_that_feature_it(tmp_path):
    root = make_project(tmp_path)
    _plan(root)
    recorded = json.loads(Ledger.for_root(root).items()[0]["payload"])
    assert "campaigns/reeks.md" not in recorded.get("sources", {})  # the campaign has its own digest
    held, after = _held_after_editing(
        root, "knowledge/den-hartogh.md",
        lambda f: f.write_text(f.read_text().replace("summary:", "summary: Nieuw!", 1)))
    assert {s[2] for s in held} == {"den-hartogh"}
    assert [s for s in after if s[2] == "sharehouse" and s[3] == "planned"]  # the other item is untouched


def test_editing_a_template_holds_the_items_of_its_channel(tmp_path):
    root = make_project(tmp_path)
    template = root / "templates" / "linkedin" / "post.j2"
    template.parent.mkdir(parents=True)
    template.write_text("{{ body }}\n")
    # a template that was not there at approval is not covered by it
    output = _plan(root)
    assert "templates/linkedin/post.j2 not covered by the approval" in output
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    _plan(root)
    held, after = _held_after_editing(root, "templates/linkedin/post.j2",
                                      lambda f: f.write_text("{{ body }}\n\nMeer op onze website.\n"))
    assert {s[1] for s in held} == {"linkedin"}
    assert {s[3] for s in after if s[1] == "mastodon"} == {"planned"}


def test_replacing_an_image_holds_the_post_it_goes_with(tmp_path):
    root = make_project(tmp_path)
    image = add_image(root)
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    _plan(root)
    held, after = _held_after_editing(root, "beeld/aftrap.png", lambda f: f.write_bytes(image.read_bytes() + b"\0"))
    assert {(s[0], s[1]) for s in held} == {("aftrap", "mastodon"), ("aftrap", "linkedin")}
    assert {s[3] for s in after if s[0] == "uitgelicht"} == {"planned"}
