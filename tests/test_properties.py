"""Property: no input text makes a loader raise; every failure is a located content problem."""

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import VALID
from dissemination.check import run_check
from dissemination.load import models as m
from dissemination.publish.channels.mastodon import MastodonSettings
from dissemination.load.markdown import normalise
from dissemination.load.readers import READERS

MARKDOWN_READERS = {"knowledge", "campaign"}
FIELD_NAMES = sorted(
    set(m.KnowledgeMeta.model_fields) | set(m.CampaignMeta.model_fields) | set(m.Stakeholder.model_fields)
    | set(m.Audience.model_fields) | set(MastodonSettings.model_fields) | set(m.Cadence.model_fields)
    | set(m.StakeholderMapShell.model_fields) | set(m.Programme.model_fields) | {"mastodon", "linkedin"}
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["mkb", "approved", "Europe/Amsterdam", "09:30", "tue", "email",
                                           "2027-03-01 10:00", "https://example.org", "@a@b.nl", "PL3-2"]),
    st.dates(min_value=dt.date(1, 1, 1)), st.datetimes(),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=12)


def _assert_reported(path, text, parsed, problems):
    if parsed is None:
        assert problems, f"{path} failed without a problem"
    line_count = normalise(text).count("\n") + 2  # a lone \r is a line break, as in editors
    for problem in problems:
        assert problem.path == path
        assert 1 <= problem.line <= line_count, (problem, text)
        assert problem.message


@settings(max_examples=150, deadline=None)
@given(text=st.text())
def test_arbitrary_text_never_raises(text):
    for kind, reader in READERS.items():
        for candidate in (text, f"---\n{text}\n---\n{text}"):
            parsed, problems = reader(f"{kind}.x", candidate)
            _assert_reported(f"{kind}.x", candidate, parsed, problems)


@settings(max_examples=300, deadline=None)
@given(doc=documents)
def test_arbitrary_yaml_never_raises(doc):
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    for kind, reader in READERS.items():
        candidate = f"---\n{text}---\nTekst.\n\n## Post\nslot: 2027-03-01 10:00\n\nTekst.\n" \
            if kind in MARKDOWN_READERS else text
        parsed, problems = reader(f"{kind}.x", candidate)
        _assert_reported(f"{kind}.x", candidate, parsed, problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents, knowledge=documents)
def test_arbitrary_content_in_a_project_never_raises(doc, knowledge):
    """Through the whole check: references, schedules and budgets on whatever loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "content"
        shutil.copytree(VALID, root)
        reeks = (root / "campaigns" / "reeks.md").read_text().split("---\n", 2)
        front = yaml.safe_load(reeks[1]) | doc
        (root / "campaigns" / "reeks.md").write_text(
            "---\n" + yaml.safe_dump(front, allow_unicode=True) + "---\n" + reeks[2])
        item = (root / "knowledge" / "sharehouse.md").read_text().split("---\n", 2)
        front = yaml.safe_load(item[1]) | knowledge
        (root / "knowledge" / "sharehouse.md").write_text(
            "---\n" + yaml.safe_dump(front, allow_unicode=True) + "---\n" + item[2])
        result = run_check(root)
        for problem in result.problems.items:
            assert problem.line >= 1 and problem.path
