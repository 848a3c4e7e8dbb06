"""`dissemination auth` end to end against the loopback platforms: Mastodon app registration and
the pasted authorization code, LinkedIn's 3-legged flow with a browser (a small script standing in
for it) coming back to our listener on 127.0.0.1; tokens stored 0600 outside the content root."""

import json
import stat
import sys
import time

import pytest
from publishing import cli, due_rows, make_project, subprocess_cli
from typer.testing import CliRunner

from dissemination.cli import app

PLAN_AT = "2026-12-01T00:00Z"
DUE = "2027-03-01T09:00:00+00:00"
LI_ENV = {"TEST_LINKEDIN_CLIENT_ID": "86test1inkedin", "TEST_LINKEDIN_CLIENT_SECRET": "WPL_AP1.test-client-secret.Zm9v"}


@pytest.fixture
def mastodon(fake_mastodon):
    return fake_mastodon


@pytest.fixture
def linkedin(fake_linkedin):
    return fake_linkedin


def _project(tmp_path, mastodon=None, linkedin=None):
    root = make_project(tmp_path, tolerance="90d")
    channels = root / "channels.yaml"
    text = channels.read_text()
    if mastodon:
        text = text.replace("base_url: https://mastodon.example", f"base_url: {mastodon.url}")
    if linkedin:
        text = text.replace('api_version: "202510"', f'api_version: "202510"\n  api_base: {linkedin.url}\n'
                            f'  oauth_base: {linkedin.url}\n  client_id_env: TEST_LINKEDIN_CLIENT_ID\n'
                            '  client_secret_env: TEST_LINKEDIN_CLIENT_SECRET')
    channels.write_text(text)
    assert cli(root, "plan", "--now", PLAN_AT).exit_code == 0
    return root


def _stored(path):
    return json.loads(path.read_text())


def _assert_private(path, root):
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.resolve().is_relative_to(root.resolve())


def mastodon_sign_in(root, code):
    return CliRunner().invoke(app, ["--root", str(root), "auth", "mastodon", "mastodon"], input=f"{code}\n",
                              catch_exceptions=False)


def test_mastodon_sign_in_registers_the_app_and_the_stored_token_publishes(tmp_path, mastodon, credentials_file):
    root = _project(tmp_path, mastodon=mastodon)
    mastodon.approve("code-shown-on-the-page")
    result = mastodon_sign_in(root, "code-shown-on-the-page")
    assert result.exit_code == 0, result.output
    (client_id, registered), = mastodon.apps.items()
    assert registered["redirect_uris"] == ["urn:ietf:wg:oauth:2.0:oob"]
    assert registered["scopes"] == ["read:accounts", "read:statuses", "write:statuses", "write:media"]
    assert f"{mastodon.url}/oauth/authorize?client_id={client_id}&response_type=code" \
           "&redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob&scope=read%3Aaccounts+read%3Astatuses" in result.output
    assert "signed in as @roadmap" in result.output and str(credentials_file) in result.output
    _assert_private(credentials_file, root)
    stored = _stored(credentials_file)["mastodon"]
    new_token = stored["access_token"]
    assert new_token in mastodon.tokens and new_token != mastodon.token
    assert stored["endpoint"] == mastodon.url and "expires_at" not in stored  # Mastodon tokens do not expire
    assert new_token not in result.output and registered["client_secret"] not in result.output

    published = cli(root, "publish", "--now", DUE, env={"TEST_MASTODON_TOKEN": ""})
    assert published.exit_code == 0
    assert len(mastodon.statuses) == 1 and len(due_rows(root, "mastodon", DUE, "published")) == 1
    status = cli(root, "status", "--now", DUE, env={"TEST_MASTODON_TOKEN": ""})
    assert f"mastodon: ok: {mastodon.url}: the stored token of channel 'mastodon' accepted (@roadmap)" in status.output

    # signing in again reuses the registered app
    mastodon.approve("second-code")
    assert mastodon_sign_in(root, "second-code").exit_code == 0
    assert len(mastodon.apps) == 1 and _stored(credentials_file)["mastodon"]["access_token"] != new_token


def test_mastodon_sign_in_with_a_wrong_code_stores_nothing(tmp_path, mastodon, credentials_file):
    root = _project(tmp_path, mastodon=mastodon)
    mastodon.approve("the-right-code")
    result = mastodon_sign_in(root, "a-wrong-code")
    assert result.exit_code == 1
    assert "not signed in" in result.output and "the code was not accepted" in result.output
    assert not credentials_file.exists()


def _browser(tmp_path):
    """Stands in for the person's browser: follows the authorization page's redirect to our listener."""
    script = tmp_path / "browser"
    script.write_text(f"#!{sys.executable}\nimport sys, urllib.request\n"
                      "urllib.request.urlopen(sys.argv[1], timeout=20).read()\n")
    script.chmod(0o755)
    return str(script)


def linkedin_sign_in(root, tmp_path, env=None):
    process = subprocess_cli(root, "auth", "linkedin", "linkedin", "--port", "0", "--timeout", "30",
                             env={**LI_ENV, "BROWSER": _browser(tmp_path), **(env or {})})
    out, err = process.communicate(timeout=60)
    return process.returncode, out + err


def test_linkedin_sign_in_through_the_browser_and_the_local_listener(tmp_path, linkedin, credentials_file):
    root = _project(tmp_path, linkedin=linkedin)
    linkedin.refresh_tokens = True
    code, output = linkedin_sign_in(root, tmp_path)
    assert code == 0, output
    assert f"{linkedin.url}/oauth/v2/authorization?response_type=code&client_id=86test1inkedin" \
           "&redirect_uri=http%3A%2F%2F127.0.0.1%3A" in output
    assert "scope=openid+profile+w_organization_social" in output
    assert "signed in as Roos Redacteur (urn:li:person:782bbtaQ)" in output
    _assert_private(credentials_file, root)
    stored = _stored(credentials_file)["linkedin"]
    assert stored["access_token"] in linkedin.tokens and stored["refresh_token"] in linkedin.refreshes
    expires = time.time() + linkedin.expires_in
    from datetime import datetime

    assert abs(datetime.fromisoformat(stored["expires_at"]).timestamp() - expires) < 60
    assert stored["refresh_expires_at"]
    for secret in (stored["access_token"], stored["refresh_token"], LI_ENV["TEST_LINKEDIN_CLIENT_SECRET"]):
        assert secret not in output

    assert cli(root, "publish", "--now", DUE, env={"TEST_LINKEDIN_TOKEN": ""}).exit_code == 0
    assert len(linkedin.posts) == 1 and len(due_rows(root, "linkedin", DUE, "published")) == 1


@pytest.mark.parametrize("consent, message", [
    ("forge", "state does not match"),
    ("deny", "LinkedIn did not grant access: The user cancelled the authorization"),
])
def test_linkedin_sign_in_refuses_a_forged_or_denied_answer(tmp_path, linkedin, credentials_file, consent, message):
    root = _project(tmp_path, linkedin=linkedin)
    linkedin.consent = consent
    code, output = linkedin_sign_in(root, tmp_path)
    assert code == 1 and message in output and "not signed in" in output
    assert not credentials_file.exists() and not [t for t in linkedin.tokens if t != linkedin.token]


def test_linkedin_sign_in_names_the_missing_client_settings(tmp_path, linkedin, credentials_file):
    root = _project(tmp_path, linkedin=linkedin)
    result = cli(root, "auth", "linkedin", "linkedin", "--port", "0", "--no-browser",
                 env={"TEST_LINKEDIN_CLIENT_ID": "", "TEST_LINKEDIN_CLIENT_SECRET": ""})
    assert result.exit_code == 1
    assert "TEST_LINKEDIN_CLIENT_ID and TEST_LINKEDIN_CLIENT_SECRET not set" in result.output


def test_a_credentials_file_inside_the_content_root_is_refused(tmp_path, mastodon, monkeypatch):
    root = _project(tmp_path, mastodon=mastodon)
    monkeypatch.setenv("DISSEMINATION_CREDENTIALS", str(root / "credentials.json"))
    mastodon.approve("code")
    result = mastodon_sign_in(root, "code")
    assert result.exit_code == 1 and "inside the content root" in result.output
    assert not (root / "credentials.json").exists()


class MemoryKeyring:
    """A keyring backend in memory, registered through keyring's own API, standing in for the
    Keychain or Secret Service a laptop has."""

    def __init__(self):
        import keyring.backend

        class Backend(keyring.backend.KeyringBackend):
            priority = 5
            entries: dict = {}

            def get_password(self, service, username):
                return self.entries.get((service, username))

            def set_password(self, service, username, password):
                self.entries[(service, username)] = password

            def delete_password(self, service, username):
                self.entries.pop((service, username))

        self.backend = Backend()


@pytest.fixture
def system_keyring(monkeypatch, tmp_path):
    import keyring

    previous = keyring.get_keyring()
    memory = MemoryKeyring().backend
    keyring.set_keyring(memory)
    monkeypatch.delenv("DISSEMINATION_CREDENTIALS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    yield memory
    keyring.set_keyring(previous)


def test_with_a_system_keyring_the_token_goes_there_and_no_file_is_written(tmp_path, mastodon, system_keyring):
    root = _project(tmp_path, mastodon=mastodon)
    mastodon.approve("code")
    result = mastodon_sign_in(root, "code")
    assert result.exit_code == 0, result.output
    assert "token stored in the system keyring (Backend, service 'dissemination')" in result.output
    stored = json.loads(system_keyring.entries[("dissemination", "mastodon")])
    assert stored["access_token"] in mastodon.tokens
    assert not (tmp_path / "xdg").exists()
    assert cli(root, "publish", "--now", DUE, env={"TEST_MASTODON_TOKEN": ""}).exit_code == 0
    assert len(mastodon.statuses) == 1


def test_without_a_keyring_the_file_goes_under_xdg_config_home(tmp_path, mastodon, monkeypatch):
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # what a server without Secret Service has
    monkeypatch.delenv("DISSEMINATION_CREDENTIALS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    try:
        root = _project(tmp_path, mastodon=mastodon)
        mastodon.approve("code")
        assert mastodon_sign_in(root, "code").exit_code == 0
    finally:
        keyring.set_keyring(previous)
    path = tmp_path / "xdg" / "dissemination" / "credentials.json"
    _assert_private(path, root)
    assert _stored(path)["mastodon"]["access_token"] in mastodon.tokens


def test_signing_in_to_a_channel_that_is_not_of_that_kind_names_the_ones_that_are(tmp_path, mastodon):
    root = _project(tmp_path, mastodon=mastodon)
    result = cli(root, "auth", "mastodon", "linkedin")
    assert result.exit_code == 1
    assert "channels.yaml has no mastodon channel 'linkedin'; mastodon channels: mastodon" in result.output
    assert not mastodon.apps
