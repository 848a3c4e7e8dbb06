"""The plan step: check the content, expand approved campaigns into items and make the ledger
match, campaign by campaign (a campaign with errors keeps its previous plan)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from dissemination.check import CheckResult, ledger_facts, run_check
from dissemination.ledger import Ledger, PlanStats
from dissemination.load.models import CampaignStatus
from dissemination.partners import KIT_CAMPAIGN
from dissemination.plan.planner import Held, plan_items, write_event_calendar
from dissemination.problems import Problem, SharedContentErrors

log = logging.getLogger("dissemination")


@dataclass
class PlanReport:
    check: CheckResult
    stats: PlanStats
    held: list[Held]
    calendars: list[Path]
    # Campaigns not planned because of errors in their own files: they keep their previous plan.
    failed: dict[str, list[Problem]] = field(default_factory=dict)

    @property
    def failed_problems(self) -> list[Problem]:
        return sorted(p for problems in self.failed.values() for p in problems)


def plan(root: Path, ledger: Ledger, now: dt.datetime, checked: CheckResult | None = None) -> PlanReport:
    """Check the content (unless `checked` already holds the result), expand approved campaigns
    into items, and make the ledger match.

    Errors isolate: a campaign with errors (in its own file, a knowledge item it uses, or its
    rendering) is not re-planned and keeps the items it had, and every other campaign is planned;
    the report names it (`failed`). Errors in a file every campaign depends on (channels,
    programme, stakeholder maps, templates) raise `SharedContentErrors`: nothing is planned."""
    root = root.resolve()
    result = checked or run_check(root, ledger_facts(ledger))
    failed, shared = split_errors(result)
    if shared:
        raise SharedContentErrors(shared)
    from dissemination.render import Renderer

    items, held, problems = plan_items(result.project, result.slots, Renderer(result.project), skip=set(failed))
    for problem in problems:
        if problem.severity == "error":
            failed.setdefault(_campaign_of_path(problem.path) or "", []).append(problem)
    if "" in failed:  # a rendering error outside any campaign file: a template every campaign may use
        raise SharedContentErrors(failed[""])
    items = [item for item in items if item.campaign not in failed]
    held = [h for h in held if h.campaign not in failed]
    # Partner kits are queued by `kits --send`, not by the plan: re-planning leaves them alone.
    stats = ledger.apply_plan(items, now, keep=set(failed) | {KIT_CAMPAIGN})
    calendars = [path for c in result.project.campaigns.values()
                 if c.meta.event and c.meta.status == CampaignStatus.approved and c.id not in failed
                 and (path := write_event_calendar(c, root))]
    log.info("plan: %d added, %d updated, %d unchanged, %d cancelled, %d held",
             stats.added, stats.updated, stats.unchanged, stats.cancelled, stats.held)
    for campaign, trouble in sorted(failed.items()):
        log.error("plan: campaign %s not planned, %d error(s); its previous plan stands: %s", campaign,
                  len(trouble), "; ".join(str(p) for p in trouble[:3]))
    return PlanReport(result, stats, held, calendars, failed)


CAMPAIGNS_DIR = "campaigns/"
KNOWLEDGE_DIR = "knowledge/"


def _campaign_of_path(path: str) -> str | None:
    if path.startswith(CAMPAIGNS_DIR) and path.endswith(".md") and "/" not in path[len(CAMPAIGNS_DIR):]:
        return path[len(CAMPAIGNS_DIR):-3]  # a campaign's id is its file name (check enforces it)
    return None


def split_errors(result: CheckResult) -> tuple[dict[str, list[Problem]], list[Problem]]:
    """The check's errors as (campaign id -> its errors, errors in shared files). An error in a
    knowledge item belongs to every campaign that features it; one no campaign features stops
    nothing but is still reported (as that item's)."""
    failed: dict[str, list[Problem]] = {}
    shared: list[Problem] = []
    for problem in result.problems.errors:
        campaign = _campaign_of_path(problem.path)
        if campaign is not None:
            failed.setdefault(campaign, []).append(problem)
        elif problem.path.startswith(KNOWLEDGE_DIR):
            item = Path(problem.path).stem
            users = [c.id for c in result.project.campaigns.values()
                     if item in c.meta.knowledge or any(item in p.meta.knowledge for p in c.posts)]
            for campaign in users or [problem.path]:
                failed.setdefault(campaign, []).append(problem)
        else:
            shared.append(problem)
    return failed, shared
