"""The stuurgroep report in headless Chromium at desktop and phone width: no console errors, the
headline figures and an n.b. with its reason in the DOM, screenshots under test-artifacts/."""

import re

import pytest
from reporting import AS_OF, SCOPE_NL, seed_ledger, with_targets

from browser import assert_clean, open_page
from dissemination.ledger import Ledger


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    import shutil

    from typer.testing import CliRunner

    from conftest import VALID
    from dissemination.cli import app

    root = tmp_path_factory.mktemp("report") / "content"
    shutil.copytree(VALID, root)
    with_targets(root)
    seed_ledger(Ledger.for_root(root))
    out = root / "reports" / "2027-Q1.html"
    result = CliRunner().invoke(app, ["--root", str(root), "report", "--period", "2027-Q1", "--now",
                                      AS_OF.isoformat()], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("width", [1280, 375])
def test_report_in_chromium(report_file, width):
    page = open_page(report_file.as_uri(), width, "report-2027-Q1")
    assert_clean(page)
    text = page.text
    assert "Verspreidingsrapport 1e kwartaal 2027" in text
    assert "Kerncijfers" in text
    # the headline figures (publications 4, reach ≥ 420 with 2 unknown, interactions ≥ 20, clicks ≥ 7)
    assert re.search(r"PUBLICATIES\s+4\b", text)
    for expected in ["≥ 420", "2 van 4 n.b.", "≥ 20", "≥ 7", "50%"]:
        assert expected in text, expected
    assert "n.b." in text and SCOPE_NL in text
    assert "Ministerie van Infrastructuur en Waterstaat" in text  # not reached
    assert 'role="img"' in page.html and "<title" in page.html  # charts described for screen readers
    assert page.scroll_width <= width  # the page does not scroll sideways ...
    assert page.sideways == []  # ... and neither does any table inside it (on a phone: one card per row)
    assert page.smallest_chart_text is not None and page.smallest_chart_text >= 10  # chart labels legible
    assert page.screenshot is not None and page.screenshot.stat().st_size > 0
