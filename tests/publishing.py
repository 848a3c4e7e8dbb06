"""Helpers for ledger and publishing tests: an approved project with many due items, a
PostgreSQL schema of its own per test, and a look at what the outbox holds."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import struct
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

from conftest import VALID
from typer.testing import CliRunner

from dissemination.cli import app

BASE_NOW = "2027-03-01T09:00:00+00:00"  # 10:00 in Amsterdam: the first daily slot is due
PG_URL = os.environ.get("DISSEMINATION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

DAILY = """---
id: dagelijks
title: Dagelijkse reeks
status: draft
owner: Test
goal: Veel items tegelijk.
audiences: [mkb, beleid]
channels: [mastodon, linkedin]
start: 2027-01-01
end: 2027-02-28
over_budget: test van gelijktijdige publicatie
cadence:
  post: dag
  days: [mon, tue, wed, thu, fri, sat, sun]
  time: "08:00"
---
## Dag
id: dag

Bericht van de dag.
"""


def cli(root: Path, *args: str, env: dict | None = None):
    result = CliRunner().invoke(app, ["--root", str(root), *args], env=env, catch_exceptions=False)
    return result


def make_project(tmp: Path, daily: bool = False, tolerance: str = "2h") -> Path:
    root = tmp / "content"
    shutil.copytree(VALID, root)
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("kind: mastodon", f"kind: mastodon\n  late_tolerance: {tolerance}")
                        .replace("kind: linkedin", f"kind: linkedin\n  late_tolerance: {tolerance}"))
    if daily:
        (root / "campaigns" / "dagelijks.md").write_text(DAILY)
        assert cli(root, "approve", "campaigns/dagelijks.md", "--by", "Test").exit_code == 0
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    return root


def due_now(root: Path, minutes_ago: int = 1) -> None:
    """Move the sample campaign's first slot just behind the real clock and approve it again, so
    a flow or a scheduled run (which use the real time) finds it due."""
    from zoneinfo import ZoneInfo

    reeks = root / "campaigns" / "reeks.md"
    soon = dt.datetime.now(ZoneInfo("Europe/Amsterdam")) - dt.timedelta(minutes=minutes_ago)
    text = reeks.read_text().replace("slot: 2027-03-01 10:00", f"slot: {soon:%Y-%m-%d %H:%M}")
    text = text.replace("start: 2027-03-01", f"start: {soon:%Y-%m-%d}")
    reeks.write_text(text)
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0


def subprocess_cli(root: Path, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dissemination", "--root", str(root), *args],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def tiny_png(path: Path) -> None:
    """A 2x2 PNG, written by hand so the fixture needs no image library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x00\x57\x7a" * 2 for _ in range(2))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


IMAGE_ALT = "Een chauffeur en een planner bekijken samen het rooster"


def mastodon_only(root: Path) -> None:
    """Make the sample campaign post to Mastodon only (without its LinkedIn variant); approve it
    again afterwards."""
    campaign = root / "campaigns" / "reeks.md"
    text = campaign.read_text().replace("channels: [mastodon, linkedin]", "channels: [mastodon]")
    campaign.write_text(text.split("### variant: linkedin")[0])


def add_image(root: Path, image: str = "beeld/aftrap.png", alt: str | None = IMAGE_ALT) -> Path:
    """Give the sample campaign's kick-off post an image (a real PNG under the content root)."""
    tiny_png(root / image)
    campaign = root / "campaigns" / "reeks.md"
    meta = f"image: {image}\n" + (f"image_alt: {alt}\n" if alt else "")
    campaign.write_text(campaign.read_text().replace("audiences: [mkb]\n", f"audiences: [mkb]\n{meta}", 1))
    return root / image


def outbox_keys(root: Path) -> list[str]:
    keys = []
    for path in (root / "outbox").rglob("*"):
        if path.is_file():
            assert not path.name.startswith(".tmp-"), f"temporary file left behind: {path}"
            if path.suffix == ".json":
                assert json.loads(path.read_text())["idempotency_key"] == path.stem
            keys.append(path.stem)
    return keys


def due_rows(root: Path, channel: str, due: str, state: str | None = None) -> list[dict]:
    """The ledger rows of `channel` whose slot is at or before `due` (later ones stay planned)."""
    from dissemination.ledger import Ledger

    limit = dt.datetime.fromisoformat(due).replace(tzinfo=None)
    return [r for r in Ledger.for_root(root).items([state] if state else None)
            if r["channel"] == channel and r["slot_utc"] <= limit]


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=2):
            return True
    except Exception:
        return False


class PgSchema:
    """A schema of its own in the `test` database, so tests never see each other's rows."""

    def __init__(self) -> None:
        import psycopg

        self.name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        self.url = f"{PG_URL}?options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.name} CASCADE")
