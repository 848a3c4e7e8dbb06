"""`plan --simulate` and `check`: each problem of the plan played forward is made in a scratch copy
of the valid project and found with its file and line; the newsletter forecast; the sample content."""

import datetime as dt
import json
import shutil

import pytest

from conftest import REPO
from dissemination.check import run_check


def line_of(root, rel, text, start=0):
    """1-based line of the first line containing `text` (after line `start`)."""
    lines = (root / rel).read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if i >= start and text in line)


def errors(root):
    return [str(p) for p in run_check(root).problems.errors]


def add_campaign(root, name, body, status="draft", channels="[mastodon]", audiences="[mkb]", extra=""):
    (root / "campaigns" / f"{name}.md").write_text(
        f"---\nid: {name}\ntitle: Campagne {name}\nstatus: {status}\nowner: Test\ngoal: Testen.\n"
        f"audiences: {audiences}\nchannels: {channels}\nstart: 2027-03-01\nend: 2027-04-30\n{extra}---\nIntro.\n\n"
        + body)


def with_newsletter(root):
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("channels: [mastodon, linkedin]",
                                                     "channels: [mastodon, linkedin, nieuwsbrief]"))


def subscribe(cli, root, *rows: tuple[str, str]) -> None:
    """Active subscribers (address, lists) in the content root's ledger, as `subscribers import` adds them."""
    csv = root / "abonnees.csv"
    csv.write_text("email,lists,consent_source,consent_date\n"
                   + "".join(f"{address},{lists},Aanmelding website,2026-01-15\n" for address, lists in rows))
    done = cli("--root", str(root), "subscribers", "import", str(csv))
    assert done.exit_code == 0, done.output
    csv.unlink()


def test_the_valid_project_and_the_sample_content_have_no_simulation_errors(content_root, cli, tmp_path):
    assert errors(content_root()) == []
    result = run_check(REPO)
    assert result.ok, [str(p) for p in result.problems.errors]
    # the sample's empty editions are allowed explicitly, with a reason
    assert all(c.meta.without_recipients for c in result.project.campaigns.values()
               if "nieuwsbrief" in c.meta.channels)
    # no subscriber database yet: recipient counts are unknown, not zero (nothing forecast, no error)
    copy = tmp_path / "sample"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", ".dissemination", "outbox", "reports"))
    assert run_check(copy).simulation.forecasts == []
    # with the example subscribers imported, every edition is forecast; hr has nobody and still forecasts at 0
    done = cli("--root", str(copy), "subscribers", "import", str(copy / "docs" / "subscribers.example.csv"))
    assert done.exit_code == 0, done.output
    result = run_check(copy)
    assert result.ok, [str(p) for p in result.problems.errors]
    empty = {f.occurrence.audience for f in result.simulation.forecasts if f.recipients == 0}
    assert "hr" in empty and result.simulation.forecasts


def test_two_posts_on_one_account_within_min_gap_collide_and_min_gap_is_per_channel(content_root, cli):
    root = content_root()
    add_campaign(root, "druk", "## Druk\nslot: 2027-03-01 10:10\n\nOok vandaag.\n")
    line = line_of(root, "campaigns/druk.md", "slot: 2027-03-01 10:10")
    result = cli("--root", str(root), "check")
    assert result.exit_code == 1
    assert (f"campaigns/druk.md:{line}: collision: druk/druk (2027-03-01 10:10) goes out on mastodon 10 min after "
            "reeks/aftrap (2027-03-01 10:00) (move one of them at least 30 min apart, or set min_gap for "
            "'mastodon' in channels.yaml)") in result.output
    # the same problem from plan --simulate, which changes nothing
    simulated = cli("--root", str(root), "plan", "--simulate", "--from", "2027-03-01", "--to", "2027-03-01",
                    "--out", str(root / "sim"))
    assert simulated.exit_code == 1 and f"campaigns/druk.md:{line}: collision" in simulated.output
    assert f"campaigns/druk.md:{line}: collision" in (root / "sim" / "simulation.txt").read_text()
    assert json.loads((root / "sim" / "simulation.json").read_text())["problems"][0]["line"] == line
    from dissemination.ledger import Ledger

    assert Ledger.for_root(root).items() == []  # nothing was planned
    # outside the window: not simulated
    later = cli("--root", str(root), "plan", "--simulate", "--from", "2027-03-03", "--out", str(root / "sim"))
    assert "collision: druk" not in later.output
    # 30 min apart is fine; a channel's own min_gap moves the line
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("kind: mastodon\n", "kind: mastodon\n  min_gap: 5m\n"))
    assert not [e for e in errors(root) if "collision" in e]
    channels.write_text(channels.read_text().replace("min_gap: 5m", "min_gap: 1h"))
    (root / "campaigns" / "druk.md").write_text((root / "campaigns" / "druk.md").read_text()
                                               .replace("10:10", "10:40"))
    assert [e for e in errors(root) if "collision: druk/druk (2027-03-01 10:40)" in e and "40 min after" in e]


def test_an_audience_gets_one_newsletter_a_day(content_root):
    root = content_root()
    add_campaign(root, "brief", "## Brief\nslot: 2027-03-02 16:00\n\nNieuws.\n", channels="[nieuwsbrief]")
    with_newsletter(root)
    line = line_of(root, "campaigns/brief.md", "slot: 2027-03-02 16:00")
    found = [e for e in errors(root) if "more than one newsletter" in e]
    assert found == [f"campaigns/brief.md:{line}: audience(s) mkb get more than one newsletter on 2027-03-02: "
                     "brief/brief (16:00) and reeks/uitgelicht (09:30) (move one newsletter to another day, or "
                     "merge them)"]


def test_platform_quotas_name_the_first_slot_that_hits_them(content_root):
    root = content_root()
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("kind: mastodon\n", "kind: mastodon\n  min_gap: 0\n")
                        .replace("kind: linkedin\n", "kind: linkedin\n  min_gap: 0\n"))
    # 2 posts x 151 minutes from 10:00 (09:00 UTC): 302 statuses in Mastodon's 3-hour window
    times = ", ".join(f"2027-03-10 {10 + i // 60:02d}:{i % 60:02d}" for i in range(151))
    add_campaign(root, "veel", f"## Een\nslots: [{times}]\n\nEen.\n\n## Twee\nslots: [{times}]\n\nTwee.\n")
    line = line_of(root, "campaigns/veel.md", "slots:")
    found = [e for e in errors(root) if "quota" in e]
    assert found == [f"campaigns/veel.md:{line}: quota: veel/een (2027-03-10 12:30) would be number 301 of "
                     "mastodon's statuses in the 3 h from 2027-03-10 09:00 UTC; Mastodon allows 300 per 3 h "
                     "(spread the posts over more time, or over more accounts)"]
    # LinkedIn: 150 a day (reset at 00:00 UTC)
    (root / "campaigns" / "veel.md").unlink()
    times = ", ".join(f"2027-03-10 {8 + i // 60:02d}:{i % 60:02d}" for i in range(76))
    add_campaign(root, "li", f"## Een\nslots: [{times}]\n\nEen.\n\n## Twee\nslots: [{times}]\n\nTwee.\n",
                 channels="[linkedin]")
    line = line_of(root, "campaigns/li.md", "slots:")
    assert [e for e in errors(root) if "quota" in e] == [
        f"campaigns/li.md:{line}: quota: li/een (2027-03-10 09:15) would be number 151 of linkedin's posts in the "
        "day from 2027-03-10 00:00 UTC; LinkedIn's share limit allows 150 per day (spread the posts over more "
        "time, or over more accounts)"]


def test_mastodon_media_uploads_quota(content_root):
    from publishing import tiny_png

    root = content_root()
    tiny_png(root / "beeld" / "a.png")
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("kind: mastodon\n", "kind: mastodon\n  min_gap: 0\n"))
    # 2 posts x 16 minutes from 10:00 (09:00 UTC): 32 uploads in one 30-minute window
    times = ", ".join(f"2027-03-10 10:{i:02d}" for i in range(16))
    post = "slots: [{times}]\nimage: beeld/a.png\nimage_alt: Een beeld\n\nTekst.\n".format(times=times)
    add_campaign(root, "beeld", f"## Een\n{post}\n## Twee\n{post}")
    line = line_of(root, "campaigns/beeld.md", "slots:")
    assert [e for e in errors(root) if "quota" in e] == [
        f"campaigns/beeld.md:{line}: quota: beeld/een (2027-03-10 10:15) would be number 31 of mastodon's media "
        "uploads in the 30 min from 2027-03-10 09:00 UTC; Mastodon allows 30 per 30 min (spread the posts over "
        "more time, or over more accounts)"]


def test_a_newsletter_for_an_audience_without_subscribers_is_a_warning_unless_allowed(content_root, cli):
    root = content_root()
    with_newsletter(root)
    subscribe(cli, root, ("mkb.persoon@example.org", "mkb"))
    line = line_of(root, "campaigns/reeks.md", "audiences:")
    warning = (f"campaigns/reeks.md:{line}: warning: newsletter reeks/uitgelicht (2027-03-02 09:30) goes to audience "
               "'beleid' with 0 recipients: it has no active subscriber (import or invite subscribers (dissemination "
               "subscribers import), leave the audience out, or say why with 'without_recipients: <reason>')")
    result = run_check(root)
    assert result.ok and warning in [str(w) for w in result.problems.warnings]
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("knowledge: [", "without_recipients: lijst in opbouw\nknowledge: ["))
    result = run_check(root)
    assert result.ok and warning not in [str(w) for w in result.problems.warnings]
    counts = {(f.occurrence.audience, f.occurrence.slot.local.date()): f.recipients for f in result.simulation.forecasts}
    assert counts[("beleid", dt.date(2027, 3, 2))] == 0 and counts[("mkb", dt.date(2027, 3, 2))] == 1


def test_a_slot_without_a_time_of_day_is_an_error(content_root):
    root = content_root()
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("slot: 2027-03-01 10:00", "slot: 2027-03-01"))
    line = line_of(root, "campaigns/reeks.md", "slot: 2027-03-01")
    assert f"campaigns/reeks.md:{line}: slot 2027-03-01 has no time of day (it would go out at midnight) (give a " \
           "time, e.g. slot: 2027-03-01 10:00)" in errors(root)
    campaign.write_text(campaign.read_text().replace("slot: 2027-03-01", "slots: [2027-03-01 10:00, 2027-03-08]"))
    assert [e for e in errors(root) if "no time of day" in e] == [
        f"campaigns/reeks.md:{line}: slot 2027-03-08 has no time of day (it would go out at midnight) (give a time, "
        "e.g. slots: 2027-03-08 10:00)"]


def test_knowledge_left_out_of_a_newsletter_for_its_date_is_a_warning_naming_it(content_root):
    root = content_root()
    with_newsletter(root)
    item = root / "knowledge" / "den-hartogh.md"
    published = next(line for line in item.read_text().splitlines() if line.startswith("published:"))
    item.write_text(item.read_text().replace(published, "published: 2027-03-05"))
    line = line_of(root, "campaigns/reeks.md", "knowledge:")
    result = run_check(root)
    assert result.ok
    assert f"campaigns/reeks.md:{line}: warning: newsletter reeks/uitgelicht of 2027-03-02 leaves out den-hartogh " \
           "(published 2027-03-05): published after the issue (move the newsletter later, or feature other items)" \
           in [str(w) for w in result.problems.warnings]


def test_newsletter_finish_from_rate_and_connections_then_from_the_measured_rate(content_root, cli):
    from dissemination.ledger import Ledger
    from dissemination.ledger.rates import measured_send_rates
    from dissemination.ledger.schema import deliveries, items

    root = content_root()
    with_newsletter(root)
    subscribe(cli, root, ("mkb.persoon@example.org", "mkb"), ("beleid.persoon@example.org", "beleid"))
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("kind: email\n", "kind: email\n  rate_per_minute: 60\n"))
    done = cli("--root", str(root), "plan", "--simulate", "--from", "2027-03-02", "--to", "2027-03-02", "--json",
               "--out", str(root / "sim"))
    assert done.exit_code == 0, done.output
    mkb = next(n for n in json.loads(done.output)["newsletters"] if n["audience"] == "mkb")
    assert (mkb["recipients"], mkb["per_minute"], mkb["measured"]) == (1, 60.0, False)
    assert mkb["slot"] == "2027-03-02T08:30:00Z" and mkb["finish"] == "2027-03-02T08:30:01Z"
    # an earlier send in the ledger: 11 messages in 2 minutes is 5 a minute
    ledger = Ledger.for_root(root)
    start = dt.datetime(2027, 2, 1, 9, 0)
    with ledger.engine.begin() as conn:
        conn.execute(items.insert().values(
            id="x1", idempotency_key="k1", campaign="oud", post="brief", audience="mkb", channel="nieuwsbrief",
            occurrence=0, slot_utc=start, timezone="Europe/Amsterdam", state="published", payload="{}",
            payload_digest="d", attempt_count=1, planned_at=start, updated_at=start, published_at=start))
        conn.execute(deliveries.insert(), [
            {"item_id": "x1", "address": f"p{i}@example.org", "address_key": f"k{i}", "state": "sent",
             "attempts": 1, "updated_at": start, "sent_at": start + dt.timedelta(seconds=12 * i)} for i in range(11)])
    assert measured_send_rates(ledger) == {"nieuwsbrief": 5.0}
    done = cli("--root", str(root), "plan", "--simulate", "--from", "2027-03-02", "--to", "2027-03-02",
               "--out", str(root / "sim"))
    assert "reeks/uitgelicht to mkb on nieuwsbrief: 1 recipient(s), done ~09:30:12 after 0.2 min (5/min, " \
           "measured in the ledger)" in done.output


def test_simulation_names_the_posts_over_a_monthly_budget_and_weekly_contacts(content_root, cli):
    root = content_root("over_budget")
    done = cli("--root", str(root), "plan", "--simulate", "--from", "2027-03-01", "--out", str(root / "sim"))
    assert done.exit_code == 1  # the budget errors of check
    text = (root / "sim" / "simulation.txt").read_text()
    assert "contacts with one stakeholder per week (most in each quadrant):" in text
    assert "2027-W09: keep satisfied 6 (ienw; budget 4/month)" in text
    assert "posts over a stakeholder's monthly contact budget:" in text
    assert "2027-03-04 14:00 extra/uitgelicht: over the monthly budget of ienw" in text


@pytest.mark.parametrize("args, message", [
    (("--from", "maart"), "--from/--to: write a day as YYYY-MM-DD"),
    (("--from", "2027-03-05", "--to", "2027-03-01"), "--to is before --from"),
])
def test_simulate_rejects_bad_days_clearly(content_root, cli, args, message):
    done = cli("--root", str(content_root()), "plan", "--simulate", *args)
    assert done.exit_code == 2 and message in done.output


def test_audience_posts_at_one_moment_are_a_warning_unless_the_campaign_says_why(content_root):
    root = content_root()
    line = line_of(root, "campaigns/reeks.md", "cadence:")
    result = run_check(root)
    assert result.ok  # the author chose text per audience: a warning, not an error
    assert [str(w) for w in result.problems.warnings] == [
        f"campaigns/reeks.md:{line}: warning: collision: 'uitgelicht' goes out 2 times at once on mastodon "
        "(2027-03-02 09:30), one post per audience group with text of its own (beleid; mkb); every follower sees "
        "them all (give the audiences one text on this channel, or say why with 'separate_audience_posts: "
        "<reason>')"]
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("knowledge: [", "separate_audience_posts: beleid apart\nknowledge: ["))
    warnings = [str(w) for w in run_check(root).problems.warnings]
    assert warnings and not [w for w in warnings if "collision" in w]  # left: "changed since approval"
