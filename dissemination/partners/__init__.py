"""Endorsement: partners who pass our content on to their members (kits, partner links, reach).

    links.py  short signed links per partner and publication, and their anonymous click counts
    web.py    the /d/<code> redirect, registered by dissemination/web.py
"""
