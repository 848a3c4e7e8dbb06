"""Approval that survives edits: the approved content's digest is written into the front matter.

The digest covers the campaign file except the approval keys themselves and the status (pausing
a campaign is not a content change). When the file changes afterwards, the digest no longer
matches and the campaign's items are held until it is approved again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from zoneinfo import ZoneInfo

import yaml

from dissemination.load.markdown import normalise, split_front_matter
from dissemination.load.readers import Campaign
from dissemination.load.yamlsrc import parse_yaml

APPROVAL_KEYS = ("status", "approved_by", "approved_at", "approval_digest")


def content_digest(text: str) -> str | None:
    """Digest of a campaign file's content, or None when it cannot be parsed."""
    fm, _ = split_front_matter(normalise(text), "-")
    if fm is None:
        return None
    doc, _ = parse_yaml(fm.yaml_text, "-", fm.yaml_first_line)
    if doc is None or not isinstance(doc.data, dict):
        return None
    meta = {str(k): v for k, v in doc.data.items() if k not in APPROVAL_KEYS}
    canonical = json.dumps(meta, sort_keys=True, default=str, ensure_ascii=False) + "\n" + fm.body.strip()
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def hold_reason(campaign: Campaign) -> str | None:
    """Why an approved campaign's items must be held, or None when the approval holds."""
    recorded = campaign.meta.approval_digest
    if not recorded:
        return "approved without a content digest; run: dissemination approve " + campaign.path + " --by NAME"
    if recorded != content_digest(campaign.text):
        return "changed since approval; approve again: dissemination approve " + campaign.path + " --by NAME"
    return None


def approve_text(text: str, by: str, now: dt.datetime, timezone: str) -> str:
    """The campaign file with status, approver, time and digest written into its front matter.
    Only those lines change; comments and layout of everything else are kept."""
    text = normalise(text)
    lines = text.split("\n")
    close = next(i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "..."))
    local = now.astimezone(ZoneInfo(timezone))
    values = {"status": "approved", "approved_by": by, "approved_at": local.strftime("%Y-%m-%d %H:%M")}
    front = lines[1:close]
    for key, value in list(values.items()) + [("approval_digest", None)]:
        front = _set_key(front, key, value)
    draft = "\n".join([lines[0], *front, *lines[close:]])
    digest = content_digest(draft)
    front = _set_key(front, "approval_digest", digest)
    return "\n".join([lines[0], *front, *lines[close:]])


def _set_key(front: list[str], key: str, value: object) -> list[str]:
    rendered = yaml.safe_dump({key: value}, allow_unicode=True, default_flow_style=False, width=10_000).strip()
    if value is None:
        rendered = f"{key}:"
    pattern = re.compile(rf"^{re.escape(key)}\s*:")
    for index, line in enumerate(front):
        if pattern.match(line):
            end = index + 1
            while end < len(front) and front[end][:1] in (" ", "\t") and front[end].strip():
                end += 1  # a value continued on indented lines belongs to this key
            return front[:index] + [rendered] + front[end:]
    return front + [rendered]


