"""The calendar in headless Chromium, month and week at 1280 and 375 px: published (with its
link), missed, planned and draft entries with their states, the filters, no console errors,
nothing wider than the screen, screenshots under test-artifacts/."""

import json
import shutil

import pytest

from browser import assert_clean, open_page
from conftest import VALID
from publishing import cli

# The visible entries after a filter, and the attribute values they carry.
VISIBLE = """(() => {
  const shown = [...document.querySelectorAll('.entry')].filter(e => e.offsetParent !== null);
  return {n: shown.length, all: document.querySelectorAll('.entry').length,
          channels: [...new Set(shown.map(e => e.dataset.channel))].sort(),
          campaigns: [...new Set(shown.map(e => e.dataset.campaign))].sort(),
          states: [...new Set(shown.map(e => e.dataset.state))].sort()};
})()"""


def choose(name: str, value: str) -> str:
    """Pick a filter as a user does: set the select and fire its change event."""
    return (f"(() => {{ const s = document.querySelector('select[name={name}]'); s.value = {json.dumps(value)}; "
            f"s.dispatchEvent(new Event('change', {{bubbles: true}})); return {VISIBLE}; }})()")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The valid project with a draft campaign beside it, planned, one post missed and one
    published (to the outbox: no tokens), then the calendar written."""
    root = tmp_path_factory.mktemp("calendar") / "content"
    shutil.copytree(VALID, root)
    reeks = (root / "campaigns" / "reeks.md").read_text()
    draft = (reeks.replace("id: reeks", "id: concept").replace("title: Kennisreeks", "title: Conceptreeks")
             .replace("status: approved", "status: draft").replace('time: "09:30"', 'time: "15:00"')
             .replace("slot: 2027-03-01 10:00", "slot: 2027-03-01 16:00"))
    (root / "campaigns" / "concept.md").write_text(draft)
    assert cli(root, "check").exit_code == 0
    assert cli(root, "plan", "--now", "2027-03-01T00:00Z").exit_code == 0
    # aftrap (Mon 10:00, 09:00Z) is past its 2 h tolerance: missed; uitgelicht (Tue 09:30) goes out
    published = cli(root, "publish", "--now", "2027-03-02T08:35Z")
    assert "missed" in published.output and published.exit_code == 0, published.output
    out = root.parent / "site"
    done = cli(root, "calendar", "--out", str(out), "--now", "2027-03-02T08:40Z")
    assert done.exit_code == 0, done.output
    assert "calendar: " in done.output and "index.html (month) and week.html (week)" in done.output
    return out


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("view", ["index", "week"])
def test_calendar_shows_states_links_and_drafts(site, view, width):
    page = open_page((site / f"{view}.html").as_uri(), width, f"calendar-{view}")
    assert_clean(page)
    assert page.scroll_width <= width
    for expected in ["Kalender: Testprogramma", "gepubliceerd", "gemist", "gepland", "concept", "Conceptreeks",
                     "Kennisreeks", "bekijk publicatie", "Mkb-ondernemers", "Beleidsmakers"]:
        assert expected in page.text, (expected, view, width)
    assert ("maart 2027" in page.text) if view == "index" else ("week 9, 2027" in page.text)
    # mkb and beleid each got their own Mastodon status at 09:30: one entry, a link to each
    assert "mastodon (2×) · Uitgelicht" in page.text
    assert "bekijk publicatie (Beleidsmakers)" in page.text and "bekijk publicatie (Mkb-ondernemers)" in page.text
    # the published item links to where it went out (here the outbox file)
    assert 'href="file://' in page.html and "outbox" in page.html
    # drafts are drawn apart (dashed) and say so
    assert 'data-state="draft"' in page.html and "concept" in page.text
    assert page.screenshot is not None and page.screenshot.stat().st_size > 0


@pytest.mark.parametrize("width", [1280, 375])
def test_calendar_filters_by_channel_campaign_audience_and_state(site, width):
    page = open_page((site / "index.html").as_uri(), width, "calendar-filter-linkedin", script=choose("channel", "linkedin"))
    assert_clean(page)
    seen = page.script_result
    assert 0 < seen["n"] < seen["all"] and seen["channels"] == ["linkedin"]
    assert "· mastodon ·" not in page.text and "· linkedin ·" in page.text

    page = open_page((site / "week.html").as_uri(), width, "calendar-filter-draft", script=choose("campaign", "concept"))
    assert page.script_result["campaigns"] == ["concept"] and page.script_result["states"] == ["draft"]
    assert "Kennisreeks ·" not in page.text

    page = open_page((site / "index.html").as_uri(), width, "calendar-filter-state", script=choose("state", "missed"))
    assert page.script_result["states"] == ["missed"] and page.script_result["n"] >= 1

    # an audience filter keeps the posts that audience gets, shared ones included
    page = open_page((site / "index.html").as_uri(), width, "calendar-filter-audience", script=choose("audience", "beleid"))
    assert 0 < page.script_result["n"] < page.script_result["all"]
    assert "Beleidsmakers" in page.text
    assert_clean(page)


def test_calendar_filter_from_the_address(site):
    page = open_page((site / "index.html").as_uri() + "?channel=mastodon&state=planned", 1280, "calendar-query",
                     script=VISIBLE)
    assert_clean(page)
    assert page.script_result["channels"] == ["mastodon"] and page.script_result["states"] == ["planned"]


def test_web_serves_the_calendar_live_and_read_only_only_when_asked(site):
    """`dissemination web --calendar` on loopback: both views, rendered from the content and the
    ledger at request time, clean in Chromium under the page's Content-Security-Policy; nothing
    changes with a POST; without --calendar there is no calendar."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from mail import SECRET, free_port

    root = site.parent / "content"
    env = {**os.environ, "DISSEMINATION_UNSUBSCRIBE_SECRET": SECRET}

    def start(*flags: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "dissemination", "--root", str(root), "web", "--host",
                                   "127.0.0.1", "--port", str(port), *flags], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # wait until it answers (a hang guard, not a timed assertion)
            try:
                httpx.get(base + "/health", timeout=1)
                return server, base
            except httpx.TransportError:
                time.sleep(0.1)
        server.kill()
        raise AssertionError(f"web did not start: {server.stderr.read() if server.stderr else ''}")

    server, base = start("--calendar")
    try:
        month = httpx.get(base + "/kalender/")
        assert month.status_code == 200 and "gepubliceerd" in month.text and "Conceptreeks" in month.text
        assert "default-src 'none'" in month.headers["content-security-policy"]
        assert month.headers["cache-control"] == "no-store"
        week = httpx.get(base + "/kalender/week")
        assert week.status_code == 200 and "week 9, 2027" in week.text
        assert httpx.post(base + "/kalender/").status_code == 405
        for view in ("", "week"):
            page = open_page(f"{base}/kalender/{view}", 1280, f"calendar-web-{view or 'month'}",
                             script=choose("channel", "mastodon"))
            assert_clean(page)
            assert page.script_result["channels"] == ["mastodon"]
        # live: a new draft shows at the next request, without restarting
        reeks = (root / "campaigns" / "reeks.md").read_text()
        (root / "campaigns" / "later.md").write_text(
            reeks.replace("id: reeks", "id: later").replace("title: Kennisreeks", "title: Latere reeks")
            .replace("status: approved", "status: draft").replace('time: "09:30"', 'time: "17:00"')
            .replace("slot: 2027-03-01 10:00", "slot: 2027-03-01 18:00"))
        try:
            assert "Latere reeks" in httpx.get(base + "/kalender/").text
        finally:
            (root / "campaigns" / "later.md").unlink()
    finally:
        server.terminate()
        server.wait(timeout=30)
    server, base = start()
    try:
        assert httpx.get(base + "/kalender/").status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_preview_writes_the_calendar_beside_it_without_creating_a_ledger(tmp_path):
    root = tmp_path / "content"
    shutil.copytree(VALID, root)
    done = cli(root, "preview", "--out", str(tmp_path / "site"))
    assert done.exit_code == 0, done.output
    assert f"calendar: 8 entries (8 planned) in {tmp_path / 'site' / 'calendar' / 'index.html'} (month) and " \
           "week.html (week)" in done.output
    month = (tmp_path / "site" / "calendar" / "index.html").read_text()
    assert "gepland" in month and "maart 2027" in month and "http://" not in month and "https://" not in month
    assert (tmp_path / "site" / "calendar" / "week.html").is_file()
    assert not (root / ".dissemination").exists()  # preview reads a ledger, never creates one


def test_held_items_wait_for_approval_in_the_calendar(tmp_path):
    """An approved campaign edited after planning: its items are held until approved again, and
    the calendar says so with the reason (the ledger's state, not the plan's)."""
    root = tmp_path / "content"
    shutil.copytree(VALID, root)
    assert cli(root, "plan", "--now", "2027-02-01T00:00Z").exit_code == 0
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("Praktijkvoorbeeld van de week.", "Praktijkvoorbeeld!"))
    assert cli(root, "plan", "--now", "2027-02-01T00:00Z").exit_code == 0
    done = cli(root, "calendar", "--out", str(tmp_path / "cal"), "--now", "2027-02-01T00:00Z")
    assert "calendar: 8 entries (8 held)" in done.output
    week = (tmp_path / "cal" / "week.html").read_text()
    assert "wacht op goedkeuring" in week and "changed since approval" in week and 'data-state="held"' in week


def test_newsletters_in_the_calendar_show_recipients_and_projected_finish(tmp_path):
    root = tmp_path / "content"
    shutil.copytree(VALID, root)
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("channels: [mastodon, linkedin]",
                                                     "channels: [mastodon, linkedin, nieuwsbrief]"))
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("kind: email\n", "kind: email\n  rate_per_minute: 1\n"))
    csv = tmp_path / "abonnees.csv"
    csv.write_text("email,lists,consent_source,consent_date\nmkb.persoon@example.org,mkb,Aanmelding website,"
                   "2026-01-15\nbeleid.persoon@example.org,beleid,Aanmelding website,2026-01-15\n")
    assert cli(root, "subscribers", "import", str(csv)).exit_code == 0
    assert cli(root, "plan", "--now", "2027-02-01T00:00Z").exit_code == 0
    cli(root, "calendar", "--out", str(tmp_path / "cal"), "--now", "2027-02-01T00:00Z")
    week = (tmp_path / "cal" / "week.html").read_text()
    # mkb and beleid have one subscriber each: two editions, one entry, 2 recipients at 1 a
    # minute, the last done a minute after 09:30
    assert "nieuwsbrief (2×) · Uitgelicht" in week
    assert "2 ontvanger(s), klaar rond 09:31" in week
