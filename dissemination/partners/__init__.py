"""Endorsement: partners who pass our content on to their members (kits, partner links, reach).

    links.py  short signed links per partner and publication, and their anonymous click counts
    web.py    the /d/<code> redirect, registered by dissemination/web.py
    kits.py   the kit pages per partner and period, and their e-mail through the ledger
"""

# The ledger's campaign name for kits queued by `kits --send` (one item per partner and period):
# not a campaign in the content, so re-planning must leave these items alone.
KIT_CAMPAIGN = "partnerkits"
