"""The Bluesky channel: text rules and record keys on their own, and publishing, exactly once,
read-back, images and metrics against the reference PDS and AppView (@atproto/pds and
@atproto/bsky through @atproto/dev-env, started on loopback by tests/bluesky_pds.py)."""

from __future__ import annotations

import datetime as dt
import re
import struct
import time
import zlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from dissemination.publish.channels.base import PublishError
from dissemination.publish.channels.bluesky import (BlueskyChannel, BlueskySettings, facets, post_record, record_key,
                                                    text_length, wait_seconds)
from dissemination.records import Claim

from bluesky_pds import PdsUnavailable, shared

UTC = dt.timezone.utc
SLOT = dt.datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def png(width: int = 3, height: int = 2) -> bytes:
    """A real PNG (the PDS sniffs the type of what is uploaded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def claim(key: str, text: str, attempt: int = 1, **payload) -> Claim:
    return Claim(id=key[:16], idempotency_key=key, campaign="c", post="p", audience="*", channel="bsky",
                 slot_utc=SLOT, payload={"text": text, **payload}, attempt_id=attempt, attempt_count=attempt,
                 worker="test")


def settings(**fields) -> BlueskySettings:
    return BlueskySettings.model_validate({"kind": "bluesky", "handle": "alice.test",
                                           "password_env": "BSKY_APP_PASSWORD", **fields})


def spans(text: str, found: list[dict]) -> list[tuple[str, str]]:
    """(what the facet covers, as read through its byte offsets; its feature type)."""
    raw = text.encode("utf-8")
    return [(raw[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode("utf-8"),
             f["features"][0]["$type"].rsplit("#", 1)[1]) for f in found]


# --- text rules, record keys, settings (no server) -----------------------------------------------

def test_facets_use_utf8_byte_offsets_in_dutch_text_with_emoji():
    text = "Café’s en één 👩‍👩‍👧 idee: zie https://voorbeeld.nl/één?x=1. Met @bob.test en #Sociale_Innovatie! 🎉"
    found = facets(text, resolve=lambda handle: "did:plc:bob" if handle == "bob.test" else None)
    assert spans(text, found) == [("https://voorbeeld.nl/één?x=1", "link"), ("@bob.test", "mention"),
                                  ("#Sociale_Innovatie", "tag")]
    assert found[0]["features"][0]["uri"] == "https://voorbeeld.nl/één?x=1"
    assert found[1]["features"][0]["did"] == "did:plc:bob"
    assert found[2]["features"][0]["tag"] == "Sociale_Innovatie"
    # character offsets would be wrong: é, ’ and the emoji take 2, 3 and 4+ bytes
    assert found[0]["index"]["byteStart"] > text.index("https")


def test_facets_leave_unresolved_mentions_numbers_mail_and_tags_inside_links_alone():
    text = "Mail info@voorbeeld.nl, @onbekend.test, #1 en https://x.nl/#anker (zie https://x.nl/a_(b))"
    found = facets(text, resolve=lambda handle: None)
    assert spans(text, found) == [("https://x.nl/#anker", "link"), ("https://x.nl/a_(b)", "link")]


def test_grapheme_length_counts_what_a_reader_sees():
    assert text_length("é") == 1 and text_length("e\u0301") == 1
    assert text_length("👩‍👩‍👧🎉") == 2
    assert text_length("a" * 300) == 300


def test_text_over_300_graphemes_or_3000_bytes_is_refused_before_anything_is_sent(tmp_path, monkeypatch):
    monkeypatch.setenv("BSKY_APP_PASSWORD", "x")
    # nothing listens on this address: a refusal that reached for the server would say so
    offline = BlueskyChannel("bsky", settings(pds_url="http://127.0.0.1:9"), tmp_path)
    with pytest.raises(PublishError, match="301 graphemes, over the 300") as refused:
        offline.publish(claim("t" * 40, "é" * 301))
    assert refused.value.permanent
    family = "👩‍👩‍👧"  # one grapheme, 18 bytes
    with pytest.raises(PublishError, match="3000 bytes") as refused:
        offline.publish(claim("t" * 40, family * 170))
    assert refused.value.permanent


def test_record_key_is_a_valid_tid_the_same_for_every_attempt():
    first = record_key("k" * 40, SLOT)
    assert TID.match(first)
    assert record_key("k" * 40, SLOT) == first
    assert record_key("j" * 40, SLOT) != first  # two items in one slot
    # later slots sort later (TIDs sort by time), whatever the key
    assert record_key("a" * 40, SLOT + dt.timedelta(seconds=1)) > record_key("z" * 40, SLOT)


def test_outbox_form_names_what_is_resolved_and_uploaded_at_publish_time():
    record = post_record(claim("a" * 40, "Lees meer @bob.test", image="img/x.png", image_alt="Een grafiek",
                               link="https://voorbeeld.nl/a", link_title="Titel", link_description="Uitleg"),
                         settings(), created_at=SLOT)
    assert record["createdAt"] == "2026-12-02T09:30:00.000Z"
    assert record["langs"] == ["nl"]
    assert record["facets"][0]["features"][0]["did"] == "(DID of @bob.test, resolved when published)"
    assert record["embed"]["$type"] == "app.bsky.embed.external"
    assert record["embed"]["external"]["title"] == "Titel"
    assert "img/x.png" in str(record["embed"]["external"]["thumb"])
    only_image = post_record(claim("a" * 40, "Kijk", image="img/x.png", image_alt="Een grafiek"), settings())
    assert only_image["embed"]["images"][0]["alt"] == "Een grafiek"


def test_settings_refuse_a_bad_handle_and_a_password_in_the_file():
    with pytest.raises(ValidationError, match="not a Bluesky handle"):
        settings(handle="alice")
    with pytest.raises(ValidationError):
        settings(password_env="my secret password")
    with pytest.raises(ValidationError):
        settings(password="hunter2")  # not a field: a password is never in channels.yaml
    assert settings(handle="@Alice.Test").handle == "alice.test"


def test_a_stakeholder_is_mentioned_by_the_bluesky_handle_the_map_gives():
    from dissemination.load.models import Stakeholder

    def stakeholder(**accounts) -> Stakeholder:
        return Stakeholder.model_validate({"id": "tln", "name": "TLN", "type": "branch_organisation", "audiences": ["mkb"],
                                           "power": 4, "interest": 4, "accounts": accounts})

    assert BlueskyChannel.mention(stakeholder(bluesky="tln.bsky.social")) == "@tln.bsky.social"
    assert BlueskyChannel.mention(stakeholder(bluesky="@tln.bsky.social")) == "@tln.bsky.social"
    assert BlueskyChannel.mention(stakeholder(mastodon="@tln@mastodon.nl")) is None  # by plain name
    text = f"Met {BlueskyChannel.mention(stakeholder(bluesky='tln.bsky.social'))} samen"
    assert spans(text, facets(text, resolve=lambda handle: "did:plc:tln")) == [("@tln.bsky.social", "mention")]


def test_rate_limit_reset_is_read_by_the_servers_clock():
    date = "Wed, 02 Dec 2026 09:30:00 GMT"
    reset = int(dt.datetime(2026, 12, 2, 9, 31, 30, tzinfo=UTC).timestamp())
    assert wait_seconds({"Date": date, "RateLimit-Reset": str(reset)}) == 90
    assert wait_seconds({"Retry-After": "7"}) == 7
    assert wait_seconds({}) is None


# --- against the reference PDS and AppView -------------------------------------------------------

@pytest.fixture(scope="module")
def network():
    try:
        net = shared()
    except PdsUnavailable as exc:
        pytest.fail(str(exc))
    print(f"\nreference PDS and AppView started in {net.start_seconds:.1f} s")
    return net


@pytest.fixture(scope="module")
def accounts(network):
    return {name: network.create_account(name) for name in ("alice", "bob", "carol")}


@pytest.fixture
def content(tmp_path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "grafiek.png").write_bytes(png())
    (tmp_path / "img" / "te-groot.png").write_bytes(png() + b"\x00" * 1_000_001)
    return tmp_path


@pytest.fixture
def env(monkeypatch):
    return monkeypatch


def channel(env, network, account, content, password: str | None = None) -> BlueskyChannel:
    """The adapter as a publish run makes it: the app password from the environment."""
    env.setenv("BSKY_APP_PASSWORD", account.app_password if password is None else password)
    config = settings(handle=account.handle, pds_url=network.pds_url, appview_url=network.appview_url)
    return BlueskyChannel("bsky", config, content)


def get_record(network, uri: str) -> dict:
    repo, collection, rkey = uri.removeprefix("at://").split("/")
    response = network.xrpc("GET", "com.atproto.repo.getRecord",
                            params={"repo": repo, "collection": collection, "rkey": rkey})
    assert response.status_code == 200, response.text
    return response.json()


def posts_of(network, account) -> list[dict]:
    response = network.xrpc("GET", "com.atproto.repo.listRecords",
                            params={"repo": account.did, "collection": "app.bsky.feed.post", "limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["records"]


def blob_bytes(network, did: str, blob: dict) -> bytes:
    response = network.xrpc("GET", "com.atproto.sync.getBlob", params={"did": did, "cid": blob["ref"]["$link"]})
    assert response.status_code == 200, response.text
    return response.content


def test_preflight_signs_in_with_the_app_password(network, accounts, content, env):
    health = channel(env, network, accounts["alice"], content).preflight()
    assert health.ok and "@alice.test" in health.message
    assert accounts["alice"].app_password not in health.message


def test_a_wrong_app_password_is_a_broken_credential(network, accounts, content, env):
    wrong = channel(env, network, accounts["alice"], content, password="abcd-efgh-ijkl-mnop")
    health = wrong.preflight()
    assert not health.ok and health.credential_broken
    assert "BSKY_APP_PASSWORD" in health.message and "abcd-efgh" not in health.message
    with pytest.raises(PublishError) as refused:
        wrong.publish(claim("w" * 40, "Dit gaat niet uit"))
    assert not refused.value.permanent and not refused.value.outcome_unknown
    # a run that publishes without a preflight meets the refusal at sign-in
    with pytest.raises(PublishError, match="refused the app password") as refused:
        channel(env, network, accounts["alice"], content, password="abcd-efgh-ijkl-mnop").publish(
            claim("w" * 40, "Dit gaat niet uit"))
    assert not refused.value.permanent and "abcd-efgh" not in str(refused.value)
    assert not any(p["value"]["text"] == "Dit gaat niet uit" for p in posts_of(network, accounts["alice"]))


def test_a_missing_app_password_is_said_by_name(network, accounts, content, env):
    health = channel(env, network, accounts["alice"], content, password="").preflight()
    assert health.credential_broken and "BSKY_APP_PASSWORD is empty" in health.message


def expired(network, token: str) -> str:
    """The same access token, expired an hour ago, signed as the PDS signs (HS256, its secret)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims |= {"iat": int(time.time()) - 3 * 3600, "exp": int(time.time()) - 3600}
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(network.jwt_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_an_expired_access_token_is_renewed_with_the_refresh_token(network, accounts, content, env):
    alice = accounts["alice"]
    first = channel(env, network, alice, content)
    assert first.preflight().ok
    session = first.xrpc.session
    old = expired(network, session["accessJwt"])
    refused = network.xrpc("GET", "com.atproto.server.getSession", token=old)
    assert refused.status_code == 400 and refused.json()["error"] == "ExpiredToken"  # the PDS's own answer
    later = channel(env, network, alice, content)
    later.xrpc.resume({**session, "accessJwt": old})  # a session kept from an earlier run
    receipt = later.publish(claim("e" * 40, "Na het verlopen"))
    assert get_record(network, receipt.remote_id)["value"]["text"] == "Na het verlopen"
    renewed = later.xrpc.session
    assert renewed["accessJwt"] != old and renewed["refreshJwt"] != session["refreshJwt"]


def test_a_revoked_session_signs_in_again_with_the_app_password(network, accounts, content, env):
    alice = accounts["alice"]
    first = channel(env, network, alice, content)
    first.preflight()
    session = first.xrpc.session
    revoked = network.xrpc("POST", "com.atproto.server.deleteSession", token=session["refreshJwt"])
    assert revoked.status_code == 200, revoked.text
    later = channel(env, network, alice, content)
    later.xrpc.resume({**session, "accessJwt": expired(network, session["accessJwt"])})
    assert later.preflight().ok  # refresh refused, signed in again
    assert later.xrpc.session["refreshJwt"] != session["refreshJwt"]


def test_publish_with_facets_and_a_link_card_with_thumbnail(network, accounts, content, env):
    alice, bob = accounts["alice"], accounts["bob"]
    text = "Café-avond 🎉 over één idee: https://voorbeeld.nl/één met @bob.test #SocialeInnovatie"
    item = claim("1" * 40, text, link="https://voorbeeld.nl/één", link_title="Eén idee",
                 link_description="Wat we leerden", image="img/grafiek.png", image_alt="Een oranje vlak")
    receipt = channel(env, network, alice, content).publish(item)
    rkey = record_key(item.idempotency_key, SLOT)
    assert receipt.remote_id == f"at://{alice.did}/app.bsky.feed.post/{rkey}"
    assert receipt.url == f"https://bsky.app/profile/alice.test/post/{rkey}"

    record = get_record(network, receipt.remote_id)["value"]
    assert record["text"] == text and record["langs"] == ["nl"]
    assert spans(text, record["facets"]) == [("https://voorbeeld.nl/één", "link"), ("@bob.test", "mention"),
                                             ("#SocialeInnovatie", "tag")]
    assert record["facets"][1]["features"][0]["did"] == bob.did  # resolved by the PDS at publish time
    external = record["embed"]["external"]
    assert record["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"], external["description"]) == (
        "https://voorbeeld.nl/één", "Eén idee", "Wat we leerden")
    assert external["thumb"]["mimeType"] == "image/png"
    assert blob_bytes(network, alice.did, external["thumb"]) == png()


def test_publish_an_image_with_alt_text(network, accounts, content, env):
    alice = accounts["alice"]
    item = claim("2" * 40, "Zie de grafiek", image="img/grafiek.png", image_alt="Een oranje vlak van 3 bij 2")
    receipt = channel(env, network, alice, content).publish(item)
    record = get_record(network, receipt.remote_id)["value"]
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    [image] = record["embed"]["images"]
    assert image["alt"] == "Een oranje vlak van 3 bij 2"
    assert blob_bytes(network, alice.did, image["image"]) == png()


def test_an_image_over_a_million_bytes_is_refused_before_anything_is_sent(network, accounts, content, env):
    item = claim("3" * 40, "Te groot", image="img/te-groot.png", image_alt="x")
    with pytest.raises(PublishError, match="over the 1000000 bytes") as refused:
        channel(env, network, accounts["alice"], content).publish(item)
    assert refused.value.permanent
    assert not any(p["value"]["text"] == "Te groot" for p in posts_of(network, accounts["alice"]))


def test_a_repeat_with_the_same_key_makes_no_second_post(network, accounts, content, env):
    alice = accounts["alice"]
    item = claim("4" * 40, "Precies één keer #eenmalig")
    first = channel(env, network, alice, content).publish(item)
    # The PDS itself refuses a second record under the same key ...
    raw = network.xrpc("POST", "com.atproto.repo.createRecord", token=alice.access, json={
        "repo": alice.did, "collection": "app.bsky.feed.post", "rkey": first.remote_id.rsplit("/", 1)[1],
        "record": {"$type": "app.bsky.feed.post", "text": "tweede", "createdAt": "2026-12-02T09:30:00.000Z"}})
    assert raw.status_code >= 400
    # ... so a repeat of the same claim (a retry in a new run, a new channel, as after a crash)
    # goes to the PDS, is refused, and finds its own post by that key.
    again = channel(env, network, alice, content).publish(item)
    assert again == first
    # a later attempt looks first and sends nothing
    assert channel(env, network, alice, content).publish(claim("4" * 40, item.payload["text"], attempt=2)) == first
    texts = [p["value"]["text"] for p in posts_of(network, alice)]
    assert texts.count("Precies één keer #eenmalig") == 1
    assert "tweede" not in texts


def test_another_post_under_our_key_is_not_taken_as_ours(network, accounts, content, env):
    alice = accounts["alice"]
    channel(env, network, alice, content).publish(claim("5" * 40, "Het eerste bericht"))
    with pytest.raises(PublishError, match="another post already has record key") as refused:
        channel(env, network, alice, content).publish(claim("5" * 40, "Een ander bericht"))
    assert refused.value.permanent


def test_read_back_by_the_items_key(network, accounts, content, env):
    alice = accounts["alice"]
    item = claim("6" * 40, "Terug te lezen")
    published = channel(env, network, alice, content)
    assert published.read_back(item, SLOT) is None  # proven absent
    receipt = published.publish(item)
    assert channel(env, network, alice, content).read_back(item, SLOT) == receipt


def test_metrics_through_get_posts_match_real_likes_reposts_replies_and_quotes(network, accounts, content, env):
    alice, bob, carol = accounts["alice"], accounts["bob"], accounts["carol"]
    ours = channel(env, network, alice, content)
    liked = ours.publish(claim("7" * 40, "Vind dit leuk"))
    quiet = ours.publish(claim("8" * 40, "Hier gebeurt niets"))
    subject = get_record(network, liked.remote_id)
    ref = {"uri": subject["uri"], "cid": subject["cid"]}
    now = "2026-12-02T10:00:00.000Z"
    for account in (bob, carol):  # real records in the other accounts' repositories
        for collection, record in (("app.bsky.feed.like", {"subject": ref}),
                                   ("app.bsky.feed.repost", {"subject": ref})):
            made = network.xrpc("POST", "com.atproto.repo.createRecord", token=account.access, json={
                "repo": account.did, "collection": collection,
                "record": {"$type": collection, "createdAt": now, **record}})
            assert made.status_code == 200, made.text
    posts = [("app.bsky.feed.post", {"text": "Eens!", "reply": {"root": ref, "parent": ref}}),
             ("app.bsky.feed.post", {"text": "Kijk hier", "embed": {"$type": "app.bsky.embed.record", "record": ref}})]
    for collection, record in posts:
        made = network.xrpc("POST", "com.atproto.repo.createRecord", token=bob.access, json={
            "repo": bob.did, "collection": collection, "record": {"$type": collection, "createdAt": now, **record}})
        assert made.status_code == 200, made.text
    network.sync()
    at = dt.datetime(2026, 12, 2, 10, 5, tzinfo=UTC)
    rows = ours.fetch_metrics({"liked": liked, "quiet": quiet, "gone": liked.__class__(
        remote_id=f"at://{alice.did}/app.bsky.feed.post/{record_key('9' * 40, SLOT)}")}, at)
    values = {(r.item_id, r.metric): r.value for r in rows if r.available}
    assert values == {("liked", "likes"): 2, ("liked", "reposts"): 2, ("liked", "replies"): 1,
                      ("liked", "quotes"): 1, ("quiet", "likes"): 0, ("quiet", "reposts"): 0,
                      ("quiet", "replies"): 0, ("quiet", "quotes"): 0}
    gone = [r for r in rows if r.item_id == "gone"]
    assert len(gone) == 4 and all(not r.available and "deleted" in r.reason for r in gone)
    assert all(r.source == f"bluesky:{network.appview_url}" and r.fetched_at == at for r in rows)


def test_the_pds_rate_limit_becomes_a_retry_after(network, accounts, content, env):
    """The PDS allows 30 sign-ins per 5 minutes per identifier (its real limit, enabled in
    tests/pds/start.mjs): the 31st is answered 429 with RateLimit-Reset."""
    carol = accounts["carol"]
    last = None
    for _ in range(31):
        last = network.xrpc("POST", "com.atproto.server.createSession",
                            json={"identifier": carol.handle, "password": "not-the-password"})
        if last.status_code == 429:
            break
    assert last is not None and last.status_code == 429, last.text
    started = time.time()
    with pytest.raises(PublishError, match="rate limited") as limited:
        channel(env, network, carol, content).publish(claim("r" * 40, "Even wachten"))
    assert limited.value.retry_after is not None
    assert 0 < limited.value.retry_after.total_seconds() <= 5 * 60 + (time.time() - started) + 1
    assert not limited.value.permanent and not limited.value.outcome_unknown


def test_no_answer_after_sending_is_an_unknown_outcome(content, monkeypatch):
    """A PDS that signs in but never answers the create (a loopback server that takes the request
    and waits): the post may exist, so the outcome is unknown, and the retry keeps the record key."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("com.atproto.server.createSession"):
                body = json.dumps({"accessJwt": "a", "refreshJwt": "r", "did": "did:plc:silent",
                                   "handle": "alice.test"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                release.wait(10)

        do_GET = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("BSKY_APP_PASSWORD", "x")
        silent = BlueskyChannel("bsky", settings(pds_url=url, appview_url=url), content)
        silent.xrpc.timeout = 0.5
        with pytest.raises(PublishError) as unknown:
            silent.publish(claim("u" * 40, "Misschien verstuurd"))
        assert unknown.value.outcome_unknown and not unknown.value.permanent
    finally:
        release.set()
        server.shutdown()
        server.server_close()


# --- end to end: a `kind: bluesky` channel in a project ------------------------------------------

PLAN_AT = "2026-12-01T00:00Z"
DUE = "2027-03-01T09:00:00+00:00"  # the sample campaign's first slot (10:00 in Amsterdam)


def bluesky_project(tmp: Path, network, account) -> Path:
    """The sample project with a Bluesky channel `bsky` beside the others, in its campaign and
    audiences, approved."""
    import shutil

    from conftest import VALID
    from publishing import cli

    root = tmp / "content"
    shutil.copytree(VALID, root)
    with (root / "channels.yaml").open("a") as channels:
        channels.write(f"bsky:\n  kind: bluesky\n  handle: {account.handle}\n  pds_url: {network.pds_url}\n"
                       f"  appview_url: {network.appview_url}\n  password_env: TEST_BSKY_APP_PASSWORD\n")
    for path in [root / "campaigns" / "reeks.md", *(root / "stakeholder_maps").glob("*.yaml")]:
        path.write_text(path.read_text().replace("channels: [mastodon, linkedin]", "channels: [mastodon, linkedin, bsky]")
                        .replace("channels: [linkedin, mastodon, nieuwsbrief]",
                                 "channels: [linkedin, mastodon, nieuwsbrief, bsky]"))
    assert cli(root, "approve", "campaigns/reeks.md", "--by", "Test Redacteur").exit_code == 0
    return root


def test_a_bluesky_channel_in_channels_yaml_is_checked_rendered_and_published(tmp_path, network, monkeypatch):
    import json

    from publishing import cli

    from dissemination.ledger import Ledger

    account = network.create_account("eind")
    monkeypatch.delenv("TEST_BSKY_APP_PASSWORD", raising=False)

    # Without the app password: checked, rendered by its template, and written to the outbox with a note.
    root = bluesky_project(tmp_path / "zonder", network, account)
    checked = cli(root, "check")
    assert checked.exit_code == 0, checked.output
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    preview = cli(root, "preview", "--out", str(tmp_path / "site"))
    assert preview.exit_code == 0, preview.output
    assert any("bsky" in p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    published = cli(root, "publish", "--now", DUE)
    assert published.exit_code == 0, published.output
    assert "bsky: TEST_BSKY_APP_PASSWORD not set, so nothing is published to bluesky" in published.output
    [written] = [json.loads(p.read_text()) for p in (root / "outbox" / "bsky").rglob("*.json")]
    request = written["request"]
    assert request["url"] == f"{network.pds_url}/xrpc/com.atproto.repo.createRecord"
    record = request["json"]["record"]
    assert record["$type"] == "app.bsky.feed.post" and "#socialeinnovatie" in record["text"]
    assert any(f["features"][0]["$type"] == "app.bsky.richtext.facet#tag" for f in record["facets"])
    assert not any(p["value"]["text"] == record["text"] for p in posts_of(network, account))

    # With it: the same item goes to the PDS through the normal publish run, once.
    root = bluesky_project(tmp_path / "met", network, account)
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    env = {"TEST_BSKY_APP_PASSWORD": account.app_password}
    published = cli(root, "publish", "--now", DUE, env=env)
    assert published.exit_code == 0, published.output
    assert "TEST_BSKY_APP_PASSWORD not set" not in published.output
    assert account.app_password not in published.output
    posts = [p for p in posts_of(network, account) if p["value"]["text"] == record["text"]]
    assert len(posts) == 1, [p["value"]["text"] for p in posts_of(network, account)]
    [item] = [row for row in Ledger.for_root(root).items(["published"]) if row["channel"] == "bsky"]
    assert item["remote_id"] == posts[0]["uri"] and item["url"].startswith(f"https://bsky.app/profile/{account.handle}/")
    assert not (root / "outbox" / "bsky").exists()
    again = cli(root, "publish", "--now", DUE, env=env)  # nothing left to send: still one post
    assert again.exit_code == 0, again.output
    assert len([p for p in posts_of(network, account) if p["value"]["text"] == record["text"]]) == 1
