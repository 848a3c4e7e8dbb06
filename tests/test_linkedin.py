"""The LinkedIn adapter through the real CLI and pipeline, httpx and a socket, against a server on
loopback that behaves as LinkedIn's REST API does (tests/fakes/linkedin.py)."""

import logging
from urllib.parse import quote

import pytest
from publishing import IMAGE_ALT, add_image, cli, due_rows, make_project

PLAN_AT = "2026-12-01T00:00Z"
DUE = "2027-03-01T09:00:00+00:00"


@pytest.fixture
def fake(fake_linkedin):
    return fake_linkedin


def _project(tmp_path, fake, version="202510"):
    root = make_project(tmp_path, tolerance="90d")
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        'api_version: "202510"', f'api_version: "{version}"\n  api_base: {fake.url}\n  request_timeout: 1s'))
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root


@pytest.fixture
def project(tmp_path, fake):
    return _project(tmp_path, fake)


def _env(fake):
    return {"TEST_LINKEDIN_TOKEN": fake.token}


def _rows(root, state=None):
    return due_rows(root, "linkedin", DUE, state)


def _assert_exactly_once(root, fake):
    published = _rows(root, "published")
    assert published and len(published) == len(_rows(root))
    assert sorted(r["remote_id"] for r in published) == sorted(fake.posts)  # one post, one receipt each
    for row in published:
        assert row["url"] == f"https://www.linkedin.com/feed/update/{row['remote_id']}/"


def test_publishes_each_due_item_once_with_the_versioned_headers(project, fake):
    result = cli(project, "publish", "--now", DUE, env=_env(fake))
    assert result.exit_code == 0, result.output
    _assert_exactly_once(project, fake)
    assert all(post["author"] == "urn:li:organization:42" and post["lifecycleState"] == "PUBLISHED"
               for post in fake.posts.values())
    assert not list((project / "outbox").glob("linkedin/*"))


def test_a_timed_out_post_is_retried_and_recognised_as_the_duplicate(project, fake):
    fake.hang_after_store = 1
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    fake.release.set()
    unknown = _rows(project, "unknown")
    assert len(unknown) == 1 and "did not answer in time" in unknown[0]["reason"]
    # within the hour LinkedIn is assumed to detect the duplicate (later, the item is read back
    # first: tests/test_platform_reality.py)
    assert cli(project, "publish", "--now", "2027-03-01T09:30:00+00:00", env=_env(fake)).exit_code == 0
    assert [code for method, path, code in fake.requests if method == "POST"].count(422) == 1
    _assert_exactly_once(project, fake)


def test_an_inactive_version_is_a_configuration_error_naming_the_setting(tmp_path, fake):
    root = _project(tmp_path, fake, version="202401")
    assert cli(root, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    rows = _rows(root)
    assert rows and not fake.posts and "failed" not in {r["state"] for r in rows}
    assert any("api_version" in (r["reason"] or "") and "channels.yaml" in r["reason"] for r in rows)
    assert len([r for r in fake.requests if r[2] == 426]) == 1  # not repeated for every item


def test_rate_limited_items_wait_for_a_later_run(project, fake):
    fake.rate_limited = True
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    rows = _rows(project)
    assert rows and {r["state"] for r in rows} <= {"planned"} and not fake.posts
    assert any("rate limited" in (r["reason"] or "") for r in rows)
    # LinkedIn's limits are daily and reset at midnight UTC: nothing is tried before then
    assert {r["lease_expires"].isoformat() for r in rows} == {"2027-03-02T00:00:00"}
    fake.rate_limited = False
    assert cli(project, "publish", "--now", "2027-03-01T09:20:00+00:00", env=_env(fake)).exit_code == 0
    assert not fake.posts
    assert cli(project, "publish", "--now", "2027-03-02T00:00:00+00:00", env=_env(fake)).exit_code == 0
    _assert_exactly_once(project, fake)


def test_a_refused_token_stops_the_run_without_leaking_it(project, fake, caplog):
    caplog.set_level(logging.DEBUG)
    bad = "AQX-revoked-token-0000"
    result = cli(project, "publish", "--now", DUE, env={"TEST_LINKEDIN_TOKEN": bad, "DISSEMINATION_LOG": "DEBUG"})
    rows = _rows(project)
    assert rows and not fake.posts and {r["state"] for r in rows} == {"planned"}
    # the preflight (GET /v2/userinfo) finds out before any post is tried
    assert "linkedin: not publishing: the token in TEST_LINKEDIN_TOKEN was refused" in result.output
    assert [r for r in fake.requests if r[2] == 401] == [("GET", "/v2/userinfo", 401)]
    written = [p.read_text() for p in project.rglob("*") if p.is_file() and "outbox" in p.parts]
    for text in [caplog.text, result.output, *written, *(r["reason"] or "" for r in rows)]:
        assert bad not in text and fake.token not in text


def test_a_rejected_post_fails_permanently_with_the_servers_message(project, fake):
    fake.reject_with = "ERROR :: /commentary :: field is required but not found and has no default value"
    assert cli(project, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    failed = _rows(project, "failed")
    assert failed and len(failed) == len(_rows(project)) and not fake.posts
    assert all(fake.reject_with in r["reason"] and "422" in r["reason"] for r in failed)


def test_a_duplicate_on_a_first_attempt_is_not_taken_for_our_own_post(project, fake):
    """Another post with the same text exists: recording its URN would claim a post never made."""
    first = cli(project, "publish", "--now", DUE, env=_env(fake))
    assert first.exit_code == 0
    before = dict(fake.posts)
    reeks = project / "campaigns" / "reeks.md"
    # a new post whose LinkedIn text equals the kick-off's
    text = reeks.read_text()
    kickoff = text[text.index("### variant: linkedin\n") + len("### variant: linkedin\n"):].strip()
    reeks.write_text(text + f"\n## Herhaling\nslot: 2027-03-03 10:00\naudiences: [mkb]\nchannels: [linkedin]\n\n{kickoff}\n")
    assert cli(project, "approve", "campaigns/reeks.md", "--by", "Test").exit_code == 0
    assert cli(project, "plan", "--now", "2027-03-02T00:00Z").exit_code == 0
    assert cli(project, "publish", "--now", "2027-03-03T09:01Z", env=_env(fake)).exit_code == 0
    failed = [r for r in due_rows(project, "linkedin", "2027-03-03T09:01:00+00:00", "failed") if r["post"] == "herhaling"]
    assert len(failed) == 1 and "duplicate of an earlier post" in failed[0]["reason"]
    assert failed[0]["remote_id"] is None
    kickoff_posts = [p for p in fake.posts.values() if p["commentary"] == next(iter(before.values()))["commentary"]]
    assert len(kickoff_posts) == 1


@pytest.fixture
def with_image(tmp_path, fake):
    root = make_project(tmp_path, tolerance="90d")
    image = add_image(root)
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace(
        'api_version: "202510"', f'api_version: "202510"\n  api_base: {fake.url}\n  request_timeout: 1s'))
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root, image


def test_an_image_is_uploaded_through_the_images_api_and_posted_with_its_alt_text(with_image, fake):
    root, image = with_image
    fake.processing_polls = 1
    assert cli(root, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    _assert_exactly_once(root, fake)
    (post,) = fake.posts.values()
    media = post["content"]["media"]
    assert media["altText"] == IMAGE_ALT and fake.images[media["id"]]["data"] == image.read_bytes()
    assert fake.images[media["id"]]["owner"] == "urn:li:organization:42"
    status = ("GET", f"/rest/images/{quote(media['id'], safe='')}")  # PROCESSING, then AVAILABLE
    assert [(m, p) for m, p, _ in fake.requests if p != "/v2/userinfo"] == [
        ("POST", "/rest/images"), ("PUT", fake.images[media["id"]]["upload"]), status, status, ("POST", "/rest/posts")]


def test_a_timed_out_post_with_an_image_is_still_posted_once(with_image, fake):
    root, _ = with_image
    fake.hang_after_store = 1
    assert cli(root, "publish", "--now", DUE, env=_env(fake)).exit_code == 0
    fake.release.set()
    assert cli(root, "publish", "--now", "2027-03-01T10:00:00+00:00", env=_env(fake)).exit_code == 0
    _assert_exactly_once(root, fake)
    assert len(fake.posts) == 1 and len(fake.images) == 2  # the retry's image is never posted


def test_a_link_card_has_the_knowledge_items_title_and_summary_not_the_url(project, fake):
    from dissemination.load import load_project

    item = load_project(project)[0].knowledge["den-hartogh"].meta
    assert cli(project, "publish", "--now", "2027-03-02T08:31:00+00:00", env=_env(fake)).exit_code == 0
    cards = [p["content"]["article"] for p in fake.posts.values() if "article" in p.get("content", {})]
    featured = [c for c in cards if c["source"].startswith(item.url)]
    assert featured, fake.posts
    for card in featured:
        assert card["title"] == item.title and card["title"] != card["source"]
        assert card["description"] == item.summary
