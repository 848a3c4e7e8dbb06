"""Reach through partners: which partners passed our social posts on, read from the platforms.

Mastodon: for each of our recent statuses, the accounts that boosted it
(`GET /api/v1/statuses/:id/reblogged_by`), matched to the partners' handles in the stakeholder map:
one reading per (status, partner), 1 when the partner boosted it, else 0, metric
`partner_boosts:<partner>`. LinkedIn: its API gives how often a post was shared (shareCount), never
by whom, so `partner_reshares:<partner>` is stored as unavailable with that reason: "n.b.", never 0.
Clicks on partner links are counted by the web endpoint itself (dissemination/partners/links.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from dissemination.ledger import Ledger, Snapshot
from dissemination.load.project import load_project
from dissemination.publish.channels import open_channel
from dissemination.publish.channels.linkedin import LinkedInSettings
from dissemination.publish.channels.mastodon import MastodonSettings
from dissemination.publish.credentials import CredentialStore

log = logging.getLogger("dissemination")
UTC = dt.timezone.utc
BOOSTS = "partner_boosts:"
RESHARES = "partner_reshares:"
SOURCE_BOOSTS = "mastodon:reblogged_by"
SOURCE_RESHARES = "linkedin:reshares"
LINKEDIN_RESHARES = ("LinkedIn's API reports how often a post was shared (shareCount), not by whom: "
                     "reshares by a partner cannot be counted")


def handle_key(handle: str) -> str:
    """@User@Mastodon.nl -> user@mastodon.nl (what the reader returns for a booster)."""
    return handle.strip().lstrip("@").lower()


@dataclass
class PartnerReach:
    statuses: int = 0  # Mastodon statuses whose boosts were read
    boosts: int = 0  # partner boosts found
    unavailable: int = 0
    added: int = 0
    notes: list[str] = field(default_factory=list)


def collect_partner_reach(root: Path, ledger: Ledger, now: dt.datetime | None = None,
                          max_age: dt.timedelta = dt.timedelta(days=30),
                          credentials: CredentialStore | None = None) -> PartnerReach:
    report = PartnerReach()
    project, problems = load_project(root)
    if problems.errors:
        # Engagement is read all the same (it needs channels.yaml only); who the partners are
        # must not be guessed from content with errors.
        report.notes.append(f"partner reach not read: the content has {len(problems.errors)} error(s) "
                            "(run `dissemination check`)")
        return report
    now = now or dt.datetime.now(UTC)
    on_mastodon = {handle_key(p.partner.channels.mastodon): pid for pid, p in project.partners.items()
                   if p.partner and p.partner.channels.mastodon}
    on_linkedin = [pid for pid, p in project.partners.items() if p.partner and p.partner.channels.linkedin]
    if not on_mastodon and not on_linkedin:
        return report
    by_channel: dict[str, dict[str, str]] = {}
    for item, channel, remote_id, url in ledger.published_since(now - max_age):
        if not (url or "").startswith("file:"):  # the outbox stood in: nothing to read
            by_channel.setdefault(channel, {})[item] = remote_id
    rows: list[Snapshot] = []
    for channel_id, published in by_channel.items():
        config = project.channels.get(channel_id)
        if isinstance(config, LinkedInSettings):
            rows += [Snapshot.unavailable(item, RESHARES + pid, now, SOURCE_RESHARES, LINKEDIN_RESHARES)
                     for item in published for pid in on_linkedin]
        elif isinstance(config, MastodonSettings) and on_mastodon:
            rows += _boosts(channel_id, config, root, credentials, published, on_mastodon, now, report)
    report.unavailable = sum(not r.available for r in rows)
    report.boosts = int(sum(r.value or 0 for r in rows if r.metric.startswith(BOOSTS)))
    report.added = ledger.add_snapshots(rows)
    log.info("partner reach: %d status(es) read, %d partner boost(s), %d reading(s) added (%d unavailable)",
             report.statuses, report.boosts, report.added, report.unavailable)
    return report


def _boosts(channel_id: str, config: MastodonSettings, root: Path, credentials: CredentialStore | None,
            published: dict[str, str], partners: dict[str, str], now: dt.datetime,
            report: PartnerReach) -> list[Snapshot]:
    opened = open_channel(channel_id, config, root, credentials)
    channel = opened.channel
    health = channel.preflight() if opened.note is None else None
    why = opened.note or (None if health is None or health.ok else health.message)
    if why is not None or not hasattr(channel, "reblogged_by"):
        reason = f"not read: {why or 'this channel cannot list boosts'}"
        report.notes.append(f"{channel_id}: {reason}")
        return [Snapshot.unavailable(item, BOOSTS + pid, now, SOURCE_BOOSTS, reason)
                for item in published for pid in partners.values()]
    rows = []
    for item, remote_id in published.items():
        boosters = channel.reblogged_by(remote_id)
        if isinstance(boosters, str):
            rows += [Snapshot.unavailable(item, BOOSTS + pid, now, SOURCE_BOOSTS, boosters) for pid in partners.values()]
            continue
        report.statuses += 1
        who = set(boosters)
        rows += [Snapshot(item, BOOSTS + pid, 1.0 if handle in who else 0.0, now, SOURCE_BOOSTS)
                 for handle, pid in partners.items()]
    return rows
