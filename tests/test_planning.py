"""Planning into the ledger: idempotent, approval that survives edits, late policy, status."""

import json
import re

from publishing import BASE_NOW, cli, make_project, outbox_keys

from dissemination.ledger import Ledger


def _items(root):
    return json.loads(cli(root, "status", "--json", "--no-channels", "--now", "2027-01-01T00:00Z").output)["items"]


def test_plan_twice_changes_nothing(tmp_path):
    root = make_project(tmp_path)
    first = cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert first.output.startswith("plan: 8 added, 0 updated, 0 unchanged, 0 cancelled")
    before = Ledger.for_root(root).items()
    second = cli(root, "plan", "--now", "2027-02-02T00:00Z")
    assert second.output.startswith("plan: 0 added, 0 updated, 8 unchanged, 0 cancelled")
    assert Ledger.for_root(root).items() == before  # not even updated_at moved


def test_json_items_have_the_documented_fields(tmp_path):
    root = make_project(tmp_path)
    result = cli(root, "plan", "--now", "2027-02-01T00:00Z", "--json")
    items = json.loads(result.output)
    # aftrap (mkb) on 2 channels; 2 series occurrences: on Mastodon mkb and beleid apart (beleid has
    # its own default template), one shared item on LinkedIn
    assert len(items) == 8
    assert sorted(i["audience"] for i in items if i["post"] == "uitgelicht") == ["*", "*", "beleid", "beleid", "mkb", "mkb"]
    assert {"id", "campaign", "post", "audience", "channel", "slot", "state"} <= set(items[0])
    aftrap = [i for i in items if i["post"] == "aftrap"]
    assert {i["slot"] for i in aftrap} == {"2027-03-01T09:00:00Z"}  # 10:00 Amsterdam (CET) in UTC
    assert {i["state"] for i in items} == {"planned"}


def test_a_shared_post_names_all_its_audiences_in_its_links(tmp_path):
    # utm_content of the LinkedIn item that mkb and beleid share names both, not the first only,
    root = make_project(tmp_path)
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + "owned_domains: [kennisbanksocialeinnovatie.nl]\n")
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("Praktijkvoorbeeld van de week.",
                                               "Praktijkvoorbeeld van de week: {{ item.link }}"))
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    assert cli(root, "plan", "--now", "2027-02-01T00:00Z").exit_code == 0
    content: dict[tuple[str, str], set[str]] = {}
    for item in Ledger.for_root(root).items():
        if item["post"] == "uitgelicht" and item["knowledge"] == "den-hartogh":
            text = json.loads(item["payload"])["text"]
            content[(item["channel"], item["audience"])] = set(re.findall(r"utm_content=([^&\s]+)", text))
    # ... after the post's id, so the posts of one series can be told apart
    assert content == {("linkedin", "*"): {"uitgelicht.mkb.beleid"}, ("mastodon", "mkb"): {"uitgelicht.mkb"},
                       ("mastodon", "beleid"): {"uitgelicht.beleid"}}


def test_publish_and_status_say_when_the_next_post_goes_out(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    published = cli(root, "publish", "--now", "2027-02-01T00:00Z")
    assert "0 published" in published.output
    # in the campaign's time zone, with every channel of that post at that slot
    assert "next: Mon 2027-03-01 10:00 CET reeks/aftrap (linkedin, mastodon)\n" in published.output
    after_aftrap = cli(root, "status", "--no-channels", "--now", "2027-03-01T09:00Z")  # 10:00 CET itself
    assert "next: Tue 2027-03-02 09:30 CET reeks/uitgelicht (linkedin, mastodon)" in after_aftrap.output
    assert "next: nothing planned" in cli(root, "publish", "--now", "2027-05-01T00:00Z").output
    # held items wait for approval: they are not what goes out next
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("Vandaag start de reeks.", "Vandaag begint de reeks!"))
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert "next: nothing planned" in cli(root, "publish", "--now", "2027-02-01T00:00Z").output


def test_weekly_series_in_the_ledger_keeps_0930_local_across_dst(tmp_path):
    root = make_project(tmp_path)
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("end: 2027-04-30", "end: 2027-11-30")
                     .replace("knowledge: [den-hartogh, sharehouse]", "knowledge: []")
                     .replace("audiences: [mkb, beleid]", "audiences: [mkb]")
                     .replace("cadence:", "over_budget: lange reeks\ncadence:"))
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    items = json.loads(cli(root, "plan", "--now", "2027-02-01T00:00Z", "--json").output)
    slots = sorted({i["slot"] for i in items if i["post"] == "uitgelicht"})
    assert "2027-03-23T08:30:00Z" in slots and "2027-03-30T07:30:00Z" in slots  # last Sunday of March
    assert "2027-10-26T07:30:00Z" in slots and "2027-11-02T08:30:00Z" in slots  # last Sunday of October
    assert len(slots) == 40


def test_editing_an_approved_campaign_holds_its_items_until_approved_again(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("Vandaag start de reeks.", "Vandaag begint de reeks!"))
    planned = cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert "held: campaign 'reeks': changed since approval" in planned.output
    items = _items(root)
    assert {i["state"] for i in items} == {"held"}
    assert all("changed since approval" in i["reason"] for i in items)
    checked = cli(root, "check")
    assert "campaigns/reeks.md:4: warning: items are held: changed since approval" in checked.output
    # held items are not published, even when due
    published = cli(root, "publish", "--now", BASE_NOW)
    assert "0 published" in published.output and outbox_keys(root) == []
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert {i["state"] for i in _items(root)} == {"planned"}


def test_drafts_are_never_planned(tmp_path):
    root = make_project(tmp_path)
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("status: approved", "status: draft"))
    assert cli(root, "plan", "--now", "2027-02-01T00:00Z").output.startswith("plan: 0 added")
    assert _items(root) == []


def test_removed_post_is_cancelled_but_a_published_one_stays_published(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert "2 published" in cli(root, "publish", "--now", BASE_NOW).output  # aftrap on both channels
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("knowledge: [den-hartogh, sharehouse]", "knowledge: [den-hartogh]"))
    cli(root, "approve", "campaigns/reeks.md", "--by", "Test")
    result = cli(root, "plan", "--now", "2027-03-01T10:00Z")
    assert "3 cancelled" in result.output  # the second series occurrence: 3 items
    states = {(i["post"], i["state"]) for i in _items(root)}
    assert states == {("aftrap", "published"), ("uitgelicht", "planned"), ("uitgelicht", "cancelled")}


def test_rescheduling_a_published_post_never_sends_it_again(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    cli(root, "publish", "--now", BASE_NOW)
    files = sorted(p.name for p in (root / "outbox").rglob("*.json"))
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("slot: 2027-03-01 10:00", "slot: 2027-03-03 10:00"))
    cli(root, "approve", "campaigns/reeks.md", "--by", "Test")
    cli(root, "plan", "--now", "2027-03-02T00:00Z")
    cli(root, "publish", "--now", "2027-03-03T09:05Z")
    assert sorted(p.name for p in (root / "outbox").rglob("*.json")) == files
    aftrap = [i for i in _items(root) if i["post"] == "aftrap"]
    assert {i["state"] for i in aftrap} == {"published"} and all(i["attempts"] == 1 for i in aftrap)


def test_late_items_are_missed_not_posted_late(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    result = cli(root, "publish", "--now", "2027-03-01T11:01Z")  # slot 09:00Z + 2h tolerance passed
    assert "0 published" in result.output and "2 missed" in result.output
    assert outbox_keys(root) == []
    assert {i["state"] for i in _items(root) if i["post"] == "aftrap"} == {"missed"}


def test_status_exits_2_when_something_is_overdue_and_lists_it_first(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    assert cli(root, "status", "--now", "2027-02-01T00:00Z").exit_code == 0
    late = cli(root, "status", "--json", "--now", "2027-03-01T09:30Z")
    assert late.exit_code == 2
    document = json.loads(late.output)
    items = document["items"]
    assert document["next"] == {"slot": "2027-03-02T08:30:00Z", "timezone": "Europe/Amsterdam",
                                "local": "2027-03-02T09:30:00+01:00", "campaign": "reeks", "post": "uitgelicht",
                                "channels": ["linkedin", "mastodon"]}
    # each channel's health, as the table view shows it (here: no tokens, so the outbox stands in)
    assert [(c["channel"], c["publishes_to"], c["ok"]) for c in document["channels"]] == [
        ("mastodon", "outbox", True), ("linkedin", "outbox", True), ("nieuwsbrief", "outbox", True)]
    assert all("not set" in c["note"] for c in document["channels"])
    assert [i["overdue"] for i in items] == [True, True] + [False] * 6
    # in a log or a pipe: a header and one whole line per item, overdue first, nothing cut
    lines = cli(root, "status", "--no-channels", "--now", "2027-03-01T09:30Z").output.splitlines()
    assert lines[0].split() == ["state", "slot", "(local)", "channel", "campaign", "/", "post", "audience", "id", "note"]
    for line, item in zip(lines[1:9], items):
        assert line.startswith("overdue planned  Mon 2027-03-01 10:00 CET" if item["overdue"] else item["state"])
        assert f"{item['campaign']} / {item['post']}" in line and item["id"] in line and item["channel"] in line
    assert lines[9] == "summary: 8 planned (2 overdue)"


def test_outbox_says_plainly_that_nothing_is_published(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    result = cli(root, "publish", "--now", BASE_NOW, env={"TEST_MASTODON_TOKEN": ""})
    assert "mastodon: TEST_MASTODON_TOKEN not set, so nothing is published to mastodon; writing what would " \
           "be sent to outbox/mastodon/" in result.output
    document = json.loads(next((root / "outbox" / "mastodon").glob("*.json")).read_text())
    assert document["request"]["headers"]["Idempotency-Key"] == document["idempotency_key"]
    assert document["request"]["json"]["status"].startswith("Vandaag start de reeks.")


def test_event_campaign_exports_an_ics_calendar(tmp_path):
    root = make_project(tmp_path)
    reeks = root / "campaigns" / "reeks.md"
    reeks.write_text(reeks.read_text().replace("cadence:", "event:\n  name: Slotsymposium, deel 2\n"
                                               "  starts: 2027-04-15 13:00\n  ends: 2027-04-15 17:30\n"
                                               "  place: Rotterdam\ncadence:"))
    cli(root, "approve", "campaigns/reeks.md", "--by", "Test")
    assert "event calendar: events/reeks.ics" in cli(root, "plan", "--now", "2027-02-01T00:00Z").output
    ics = (root / "events" / "reeks.ics").read_text()
    assert "DTSTART:20270415T110000Z" in ics and "SUMMARY:Slotsymposium\\, deel 2" in ics


def _without_mastodon_for_beleid(root):
    stakeholders = root / "stakeholder_maps" / "test.yaml"
    before, beleid = stakeholders.read_text().split("  - id: beleid\n")
    stakeholders.write_text(before + "  - id: beleid\n" + beleid.replace(
        "    channels: [linkedin, mastodon, nieuwsbrief]\n", "    channels: [linkedin, nieuwsbrief]\n", 1))


def test_an_audience_without_mastodon_in_the_stakeholder_map_gets_no_mastodon_item(tmp_path):
    root = make_project(tmp_path)
    _without_mastodon_for_beleid(root)
    result = cli(root, "plan", "--now", "2027-02-01T00:00Z", "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert {i["audience"] for i in items if i["channel"] == "mastodon"} == {"mkb"}
    assert {i["audience"] for i in items if i["channel"] == "linkedin" and i["post"] == "uitgelicht"} == {"*"}
    shared = [r for r in Ledger.for_root(root).items() if r["channel"] == "linkedin" and r["audience"] == "*"]
    assert shared and all(json.loads(r["payload"])["audiences"] == ["mkb", "beleid"] for r in shared)


def test_a_post_aimed_at_an_audience_on_a_channel_its_map_does_not_list_is_an_error(tmp_path):
    root = make_project(tmp_path)
    _without_mastodon_for_beleid(root)
    reeks = root / "campaigns" / "reeks.md"
    text = reeks.read_text().replace("audiences: [mkb]\n", "audiences: [beleid]\nchannels: [mastodon]\n", 1)
    text = text.split("### variant: linkedin")[0]
    reeks.write_text(text + "\n### variant: mastodon beleid\nAlleen voor beleid.\n")
    result = cli(root, "check")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    post_line = text.splitlines().index("audiences: [beleid]") + 1
    assert (f"campaigns/reeks.md:{post_line + 1}: post 'aftrap' goes to mastodon, but none of its audiences "
            "(beleid) lists mastodon in the stakeholder map (leave mastodon out of this post's channels, or "
            "allow it for this post with 'allow_channels: {beleid: [mastodon]}')") in lines
    assert any(f"campaigns/reeks.md:{post_line}: post 'aftrap' is aimed at audience 'beleid'" in x for x in lines)
    assert any("variant for beleid on mastodon, but the stakeholder map does not list mastodon" in x for x in lines)
    # allowed explicitly for this post: clean, and planned for beleid on Mastodon
    reeks.write_text(reeks.read_text().replace("channels: [mastodon]\n",
                                               "channels: [mastodon]\nallow_channels: {beleid: [mastodon]}\n", 1))
    assert cli(root, "check").exit_code == 0
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    items = json.loads(cli(root, "plan", "--now", "2027-02-01T00:00Z", "--json").output)
    assert {(i["post"], i["audience"]) for i in items if i["channel"] == "mastodon"} == {
        ("aftrap", "beleid"), ("uitgelicht", "mkb")}


def test_status_summary_window_and_missed_in_the_last_day_exit_2(tmp_path):
    root = make_project(tmp_path)
    cli(root, "plan", "--now", "2027-02-01T00:00Z")
    # aftrap (Mon 1 March 10:00 CET) is missed by a publish run at 12:30 CET; uitgelicht is not due yet
    published = cli(root, "publish", "--now", "2027-03-01T11:30Z")
    assert "2 missed" in published.output
    status = cli(root, "status", "--no-channels", "--now", "2027-03-01T11:31Z")
    assert status.exit_code == 2  # missed in the last day, though nothing is overdue
    assert "summary: 2 missed, 6 planned (2 missed in the last day)" in status.output
    document = json.loads(cli(root, "status", "--json", "--no-channels", "--now", "2027-03-01T11:31Z").output)
    assert document["summary"] == {"states": {"missed": 2, "planned": 6}, "overdue": 0, "missed_last_day": 2,
                                   "shown": 8, "total": 8}
    # a day later (and uitgelicht published on time) the miss is old news: exit 0
    cli(root, "publish", "--now", "2027-03-02T08:31Z")
    assert cli(root, "status", "--no-channels", "--now", "2027-03-02T11:32Z").exit_code == 0
    # --since/--until: only the slots in the window (days, moments or durations around --now)
    window = cli(root, "status", "--no-channels", "--now", "2027-03-02T11:32Z", "--since", "2027-03-08",
                 "--until", "2027-03-10")
    assert "summary: 3 planned (3 of 8 items shown)" in window.output
    assert "Tue 2027-03-09 09:30 CET" in window.output and "2027-03-01" not in window.output.split("summary")[0]
    recent = cli(root, "status", "--no-channels", "--now", "2027-03-02T11:32Z", "--since", "2d", "--until", "1d")
    assert "summary: 2 missed, 3 published (5 of 8 items shown)" in recent.output
    bad = cli(root, "status", "--no-channels", "--since", "gisteren")
    assert bad.exit_code == 2 and "--since: 'gisteren' is not a day" in bad.output
