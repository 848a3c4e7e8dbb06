"""Reach through partners, read from the platforms: boosts of our statuses by partner accounts
through the Mastodon fake's `reblogged_by` (an array of Account objects as a real server answers,
paged), matched to the partners' handles; LinkedIn reshares stored as unavailable with the reason."""

import datetime as dt

from fakes.mastodon import RECORDED, FakeMastodon
from publishing import make_project
from test_collect import NOW, publish_statuses

import httpx
import pytest

from dissemination.ledger import Ledger, PlannedItem, Receipt
from dissemination.measure import collect_metrics
from dissemination.measure.partners import LINKEDIN_RESHARES

PARTNERS = """
  - id: kennisdc
    name: KennisDC Logistiek
    type: network
    audiences: [mkb]
    power: 3
    interest: 5
    contacts:
      - name: Ingrid Hoogstraten
        email: i.hoogstraten@example.org
        role: Coördinator
        consent: {source: Aanmeldformulier, date: 2026-05-19}
    partner:
      channels: {mastodon: "@KennisDC@mastodon.nl", newsletter: Nieuwsbrief KennisDC}
      contact_role: Coördinator
      audiences: [mkb]
  - id: evofenedex
    name: Evofenedex
    type: branch_organisation
    audiences: [mkb]
    power: 4
    interest: 4
    contacts:
      - name: Lotte Ravensberg
        email: l.ravensberg@example.org
        role: Beleidsadviseur
        consent: {source: Aanmelding website, date: 2025-12-08}
    partner:
      channels: {linkedin: "https://www.linkedin.com/company/evofenedex"}
      contact_role: Beleidsadviseur
      audiences: [mkb]
"""
TLN = """    partner:
      channels: {mastodon: "@tln@mastodon.example", website: "https://www.tln.nl/nieuws"}
      contact_role: Redacteur
      audiences: [mkb]
"""


@pytest.fixture
def mastodon():
    fake = FakeMastodon().start()
    yield fake
    fake.stop()


def partner_project(tmp_path, mastodon, monkeypatch):
    root = make_project(tmp_path)
    channels = root / "channels.yaml"
    channels.write_text(channels.read_text().replace("base_url: https://mastodon.example", f"base_url: {mastodon.url}"))
    monkeypatch.setenv("TEST_MASTODON_TOKEN", mastodon.token)
    path = root / "stakeholder_maps" / "test.yaml"
    text = path.read_text().replace(
        "        invite: mkb\n  - id: ienw",
        "        invite: mkb\n      - name: Redactie ledenblad\n        email: redactie@tln.example.org\n"
        "        role: Redacteur\n        consent: {source: Partnerafspraak, date: 2026-01-15}\n" + TLN + "  - id: ienw", 1)
    assert TLN in text
    path.write_text(text.rstrip("\n") + "\n" + PARTNERS)
    return root


def boosts(ledger: Ledger) -> dict[tuple[str, str], float | None]:
    return {(s["item_id"], s["metric"].split(":", 1)[1]): s["value"] for s in ledger.snapshots()
            if s["metric"].startswith("partner_boosts:")}


def test_boosts_by_partner_accounts_are_counted_for_the_right_partner(tmp_path, mastodon, monkeypatch):
    root = partner_project(tmp_path, mastodon, monkeypatch)
    ledger = Ledger.for_root(root)
    first, second, third = publish_statuses(ledger, mastodon, [NOW - dt.timedelta(days=d) for d in (3, 2, 1)])
    remote = {r["item_id"]: r["remote_id"] for r in _receipts(ledger)}
    mastodon.boost(remote[first], "@TLN@mastodon.example")  # handles compare without case
    mastodon.boost(remote[first], "@tln@elsewhere.example")  # the same name on another server: not TLN
    mastodon.boost(remote[second], "@kennisdc@mastodon.nl")
    mastodon.boost(remote[second], "@kennisdc")  # a local account of our server (acct without domain): not theirs
    mastodon.boost(remote[third], "@tln@mastodon.example")  # the oldest boost of 90: on the second page
    for i in range(89):
        mastodon.boost(remote[third], f"@lezer{i}@example.social")
    report = collect_metrics(root, ledger, NOW)
    assert report.publications == 3
    assert boosts(ledger) == {(first, "tln"): 1.0, (first, "kennisdc"): 0.0,
                              (second, "tln"): 0.0, (second, "kennisdc"): 1.0,
                              (third, "tln"): 1.0, (third, "kennisdc"): 0.0}
    pages = [p for m, p in mastodon.requests if p == f"/api/v1/statuses/{remote[third]}/reblogged_by"]
    assert len(pages) == 2  # 80 and 10: the Link header was followed
    rows = [s for s in ledger.snapshots() if s["metric"].startswith("partner_boosts:")]
    assert {s["source"] for s in rows} == {"mastodon:reblogged_by"} and all(s["available"] for s in rows)
    # the status's own count agrees with what the list shows
    assert [s["value"] for s in ledger.snapshots(third) if s["metric"] == "reblogs"] == [90.0]


def test_a_deleted_status_makes_its_boosts_unavailable_not_zero(tmp_path, mastodon, monkeypatch):
    root = partner_project(tmp_path, mastodon, monkeypatch)
    ledger = Ledger.for_root(root)
    (item,) = publish_statuses(ledger, mastodon, [NOW - dt.timedelta(days=1)])
    mastodon.statuses.clear()
    collect_metrics(root, ledger, NOW)
    rows = [s for s in ledger.snapshots(item) if s["metric"].startswith("partner_boosts:")]
    assert len(rows) == 2 and all(not s["available"] and s["value"] is None for s in rows)
    assert rows[0]["reason"] == "deleted: the server no longer returns this status"


def test_linkedin_reshares_by_partners_are_unavailable_with_the_reason(tmp_path, mastodon, monkeypatch):
    root = partner_project(tmp_path, mastodon, monkeypatch)
    ledger = Ledger.for_root(root)
    moment = NOW - dt.timedelta(days=1)
    item = PlannedItem("reeks", "li", "mkb", "linkedin", 0, moment, "Europe/Amsterdam", {"text": "x"})
    ledger.apply_plan([item], moment - dt.timedelta(days=1))
    (claim,) = ledger.claim_due("test", moment, limit=1)
    ledger.record_published(claim, Receipt("urn:li:share:7", "https://www.linkedin.com/feed/update/urn:li:share:7"), moment)
    collect_metrics(root, ledger, NOW)
    (row,) = [s for s in ledger.snapshots(item.id) if s["metric"].startswith("partner_reshares:")]
    assert row["metric"] == "partner_reshares:evofenedex" and not row["available"] and row["value"] is None
    assert row["reason"] == LINKEDIN_RESHARES


def test_the_fakes_reblogged_by_answers_like_mastodon(mastodon):
    status = mastodon._status("hallo", "public", "nl")
    mastodon.statuses[status["id"]] = status
    mastodon.boost(status["id"], "@tln@mastodon.example")
    mastodon.boost(status["id"], "@buur")
    answer = httpx.get(f"{mastodon.url}/api/v1/statuses/{status['id']}/reblogged_by",
                       headers={"Authorization": f"Bearer {mastodon.token}"})
    assert answer.status_code == 200
    accounts = answer.json()
    assert isinstance(accounts, list) and [a["acct"] for a in accounts] == ["buur", "tln@mastodon.example"]
    recorded = set(RECORDED["status_get"]["body"]["account"])
    assert all(set(a) == recorded for a in accounts)  # every field of a real Account, no more
    missing = httpx.get(f"{mastodon.url}/api/v1/statuses/1/reblogged_by",
                        headers={"Authorization": f"Bearer {mastodon.token}"})
    assert missing.status_code == 404
    assert httpx.get(f"{mastodon.url}/api/v1/statuses/{status['id']}/reblogged_by").status_code == 401


def _receipts(ledger: Ledger) -> list[dict]:
    from sqlalchemy import select

    from dissemination.ledger.schema import receipts

    with ledger.engine.connect() as conn:
        return [{"item_id": r.item_id, "remote_id": r.remote_id} for r in conn.execute(select(receipts))]
