"""`dissemination check`: load everything, expand every schedule, render every variant, report every
problem at once."""

from __future__ import annotations

import gc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dissemination.approval import hold_reason
from dissemination.load import Project, load_project
from dissemination.load.models import CampaignStatus
from dissemination.plan.budget import budget_problems
from dissemination.plan.schedule import Slot, campaign_slots
from dissemination.problems import Problems
from dissemination.render.variants import render_problems


@dataclass
class CheckResult:
    project: Project
    problems: Problems
    slots: dict[str, list[Slot]]

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
            f"stakeholders, {contacts} e-mail contacts)",
            f"{len(p.channels)} channels",
            f"{len(p.milestones)} milestones, {len(p.targets)} targets",
        ]
        return "\n".join(parts)


def run_check(root: Path) -> CheckResult:
    # Loading builds hundreds of thousands of small objects and no reference cycles worth
    # collecting; the cyclic GC's passes over them cost ~15 % of a large check.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_check(root)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run_check(root: Path) -> CheckResult:
    project, problems = load_project(root)
    slots: dict[str, list[Slot]] = {}
    for campaign in project.campaigns.values():
        found, trouble = campaign_slots(campaign, project.knowledge)
        slots[campaign.id] = found
        problems.extend(trouble)
    problems.extend(budget_problems(project, slots))
    for campaign in project.campaigns.values():
        if campaign.meta.status == CampaignStatus.approved and campaign.meta.approved_by:
            reason = hold_reason(campaign)
            if reason:
                problems.warn(campaign.path, campaign.doc.line_of(("status",)),
                              f"items are held: {reason.split(';')[0]}", reason.split("; ", 1)[-1])
    # Render every variant: template errors and posts over their channel's limit.
    problems.extend(render_problems(project, slots))
    return CheckResult(project, problems, slots)
