"""Contact budgets: how often one stakeholder may be addressed per calendar month.

The budget comes from the stakeholder's power/interest quadrant (see the stakeholder map's
`contact_budget`). One post at one slot counts as one contact for every stakeholder in any of its
audiences, however many channels carry it. A campaign that sets `over_budget: <reason>` says why it
may exceed budgets and is not counted; all other campaigns together must fit.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from dissemination.load.models import CampaignStatus
from dissemination.load.project import Project
from dissemination.plan.schedule import Slot
from dissemination.problems import Problem

COUNTED = (CampaignStatus.draft, CampaignStatus.approved)


def budget_problems(project: Project, slots: dict[str, list[Slot]]) -> list[Problem]:
    members: dict[str, set[str]] = defaultdict(set)  # audience -> stakeholder ids
    for stakeholder in project.stakeholders.values():
        for audience in stakeholder.audiences:
            members[audience].add(stakeholder.id)

    # (stakeholder, month) -> campaign -> contacts
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for campaign_id, campaign_slots in slots.items():
        campaign = project.campaigns[campaign_id]
        if campaign.meta.status not in COUNTED or campaign.meta.over_budget:
            continue
        per_post_month = Counter((slot.post, slot.local.strftime("%Y-%m")) for slot in campaign_slots)
        reach: dict[str, set[str]] = {}
        for post in campaign.posts:
            audiences = post.meta.audiences or campaign.meta.audiences
            reach[post.id] = set().union(*(members[a] for a in audiences))
        for (post_id, month), n in per_post_month.items():
            for stakeholder_id in reach.get(post_id, ()):
                counts[(stakeholder_id, month)][campaign_id] += n

    # one problem per campaign and month, naming the most over-budget stakeholder
    worst: dict[tuple[str, str], tuple[int, str, int, dict[str, int], int]] = {}
    for (stakeholder_id, month), per_campaign in counts.items():
        budget = project.contact_budget(stakeholder_id)
        total = sum(per_campaign.values())
        if total <= budget:
            continue
        for campaign_id in per_campaign:
            key = (campaign_id, month)
            over = total - budget
            previous = worst.get(key)
            others = (previous[4] + 1) if previous else 0
            if previous is None or over > previous[0]:
                worst[key] = (over, stakeholder_id, budget, dict(per_campaign), others)
            else:
                worst[key] = previous[:4] + (others,)
    out = []
    for (campaign_id, month), (over, stakeholder_id, budget, per_campaign, others) in sorted(worst.items()):
        campaign = project.campaigns[campaign_id]
        stakeholder = project.stakeholders[stakeholder_id]
        total = sum(per_campaign.values())
        shared = ""
        if len(per_campaign) > 1:
            shared = " (" + ", ".join(f"{c}: {n}" for c, n in sorted(per_campaign.items())) + ")"
        more = f"; {others} more stakeholder(s) over budget that month" if others else ""
        out.append(Problem(
            campaign.path, campaign.doc.line_of(("audiences",)),
            f"{total} contacts with '{stakeholder_id}' in {month}{shared}, over its budget of "
            f"{budget} per month ({stakeholder.quadrant.label}){more}",
            "spread the posts out, or say why with 'over_budget: <reason>'",
        ))
    return out
