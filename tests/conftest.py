import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dissemination.cli import app

TESTS = Path(__file__).parent
REPO = TESTS.parent
VALID = TESTS / "fixtures" / "valid"
BROKEN = TESTS / "fixtures" / "broken"


@pytest.fixture
def content_root(tmp_path):
    """A copy of the valid mini project, optionally overlaid with a broken fixture."""

    def make(overlay: str | None = None) -> Path:
        root = tmp_path / "content"
        shutil.copytree(VALID, root)
        if overlay:
            shutil.copytree(BROKEN / overlay, root, dirs_exist_ok=True)
        return root

    return make


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture(autouse=True)
def credentials_file(tmp_path_factory, monkeypatch):
    """Every test gets its own credentials file outside any content root, so no test reads or
    writes the credentials of the person running the tests (subprocesses inherit it too)."""
    path = tmp_path_factory.mktemp("config") / "dissemination" / "credentials.json"
    monkeypatch.setenv("DISSEMINATION_CREDENTIALS", str(path))
    return path


@pytest.fixture(autouse=True)
def no_report_pdf(monkeypatch):
    """Reports are written without their PDF (a Chromium start each); tests/test_report_content.py
    prints one and reads it back."""
    monkeypatch.setenv("DISSEMINATION_REPORT_PDF", "0")


@pytest.fixture
def fake_mastodon():
    """A Mastodon server on loopback (tests/fakes/mastodon.py)."""
    from fakes.mastodon import FakeMastodon

    server = FakeMastodon().start()
    yield server
    server.stop()


@pytest.fixture
def fake_linkedin():
    """LinkedIn's REST and OAuth endpoints on loopback (tests/fakes/linkedin.py)."""
    from fakes.linkedin import FakeLinkedIn

    server = FakeLinkedIn().start()
    yield server
    server.stop()
