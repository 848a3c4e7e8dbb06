"""Slots keep their wall-clock time in the campaign's zone, across daylight-saving changes."""

import datetime as dt
from pathlib import Path

from dissemination.check import run_check
from dissemination.load.models import Quadrant
from dissemination.plan.schedule import localize
from zoneinfo import ZoneInfo


def _write_campaign(root: Path, name: str, front: str, body: str) -> None:
    (root / "campaigns" / f"{name}.md").write_text(f"---\n{front}\n---\n{body}")


BASE = """id: {id}
title: Reeks
status: draft
owner: Communicatie
goal: Testen.
audiences: [mkb]
channels: [mastodon]
start: {start}
end: {end}
knowledge: {knowledge}
cadence:
  post: uitgelicht
  days: [tue]
  time: "09:30"
{extra}"""


def test_weekly_series_stays_at_0930_amsterdam_across_both_dst_changes(content_root):
    root = content_root()
    (root / "campaigns" / "reeks.md").unlink()
    _write_campaign(root, "dst", BASE.format(id="dst", start="2027-03-01", end="2027-11-30", knowledge="[]",
                                             extra=""), "## Uitgelicht\nid: uitgelicht\n\nTekst.\n")
    result = run_check(root)
    assert result.ok, [str(p) for p in result.problems.items]
    slots = result.slots["dst"]
    assert len(slots) == 40  # every Tuesday from 2 March to 30 November 2027 (2 March + 39 weeks)
    assert {(s.local.hour, s.local.minute) for s in slots} == {(9, 30)}
    utc_hours = {s.local.date(): s.utc.hour for s in slots}
    assert utc_hours[dt.date(2027, 3, 23)] == 8   # winter time, UTC+1
    assert utc_hours[dt.date(2027, 3, 30)] == 7   # after the last Sunday of March, UTC+2
    assert utc_hours[dt.date(2027, 10, 26)] == 7  # still summer time
    assert utc_hours[dt.date(2027, 11, 2)] == 8   # after the last Sunday of October


def test_series_features_items_in_order_then_stops_unless_evergreen_repeats(content_root):
    root = content_root()
    (root / "campaigns" / "reeks.md").unlink()
    body = "## Uitgelicht\nid: uitgelicht\n\nTekst.\n"
    _write_campaign(root, "a", BASE.format(id="a", start="2027-03-01", end="2027-04-30",
                                           knowledge="[sharehouse, den-hartogh]", extra=""), body)
    _write_campaign(root, "b", BASE.format(id="b", start="2027-03-01", end="2027-03-31",
                                           knowledge="[den-hartogh, sharehouse]",
                                           extra="  repeat_evergreen: true\nover_budget: test")
                    .replace('"09:30"', '"11:00"'), body)  # not at a's time: that would be a collision
    result = run_check(root)
    assert result.ok, [str(p) for p in result.problems.items]
    assert [s.knowledge for s in result.slots["a"]] == ["sharehouse", "den-hartogh"]
    # March 2027 has five Tuesdays: two items, then the evergreen item again and again
    assert [s.knowledge for s in result.slots["b"]] == [
        "den-hartogh", "sharehouse", "sharehouse", "sharehouse", "sharehouse"]


def test_series_too_short_for_its_items_warns(content_root):
    root = content_root()
    (root / "campaigns" / "reeks.md").unlink()
    _write_campaign(root, "kort", BASE.format(id="kort", start="2027-03-01", end="2027-03-05",
                                              knowledge="[sharehouse, den-hartogh]", extra=""),
                    "## Uitgelicht\nid: uitgelicht\n\nTekst.\n")
    result = run_check(root)
    assert result.ok
    assert [str(w) for w in result.problems.warnings] == [
        "campaigns/kort.md:12: warning: the series has room for 1 posts but features 2 knowledge items; "
        "1 will not be shown (add days, or move the end date)"]


def test_repeated_wall_time_in_october_is_a_warning_and_uses_the_first():
    local, trouble = localize(dt.datetime(2027, 10, 31, 2, 30), ZoneInfo("Europe/Amsterdam"))
    assert trouble == "repeated" and local.utcoffset() == dt.timedelta(hours=2)
    _, trouble = localize(dt.datetime(2027, 3, 28, 2, 30), ZoneInfo("Europe/Amsterdam"))
    assert trouble == "skipped"


def test_quadrants_are_derived_from_power_and_interest():
    assert Quadrant.of(5, 5) is Quadrant.manage_closely
    assert Quadrant.of(3, 2) is Quadrant.keep_satisfied
    assert Quadrant.of(2, 3) is Quadrant.keep_informed
    assert Quadrant.of(1, 1) is Quadrant.monitor


def test_over_budget_with_a_reason_is_allowed(content_root):
    root = content_root("over_budget")
    extra = root / "campaigns" / "extra.md"
    extra.write_text(extra.read_text().replace("cadence:", "over_budget: dagelijkse actieweek\ncadence:"))
    result = run_check(root)
    assert result.ok, [str(p) for p in result.problems.errors]


def test_ambiguous_variants_are_reported_not_resolved_silently(content_root):
    root = content_root()
    reeks = root / "campaigns" / "reeks.md"
    text = reeks.read_text().replace("audiences: [mkb]\n\nVandaag start de reeks.",
                                     "audiences: [mkb]\n\nVandaag start de reeks.\n\n### variant: mkb\nVoor mkb.")
    reeks.write_text(text + "\n### variant: linkedin\nNog een keer LinkedIn.\n")
    result = run_check(root)
    assert [str(p) for p in result.problems.errors] == [
        "campaigns/reeks.md:46: a second variant for linkedin (the first is at line 43) (merge the two texts)"]
    assert "campaigns/reeks.md:43: warning: for linkedin and mkb both variant 'mkb' (line 40) and 'linkedin' apply; " \
           "the first is used (add '### variant: linkedin mkb' to say which text they get)" in \
           [str(p) for p in result.problems.warnings]
