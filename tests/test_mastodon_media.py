"""Images on Mastodon through the real CLI, Mastodon.py and a socket: uploaded with their alt text
to /api/v2/media, waited for while the server processes them (202, then 206 until done), then
posted with the status under the item's idempotency key (tests/fakes/mastodon.py)."""

import pytest
from publishing import IMAGE_ALT as ALT
from publishing import add_image, cli, due_rows, make_project, mastodon_only

PLAN_AT = "2026-12-01T00:00Z"
DUE = "2027-03-01T09:00:00+00:00"


@pytest.fixture
def fake(fake_mastodon):
    return fake_mastodon


@pytest.fixture
def project(tmp_path, fake):
    root = make_project(tmp_path, tolerance="90d")
    mastodon_only(root)
    add_image(root)
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        "base_url: https://mastodon.example", f"base_url: {fake.url}\n  media_wait: 10s"))
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root


def _env(fake):
    return {"TEST_MASTODON_TOKEN": fake.token}


def _published(root):
    return due_rows(root, "mastodon", DUE, "published")


def test_the_image_is_uploaded_with_its_alt_text_awaited_and_posted_with_the_status(project, fake):
    fake.processing_polls = 2  # 202, then 206, 206, 200
    result = cli(project, "publish", "--now", DUE, env=_env(fake))
    assert result.exit_code == 0, result.output
    (row,) = _published(project)
    status = fake.statuses[row["remote_id"]]
    (attachment,) = status["media_attachments"]
    assert attachment["description"] == ALT and attachment["url"]
    media = fake.media[attachment["id"]]
    assert media["_data"] == (project / "beeld" / "aftrap.png").read_bytes() and media["_mime"] == "image/png"
    calls = [c for c in fake.requests if "media" in c[1] or c == ("POST", "/api/v1/statuses")]
    mid = attachment["id"]
    assert calls == [("POST", "/api/v2/media")] + [("GET", f"/api/v1/media/{mid}")] * 3 + [("POST", "/api/v1/statuses")]
    # the version trap (§2.3): nothing went to the deprecated endpoints
    assert ("POST", "/api/v1/media") not in fake.requests and ("GET", "/api/v1/instance") not in fake.requests


def test_an_image_processed_at_once_is_posted_without_polling(project, fake):
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    (row,) = _published(project)
    assert len(fake.statuses[row["remote_id"]]["media_attachments"]) == 1
    assert not [c for c in fake.requests if c[1].startswith("/api/v1/media/")]


def test_stored_then_500_with_an_image_is_posted_once(project, fake):
    fake.fail_after_store = 1
    fake.processing_polls = 1
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    assert not _published(project) and len(fake.statuses) == 1
    assert cli(project, "publish", "--now", "2027-03-01T10:00:00+00:00", env=_env(fake)).exit_code == 0
    (row,) = _published(project)
    assert list(fake.statuses) == [row["remote_id"]]  # the retry's key returned the original status
    assert fake.idempotency == {row["idempotency_key"]: row["remote_id"]}
    # the retry's upload is never attached (Mastodon deletes unattached media after a day)
    assert len(fake.media) == 2


def test_processing_that_takes_too_long_leaves_the_item_for_a_later_run(project, fake):
    channels = project / "channels.yaml"
    channels.write_text(channels.read_text().replace("media_wait: 10s", "media_wait: 1s"))
    fake.processing_polls = 1000
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    rows = due_rows(project, "mastodon", DUE)
    assert rows and not fake.statuses and {r["state"] for r in rows} == {"planned"}
    assert "still processing the image" in rows[0]["reason"]
    fake.processing_polls = 0
    for media in fake.media.values():
        media["_polls_left"] = 0
    assert cli(project, "publish", "--now", "2027-03-01T10:00:00+00:00", env=_env(fake)).exit_code == 0
    assert len(_published(project)) == 1 and len(fake.statuses) == 1


def test_an_image_over_the_instances_limit_fails_naming_the_limit_without_uploading(project, fake):
    fake.image_size_limit = 10
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    (row,) = due_rows(project, "mastodon", DUE, "failed")
    assert "over the 10 bytes" in row["reason"] and fake.url in row["reason"]
    assert ("POST", "/api/v2/media") not in fake.requests and not fake.statuses


def test_the_outbox_shows_the_image_it_would_upload(project):
    assert cli(project, "publish", "--now", DUE).exit_code == 0
    import json

    (document,) = [json.loads(p.read_text()) for p in (project / "outbox" / "mastodon").glob("*.json")]
    assert document["request"]["json"]["media"] == [{"file": "beeld/aftrap.png", "description": ALT}]


def test_check_reports_every_image_problem_with_file_and_line(tmp_path):
    root = make_project(tmp_path)
    (root / "beeld").mkdir()
    (root / "beeld" / "groot.png").write_bytes(b"\x89PNG" + b"0" * (16 * 1024 * 1024 + 1))
    (root / "beeld" / "tekening.svg").write_text("<svg/>")
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text() + "\n".join([
        "", "## Zonder alt", "slot: 2027-03-02 10:00", "image: beeld/groot.png", "", "Tekst.", "",
        "## Buiten", "slot: 2027-03-03 10:00", "image: ../geheim.png", "image_alt: x", "", "Tekst.", "",
        "## Ontbreekt", "slot: 2027-03-04 10:00", "image: beeld/weg.png", "image_alt: x", "", "Tekst.", "",
        "## Verkeerd", "slot: 2027-03-05 10:00", "image: beeld/tekening.svg", "image_alt: x", "", "Tekst.", "",
        "## Te groot", "slot: 2027-03-06 10:00", "image: beeld/groot.png", "image_alt: x", "", "Tekst.", ""]))
    result = cli(root, "check")
    assert result.exit_code == 1
    lines = campaign.read_text().splitlines()

    def line(text):
        return lines.index(text) + 1

    out = result.output
    assert f"campaigns/reeks.md:{line('image: beeld/groot.png')}: image without image_alt" in out
    assert f"campaigns/reeks.md:{line('image: ../geheim.png')}: image '../geheim.png' is outside the content root" in out
    assert f"campaigns/reeks.md:{line('image: beeld/weg.png')}: image file 'beeld/weg.png' not found" in out
    assert f"campaigns/reeks.md:{line('image: beeld/tekening.svg')}: image 'beeld/tekening.svg' is not a JPEG" in out
    assert "image 'beeld/groot.png' is 16.0 MB, over the 16 MB Mastodon accepts" in out


def test_a_refused_upload_fails_the_item_naming_the_upload_not_the_status(project, fake):
    fake.refuse_media = "Validation failed: File could not be processed"
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    (row,) = due_rows(project, "mastodon", DUE, "failed")
    assert "refused the upload of image 'beeld/aftrap.png'" in row["reason"]
    assert fake.refuse_media in row["reason"] and "refused the status" not in row["reason"]
    assert not fake.statuses
