"""Approval that survives edits: the approved content's digest is written into the front matter.

The digest covers the campaign file except the approval keys themselves and the status (pausing
a campaign is not a content change). When the file changes afterwards, the digest no longer
matches and the campaign's items are held until it is approved again.

What the posts print comes from more than the campaign file: the knowledge items they feature,
the templates of their channels and the images posted with them. `approve` records each of
those files with its digest (`approved_sources`, itself covered by the digest); the planner
records per item what it was rendered from, and an item one of whose sources changed (or is new)
is held, naming the file, until the campaign is approved again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from dissemination.load.markdown import normalise, split_front_matter
from dissemination.load.readers import Campaign
from dissemination.load.yamlsrc import parse_yaml
from dissemination.problems import Problem

APPROVAL_KEYS = ("status", "approved_by", "approved_at", "approval_digest")
SOURCES_KEY = "approved_sources"


def content_digest(text: str) -> str | None:
    """Digest of a campaign file's content, or None when it cannot be parsed."""
    fm, _ = split_front_matter(normalise(text), "-")
    if fm is None:
        return None
    doc, _ = parse_yaml(fm.yaml_text, "-", fm.yaml_first_line)
    if doc is None or not isinstance(doc.data, dict):
        return None
    meta = _str_keys({k: v for k, v in doc.data.items() if k not in APPROVAL_KEYS})
    canonical = json.dumps(meta, sort_keys=True, default=str, ensure_ascii=False) + "\n" + fm.body.strip()
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _str_keys(value):
    """YAML keys may be numbers, dates or null beside strings (`0E0:`); JSON sorts only strings."""
    if isinstance(value, dict):
        return {str(k): _str_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_str_keys(v) for v in value]
    return value


def _again(campaign: Campaign) -> str:
    return "approve again: dissemination approve " + campaign.path + " --by NAME"


def hold_reason(campaign: Campaign) -> str | None:
    """Why an approved campaign's items must be held, or None when the approval holds."""
    recorded = campaign.meta.approval_digest
    if not recorded:
        return "approved without a content digest; run: dissemination approve " + campaign.path + " --by NAME"
    if recorded != content_digest(campaign.text):
        return "changed since approval; " + _again(campaign)
    if campaign.meta.approved_sources is None:
        return ("approved before approval covered the knowledge items, templates and images its posts use; "
                + _again(campaign))
    return None


def file_digest(root: Path, path: str) -> str | None:
    """Digest of a content file's bytes, or None when it does not exist."""
    try:
        data = (root / path).read_bytes()
    except OSError:
        return None
    return "sha256:" + hashlib.sha256(data).hexdigest()[:24]


class SourceDigests:
    """Digests of the files items are rendered from, each file read once per run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._found: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path not in self._found:
            self._found[path] = file_digest(self.root, path)
        return self._found[path]

    def of(self, paths: "tuple[str, ...] | list[str]") -> dict[str, str | None]:
        return {p: self(p) for p in paths}


def sources_hold_reason(campaign: Campaign, used: dict[str, str | None]) -> str | None:
    """Why an item rendered from `used` (path -> digest now) must be held: a source changed,
    disappeared or was not there at approval. None when the approval covers all of them."""
    approved = campaign.meta.approved_sources
    if approved is None:
        return None  # hold_reason says so for the whole campaign
    changed = [p for p, digest in used.items() if p in approved and approved[p] != digest]
    new = [p for p in used if p not in approved]
    if not changed and not new:
        return None
    parts = ([f"{', '.join(changed)} changed since approval"] if changed else []) + (
        [f"{', '.join(new)} not covered by the approval"] if new else [])
    return " and ".join(parts) + "; " + _again(campaign)


def changed_sources(root: Path, campaign: Campaign) -> list[str]:
    """The recorded sources of an approved campaign that changed or disappeared since approval."""
    digests = SourceDigests(root)
    return [p for p, d in (campaign.meta.approved_sources or {}).items() if digests(p) != d]


def approve_text(text: str, by: str, now: dt.datetime, timezone: str,
                 sources: dict[str, str | None] | None = None) -> str:
    """The campaign file with status, approver, time, the sources its posts are rendered from
    and the digest written into its front matter. Only those lines change; comments and layout
    of everything else are kept."""
    text = normalise(text)
    lines = text.split("\n")
    close = next(i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "..."))
    local = now.astimezone(ZoneInfo(timezone))
    values: dict[str, object] = {"status": "approved", "approved_by": by,
                                 "approved_at": local.strftime("%Y-%m-%d %H:%M")}
    if sources is not None:
        values[SOURCES_KEY] = {p: d for p, d in sorted(sources.items()) if d is not None}
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
    elif value == {}:
        rendered = f"{key}: {{}}"
    pattern = re.compile(rf"^{re.escape(key)}\s*:")
    for index, line in enumerate(front):
        if pattern.match(line):
            end = index + 1
            while end < len(front) and front[end][:1] in (" ", "\t") and front[end].strip():
                end += 1  # a value continued on indented lines belongs to this key
            return front[:index] + [rendered] + front[end:]
    return front + [rendered]




class NotApproved(Exception):
    """The campaign was not approved: `problems` are its errors (none when the file is not a
    campaign of this content root)."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Approval:
    path: str  # relative to the content root
    digest: str | None
    sources: int  # knowledge items, templates and images its posts use


def approve_campaign(root: Path, path: Path, by: str, now: dt.datetime) -> Approval:
    """Approve the campaign file `path` by `by` at `now`: only a campaign without errors of its
    own; the approval covers what its posts print besides the file (knowledge items, templates,
    images). The file is rewritten whole or not at all."""
    from dissemination.check import run_check
    from dissemination.files import write_atomically
    from dissemination.plan.planner import campaign_sources
    from dissemination.render import Renderer

    result = run_check(root)
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    own = [p for p in result.problems.errors if p.path == rel]
    if own:
        raise NotApproved(f"{rel} has {len(own)} error(s)", own)
    loaded = next((c for c in result.project.campaigns.values() if c.path == rel), None)
    if loaded is None:
        raise NotApproved(f"{rel} is not a campaign under {root}/campaigns")
    sources = campaign_sources(result.project, loaded, result.slots.get(loaded.id, []), Renderer(result.project),
                               SourceDigests(result.project.root))
    text = approve_text(path.read_text(encoding="utf-8"), by, now, loaded.meta.timezone, sources)
    write_atomically(path, text)
    return Approval(rel, content_digest(text), len(sources))
