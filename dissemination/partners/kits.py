"""Kits: per partner and period, a Dutch page with what the partner can pass on to its members.

For every post planned in the period for one of the partner's audiences: ready-to-share texts for
each channel the partner has (rendered by the project's own Renderer and templates, in the tone of
the partner's audience), a newsletter block (HTML and text to paste, also for its website), the
images with their alt text, and links that are the partner's own (/d/<code>, links.py) in place of
ours. The page is self-contained like the preview: inline CSS, images inlined, no scripts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dissemination.check import CheckResult
from dissemination.files import write_atomically
from dissemination.load import Project
from dissemination.load.models import CampaignStatus, Stakeholder
from dissemination.periods import Period
from dissemination.render import Renderer
from dissemination.publish.channels.text import find_urls
from dissemination.render.newsletter import image_source
from dissemination.render.preview import _environment
from dissemination.render.variants import planned_posts
from dissemination.partners import KIT_CAMPAIGN
from dissemination.partners.links import PartnerLinks

CHANNEL_LABELS = {"mastodon": "Mastodon", "linkedin": "LinkedIn"}


@dataclass(frozen=True)
class ShareText:
    channel: str  # mastodon | linkedin
    label: str
    text: str  # with the partner's links in place of ours


@dataclass(frozen=True)
class KitEntry:
    when: dt.datetime  # local
    title: str
    publication: str  # knowledge item id, else campaign.post
    audience: str  # the partner audience whose tone the texts take
    texts: tuple[ShareText, ...]
    newsletter_html: str
    newsletter_text: str
    link: str  # the partner's link to the publication
    image: str | None = None  # a data: URI
    image_alt: str | None = None


@dataclass
class Kit:
    partner: Stakeholder
    period: Period
    path: Path
    entries: list[KitEntry] = field(default_factory=list)

    @property
    def links(self) -> list[str]:
        return sorted({e.link for e in self.entries})


def web_url(project: Project) -> str | None:
    """Where `dissemination web` answers: the web_url of the first e-mail channel that has one."""
    for config in project.channels.values():
        url = getattr(config, "web_url", None)
        if url:
            return str(url)
    return None


_UTM = re.compile(r"^utm_", re.IGNORECASE)


def without_utm(url: str) -> str:
    """Our channel's attribution off: the partner link adds the partner's own utm_source."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _UTM.match(k)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _channel_of_kind(project: Project, kind: str) -> str | None:
    return next((cid for cid, c in project.channels.items() if c.kind == kind), None)


class KitBuilder:
    def __init__(self, result: CheckResult, links: PartnerLinks, base_url: str, now: dt.datetime) -> None:
        self.result = result
        self.project = result.project
        self.renderer = Renderer(self.project, inline_images=True)
        self.links = links
        self.base_url = base_url
        self.now = now

    def _partner_link(self, partner: str, publication: str, url: str) -> str:
        return self.links.mint(partner, publication, without_utm(url), self.now).public(self.base_url)

    def _relinked(self, partner: str, publication: str, text: str) -> str:
        out, last = [], 0
        for start, end in find_urls(text):
            out += [text[last:start], self._partner_link(partner, publication, text[start:end])]
            last = end
        return "".join(out + [text[last:]])

    def kit(self, partner: Stakeholder, period: Period, out_dir: Path) -> Kit:
        assert partner.partner is not None
        kit = Kit(partner, period, out_dir / f"{partner.id}.html")
        seen: set[tuple[str, str, int | None]] = set()
        wanted = partner.partner.audiences
        for campaign, post, _channel, slot in planned_posts(self.project, self.result.slots):
            key = (campaign.id, post.id, slot.occurrence)
            if campaign.meta.status != CampaignStatus.approved:
                continue  # partners get only what we are going to publish ourselves
            if key in seen or not period.contains(slot.local.astimezone(dt.timezone.utc)):
                continue
            audiences = post.meta.audiences or campaign.meta.audiences
            audience = next((a for a in wanted if a in audiences), None)
            if audience is None:
                continue
            seen.add(key)
            entry = self._entry(partner, campaign, post, slot, audience)
            # One entry per publication: a series that features an item again adds nothing to pass on.
            if entry is not None and all(e.publication != entry.publication for e in kit.entries):
                kit.entries.append(entry)
        kit.entries.sort(key=lambda e: (e.when, e.publication))
        return kit

    def _entry(self, partner: Stakeholder, campaign, post, slot, audience: str) -> KitEntry | None:
        assert partner.partner is not None
        knowledge = self.project.knowledge.get(slot.knowledge) if slot.knowledge else None
        publication = knowledge.id if knowledge else f"{campaign.id}.{post.id}"
        texts: list[ShareText] = []
        rendered_any = None
        for kind in ("mastodon", "linkedin"):
            channel = _channel_of_kind(self.project, kind)
            if channel is None or not getattr(partner.partner.channels, kind):
                continue
            rendered, _problems = self.renderer.render(campaign, post, channel, audience, slot)
            if rendered is None:
                continue
            rendered_any = rendered_any or rendered
            texts.append(ShareText(kind, CHANNEL_LABELS[kind],
                                   self._relinked(partner.id, publication, rendered.plain or rendered.text)))
        if rendered_any is None:  # a partner with only a newsletter or website: the text of our social post
            channel = _channel_of_kind(self.project, "mastodon") or _channel_of_kind(self.project, "linkedin")
            rendered_any = self.renderer.render(campaign, post, channel, audience, slot)[0] if channel else None
        target = knowledge.meta.url if knowledge else (rendered_any.link if rendered_any else None)
        if target is None and rendered_any is not None:
            spans = find_urls(rendered_any.plain or rendered_any.text)
            target = (rendered_any.plain or rendered_any.text)[spans[0][0]:spans[0][1]] if spans else None
        if target is None:
            return None  # nothing to link to (an announcement of our own): not for a partner to pass on
        link = self._partner_link(partner.id, publication, target)
        # A LinkedIn post carries our link as its card, not in the text: the partner pastes text only.
        texts = [t if find_urls(t.text) else ShareText(t.channel, t.label, f"{t.text}\n\n{link}") for t in texts]
        title = knowledge.meta.title if knowledge else post.title
        summary = (knowledge.meta.summary if knowledge else
                   self._relinked(partner.id, publication, rendered_any.plain or rendered_any.text) if rendered_any
                   else "")
        image = alt = None
        if knowledge and knowledge.meta.image:
            image, alt = knowledge.meta.image, knowledge.meta.image_alt
        elif rendered_any is not None and rendered_any.image:
            image, alt = rendered_any.image, rendered_any.image_alt
        source = image_source(self.project.root, image, inline=True) if image else None
        if source is not None and not source.startswith("data:"):
            source = None  # only what the page carries itself: it must open without a network
        block_html = (f'<h3>{escape(title)}</h3>\n<p>{escape(summary)}</p>\n'
                      f'<p><a href="{escape(link)}">Lees meer</a></p>')
        block_text = f"{title}\n\n{summary}\n\nLees meer: {link}"
        return KitEntry(slot.local, title, publication, audience, tuple(texts), block_html, block_text, link,
                        source, alt if source else None)


def kit_page(project: Project, kit: Kit, unsubscribe: str | None = None) -> str:
    """The kit as a page; with `unsubscribe` (the e-mail), a footer with that link."""
    programme = project.programme.programme.name if project.programme else "Sociale Innovatie Logistiek"
    audiences = {e.audience: project.audiences[e.audience].name if e.audience in project.audiences else e.audience
                 for e in kit.entries}
    extra = {"unsubscribe": unsubscribe} if unsubscribe else {}
    return _environment().get_template("kit.html.j2").render(
        kit=kit, partner=kit.partner, programme=programme, period=kit.period.dutch(), audiences=audiences, **extra)


def build_kits(result: CheckResult, period: Period, links: PartnerLinks, base_url: str, out_dir: Path,
               now: dt.datetime, only: str | None = None) -> list[Kit]:
    """Write `out_dir/<partner>.html` for every partner (or the one named); returns the kits."""
    builder = KitBuilder(result, links, base_url, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    kits = []
    for partner in result.project.partners.values():
        if only is not None and partner.id != only:
            continue
        kit = builder.kit(partner, period, out_dir)
        write_atomically(kit.path, kit_page(result.project, kit))
        kits.append(kit)
    return kits


def next_quarter(now: dt.datetime) -> Period:
    """The quarter after the current one: kits go out ahead of what they announce."""
    from dissemination.periods import current_quarter

    return current_quarter(current_quarter(now).end_utc + dt.timedelta(hours=12))


class KitsUnavailable(Exception):
    """Kits cannot be built: no web address for the partner links (an e-mail channel's web_url)."""


def make_kits(root: Path, ledger, period: Period, out_dir: Path | None, now: dt.datetime,
              signer, only: str | None = None, send: bool = False) -> tuple[list[Kit], list[str]]:
    """The step behind `dissemination kits` and the `kits` flow: check the content (errors raise
    ContentErrors, nothing written), then write every partner's kit for `period` under
    `out_dir` (default kits/<period>/), and with `send` queue each for its contact (queue_kits).
    Returns the kits and what queueing said."""
    from dissemination.check import ledger_facts, run_check
    from dissemination.problems import ContentErrors

    result = run_check(root, ledger_facts(ledger))
    if result.problems.errors:
        raise ContentErrors(result.problems.errors)
    base = web_url(result.project)
    if base is None:
        raise KitsUnavailable("partner links need the address where `dissemination web` answers: set web_url on the "
                              "e-mail channel in channels.yaml")
    kits = build_kits(result, period, PartnerLinks(ledger, signer), base,
                      out_dir or root / "kits" / period.label, now, only)
    return kits, (queue_kits(result.project, ledger, kits, now) if send else [])


# --- sending a kit -----------------------------------------------------------------------------
# A kit goes to the partner's kit contact as an item in the ledger like any publication: one per
# (partner, period), with an idempotency key, sent by `publish` through the e-mail channel (consent
# read from the map at sending, the suppression list, an unsubscribe link), never twice.


def kit_post(period: Period) -> str:
    return f"kit-{period.label}"


def _email_channel(project: Project) -> str | None:
    return next((cid for cid, c in project.channels.items() if c.kind == "email" and getattr(c, "web_url", None)),
                _channel_of_kind(project, "email"))


def kit_mail(project: Project, kit: Kit) -> tuple[str, str, str]:
    """(subject, HTML, text) of the kit's e-mail, with the unsubscribe placeholder in both parts."""
    from dissemination.render import UNSUBSCRIBE_PLACEHOLDER
    from dissemination.render.newsletter import inline_css

    page = kit_page(project, kit, UNSUBSCRIBE_PLACEHOLDER)
    subject = f"Contentkit {kit.period.dutch()} voor {kit.partner.name}"
    lines = [subject, "", f"Beste {kit.partner.name}, hieronder de teksten om met uw achterban te delen. "
             "De links zijn van u.", ""]
    for e in kit.entries:
        lines += [f"== {e.title} ==", ""]
        for t in e.texts:
            lines += [f"Tekst voor {t.label}:", t.text, ""]
        lines += ["Blok voor uw nieuwsbrief of website:", e.newsletter_text, ""]
    # The kit goes out on the newsletter's list: unsubscribing stops both (one consent, one list).
    lines += ["--", f"Geen e-mail meer van ons ontvangen (nieuwsbrief en contentkits)? Afmelden: {UNSUBSCRIBE_PLACEHOLDER}"]
    return subject, inline_css(page), "\n".join(lines)


def _add_item(ledger, item, now: dt.datetime) -> bool:
    """Insert the item unless one with its key exists (whatever its state): True when added. Not
    through `apply_plan`, which would cancel the other periods' kits that are not sent yet."""
    import json

    from sqlalchemy import insert, select
    from sqlalchemy.exc import IntegrityError

    from dissemination.ledger.schema import items
    from dissemination.ledger.store import digest, utc_naive

    stamp = utc_naive(now)
    try:
        with ledger.engine.begin() as conn:
            if conn.execute(select(items.c.id).where(items.c.idempotency_key == item.idempotency_key)).first():
                return False
            conn.execute(insert(items).values(
                id=item.id, idempotency_key=item.idempotency_key, campaign=item.campaign, post=item.post,
                audience=item.audience, channel=item.channel, occurrence=item.occurrence, attempt_count=0,
                slot_utc=utc_naive(item.slot_utc), timezone=item.timezone, knowledge=None,
                payload=json.dumps(item.payload, ensure_ascii=False), payload_digest=digest(item.payload),
                state="planned", planned_at=stamp, updated_at=stamp))
    except IntegrityError:  # queued at the same moment by another run
        return False
    return True


def queue_kits(project: Project, ledger, kits: list[Kit], now: dt.datetime) -> list[str]:
    """Put each kit in the ledger for its contact, once: a kit already queued or sent stays as it is."""
    from dissemination.ledger import PlannedItem

    if not kits:
        return []
    channel = _email_channel(project)
    if channel is None:
        return ["not queued: no e-mail channel in channels.yaml"]
    lines = []
    for kit in kits:
        contact = kit.partner.kit_contact
        if contact is None or contact.consent is None:
            lines.append(f"{kit.partner.id}: not queued: its kit contact has no consent record")
            continue
        subject, html, text = kit_mail(project, kit)
        item = PlannedItem(KIT_CAMPAIGN, kit_post(kit.period), kit.partner.id, channel, 0, now, "Europe/Amsterdam",
                           {"kit_for": kit.partner.id, "subject": subject, "html": html, "text": text,
                            "period": kit.period.label})
        added = _add_item(ledger, item, now)
        lines.append(f"{kit.partner.id}: {'queued' if added else 'already queued or sent'} for its contact "
                     f"({contact.role}) on {channel}, item {item.id}")
    return lines
