"""The preview and a newsletter in headless Chromium at 600 and 375 px: no console errors, the
expected texts in the DOM, nothing wider than the screen, screenshots under test-artifacts/."""

import pytest

from browser import assert_clean, open_page
from publishing import tiny_png

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The valid mini project with a newsletter channel, an image and a hostile title, previewed."""
    import json
    import shutil

    from typer.testing import CliRunner

    from conftest import VALID
    from dissemination.cli import app

    root = tmp_path_factory.mktemp("preview") / "content"
    shutil.copytree(VALID, root)
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text()
                        .replace("channels: [mastodon, linkedin]", "channels: [mastodon, linkedin, nieuwsbrief]")
                        .replace("Praktijkvoorbeeld van de week.", "Praktijkvoorbeeld van de week: {{ item.title }}."))
    item = root / "knowledge" / "den-hartogh.md"
    item.write_text(item.read_text()
                    .replace("title: Den Hartogh – vier dagen rijden", f'title: "{EVIL}"')
                    .replace("source:", "image: knowledge/img/chauffeur.png\nimage_alt: Een chauffeur bij zijn truck\nsource:"))
    tiny_png(root / "knowledge" / "img" / "chauffeur.png")
    out = root.parent / "site"
    result = CliRunner().invoke(app, ["--root", str(root), "preview", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # exactly what the planner makes of the same content: on LinkedIn mkb and beleid share one
    # post, so 13 (not one per audience: 15)
    assert "wrote 13 planned posts (5 newsletters)" in result.output
    planned = CliRunner().invoke(app, ["--root", str(root), "plan", "--json", "--now", "2027-01-01T00:00Z"])
    assert len(json.loads(planned.output)) == 13
    return out


@pytest.mark.parametrize("width", [600, 375])
def test_preview_index_in_chromium(site, width):
    page = open_page((site / "index.html").as_uri(), width, "preview-index")
    assert_clean(page)
    for expected in ["Voorvertoning: Testprogramma", "maandag 1 maart 2027", "dinsdag 2 maart 2027", "09:30",
                     "Europe/Amsterdam", "Vandaag start de reeks.", "#socialeinnovatie #logistiek",
                     "Nieuwsbrief bekijken (HTML)", "Beleidsmakers", "Mkb-ondernemers",
                     "Mkb-ondernemers, Beleidsmakers"]:  # the post they share on LinkedIn
        assert expected in page.text, expected
    assert f"Praktijkvoorbeeld van de week: {EVIL}." in page.text  # shown as text ...
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.html  # ... because it is escaped
    assert "<script>" not in page.html
    # the featured item's image goes out with the social posts: shown inline with its alt text
    assert 'alt="Een chauffeur bij zijn truck"' in page.html and 'src="data:image/png;base64,' in page.html
    assert "Alt-tekst: Een chauffeur bij zijn truck" in page.text
    assert page.scroll_width <= width
    assert page.screenshot is not None and page.screenshot.stat().st_size > 0


@pytest.mark.parametrize("width", [600, 375])
def test_newsletter_in_chromium(site, width):
    newsletter = site / "newsletters" / "reeks" / "uitgelicht-20270302-0930-nieuwsbrief-mkb.html"
    page = open_page(newsletter.as_uri(), width, "newsletter")
    assert_clean(page)
    for expected in ["Uitgelicht", "Kennisreeks · dinsdag 2 maart 2027", "Lees meer", "Afmelden",
                     "Chauffeurs van vijf naar vier dagen", EVIL]:
        assert expected in page.text, expected
    assert "<script>" not in page.html
    assert 'alt="Een chauffeur bij zijn truck"' in page.html
    assert page.scroll_width <= width


def test_the_browser_helper_catches_console_errors(tmp_path):
    """Proof that `assert_clean` would fail on a broken page: console.error, an uncaught
    exception and a missing image are each reported."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>kapot</p><img src='missing.png' alt='x'>"
                   "<script>console.error('deliberate failure'); null.boom();</script></body></html>")
    page = open_page(bad.as_uri(), 375, "deliberately-broken")
    joined = "\n".join(page.console_errors)
    assert "deliberate failure" in joined
    assert "uncaught" in joined
    assert "missing.png" in joined
    with pytest.raises(AssertionError):
        assert_clean(page)
    assert "kapot" in page.text


def test_preview_refuses_to_write_when_check_has_errors(content_root, cli, tmp_path):
    out = tmp_path / "site"
    result = cli("--root", str(content_root("over_limit")), "preview", "--out", str(out))
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith("campaigns/reeks.md:30: mastodon post for mkb is 614 characters")
    assert "nothing was written" in result.output
    assert not out.exists()
