"""Partner links: `<web_url>/d/<code>`, one per (partner, publication, target).

The code is minted from the target (Signer.partner_link) and stored with it; the redirect goes to
the stored target only, with `utm_source=<partner>` set, so a link can neither be pointed
elsewhere nor be made up. Clicks are counted per partner, publication and day, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from dissemination.ledger.schema import partner_clicks, partner_links
from dissemination.ledger.store import Ledger, utc_naive
from dissemination.periods import ZONE
from dissemination.publish.tokens import Signer

CODE = re.compile(r"[A-Za-z0-9_-]{16}")
PATH = "/d/"


@dataclass(frozen=True)
class PartnerLink:
    code: str
    partner: str
    publication: str
    url: str  # the target without utm_source

    @property
    def target(self) -> str:
        return with_utm_source(self.url, self.partner)

    def public(self, web_url: str) -> str:
        return f"{web_url.rstrip('/')}{PATH}{self.code}"


def with_utm_source(url: str, partner: str) -> str:
    """The target with utm_source=<partner> (replacing one already there; other parameters kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "utm_source"]
    return urlunsplit(parts._replace(query=urlencode(query + [("utm_source", partner)])))


def _safe_target(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and url.isprintable()


class PartnerLinks:
    def __init__(self, ledger: Ledger, signer: Signer) -> None:
        self.engine = ledger.engine
        self.signer = signer

    def mint(self, partner: str, publication: str, url: str, now: dt.datetime) -> PartnerLink:
        """The partner's link to `url` (stored once; building a kit again gives the same link)."""
        if not _safe_target(url):
            raise ValueError(f"not a web address to link to: {url!r}")
        link = PartnerLink(self.signer.partner_link(partner, publication, url), partner, publication, url)
        with self.engine.begin() as conn:
            if self._row(conn, link.code) is None:
                conn.execute(partner_links.insert().values(code=link.code, partner=partner, publication=publication,
                                                           url=url, created_at=utc_naive(now)))
        return link

    @staticmethod
    def _row(conn: Connection, code: str):
        return conn.execute(select(partner_links).where(partner_links.c.code == code)).first()

    def resolve(self, code: str) -> PartnerLink | None:
        """The link of a code, or None when there is none. Raises ValueError for a row that does
        not match its code (edited in the database, or the secret changed): never redirected."""
        with self.engine.connect() as conn:
            row = self._row(conn, code)
        if row is None:
            return None
        link = PartnerLink(row.code, row.partner, row.publication, row.url)
        if self.signer.partner_link(link.partner, link.publication, link.url) != code or not _safe_target(link.url):
            raise ValueError("partner link does not match its code")
        return link

    def count_click(self, link: PartnerLink, now: dt.datetime) -> None:
        with self.engine.begin() as conn:
            # The programme's calendar day, as the report's periods count days (periods.py).
            conn.execute(partner_clicks.insert().values(partner=link.partner, publication=link.publication,
                                                        day=now.astimezone(ZONE).date()))

    def clicks(self, start: dt.date | None = None, end: dt.date | None = None) -> dict[tuple[str, str, dt.date], int]:
        """Counted clicks per (partner, publication, local day), days in [start, end)."""
        query = select(partner_clicks.c.partner, partner_clicks.c.publication, partner_clicks.c.day,
                       func.count().label("n")).group_by(
            partner_clicks.c.partner, partner_clicks.c.publication, partner_clicks.c.day)
        if start is not None:
            query = query.where(partner_clicks.c.day >= start)
        if end is not None:
            query = query.where(partner_clicks.c.day < end)
        with self.engine.connect() as conn:
            return {(r.partner, r.publication, r.day): r.n for r in conn.execute(query)}
