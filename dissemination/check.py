"""`dissemination check`: load everything, expand every schedule, render every variant, report every
problem at once."""

from __future__ import annotations

import datetime as dt
import gc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dissemination.approval import changed_sources, hold_reason
from dissemination.load import Project, load_project
from dissemination.load.models import CampaignStatus
from dissemination.plan.budget import budget_problems
from dissemination.plan.schedule import Slot, campaign_slots
from dissemination.plan.targeting import targeting_problems
from dissemination.plan.simulate import Simulation, simulate
from dissemination.problems import Problems
from dissemination.render.variants import render_problems


@dataclass
class CheckResult:
    project: Project
    problems: Problems
    slots: dict[str, list[Slot]]
    simulation: Simulation | None = None

    @property
    def ok(self) -> bool:
        return not self.problems.errors

    def summary(self) -> str:
        p = self.project
        statuses = Counter(c.meta.status.value for c in p.campaigns.values())
        status_text = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        posts = sum(len(c.posts) for c in p.campaigns.values())
        slots = sum(len(s) for s in self.slots.values())
        contacts = sum(1 for s in p.stakeholders.values() for c in s.contacts if c.email)
        parts = [
            f"{len(p.campaigns)} campaigns ({status_text or 'none'}; {posts} posts, {slots} slots)",
            f"{len(p.knowledge)} knowledge items",
            f"{len(p.maps)} stakeholder maps ({len(p.audiences)} audiences, {len(p.stakeholders)} "
            f"stakeholders{f', {len(p.partners)} partners' if p.partners else ''}, {contacts} e-mail contacts)",
            f"{len(p.channels)} channels",
            f"{len(p.milestones)} milestones, {len(p.targets)} targets",
        ]
        return "\n".join(parts)

    def limits_used(self) -> list[str]:
        """Which limits each channel whose server reports its own was checked against: read from
        its server, or declared in channels.yaml (until a publish run or `status` reads the server's)."""
        from dissemination.publish.channels.base import class_of

        lines = []
        for channel_id, config in self.project.channels.items():
            limits = class_of(config).limits_text(config)
            if limits is None:
                continue
            live = self.project.live_limits.get(channel_id)
            where = (f"read from {live.server} on {live.read_at:%Y-%m-%d %H:%M} UTC" if live else
                     "declared in channels.yaml (the server's are read by the next publish or status)")
            lines.append(f"{channel_id}: {limits}: {where}")
        return lines


def stored(root: Path) -> tuple[dict, dict[str, frozenset[str]] | None]:
    """What the ledger knows that the content does not: the limits channels' servers reported,
    and the active subscribers of each list. A check never creates a ledger: without one the
    limits are the declared ones and the subscribers unknown (None), not zero."""
    import os

    from dissemination.ledger.store import DB_URL_ENV

    if not os.environ.get(DB_URL_ENV) and not (root / ".dissemination" / "ledger.db").is_file():
        return {}, None
    from dissemination.ledger import Ledger

    ledger = Ledger.for_root(root)
    try:
        return ledger_facts(ledger)
    finally:
        ledger.close()


def ledger_facts(ledger) -> tuple[dict, dict[str, frozenset[str]]]:
    from dissemination.ledger.subscribers import Subscribers

    return ledger.live_limits(), Subscribers(ledger).by_list()


def run_check(root: Path, known: tuple | None = None, start: dt.datetime | None = None,
              end: dt.datetime | None = None, measured_rates: dict[str, float] | None = None) -> CheckResult:
    """Everything `check` reports. `known`: what the ledger knows (`ledger_facts`: the limits
    channels' servers reported, the subscribers of each list; default: the ledger's, if there is one). `start`/`end` limit the simulation (plan/simulate.py) to the slots
    in [start, end), for `plan --simulate`; `check` simulates the whole plan."""
    # Loading builds hundreds of thousands of small objects and no reference cycles worth
    # collecting; the cyclic GC's passes over them cost ~15 % of a large check.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_check(root, stored(root.resolve()) if known is None else known, start, end, measured_rates)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run_check(root: Path, known: tuple, start: dt.datetime | None, end: dt.datetime | None,
               measured_rates: dict[str, float] | None) -> CheckResult:
    live, subscribers = known
    project, problems = load_project(root, live)
    slots: dict[str, list[Slot]] = {}
    for campaign in project.campaigns.values():
        found, trouble = campaign_slots(campaign, project.knowledge)
        slots[campaign.id] = found
        problems.extend(trouble)
    problems.extend(budget_problems(project, slots))
    problems.extend(targeting_problems(project))
    for campaign in project.campaigns.values():
        if campaign.meta.status == CampaignStatus.approved and campaign.meta.approved_by:
            reason = hold_reason(campaign)
            if reason:
                problems.warn(campaign.path, campaign.doc.line_of(("status",)),
                              f"items are held: {reason.split(';')[0]}", reason.split("; ", 1)[-1])
            elif changed := changed_sources(project.root, campaign):
                problems.warn(campaign.path, campaign.doc.line_of(("status",)),
                              f"items using {', '.join(changed)} are held: changed since approval",
                              f"approve again: dissemination approve {campaign.path} --by NAME")
    from dissemination.render import Renderer

    renderer = Renderer(project)
    # Render every variant: template errors and posts over their channel's limit.
    problems.extend(render_problems(project, slots, renderer))
    # The plan played forward: collisions, quotas, empty audiences, untimed slots (plan/simulate.py).
    simulation = simulate(project, slots, renderer, start, end, measured_rates, subscribers)
    problems.extend(simulation.problems)
    return CheckResult(project, problems, slots, simulation)
