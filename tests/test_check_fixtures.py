"""`dissemination check` on one broken fixture per kind of content error.

Each fixture under tests/fixtures/broken/<case>/ overlays the valid mini project with one or more
files; the check must exit 1 and print exactly these `path:line: message (hint)` lines.
"""

import pytest

from conftest import BROKEN

from dissemination.publish.channels.base import kinds

EXPECTED = {
    "approved_without_approver": [
        'campaigns/reeks.md:4: approved campaign without approved_by (approve it with: dissemination approve campaigns/reeks.md --by NAME)',
    ],
    "bad_template": [
        "templates/mastodon/post.j2:3: template error: access to attribute '__class__' of 'str' object is unsafe. (see the templates section of docs/writing-campaigns.md)",
    ],
    "bad_timezone": [
        "campaigns/reeks.md:15: 'Europe/Amsterdm' is not an IANA time zone (use a name like Europe/Amsterdam)",
    ],
    "bad_variant": [
        "campaigns/reeks.md:36: variant for 'facebook', which is not a channel or audience of this post (use one of: linkedin, mastodon, mkb)",
    ],
    "contact_without_consent": [
        'stakeholder_maps/test.yaml:22: e-mail contact test.persoon@example.org has no consent record (add consent: {source: ..., date: YYYY-MM-DD}, or remove the contact: we never mail without consent)',
    ],
    "partner_errors": [
        "stakeholder_maps/test.yaml:29: unknown key 'mastodn' (did you mean 'mastodon'?)",
        "stakeholder_maps/test.yaml:39: a partner needs at least one channel to pass our content on (add channels: {mastodon: ..., linkedin: ..., newsletter: ..., website: ...})",
    ],
    "partner_unknown_refs": [
        "stakeholder_maps/test.yaml:31: partner 'tln' has no contact with the role 'Redacteur ledeblad' to send its kit to (did you mean 'Redacteur ledenblad'?)",
        "stakeholder_maps/test.yaml:32: unknown audience 'beleidd' (did you mean 'beleid'?)",
    ],
    "duplicate_key": [
        "channels.yaml:10: duplicate key 'author' (first written at line 7) (each key may appear once; remove or rename one of them)",
    ],
    "duplicate_knowledge_id": [
        "knowledge/den-hartogh.md:2: duplicate knowledge id 'den-hartogh' (already used by knowledge/cases/den-hartogh.md)",
    ],
    "duplicate_stakeholder_id": [
        "stakeholder_maps/test.yaml:26: duplicate stakeholder id 'tln' (already declared at stakeholder_maps/test.yaml:14)",
    ],
    "errors_in_many_files": [
        "campaigns/reeks.md:11: unknown audience 'mbk' (did you mean 'mkb'?)",
        "knowledge/sharehouse.md:4: 'type' must be one of: project, case, tool, publication or event",
        "stakeholder_maps/test.yaml:30: 'power' must be at most 5",
    ],
    "front_matter_syntax": [
        "knowledge/den-hartogh.md:8: YAML syntax error: did not find expected ',' or ']' (check the indentation and quoting on this line and the one above)",
    ],
    "id_not_file_name": [
        "campaigns/reeks.md:17: unknown knowledge item 'den-hartogh' (did you mean 'hartogh'?)",
        "knowledge/den-hartogh.md:2: id 'hartogh' does not match the file name 'den-hartogh.md' (rename the file to hartogh.md or change the id)",
    ],
    "impact_goal_range": [
        "knowledge/den-hartogh.md:8: 7 is not an impact goal (the programme's impact goals are numbered 1 to 6)",
    ],
    "missing_front_matter": [
        "knowledge/den-hartogh.md:1: missing front matter (start the file with a line '---', then 'key: value' lines, then '---')",
    ],
    "missing_key": [
        "knowledge/den-hartogh.md:2: missing required key 'summary' (add a line 'summary: ...')",
    ],
    "not_utf8": [
        'knowledge/den-hartogh.md:3: the file is not UTF-8 text (save it with UTF-8 encoding)',
    ],
    "over_budget": [
        "campaigns/extra.md:11: 22 contacts with 'ienw' in 2027-04, over its budget of 4 per month (keep satisfied); 1 more stakeholder(s) over budget that month (spread the posts out, or say why with 'over_budget: <reason>')",
        "campaigns/extra.md:11: 25 contacts with 'ienw' in 2027-03 (extra: 23, reeks: 2), over its budget of 4 per month (keep satisfied); 1 more stakeholder(s) over budget that month (spread the posts out, or say why with 'over_budget: <reason>')",
        "campaigns/reeks.md:11: 25 contacts with 'ienw' in 2027-03 (extra: 23, reeks: 2), over its budget of 4 per month (keep satisfied); 1 more stakeholder(s) over budget that month (spread the posts out, or say why with 'over_budget: <reason>')",
    ],
    "over_limit": [
        "campaigns/reeks.md:30: mastodon post for mkb is 614 characters, over the limit of 500 (shorten the text, or write a shorter '### variant: mastodon' or '### variant: mastodon mkb')",
    ],
    "post_without_slot": [
        "campaigns/reeks.md:30: post 'aftrap' has no slot (add 'slot: YYYY-MM-DD HH:MM' under its heading, or make it the campaign's cadence post)",
    ],
    "secret_in_channels": [
        "channels.yaml:4: 'token' would put a secret in the repository (remove it and name the environment variable instead, e.g. token_env: MASTODON_TOKEN)",
    ],
    "slot_outside_period": [
        'campaigns/reeks.md:31: slot 2027-06-01 10:00 is outside the campaign (2027-03-01 to 2027-04-30) (move the slot or widen start/end)',
    ],
    "slot_skipped_by_dst": [
        'campaigns/reeks.md:31: 2027-03-28 02:30 does not exist in Europe/Amsterdam (the clocks go forward) (pick another time, e.g. an hour later)',
    ],
    "target_invalid": [
        "programme.yaml:14: 'metric' must be one of: publications, reach, interactions, clicks, subscribers or partner_reach",
        "programme.yaml:16: target 'zonder-doel' needs exactly one of minimum and times_baseline (e.g. minimum: 500, or times_baseline: 2 with baseline: 2025)",
        "programme.yaml:23: '2026-Q5' is not a period (write a year (2026), a quarter (2026-Q4) or a month (2026-11))",
    ],
    "target_unknown_reference": [
        "programme.yaml:15: unknown audience 'mbk' (did you mean 'mkb'?)",
        "programme.yaml:17: unknown milestone 'PL3-9' (did you mean 'PL3-2'?)",
        "programme.yaml:20: duplicate target id 'bereik-partners' (already used at line 12)",
    ],
    "three_errors": [
        "campaigns/reeks.md:4: 'status' must be one of: draft, approved, paused or archived",
        "campaigns/reeks.md:10: 0 is not an impact goal (the programme's impact goals are numbered 1 to 6)",
        "campaigns/reeks.md:13: 'start' must be a date (write it as YYYY-MM-DD, e.g. 2026-03-01)",
    ],
    "unclosed_front_matter": [
        "knowledge/den-hartogh.md:1: front matter is not closed (add a line '---' after the last key)",
    ],
    "unknown_audience": [
        "campaigns/reeks.md:11: unknown audience 'mbk' (did you mean 'mkb'?)",
    ],
    "unknown_channel": [
        "campaigns/reeks.md:12: unknown channel 'linkedn' (did you mean 'linkedin'?)",
    ],
    "unknown_channel_kind": [
        # every channel kind's module is named: a new kind adds one
        f"channels.yaml:11: channel 'nieuwsbrief' has unknown kind 'smtp' (kind is one of: {', '.join(kinds())})",
    ],
    "unknown_key": [
        "knowledge/den-hartogh.md:3: unknown key 'titel' (did you mean 'title'?)",
    ],
    "unknown_knowledge": [
        "campaigns/reeks.md:17: unknown knowledge item 'aldowa' (known knowledge items: den-hartogh, sharehouse)",
    ],
    "unknown_milestone": [
        "campaigns/reeks.md:9: unknown milestone 'PL3-9' (did you mean 'PL3-2'?)",
    ],
    "yaml_syntax": [
        'stakeholder_maps/test.yaml:9: YAML syntax error: mapping values are not allowed in this context (a value that contains \': \' must be quoted, e.g. title: "Let op: dit")',
    ],
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in BROKEN.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_broken_fixture_reports_exact_problems(case, content_root, cli):
    result = cli("--root", str(content_root(case)), "check")
    # Warnings (e.g. "changed since approval" for an edited approved campaign) are not the subject
    # nor which limits the lengths were checked against (see tests/test_platform_reality.py)
    lines = [line for line in result.output.splitlines()
             if ": warning: " not in line and not line.startswith("limits ")]
    assert result.exit_code == 1
    assert lines[:-1] == EXPECTED[case]
    files = len({line.split(":")[0] for line in EXPECTED[case]})
    assert lines[-1].startswith(f"{len(EXPECTED[case])} error(s) in {files} file(s), ")
    assert "Traceback" not in result.output


def test_a_file_with_three_errors_reports_three(content_root, cli):
    result = cli("--root", str(content_root("three_errors")), "check")
    reeks = [line for line in result.output.splitlines() if line.startswith("campaigns/reeks.md:")]
    assert len(reeks) == 3


def test_errors_in_several_files_are_all_reported(content_root, cli):
    result = cli("--root", str(content_root("errors_in_many_files")), "check")
    paths = {line.split(":")[0] for line in result.output.splitlines()[:-1]}
    assert paths == {"campaigns/reeks.md", "knowledge/sharehouse.md", "stakeholder_maps/test.yaml"}


def test_a_secret_written_in_channels_is_never_echoed(content_root, cli):
    result = cli("--root", str(content_root("secret_in_channels")), "check")
    assert result.exit_code == 1
    assert "s3cr3t-value-never-printed" not in result.output


def test_valid_project_passes_with_summary(content_root, cli):
    result = cli("--root", str(content_root()), "check")
    assert result.exit_code == 0, result.output
    assert "1 campaigns (1 approved; 2 posts, 3 slots)" in result.output
    assert "2 knowledge items" in result.output
    assert "1 stakeholder maps (2 audiences, 2 stakeholders, 0 e-mail contacts)" in result.output
    assert "3 channels" in result.output
    # its mastodon/post.beleid.j2 gives beleid a status of its own beside mkb's, at the same time
    assert "campaigns/reeks.md:18: warning: collision: 'uitgelicht' goes out 2 times at once on mastodon" in result.output
    assert result.output.splitlines()[-1] == "OK: no errors, 1 warning(s)"


def test_an_email_channel_without_web_url_is_a_warning_with_file_and_line(content_root, cli):
    root = content_root()
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("  web_url: https://nieuwsbrief.example.org\n", ""))
    line = channels.read_text().splitlines().index("nieuwsbrief:") + 1
    result = cli("--root", str(root), "check")
    assert result.exit_code == 0, result.output
    assert f"channels.yaml:{line}: warning: e-mail channel 'nieuwsbrief' has no web_url, so no e-mail is sent (its " \
           "newsletters are written to outbox/nieuwsbrief/) (set web_url to the public address of `dissemination " \
           "web`; every newsletter needs a working unsubscribe link)" in result.output
    # and the fixture's own (see test_valid_project_passes_with_summary)
    assert result.output.splitlines()[-1] == "OK: no errors, 2 warning(s)"


@pytest.mark.parametrize("url,refused", [("http://nieuwsbrief.example.org", True),
                                         ("http://localhost:8080", False), ("http://127.0.0.1:8080", False),
                                         ("https://nieuwsbrief.example.org", False)])
def test_an_email_channel_web_url_must_be_https_except_on_localhost(content_root, cli, url, refused):
    """RFC 8058 one-click unsubscribe needs HTTPS; a test setup on this machine may use http."""
    root = content_root()
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("web_url: https://nieuwsbrief.example.org", f"web_url: {url}"))
    line = channels.read_text().splitlines().index(f"  web_url: {url}") + 1
    result = cli("--root", str(root), "check")
    message = f"channels.yaml:{line}: e-mail channel 'nieuwsbrief': web_url {url} is not HTTPS"
    assert (result.exit_code != 0, message in result.output) == (refused, refused), result.output


def test_addresses_of_people_in_a_stakeholder_map_are_a_warning_pointing_to_the_subscriber_database(content_root, cli):
    root = content_root()
    path = root / "stakeholder_maps" / "test.yaml"
    path.write_text(path.read_text().replace("        role: Beleidsadviseur\n", "        email: t.persoon@example.org\n"
                                             "        consent: {source: Aanmelding website, date: 2026-01-15}\n"))
    line = path.read_text().splitlines().index("        email: t.persoon@example.org") + 1
    result = cli("--root", str(root), "check")
    assert result.exit_code == 0, result.output
    assert f"stakeholder_maps/test.yaml:{line}: warning: e-mail addresses of people are in git; newsletters no longer " \
           "read them from the map (move them into the subscriber database once with `dissemination subscribers " \
           "import-contacts`" in result.output
    # and the fixture's own (see test_valid_project_passes_with_summary)
    assert result.output.splitlines()[-1] == "OK: no errors, 2 warning(s)"


def test_a_contact_invited_to_an_unknown_list_is_an_error(content_root, cli):
    root = content_root()
    path = root / "stakeholder_maps" / "test.yaml"
    path.write_text(path.read_text().replace("invite: mkb", "invite: mbk"))
    result = cli("--root", str(root), "check")
    assert result.exit_code == 1 and "stakeholder_maps/test.yaml:23: invite: unknown audience 'mbk' (did you mean 'mkb'?)" in result.output
