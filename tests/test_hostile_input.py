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
from publishing import PG_URL, PgSchema, cli, make_project, mastodon_only, pg_available

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
