"""The Mastodon fake answers as the recorded 4.6.4 server did (tests/fakes/recorded/), through
Mastodon.py: the headers every authenticated answer carries, the hour an Idempotency-Key lives,
media that cannot be attached twice, errors in the account's language."""

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError

RECORDED = json.loads((Path(__file__).parent / "fakes" / "recorded" / "mastodon-4.6.4.json").read_text())
ISO_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def api(fake_mastodon):
    fake_mastodon.set_now(dt.datetime(2026, 8, 1, 13, 53, 15, tzinfo=dt.timezone.utc))
    return Mastodon(access_token=fake_mastodon.token, api_base_url=fake_mastodon.url, ratelimit_method="throw",
                    mastodon_version="4.6.4", version_check_mode="created")


def _headers(fake, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, fake.url + path, headers={"Authorization": f"Bearer {fake.token}"}, **kwargs)


def test_rate_limit_headers_as_recorded(fake_mastodon, api):
    status = _headers(fake_mastodon, "POST", "/api/v1/statuses", data={"status": "Toot!"})
    read = _headers(fake_mastodon, "GET", f"/api/v1/statuses/{status.json()['id']}")
    for answer, recorded in ((status, RECORDED["status_post"]), (read, RECORDED["status_get"])):
        assert answer.headers["X-RateLimit-Limit"] == recorded["headers"]["x-ratelimit-limit"]
        assert ISO_MICROS.match(answer.headers["X-RateLimit-Reset"])
    # statuses: the 3-hour window (13:53 -> 15:00, as recorded); reads: the 5-minute one
    assert status.headers["X-RateLimit-Reset"].startswith("2026-08-01T15:00:00.")
    assert read.headers["X-RateLimit-Reset"].startswith("2026-08-01T13:55:00.")
    assert int(status.headers["X-RateLimit-Remaining"]) == 299


def test_an_idempotency_key_lives_one_hour_of_the_servers_clock(fake_mastodon, api):
    first = api.status_post("Toot!", idempotency_key="k1")
    fake_mastodon.advance(minutes=59)
    assert api.status_post("Toot!", idempotency_key="k1")["id"] == first["id"]
    fake_mastodon.advance(minutes=2)
    assert api.status_post("Toot!", idempotency_key="k1")["id"] != first["id"]  # forgotten: a second status
    assert len(fake_mastodon.statuses) == 2


def test_media_attached_once_cannot_be_attached_again_and_errors_are_localized(fake_mastodon, api, tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    media = api.media_post(str(image), mime_type="image/png", description="alt")
    api.status_post("met beeld", media_ids=[media["id"]], idempotency_key="a")
    with pytest.raises(MastodonAPIError) as refused:
        api.status_post("nog eens", media_ids=[media["id"]], idempotency_key="b")
    assert refused.value.args[1] == 422 and media["id"] in refused.value.args[3]
    fake_mastodon.max_characters = 500
    with pytest.raises(MastodonAPIError) as too_long:
        api.status_post("x" * 501)
    assert too_long.value.args[3] == RECORDED["error_422_ja"]["body"]["error"]  # the recorded account's language
