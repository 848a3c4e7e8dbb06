"""Red team: hostile and careless input (issue 19), one section per class.

Every risky case runs the real CLI in a child process under a memory limit (1 GB of address
space) and a wall-clock bound, so a regression fails here instead of hanging CI or exhausting the
machine. Nothing here asserts a duration: the bounds only stop a runaway child.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from mail import contact, first_issue, mail_env, newsletter_project, smtp, states  # noqa: F401  (smtp: a fixture)
from publishing import PG_URL, PgSchema, add_image, cli, due_rows, make_project, mastodon_only, pg_available

from dissemination.load.yamlsrc import parse_yaml
from dissemination.render.env import MAX_TEXT, Templates, TemplateFailure

VALID = Path(__file__).parent / "fixtures" / "valid"
GIGABYTE = 1 << 30


def _limits() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (GIGABYTE, GIGABYTE))


def bounded(root: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI in a child process with at most 1 GB of memory; killed if it runs away."""
    return subprocess.run([sys.executable, "-m", "dissemination", "--root", str(root), *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_limits, check=False)


@pytest.fixture
def root(tmp_path):
    import shutil

    target = tmp_path / "content"
    shutil.copytree(VALID, target)
    return target


def _post_text(root: Path, text: str) -> None:
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("Vandaag start de reeks.\n", text + "\n", 1))


def _located(result: subprocess.CompletedProcess, where: str, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(where)]
    assert lines, result.stdout
    assert all(any(w in line for line in lines) for w in words), lines


# --- 1. templates with limits ------------------------------------------------------------------

@pytest.mark.parametrize("expression, words", [
    ("{{ 9**(9**9) }}", ["9 ** 387420489", "too large"]),
    ("{{ 'a'*10**9 }}", ["repeating 1 characters", "1000000000"]),
    ("{{ [0]*10**9 }}", ["items"]),
    ("{{ range(10**9)|list|length }}", ["range of 1000000000"]),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", ["too much work"]),
    ("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}", ["calls itself"]),
    ("{{ 'a'|center(10**9) }}", ["filter 'center'", "1000000000"]),
    ("{{ 'a'.ljust(10**9) }}", ["ljust", "1000000000"]),
    ("{{ '%999999999d' % 1 }}", ["999999999"]),
    ("{{ '{:>999999999}'.format(1) }}", ["999999999"]),
    ("{% set ns = namespace(x='ab') %}{% for i in range(60) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
     ["longer than"]),
])
def test_exploding_post_text_is_a_located_error_not_a_hang(root, expression, words):
    _post_text(root, expression)
    result = bounded(root, "check")
    _located(result, "campaigns/reeks.md:", "template error", *words)


def test_exploding_channel_template_is_located_in_its_file(root):
    (root / "templates" / "mastodon").mkdir(parents=True)
    (root / "templates" / "mastodon" / "post.j2").write_text("{{ body }}\n{{ 'a'*10**9 }}\n")
    result = bounded(root, "check")
    _located(result, "templates/mastodon/post.j2:2:", "template error", "1000000000")


def test_output_size_is_bounded_even_when_each_piece_is_small(tmp_path):
    templates = Templates(tmp_path)
    text = "{% for i in range(100000) %}{{ 'x' * 20 }}{% endfor %}"
    with pytest.raises(TemplateFailure) as caught:
        templates.render_text(templates.from_text(text, "c.md", 3), templates.context({}), "c.md", 3)
    assert str(caught.value).startswith("c.md:3: template error: ")
    assert f"longer than {MAX_TEXT}" in str(caught.value)


def test_ordinary_arithmetic_and_loops_still_render(tmp_path):
    templates = Templates(tmp_path)
    text = "{{ 2**10 }} {{ 'ab' * 3 }} {{ [1, 2] * 2 }} {% for i in range(3) %}{{ i }}{% endfor %} {{ '%05d' % 42 }}"
    out = templates.render_text(templates.from_text(text, "c.md", 1), templates.context({}), "c.md", 1)
    assert out == "1024 ababab [1, 2, 1, 2] 012 00042"


def _merge_bomb(levels: int = 40) -> str:
    lines = ["x0: &x0 {a: 1, b: 2}"]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i}\n  <<: [*x{i - 1}, *x{i - 1}]\n  k{i}: {i}")
    return "\n".join(lines) + "\n"


def test_nested_merge_keys_are_merged_once_each():
    doc, problems = parse_yaml(_merge_bomb(), "programme.yaml")
    assert not problems
    assert doc is not None and doc.data["x39"] == {"a": 1, "b": 2, **{f"k{i}": i for i in range(1, 40)}}
    assert doc.line_of(("x39", "a")) == 1  # a merged key is located where it was written


def test_nested_merge_keys_in_programme_yaml_give_located_errors(root):
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + _merge_bomb())
    result = bounded(root, "check")
    _located(result, "programme.yaml:", "x0")


def test_billion_laughs_is_refused_at_its_line():
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 10) + "]")
    doc, problems = parse_yaml("\n".join(lines), "stakeholder_maps/x.yaml")
    assert doc is None and len(problems) == 1
    assert problems[0].line > 1 and "expands to more than" in problems[0].message
    assert "aliases" in (problems[0].hint or "")


def test_merge_key_overridden_by_a_key_written_here():
    doc, problems = parse_yaml("base: &b {x: 1, y: 2}\nz:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert not problems and doc is not None and doc.data["z"] == {"x": 1, "y": 3}
    assert doc.line_of(("z", "y")) == 4


# --- 2. secrets redacted at the boundary ------------------------------------------------------

@pytest.fixture
def mastodon_project(tmp_path, fake_mastodon):
    project = make_project(tmp_path, tolerance="90d")
    mastodon_only(project)
    assert cli(project, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    channels = project / "channels.yaml"
    channels.write_text(channels.read_text().replace("base_url: https://mastodon.example",
                                                     f"base_url: {fake_mastodon.url}"))
    assert cli(project, "plan", "--now", "2026-12-01T00:00Z").exit_code == 0
    return project


def _ledger_text(root: Path) -> str:
    from dissemination.ledger import Ledger

    ledger = Ledger.for_root(root)
    return repr([dict(r) for r in ledger.items()])


def test_a_token_echoed_in_a_401_reaches_neither_output_nor_ledger(mastodon_project, fake_mastodon):
    fake_mastodon.echo_token = True
    token = "revoked-token-echoed-1234"
    result = cli(mastodon_project, "publish", "--now", "2027-03-01T09:00:00+00:00",
                 env={"TEST_MASTODON_TOKEN": token})
    assert "was refused" in result.output, result.output
    assert token not in result.output
    assert token not in _ledger_text(mastodon_project)
    status = cli(mastodon_project, "status")
    assert token not in status.output


def test_a_token_echoed_in_a_refusal_reaches_neither_output_nor_ledger(mastodon_project, fake_mastodon):
    fake_mastodon.echo_token = True
    fake_mastodon.reject_with = "Validation failed: Text is too long"
    env = {"TEST_MASTODON_TOKEN": fake_mastodon.token, "DISSEMINATION_LOG": "DEBUG"}
    result = cli(mastodon_project, "publish", "--now", "2027-03-01T09:00:00+00:00", env=env)
    assert result.exit_code == 0, result.output
    ledger = _ledger_text(mastodon_project)
    assert "Validation failed: Text is too long (request by Bearer [redacted])" in ledger
    assert fake_mastodon.token not in ledger and fake_mastodon.token not in result.output
    for args in (("status",), ("status", "--json")):
        shown = cli(mastodon_project, *args, env=env).output
        assert "Validation failed" in shown and fake_mastodon.token not in shown


@pytest.mark.skipif(not pg_available(), reason="PostgreSQL at 127.0.0.1:5432 is not running")
def test_run_shows_the_database_url_without_its_password(tmp_path):
    schema = PgSchema()
    try:
        project = make_project(tmp_path)
        user_and_host = PG_URL.split("://", 1)[1]
        user, host = user_and_host.split("@", 1)
        url = schema.url.replace(user_and_host, f"{user}:hunter2-secret-pw@{host}")
        result = cli(project, "run", "--now", "2027-03-01T09:00:00+00:00", env={"DISSEMINATION_DB_URL": url})
        assert result.exit_code == 0, result.output
        assert "hunter2-secret-pw" not in result.output
        assert f"{user}:[redacted]@" in result.output
    finally:
        schema.drop()


# --- 3. containment ----------------------------------------------------------------------------

@pytest.fixture
def outside(tmp_path):
    secret = tmp_path / "elsewhere" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("---\nid: secret\n---\nNot for the content root.\n")
    return secret


def test_a_knowledge_file_linked_to_outside_the_root_is_not_read(root, outside):
    (root / "knowledge" / "secret.md").symlink_to(outside)
    result = bounded(root, "check")
    _located(result, "knowledge/secret.md:1:", "symbolic link to outside the content root")
    assert "Not for the content root" not in result.stdout


def test_a_template_linked_to_outside_the_root_is_not_read(root, outside):
    (root / "templates" / "mastodon").mkdir(parents=True)
    (root / "templates" / "mastodon" / "post.j2").symlink_to(outside)
    result = bounded(root, "check")
    _located(result, "templates/mastodon/post.j2:1:", "outside the content root")
    assert "Not for the content root" not in result.stdout


def test_a_template_that_is_not_utf8_is_located(root):
    (root / "templates" / "mastodon").mkdir(parents=True)
    (root / "templates" / "mastodon" / "post.j2").write_bytes(b"{{ body }}\ncaf\xe9\n")
    result = bounded(root, "check")
    _located(result, "templates/mastodon/post.j2:2:", "not UTF-8")


def test_an_outbox_path_outside_the_root_is_an_error_and_nothing_is_written(root, tmp_path):
    target = tmp_path / "written-here"
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text() + f"kladblok:\n  kind: outbox\n  path: {target}\n"
                        "verwijzing:\n  kind: outbox\n  path: ../../elders\n")
    result = bounded(root, "check")
    _located(result, "channels.yaml:", "outside the content root")
    assert len([line for line in result.stdout.splitlines() if "outside the content root" in line]) == 2
    assert bounded(root, "publish", "--now", "2027-03-01T09:00Z").returncode == 1
    assert not target.exists() and not (tmp_path / "elders").exists()


@pytest.mark.parametrize("image, words", [
    ("beeld/a\x00b.png", "NUL"), ("beeld/" + "x" * 300 + ".png", "longer than the file system allows"),
    ("../buiten.png", "outside the content root"), ("/etc/hostname", "outside the content root"),
])
def test_bad_image_paths_are_located_errors(root, image, words):
    campaign = root / "campaigns" / "reeks.md"
    escaped = image.replace("\x00", "\\0")
    campaign.write_text(campaign.read_text().replace(
        "audiences: [mkb]\n", f'audiences: [mkb]\nimage: "{escaped}"\nimage_alt: Een beeld\n', 1))
    result = bounded(root, "check")
    _located(result, "campaigns/reeks.md:", words)


def test_an_image_replaced_by_a_link_after_check_is_not_uploaded(tmp_path, fake_mastodon, outside):
    project = make_project(tmp_path, tolerance="90d")
    mastodon_only(project)
    image = add_image(project)
    assert cli(project, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    channels = project / "channels.yaml"
    channels.write_text(channels.read_text().replace("base_url: https://mastodon.example",
                                                     f"base_url: {fake_mastodon.url}"))
    assert cli(project, "plan", "--now", "2026-12-01T00:00Z").exit_code == 0
    image.unlink()
    image.symlink_to(outside)  # after check and plan: publish must check again
    result = cli(project, "publish", "--now", "2027-03-01T09:00:00+00:00",
                 env={"TEST_MASTODON_TOKEN": fake_mastodon.token})
    assert result.exit_code == 0, result.output
    assert not fake_mastodon.media
    failed = due_rows(project, "mastodon", "2027-03-01T09:00:00+00:00", "failed")
    assert failed and all("outside the content root" in r["reason"] for r in failed)


def test_a_file_name_with_a_newline_cannot_forge_an_output_line(root):
    (root / "knowledge" / "x\nforged.md:1: all is well.md").write_text("---\nid: nope\n---\n")
    result = bounded(root, "check")
    assert result.returncode == 1
    assert not any(line.startswith("forged.md") for line in result.stdout.splitlines())
    assert "knowledge/x\\nforged.md:1: all is well.md:" in result.stdout


# --- 4. addresses and headers ------------------------------------------------------------------

def _contact(root: Path, email: str, name: str = "Test Persoon") -> None:
    path = root / "stakeholder_maps" / "test.yaml"
    # people's addresses belong in the subscriber database; one left in the map is still validated
    text = path.read_text().replace("- name: Test Persoon\n",
                                    f"- name: {json_quote(name)}\n        email: {json_quote(email)}\n"
                                    "        consent: {source: Aanmelding website, date: 2026-01-15}\n")
    assert json_quote(email) in text
    path.write_text(text)


def json_quote(text: str) -> str:
    import json

    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


@pytest.mark.parametrize("email, words", [
    ("rt\x00c@example.org", "control character"), ("rt\rc@example.org", "control character"),
    ("a..b@example.org", "two dots"), ("naam@localhost", "host name"), ('"xy"@example.org', "cannot hold"),
    ("x" * 65 + "@example.org", "64 octets"), ("naam@exa_mple.org", "host name"),
])
def test_bad_contact_addresses_are_located_errors(root, email, words):
    _contact(root, email)
    result = bounded(root, "check")
    _located(result, "stakeholder_maps/test.yaml:", "is not an e-mail address", words)


def test_a_five_thousand_character_name_is_an_error(root):
    _contact(root, "test.persoon@example.org", "N" * 5000)
    _located(bounded(root, "check"), "stakeholder_maps/test.yaml:", "5000 characters")


@pytest.mark.parametrize("line, words", [
    ("  from_name: \"Nieuws\\r\\nBcc: iedereen@example.org\"\n", "control character"),
    ("  web_url: https://nieuwsbrief.voorbeeld.nl/afmelden/ü\n", "non-ASCII"),
    ("  reply_to: \"antwoord\\n@example.org\"\n", "control character"),
])
def test_email_channel_header_values_are_checked(root, line, words):
    channels = root / "channels.yaml"
    text = channels.read_text()
    key = line.split(":")[0].strip()
    text = "\n".join(l for l in text.splitlines() if not l.strip().startswith(key + ":")) + "\n"
    channels.write_text(text + line)
    _located(bounded(root, "check"), "channels.yaml:", words)


def test_internationalised_addresses_pass_check(root):
    _contact(root, "jöhn@bücher.example")
    result = bounded(root, "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_long_names_are_folded_by_the_email_policy():
    from email.header import decode_header, make_header

    from dissemination.publish.mime import recipient_header

    name = ("Tiëlemans " * 19).strip()
    value = recipient_header(name, "lid@example.org")
    assert all(len(line) <= 78 for line in (b"To: " + value).split(b"\r\n"))
    # RFC 2047 §6.2: white space between adjacent encoded words is not part of the text
    shown = str(make_header(decode_header(value.decode("ascii"))))
    assert " ".join(shown.split()) == name + " <lid@example.org>"
    # The issue's case: 5,000 plain characters were one 5,023-octet line (check refuses such a name;
    # the sender folds whatever it gets)
    long_plain = recipient_header("N" * 5000, "lid@example.org")
    assert max(len(line) for line in (b"To: " + long_plain).split(b"\r\n")) <= 998


@pytest.mark.parametrize("smtputf8", [False, True])
def test_one_non_ascii_local_part_does_not_stop_the_others(tmp_path, smtputf8):
    from mail import SmtpServer

    from dissemination.ledger import Ledger
    from dissemination.ledger.deliveries import Deliveries

    server = SmtpServer(enable_SMTPUTF8=smtputf8)
    try:
        contacts = [contact(0), contact(1).replace("Lid1@Example.org", "jöhn@example.org"), contact(2)]
        root = newsletter_project(tmp_path, server.port, contacts)
        result = cli(root, "publish", "--now", "2027-03-02T09:05Z", env=mail_env())
        assert result.exit_code == 0, result.output
        item = first_issue(root)
        assert item["state"] == "published", item
        if smtputf8:  # the server offers it: the address goes, as UTF-8
            assert sorted(server.sink.recipients()) == ["jöhn@example.org", "lid0@example.org", "lid2@example.org"]
            assert "jöhn@example.org".encode() in next(raw for _, to, raw in server.sink.messages if "jöhn" in to[0])
            return
        assert sorted(server.sink.recipients()) == ["lid0@example.org", "lid2@example.org"]
        assert states(root, item["id"])["jöhn@example.org"] == "rejected"
        (row,) = [r for r in Deliveries(Ledger.for_root(root)).rows(item["id"]) if r["address"] == "jöhn@example.org"]
        assert "SMTPUTF8" in row["detail"]
    finally:
        server.stop()


def test_ics_text_is_escaped_per_rfc_5545():
    from dissemination.plan.planner import ics_fold, ics_text

    assert ics_text("Kick\roff; a,b\\c\r\nd\x07") == "Kick\\noff\\; a\\,b\\\\c\\nd"
    folded = ics_fold("SUMMARY:" + "é" * 80)
    assert all(len(line.encode()) <= 75 for line in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == "SUMMARY:" + "é" * 80


def test_a_bare_cr_in_an_event_name_does_not_break_the_calendar(root):
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace(
        "start: 2027-03-01\n", 'start: 2027-03-01\nevent:\n  name: "Kick\\roff\\nBEGIN:VEVENT"\n'
        '  starts: 2027-03-10 14:00\n  place: Utrecht\n', 1))
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    result = cli(root, "plan", "--now", "2026-12-01T00:00Z")
    assert result.exit_code == 0, result.output
    ics = (root / "events" / "reeks.ics").read_bytes()
    lines = ics.split(b"\r\n")
    assert b"\r" not in b"".join(lines) and b"\n" not in b"".join(lines)
    assert lines.count(b"BEGIN:VEVENT") == 1
    assert b"SUMMARY:Kick\\noff\\nBEGIN:VEVENT" in ics


# --- 5. located errors, no failure swallowed ---------------------------------------------------

def test_a_slot_at_the_edge_of_the_calendar_is_a_located_error(root):
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("slot: 2027-03-01 10:00", "slot: 0001-01-01 00:10")
                        .replace("start: 2027-03-01", "start: 0001-01-01"))
    _located(bounded(root, "check"), "campaigns/reeks.md:", "0001-01-01 00:10", "too close to the year 1")


def test_a_cadence_running_to_the_end_of_the_calendar_is_planned_without_a_crash(root):
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("end: 2027-04-30", "end: 9999-12-31"))
    result = bounded(root, "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_slot_under_a_post_heading_is_reported_not_a_missing_slot(root):
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace("slot: 2027-03-01 10:00", "slot: 10000-01-01 00:10"))
    result = bounded(root, "check")
    _located(result, "campaigns/reeks.md:", "'slot' must be a date and time")
    assert "has no slot" not in result.stdout


@pytest.mark.parametrize("args, words", [
    (("metrics", "--max-age", "9999999999d"), "--max-age"),
    (("report", "--period", "0001-01"), "between 2 and 9998"),
    (("report", "--period", "9999"), "between 2 and 9998"),
    (("report", "--from", "0001-01-01", "--to", "0001-01-31"), "too close to the year 1"),
    (("serve", "--publish-every", "0"), "--publish-every"),
])
def test_bad_operator_arguments_are_one_sentence_and_exit_2(root, args, words):
    result = bounded(root, *args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_corrupted_ledger_is_one_sentence_and_exit_2_and_left_alone(root):
    ledger = root / ".dissemination" / "ledger.db"
    ledger.parent.mkdir()
    ledger.write_bytes(b"this is not a database\n" * 100)
    for command in (("status",), ("plan", "--now", "2026-12-01T00:00Z"), ("report",)):
        result = bounded(root, *command)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "the ledger cannot be used" in result.stderr and "Traceback" not in result.stderr
    assert ledger.read_bytes() == b"this is not a database\n" * 100


def test_report_out_to_a_device_refuses_and_writes_nothing(root, tmp_path):
    assert os.path.exists("/dev/full")
    result = bounded(root, "report", "--out", "/dev/full")
    assert result.returncode == 2 and "not a regular file" in result.stderr, result.stderr
    assert Path("/dev/full").is_char_device()
    assert not Path("/dev/full.csv").exists() and not Path("/dev/full-publicaties.csv").exists()
    link = tmp_path / "link.html"
    link.symlink_to(tmp_path / "target.html")
    result = bounded(root, "report", "--out", str(link))
    assert result.returncode == 2 and "symbolic link" in result.stderr
    assert not (tmp_path / "target.html").exists()


def _no_fsize_limit_breach(limit: int):
    def apply() -> None:
        _limits()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes beyond `limit` bytes fail: a full disk
    return apply


def test_a_full_disk_leaves_no_temporary_files_and_the_old_file_whole(root):
    before = (root / "campaigns" / "reeks.md").read_bytes()
    (root / "campaigns" / "reeks.md").write_bytes(before.replace(b"status: approved", b"status: draft"))
    result = subprocess.run([sys.executable, "-m", "dissemination", "--root", str(root), "approve",
                             "campaigns/reeks.md", "--by", "Test"], capture_output=True, text=True, timeout=120,
                            preexec_fn=_no_fsize_limit_breach(100), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "campaigns/reeks.md: File too large" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in (root / "campaigns").iterdir()) == ["reeks.md"]
    assert b"status: draft" in (root / "campaigns" / "reeks.md").read_bytes()


def test_orphan_clean_up_removes_only_its_own_temporary_files(root):
    from dissemination.files import TEMP_PREFIX

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = int(gone.stdout)
    folder = root / "outbox" / "mastodon"
    folder.mkdir(parents=True)
    theirs = folder / ".tmp-1-notes.txt"  # someone's file that merely looks temporary
    theirs.write_text("keep me")
    ours = folder / f"{TEMP_PREFIX}{dead}-abcd1234"
    ours.write_text("half")
    alive = folder / f"{TEMP_PREFIX}{os.getpid()}-abcd1234"  # a writer still running
    alive.write_text("writing")
    assert cli(root, "plan", "--now", "2026-12-01T00:00Z").exit_code == 0
    assert cli(root, "publish", "--now", "2027-03-01T09:00Z").exit_code == 0
    assert theirs.read_text() == "keep me" and alive.exists() and not ours.exists()


def test_unexpected_exceptions_count_towards_the_attempt_limit(mastodon_project, fake_mastodon):
    import datetime as dt

    from dissemination.publish.loop import MAX_ATTEMPTS

    fake_mastodon.malformed = True
    moment = dt.datetime(2027, 3, 1, 9, tzinfo=dt.timezone.utc)
    env = {"TEST_MASTODON_TOKEN": fake_mastodon.token}
    for _ in range(MAX_ATTEMPTS + 1):
        assert cli(mastodon_project, "publish", "--now", moment.isoformat(), env=env).exit_code == 0
        moment += dt.timedelta(hours=2)
    (row,) = due_rows(mastodon_project, "mastodon", "2027-03-01T09:00:00+00:00")
    assert row["state"] == "failed", row
    assert row["reason"].startswith(f"gave up after {MAX_ATTEMPTS} attempts: TypeError")


def test_a_dead_sending_thread_is_the_items_reason(tmp_path):
    from mail import SECRET

    from dissemination.publish.tokens import Signer

    root = newsletter_project(tmp_path, 9, [contact(0), contact(1)])
    channels = root / "channels.yaml"  # no web_url: the newsletter is written to the outbox
    channels.write_text("\n".join(l for l in channels.read_text().splitlines() if "web_url" not in l) + "\n")
    item = first_issue(root)
    # Where the first recipient's file goes is taken by a folder: that write fails in the thread.
    name = f"{item['id']}-{Signer(SECRET.encode()).address_key('lid0@example.org')}.eml"
    (root / "outbox" / "nieuwsbrief" / name).mkdir(parents=True)
    result = cli(root, "publish", "--now", "2027-03-02T09:05Z", env=mail_env())
    assert result.exit_code == 0, result.output
    item = first_issue(root)
    assert item["state"] != "published"
    assert "a sending thread failed: WriteRefused" in item["reason"] and "not a regular file" in item["reason"]
    assert "deferred" not in item["reason"].split("(")[1]


def test_outbox_eml_names_carry_the_edition(tmp_path):
    root = newsletter_project(tmp_path, 9, [contact(0)])
    channels = root / "channels.yaml"
    channels.write_text("\n".join(l for l in channels.read_text().splitlines() if "web_url" not in l) + "\n")
    assert cli(root, "publish", "--now", "2027-03-02T09:05Z", env=mail_env()).exit_code == 0
    assert cli(root, "publish", "--now", "2027-03-09T09:05Z", env=mail_env()).exit_code == 0
    files = sorted((root / "outbox" / "nieuwsbrief").glob("*.eml"))
    assert len(files) == 2  # the second issue to the same person did not overwrite the first
    assert len({f.name.split("-")[0] for f in files}) == 2


# --- 6. strict tokens --------------------------------------------------------------------------

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dissemination.publish.tokens import BadToken, Signer, _b64  # noqa: E402

SIGNER = Signer(b"red-team-secret-0123456789abcdef")
TOKEN_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1f"), max_size=40)


def _variants(token: str) -> dict[str, str]:
    """Ways to write the same token differently, or to slip something into it."""
    payload, signature = token.split(".")
    last = signature[-1]
    # The last character of a 16-byte value carries 2 bits that are not used: same bytes, other text.
    same_bits = next(c for c in "AEIMQUYcgkosw048" if c != last and
                     (("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(c) ^
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(last)) < 16))
    return {
        "padding appended": f"{payload}.{signature}==",
        "padding in the payload": f"{payload}=.{signature}",
        "other unused bits": f"{payload}.{signature[:-1]}{same_bits}",
        "junk inside the payload": f"{payload[:3]}!{payload[3:]}.{signature}",
        "white space": f"{payload} .{signature}",
        "standard alphabet": f"{payload.replace('-', '+').replace('_', '/')}.{signature.replace('-', '+').replace('_', '/')}",
        "second dot": f"{payload}.{signature}.{signature}",
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scope=TOKEN_TEXT.filter(lambda s: s.isprintable()), item=TOKEN_TEXT.filter(lambda s: s.isprintable()),
       address=st.emails())
def test_tokens_round_trip_and_every_other_spelling_is_refused(scope, item, address):
    token = SIGNER.unsubscribe(scope, item, address)
    claims = SIGNER.verify_unsubscribe(token, address)
    assert (claims.scope, claims.item_id) == (scope, item)
    for why, bad in _variants(token).items():
        if bad == token:
            continue
        with pytest.raises(BadToken):
            SIGNER.verify_unsubscribe(bad, address)
            pytest.fail(why)


@settings(max_examples=60, deadline=None)
@given(junk=st.text(max_size=80))
def test_arbitrary_text_is_never_a_token(junk):
    for read in (SIGNER.read_unsubscribe, SIGNER.verify_click):
        with pytest.raises(BadToken):
            read(junk)


def _forged_with_nul() -> str:
    payload = "\x1f".join(["u", "nieuwsbrief", "item\x00; DROP", "key\x00"])
    return f"{_b64(payload.encode())}.{_b64(bytes(16))}"


def _refuse_everything(ledger, token: str) -> None:
    import httpx
    from test_email_web import WebServer

    from dissemination.ledger.deliveries import Deliveries
    from dissemination.web import create_app

    web = WebServer(create_app(ledger, SIGNER))
    try:
        for bad in [_forged_with_nul(), *_variants(token).values()]:
            for method in ("GET", "POST"):
                answer = httpx.request(method, f"http://127.0.0.1:{web.port}/afmelden/{bad}",
                                       content=b"List-Unsubscribe=One-Click")
                assert answer.status_code in (400, 403), (bad, answer.status_code)
            assert httpx.get(f"http://127.0.0.1:{web.port}/klik/{bad}").status_code == 400
        assert Deliveries(ledger).suppression_list() == []
    finally:
        web.stop()


def test_forged_tokens_are_refused_over_a_socket_on_sqlite(tmp_path):
    from dissemination.ledger import Ledger

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    _refuse_everything(ledger, SIGNER.unsubscribe("nieuwsbrief", "item", "lid0@example.org"))


@pytest.mark.skipif(not pg_available(), reason="PostgreSQL at 127.0.0.1:5432 is not running")
def test_forged_tokens_are_refused_over_a_socket_on_postgresql():
    from dissemination.ledger import Ledger

    schema = PgSchema()
    try:
        ledger = Ledger(schema.url)
        try:
            _refuse_everything(ledger, SIGNER.unsubscribe("nieuwsbrief", "item", "lid0@example.org"))
        finally:
            ledger.close()
    finally:
        schema.drop()


# --- 7. errors a communications officer can act on ---------------------------------------------

def _campaign(root: Path, old: str, new: str) -> None:
    campaign = root / "campaigns" / "reeks.md"
    text = campaign.read_text()
    assert old in text
    campaign.write_text(text.replace(old, new, 1))


def test_a_range_error_names_the_value(root):
    _campaign(root, "impact_goals: [1, 2]", "impact_goals: [2, 7]")
    _located(bounded(root, "check"), "campaigns/reeks.md:10:", "7 is not an impact goal")


def test_one_bad_field_does_not_hide_the_cross_references_of_the_file(root):
    _campaign(root, "impact_goals: [1, 2]", "impact_goals: [2, 7]")
    _campaign(root, "audiences: [mkb, beleid]", "audiences: [mkb, beleid, onbekend]\ntimezone: Europe/Amsterdma")
    result = bounded(root, "check")
    _located(result, "campaigns/reeks.md:", "7 is not an impact goal", "not an IANA time zone",
             "unknown audience 'onbekend'")


def test_did_you_mean_for_dutch_keys_and_upper_case_ids(root):
    _campaign(root, "owner: Communicatie", "eigenaar: Communicatie")
    _campaign(root, "audiences: [mkb, beleid]", "audiences: [MKB, beleid]")
    result = bounded(root, "check")
    _located(result, "campaigns/reeks.md:", "unknown key 'eigenaar' (did you mean 'owner'?)",
             "did you mean 'mkb'?")
    assert "missing required key 'owner'" not in result.stdout


def test_unknown_ids_get_did_you_mean_regardless_of_case():
    from dissemination.problems import suggest

    assert suggest("HR", ["hr", "mkb"]) == "hr"
    assert suggest("eigenaar", ["owner", "title"]) == "owner"
    assert suggest("audiense", ["audiences", "channels"]) == "audiences"
    assert suggest("zzz", ["owner"]) is None


def test_an_indentation_mistake_gets_an_indentation_hint(root):
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text().replace("name: Testprogramma\n", "name: Testprogramma\n  lead: Iemand\n"))
    result = bounded(root, "check")
    _located(result, "programme.yaml:2:", "check the indentation")
    assert "must be quoted" not in result.stdout


def test_a_misspelt_key_under_a_post_heading_is_reported_without_a_made_up_missing_slot(root):
    _campaign(root, "slot: 2027-03-01 10:00", "slto: 2027-03-01 10:00")
    result = bounded(root, "check")
    _located(result, "campaigns/reeks.md:", "unknown key 'slto' (did you mean 'slot'?)")
    assert "has no slot" not in result.stdout


def test_template_errors_name_the_valid_fields(root):
    (root / "templates" / "mastodon").mkdir(parents=True)
    (root / "templates" / "mastodon" / "post.j2").write_text("{{ body }} {{ item.samenvatting if item else '' }}\n")
    result = bounded(root, "check")
    _located(result, "templates/mastodon/post.j2:1:", "item has no field 'samenvatting'", "did you mean 'summary'?")
    assert "dissemination.render" not in result.stdout


# --- 4b. addresses and names, generated --------------------------------------------------------

from dissemination.addresses import BadAddress, display_name, mailbox  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(address=st.emails())
def test_every_ordinary_address_is_accepted_as_written(address):
    assert mailbox(address) == address.rpartition("@")[0] + "@" + address.rpartition("@")[2]


_ATOMS = st.one_of(st.text(alphabet="ab1+_'\"é.\x00 \u200b", max_size=70), st.sampled_from(["a" * 64, "b" * 65]))
_LABELS = st.one_of(st.text(alphabet="ab9-é", max_size=70), st.sampled_from(["123", "org", "xn--bcher-kva", "-a", "", "c" * 63, "d" * 64]))
_ADDRESSY = st.builds(lambda atoms, labels, end: ".".join(atoms) + "@" + ".".join(labels) + end,
                      st.lists(_ATOMS, min_size=1, max_size=4), st.lists(_LABELS, min_size=1, max_size=5),
                      st.sampled_from(["", ".", "@x.org"]))


@settings(max_examples=800, deadline=None)
@given(text=st.one_of(_ADDRESSY, st.emails(), st.text(max_size=80)))
@example(text="a@" + ".".join(["c" * 63] * 4))  # 256 octets: every label and the local part fine, the whole too long
def test_the_quick_path_for_plain_addresses_agrees_with_the_full_checks(text):
    """`mailbox` takes the usual ASCII address in one match; whatever it gives must be what the
    checks character by character give (the same address, or both refuse it)."""
    from dissemination.addresses import _checked_mailbox

    def outcome(check):
        try:
            return check(text, True)
        except BadAddress:
            return BadAddress

    assert outcome(mailbox) == outcome(_checked_mailbox)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_whatever_is_accepted_cannot_break_an_smtp_command(text):
    try:
        found = mailbox(text, smtputf8=False)
    except BadAddress:
        return
    command = f"RCPT TO:<{found}>\r\n".encode("ascii")  # ASCII only without SMTPUTF8
    assert command.count(b"\r\n") == 1 and b"\x00" not in command and b">" not in command[:-3].split(b"<", 1)[1]


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=250))
def test_whatever_name_is_accepted_stays_one_header_folded(name):
    from email.header import decode_header, make_header

    from dissemination.publish.mime import recipient_header

    try:
        display_name(name)
    except BadAddress:
        assert any(not c.isprintable() and c not in " " for c in name) or len(name) > 200
        return
    value = recipient_header(name, "lid@example.org")
    lines = (b"To: " + value).split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)  # RFC 5322 §2.1.1
    assert all(line[:1] in (b" ", b"\t") for line in lines[1:])  # continuation lines only: no new header
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    shown = str(make_header(decode_header(value.decode("ascii"))))
    assert shown.endswith("<lid@example.org>" if name else "lid@example.org")


def test_a_read_only_content_root_is_one_plain_sentence():
    """As root (CI) a folder cannot be made read-only for this process, so the sentence is checked
    for the error a read-only root raises; the full-disk test above drives the same path end to end."""
    from sqlalchemy.exc import OperationalError

    from dissemination.cli import environment_fault

    said = environment_fault(PermissionError(13, "Permission denied", "/srv/content/campaigns/.x"))
    assert said == ("/srv/content/campaigns/.x: Permission denied (check the free disk space and the permissions; "
                    "nothing was half-written)")
    ledger = environment_fault(OperationalError("SELECT 1", {}, Exception("attempt to write a readonly database")))
    assert ledger is not None and "attempt to write a readonly database" in ledger
    assert environment_fault(ValueError("a bug")) is None


def test_internationalised_domains_go_out_in_their_ascii_form():
    assert mailbox("lid@bücher.example") == "lid@xn--bcher-kva.example"
    assert mailbox("jöhn@example.org") == "jöhn@example.org"
    with pytest.raises(BadAddress, match="SMTPUTF8"):
        mailbox("jöhn@example.org", smtputf8=False)
    with pytest.raises(BadAddress, match="control character"):
        mailbox("rt\x00c@example.org")
