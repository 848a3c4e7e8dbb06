"""The channel contract: a kind of channel is one module, found by its name, and adding one needs
nothing else (docs/channels.md, "Adding a channel")."""

from __future__ import annotations

import datetime as dt
import json
import sys
import typing
from pathlib import Path

import pytest

from dissemination.load.readers import read_channels
from dissemination.publish.channels import base, channel_class, kinds, open_channel
from dissemination.records import Claim
from dissemination.report.figures import metrics_by_role

from test_render import render_all

PACKAGE = "dissemination.publish.channels"

# A kind the code has never heard of: its settings, limits, text rule, request and adapter.
PIGEON = '''
from typing import Any, Literal

from dissemination.load import models as m
from dissemination.publish.channels.base import Capabilities, Channel, Health, Metric
from dissemination.records import Receipt


class PigeonSettings(m.ChannelSettings):
    kind: Literal["pigeon"]
    loft: str
    key_env: m.EnvName

    def secret_envs(self) -> list[str]:
        return [self.key_env]


class PigeonChannel(Channel):
    kind = "pigeon"
    settings = PigeonSettings
    metrics = (Metric("coos", "reactions"),)
    sent: list[str] = []

    @classmethod
    def capabilities_of(cls, config: m.ChannelSettings) -> Capabilities:
        return Capabilities("pigeon", "Duiven", max_length=40, unit="words", max_images=1, image_bytes=1_000_000,
                            image_types=("image/jpeg", "image/png"), alt_length=12)

    @classmethod
    def text(cls, plain: str, capabilities: Capabilities) -> tuple[str, int]:
        return plain.upper(), len(plain.split())

    @classmethod
    def outbox_request(cls, claim: Any, config: m.ChannelSettings) -> dict[str, Any]:
        assert isinstance(config, PigeonSettings)
        return {"loft": config.loft, "message": claim.payload["text"]}

    def preflight(self) -> Health:
        return Health(True, "the loft is open")

    def publish(self, claim: Any) -> Receipt:
        self.sent.append(claim.payload["text"])
        return Receipt(remote_id=str(len(self.sent)), url=None)
'''


@pytest.fixture
def pigeon(tmp_path):
    """`pigeon.py` dropped into the channels package (through a second folder of the package)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "pigeon.py").write_text(PIGEON)
    package = sys.modules[PACKAGE]
    package.__path__.append(str(folder))
    base.kinds.cache_clear()
    metrics_by_role.cache_clear()
    yield
    package.__path__.remove(str(folder))
    base.kinds.cache_clear()
    metrics_by_role.cache_clear()
    base._REGISTRY.pop("pigeon", None)
    sys.modules.pop(f"{PACKAGE}.pigeon", None)


def test_every_kind_is_the_module_of_its_name():
    # the shipped kinds among them (a kind added later is one more module, listed here too)
    assert {"email", "linkedin", "mastodon", "outbox"} <= set(kinds()) and list(kinds()) == sorted(kinds())
    for kind in kinds():
        channel = channel_class(kind)
        assert channel is not None and channel.kind == kind
        assert channel.__module__ == f"{PACKAGE}.{kind}"
        assert typing.get_args(channel.settings.model_fields["kind"].annotation) == (kind,)
    assert channel_class("base") is None and channel_class("text") is None and channel_class("nope") is None


def test_a_new_kind_is_one_module(pigeon, content_root, cli, monkeypatch):
    root = content_root()
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text() + "duif:\n  kind: pigeon\n  loft: dak\n  key_env: PIGEON_KEY\n")
    for path in [root / "campaigns" / "reeks.md", *(root / "stakeholder_maps").glob("*.yaml")]:
        path.write_text(path.read_text().replace("channels: [mastodon, linkedin]", "channels: [mastodon, linkedin, duif]")
                        .replace("channels: [linkedin, mastodon, nieuwsbrief]",
                                 "channels: [linkedin, mastodon, nieuwsbrief, duif]"))
    (root / "templates" / "pigeon").mkdir(parents=True)
    (root / "templates" / "pigeon" / "post.j2").write_text("{{ body }} {{ link }}")

    result = cli("--root", str(root), "check")
    assert result.exit_code == 0, result.output
    _, out = render_all(root)
    rendered, problems = out[("uitgelicht", "duif", "mkb", "den-hartogh")]
    assert problems == []
    assert rendered.kind == "pigeon" and rendered.unit == "words" and rendered.limit == 40
    assert rendered.text == rendered.plain.upper() and rendered.length == len(rendered.plain.split())
    assert "templates/pigeon/post.j2" in rendered.sources  # its own template, chosen by kind

    # Without its secret it falls back to the outbox, which writes the kind's own request.
    config = read_channels("channels.yaml", channels.read_text())[0].channels["duif"]
    monkeypatch.delenv("PIGEON_KEY", raising=False)
    opened = open_channel("duif", config, root)
    assert opened.channel.kind == "outbox"
    assert opened.note == "duif: PIGEON_KEY not set, so nothing is published to pigeon; writing what would be " \
                          "sent to outbox/duif/"
    claim = Claim("i1", "key1", "reeks", "uitgelicht", "mkb", "duif", dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc),
                  {"text": "ROEKOE"}, 1, 1, "w")
    receipt = opened.channel.publish(claim)
    written = json.loads(Path(receipt.url.removeprefix("file://")).read_text())
    assert written["request"] == {"loft": "dak", "message": "ROEKOE"}

    monkeypatch.setenv("PIGEON_KEY", "geheim")
    opened = open_channel("duif", config, root)
    assert opened.note is None and type(opened.channel).__name__ == "PigeonChannel"
    assert opened.channel.publish(claim).remote_id == "1"
    assert "coos" in metrics_by_role()["reactions"]


def test_an_unknown_kind_names_the_modules(pigeon):
    _, problems = read_channels("channels.yaml", "duif:\n  kind: pigeonn\n  loft: dak\n  key_env: K\n")
    assert [str(p) for p in problems] == [
        "channels.yaml:2: channel 'duif' has unknown kind 'pigeonn' (did you mean 'pigeon'? kind is one of: "
        f"{', '.join(kinds())})"]
    assert "pigeon" in kinds()
    _, problems = read_channels("channels.yaml", "duif:\n  kind: pigeon\n  loft: dak\n  key_env: K\n  hok: 3\n")
    assert len(problems) == 1 and str(problems[0]).startswith("channels.yaml:5:")


def test_a_new_kind_sets_the_image_limits_check_applies(pigeon, content_root, cli):
    root = content_root()
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text() + "duif:\n  kind: pigeon\n  loft: dak\n  key_env: PIGEON_KEY\n")
    (root / "beeld").mkdir()
    (root / "beeld" / "groot.png").write_bytes(b"\x89PNG" + b"0" * 1_000_001)
    (root / "beeld" / "klein.webp").write_bytes(b"RIFF0000WEBP")
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text() + "\n".join([
        "", "## Groot", "slot: 2027-03-02 10:00", "image: beeld/groot.png", "image_alt: twaalf tekens", "", "Tekst.",
        "", "## Webp", "slot: 2027-03-03 10:00", "image: beeld/klein.webp", "image_alt: x", "", "Tekst.", ""]))
    result = cli("--root", str(root), "check")
    lines = campaign.read_text().splitlines()
    out = result.output
    assert result.exit_code == 1, out
    assert f"campaigns/reeks.md:{lines.index('image: beeld/groot.png') + 1}: image 'beeld/groot.png' is 1.0 MB, " \
           "over the 1 MB Duiven accepts" in out
    assert f"campaigns/reeks.md:{lines.index('image_alt: twaalf tekens') + 1}: image_alt is 13 characters, over " \
           "the 12 channel 'duif' accepts" in out
    assert f"campaigns/reeks.md:{lines.index('image: beeld/klein.webp') + 1}: image 'beeld/klein.webp' is a " \
           "image/webp file, which Duiven does not take" in out
