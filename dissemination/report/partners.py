"""The report's "Bereik via partners": per partner and period, the kits sent, the clicks on its
partner links, the boosts of our statuses by its Mastodon account and its LinkedIn reshares, with the
previous period and the trend; and the reach through partners that the target "verdubbeling bereik
onder partners" (metric `partner_reach`) is judged on.

Definitions (repeated in the report):
- Kits sent: the partner's kit e-mails published in the period (as every publication, by the day
  they went out).
- Clicks: counted clicks on the partner's links on the days of the period (the web endpoint counts
  them per day, without HEAD requests and link scanners).
- Boosts: for our Mastodon statuses published in the period, whether the partner's account boosted
  them, at the last reading up to the report's moment.
- Reshares on LinkedIn: the API does not say who shared a post, so they are "n.b." with that reason.
- Reach through partners: clicks plus boosts. Reshares are left out (never known), and say so.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from dissemination.ledger import Ledger
from dissemination.ledger.schema import items
from dissemination.ledger.store import utc_naive
from dissemination.load import models as m
from dissemination.load.project import Project
from dissemination.partners import KIT_CAMPAIGN
from dissemination.periods import Period
from dissemination.report.dutch import dutch
from dissemination.report.figures import Figure, Trend, Value, trend

BOOSTS = "partner_boosts:"
RESHARES = "partner_reshares:"
PARTNER_MEASURES = ("kits", "clicks", "boosts", "reshares", "reach")
PARTNER_MEASURE_NL = {"kits": "kits verstuurd", "clicks": "klikken op partnerlinks", "boosts": "boosts op Mastodon",
                      "reshares": "gedeeld op LinkedIn", "reach": "bereik via partners"}
NO_MASTODON = "partner heeft geen Mastodon-account in de stakeholderkaart"
NO_LINKEDIN = "partner heeft geen LinkedIn-pagina in de stakeholderkaart"


@dataclass
class PartnerRow:
    partner: str  # stakeholder id; "totaal" for the total
    name: str
    current: dict[str, Figure]
    previous: dict[str, Figure]

    def trend(self, measure: str) -> Trend:
        return trend(self.current[measure], self.previous[measure])


@dataclass
class PartnerSection:
    rows: list[PartnerRow]
    total: PartnerRow
    without_kit: list[m.Stakeholder] = field(default_factory=list)  # partners that received no kit in the period


def _kits_sent(ledger: Ledger, period: Period) -> dict[str, int]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(items.c.audience).where(
            items.c.campaign == KIT_CAMPAIGN, items.c.state == "published",
            items.c.published_at >= utc_naive(period.start_utc), items.c.published_at < utc_naive(period.end_utc)))
        out: dict[str, int] = defaultdict(int)
        for (partner,) in rows:
            out[partner] += 1
        return out


def _clicks(ledger: Ledger, period: Period) -> dict[str, int]:
    from dissemination.ledger.schema import partner_clicks
    from sqlalchemy import func

    with ledger.engine.connect() as conn:
        return {r.partner: r.n for r in conn.execute(
            select(partner_clicks.c.partner, func.count().label("n")).where(
                partner_clicks.c.day >= period.start, partner_clicks.c.day < period.end
            ).group_by(partner_clicks.c.partner))}


def partner_figures(ledger: Ledger, project: Project, period: Period, as_of: dt.datetime) -> dict[str, dict[str, Figure]]:
    """Per partner: kits, clicks, boosts, reshares and reach (clicks + boosts) in `period`."""
    partners = project.partners
    kits, clicks = _kits_sent(ledger, period), _clicks(ledger, period)
    metrics = [BOOSTS + p for p in partners] + [RESHARES + p for p in partners]
    readings: dict[str, list[Value]] = defaultdict(list)
    if metrics:
        for row in _latest(ledger.latest_readings(period.start_utc, period.end_utc, as_of, metrics)):
            value = Value(row["value"], None) if row["available"] else Value(None, dutch(row["reason"]))
            readings[row["metric"]].append(value)
    out = {}
    for pid, partner in partners.items():
        channels = partner.partner.channels if partner.partner else None
        boosts = (Figure.of(readings[BOOSTS + pid]) if channels and channels.mastodon
                  else Figure.of([Value(None, NO_MASTODON, applicable=False)]))
        # LinkedIn never says who shared: every reading is unavailable, and not counted in the reach
        reshare_values = [v if v.known else Value(None, v.reason, applicable=False) for v in readings[RESHARES + pid]]
        reshares = (Figure.of(reshare_values) if channels and channels.linkedin
                    else Figure.of([Value(None, NO_LINKEDIN, applicable=False)]))
        figures = {"kits": Figure.count(kits.get(pid, 0)), "clicks": Figure.count(clicks.get(pid, 0)),
                   "boosts": boosts, "reshares": reshares}
        reach = Figure.count(clicks.get(pid, 0))
        reach.value += boosts.value  # 0 when unknown; then the reach is a lower bound and says why
        reach.unknown += boosts.unknown
        reach.reasons.update(boosts.reasons)
        figures["reach"] = reach
        out[pid] = figures
    return out


def _latest(rows: list[dict]) -> list[dict]:
    """One reading per (item, metric): the last one, or the last available where it is not."""
    best: dict[tuple[str, str], dict] = {}
    for row in sorted(rows, key=lambda r: r["fetched_at"]):
        key = (row["item_id"], row["metric"])
        if row["available"] or key not in best or not best[key]["available"]:
            best[key] = row
    return list(best.values())


def _sum(rows: list[dict[str, Figure]], measure: str) -> Figure:
    total = Figure()
    for figures in rows:
        f = figures[measure]
        total.value += f.value
        total.known += f.known
        total.unknown += f.unknown
        total.reasons.update(f.reasons)
        total.not_counted.update(f.not_counted)
    return total


def partner_section(ledger: Ledger, project: Project, period: Period, previous: Period,
                    as_of: dt.datetime) -> PartnerSection:
    now, before = partner_figures(ledger, project, period, as_of), partner_figures(ledger, project, previous, as_of)
    rows = [PartnerRow(pid, p.name, now[pid], before[pid]) for pid, p in project.partners.items()]
    rows.sort(key=lambda r: (-(r.current["reach"].value), r.name))
    total = PartnerRow("totaal", "Alle partners", {k: _sum(list(now.values()), k) for k in PARTNER_MEASURES},
                       {k: _sum(list(before.values()), k) for k in PARTNER_MEASURES})
    without = [p for pid, p in project.partners.items() if not now[pid]["kits"].value]
    return PartnerSection(rows, total, without)


def partner_reach(ledger: Ledger, project: Project, period: Period, as_of: dt.datetime) -> Figure:
    """The reach through all partners in `period`: what `partner_reach` targets are judged on."""
    return _sum(list(partner_figures(ledger, project, period, as_of).values()), "reach")
