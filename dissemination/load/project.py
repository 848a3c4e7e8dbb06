"""A whole content root: every file read, then every reference between files checked.

Layout under the root (all optional except what campaigns refer to):
    programme.yaml          the programme, its impact goals and milestones
    channels.yaml           channel id -> kind and settings (secrets by env variable name)
    stakeholder_maps/*.yaml audiences and stakeholders
    knowledge/**/*.md       the knowledge bank
    campaigns/**/*.md       campaigns, one post per `##` section
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING
from pathlib import Path

from dissemination.contained import OutsideRoot, inside, is_inside
from dissemination.load import models as m
from dissemination.load.readers import (
    Campaign,
    ChannelsFile,
    KnowledgeItem,
    ProgrammeFile,
    StakeholderMapFile,
    read_campaign,
    read_channels,
    read_knowledge,
    read_programme,
    read_stakeholder_map,
)
from dissemination.problems import Problem, Problems, suggest

if TYPE_CHECKING:  # the channels build on the models loaded here: imported where they are used
    from dissemination.publish.channels.base import Capabilities

PROGRAMME_FILE = "programme.yaml"
CHANNELS_FILE = "channels.yaml"


@dataclass
class Project:
    root: Path
    programme: ProgrammeFile | None = None
    channels_file: ChannelsFile | None = None
    maps: list[StakeholderMapFile] = field(default_factory=list)
    knowledge: dict[str, KnowledgeItem] = field(default_factory=dict)
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    # ids of files that exist but did not load: references to them are not reported again
    broken_knowledge: set[str] = field(default_factory=set)
    declared_channels: set[str] = field(default_factory=set)
    live_limits: dict = field(default_factory=dict)  # channel id -> ledger.LiveLimits in use
    # False when a file that declares ids could not be parsed: then references to those ids
    # cannot be judged, and reporting them all as unknown would bury the real error.
    channels_known: bool = True
    audiences_known: bool = True
    milestones_known: bool = True

    @cached_property
    def channels(self) -> dict[str, m.ChannelSettings]:
        return dict(self.channels_file.channels) if self.channels_file else {}

    @cached_property
    def audiences(self) -> dict[str, m.Audience]:
        return {a.id: a for mp in self.maps for a in mp.audiences}

    @cached_property
    def stakeholders(self) -> dict[str, m.Stakeholder]:
        return {s.id: s for mp in self.maps for s in mp.stakeholders}

    @property
    def partners(self) -> dict[str, m.Stakeholder]:
        """The stakeholders marked as partner (endorser), by id, in the order of the maps."""
        return {sid: s for sid, s in self.stakeholders.items() if s.partner is not None}

    @cached_property
    def declared_audiences(self) -> set[str]:
        return {a for mp in self.maps for a in mp.declared_audience_ids}

    @cached_property
    def milestones(self) -> dict[str, m.Milestone]:
        return {ms.id: ms for ms in self.programme.programme.milestones} if self.programme else {}

    @cached_property
    def targets(self) -> tuple[m.Target, ...]:
        return self.programme.targets if self.programme else ()

    def contact_budget(self, stakeholder_id: str) -> int:
        for mp in self.maps:
            for s in mp.stakeholders:
                if s.id == stakeholder_id:
                    return mp.contact_budget.for_quadrant(s.quadrant)
        raise KeyError(stakeholder_id)


def _read_text(rel: str, file: Path, problems: Problems) -> str | None:
    try:
        data = file.read_bytes()
    except OSError as exc:
        problems.add(rel, 1, f"cannot read the file: {exc.strerror}")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.add(rel, line, "the file is not UTF-8 text", "save it with UTF-8 encoding")
        return None


def _files(root: Path, folder: str, patterns: tuple[str, ...]) -> list[Path]:
    base = root / folder
    if not base.is_dir():
        return []
    found = {p for pattern in patterns for p in base.rglob(pattern) if p.is_file()}
    return sorted(found)


def load_channels(root: Path) -> tuple[ChannelsFile | None, Problems]:
    """Only channels.yaml: what a publisher needs, without reading the whole content root."""
    problems = Problems()
    path = root / CHANNELS_FILE
    if not path.is_file():
        problems.add(CHANNELS_FILE, 1, "no channels.yaml", "declare the channels to publish to")
        return None, problems
    text = _read_text(CHANNELS_FILE, path, problems)
    if text is None:
        return None, problems
    channels, found = read_channels(CHANNELS_FILE, text)
    problems.extend(found)
    if channels is not None:
        problems.extend(channel_path_problems(root, channels))
    return channels, problems


def channel_path_problems(root: Path, channels: ChannelsFile) -> list[Problem]:
    """The paths channels.yaml names (an outbox's `path:`, an e-mail channel's `tls_ca_file:`) stay
    inside the content root."""
    out = []
    for channel_id, config in channels.channels.items():
        for key, value in config.paths().items():
            if value:
                try:
                    inside(root, value, key)
                except OutsideRoot as exc:
                    out.append(Problem(channels.path, channels.doc.line_of((channel_id, key)), str(exc),
                                       "give a path relative to the content root"))
    return out


def apply_live_limits(project: Project, live: dict) -> None:
    """Replace the limits channels.yaml declares by those the channel's server reported (the
    ledger's `channel_limits`, written by a preflight), for channels still at that server."""
    if project.channels_file is None:
        return
    from dissemination.publish.channels.base import class_of

    channels = project.channels_file.channels
    for channel_id, limits in live.items():
        config = channels.get(channel_id)
        updated = class_of(config).with_live_limits(config, limits) if config is not None else None
        if updated is not None:
            channels[channel_id] = updated
            project.live_limits[channel_id] = limits


def load_project(root: Path, live: dict | None = None) -> tuple[Project, Problems]:
    """Read every content file under `root` and check all cross-references. `live`: channel id
    -> the limits its server reported (ledger.LiveLimits), used instead of the declared ones."""
    root = root.resolve()
    problems = Problems()
    project = Project(root)

    def read(file: Path, reader):
        rel = file.relative_to(root).as_posix()
        if not is_inside(root, file):
            problems.add(rel, 1, "the file is a symbolic link to outside the content root",
                         "copy the file into the content root instead of linking to it")
            return None
        text = _read_text(rel, file, problems)
        if text is None:
            return None
        parsed, found = reader(rel, text)
        problems.extend(found)
        return parsed

    if (root / PROGRAMME_FILE).is_file():
        project.programme = read(root / PROGRAMME_FILE, read_programme)
        project.milestones_known = project.programme is not None
    if (root / CHANNELS_FILE).is_file():
        project.channels_file = read(root / CHANNELS_FILE, read_channels)
        if project.channels_file is not None:
            project.declared_channels = {str(k) for k in project.channels_file.doc.data}
        project.channels_known = project.channels_file is not None
    if live:
        apply_live_limits(project, live)
    for file in _files(root, "stakeholder_maps", ("*.yaml", "*.yml")):
        parsed = read(file, read_stakeholder_map)
        if parsed is not None:
            project.maps.append(parsed)
        else:
            project.audiences_known = False

    def read_folder(folder: str, reader, kind: str, into: dict, broken: set[str]) -> None:
        """Markdown files whose id must match the file name and be unique across sub-folders."""
        first_path: dict[str, str] = {}
        for file in _files(root, folder, ("*.md",)):
            loaded = read(file, reader)
            if loaded is None:
                broken.add(file.stem)
                continue
            line = loaded.doc.line_of(("id",))
            if loaded.id != file.stem:
                problems.add(loaded.path, line, f"id '{loaded.id}' does not match the file name '{file.name}'",
                             f"rename the file to {loaded.id}.md or change the id")
            if loaded.id in first_path:
                problems.add(loaded.path, line, f"duplicate {kind} id '{loaded.id}'",
                             f"already used by {first_path[loaded.id]}")
                continue
            first_path[loaded.id] = loaded.path
            into[loaded.id] = loaded

    read_folder("knowledge", read_knowledge, "knowledge", project.knowledge, project.broken_knowledge)
    read_folder("campaigns", read_campaign, "campaign", project.campaigns, set())

    if not any([project.programme, project.channels_file, project.maps, project.knowledge,
                project.campaigns]) and not problems.items:
        problems.add(
            ".", 1, f"no content found in {root}",
            "run in a content root with campaigns/, knowledge/, stakeholder_maps/ and channels.yaml, "
            "or pass --root DIR",
        )
    problems.extend(check_references(project))
    return project, problems


# --- references between files ------------------------------------------------------------------


def check_references(project: Project) -> list[Problem]:
    out: list[Problem] = []
    out += _check_stakeholder_maps(project)
    out += _check_knowledge(project)
    out += _check_targets(project)
    if project.channels_file is not None:
        out += channel_path_problems(project.root, project.channels_file)
    for campaign in project.campaigns.values():
        out += _check_campaign(project, campaign)
    return out


def _unknown(kind: str, value: str, known: set[str] | dict) -> tuple[str, str]:
    close = suggest(value, known)
    if close:
        hint = f"did you mean '{close}'?"
    elif known:
        hint = f"known {kind}s: {', '.join(sorted(known)[:12])}" + (" ..." if len(known) > 12 else "")
    else:
        hint = f"no {kind}s are declared yet"
    return f"unknown {kind} '{value}'", hint


def _check_stakeholder_maps(project: Project) -> list[Problem]:
    out: list[Problem] = []
    seen_audience: dict[str, str] = {}
    seen_stakeholder: dict[str, str] = {}
    for mp in project.maps:
        for i, audience in enumerate(mp.audiences):
            line = mp.doc.line_of(("audiences", i, "id"))
            if audience.id in seen_audience:
                out.append(Problem(mp.path, line, f"duplicate audience id '{audience.id}'",
                                   f"already declared in {seen_audience[audience.id]}"))
            seen_audience.setdefault(audience.id, f"{mp.path}:{line}")
            for j, channel in enumerate(audience.channels):
                if project.channels_known and channel not in project.declared_channels:
                    msg, hint = _unknown("channel", channel, project.declared_channels)
                    out.append(Problem(mp.path, mp.doc.line_of(("audiences", i, "channels", j)), msg, hint))
    for mp in project.maps:
        addresses_in_git: list[Problem] = []  # one warning per map, at its first address
        raw_stakeholders = mp.doc.data.get("stakeholders") or []
        for i, raw in enumerate(raw_stakeholders):
            if not isinstance(raw, dict):
                continue
            sid = raw.get("id")
            stakeholder = next((s for s in mp.stakeholders if s.id == sid), None)
            if stakeholder is None:
                continue
            sid = stakeholder.id  # the same value, as the parsed map has it
            line = mp.doc.line_of(("stakeholders", i, "id"))
            if sid in seen_stakeholder:
                out.append(Problem(mp.path, line, f"duplicate stakeholder id '{sid}'",
                                   f"already declared at {seen_stakeholder[sid]}"))
                continue
            seen_stakeholder[sid] = f"{mp.path}:{line}"
            for j, audience_id in enumerate(stakeholder.audiences):
                if project.audiences_known and audience_id not in project.declared_audiences:
                    msg, hint = _unknown("audience", audience_id, project.declared_audiences)
                    out.append(Problem(mp.path, mp.doc.line_of(("stakeholders", i, "audiences", j)), msg, hint))
            seen_email: set[str] = set()
            for j, contact in enumerate(stakeholder.contacts):
                where = ("stakeholders", i, "contacts", j)
                if contact.invite is not None and project.audiences_known \
                        and contact.invite not in project.declared_audiences:
                    msg, hint = _unknown("audience", contact.invite, project.declared_audiences)
                    out.append(Problem(mp.path, mp.doc.line_of(where + ("invite",)), f"invite: {msg}", hint))
                if contact.email is None:
                    continue
                # A partner's kit contact is the organisation's role address, not a subscriber.
                if not addresses_in_git and contact is not stakeholder.kit_contact:
                    addresses_in_git.append(Problem(
                        mp.path, mp.doc.line_of(where + ("email",)),
                        "e-mail addresses of people are in git; newsletters no longer read them from the map",
                        "move them into the subscriber database once with `dissemination subscribers import-contacts` "
                        "(their consent records go with them), then delete the email, consent and tracking lines",
                        "warning"))
                if contact.consent is None:
                    out.append(Problem(
                        mp.path, mp.doc.line_of(where + ("email",)),
                        f"e-mail contact {contact.email} has no consent record",
                        "add consent: {source: ..., date: YYYY-MM-DD}, or remove the contact: "
                        "we never mail without consent",
                    ))
                if contact.email.lower() in seen_email:
                    out.append(Problem(mp.path, mp.doc.line_of(where + ("email",)),
                                       f"contact {contact.email} is listed twice for '{sid}'"))
                seen_email.add(contact.email.lower())
            if stakeholder.partner is not None:
                out += _check_partner(project, mp, i, stakeholder)
        out += addresses_in_git
    return out


def _check_partner(project: Project, mp: StakeholderMapFile, i: int, stakeholder: m.Stakeholder) -> list[Problem]:
    """A partner's audiences exist, and its kit goes to one of its contacts, who agreed to mail."""
    out: list[Problem] = []
    partner = stakeholder.partner
    assert partner is not None
    where = ("stakeholders", i, "partner")
    for j, audience_id in enumerate(partner.audiences):
        if project.audiences_known and audience_id not in project.declared_audiences:
            msg, hint = _unknown("audience", audience_id, project.declared_audiences)
            out.append(Problem(mp.path, mp.doc.line_of(where + ("audiences", j)), msg, hint))
    roles = [c.role for c in stakeholder.contacts if c.role]
    contact = stakeholder.kit_contact
    line = mp.doc.line_of(where + ("contact_role",))
    if contact is None:
        close = suggest(partner.contact_role, roles)
        hint = (f"did you mean '{close}'?" if close else
                f"the roles of its contacts are: {', '.join(roles)}" if roles else
                "add the contact who receives the kit under contacts, with this role")
        out.append(Problem(mp.path, line, f"partner '{stakeholder.id}' has no contact with the role "
                           f"'{partner.contact_role}' to send its kit to", hint))
    elif contact.email is None:
        out.append(Problem(mp.path, line, f"the kit contact of partner '{stakeholder.id}' has no e-mail address",
                           "add the organisation's role address (e.g. redactie@…) as email: to that contact"))
    elif contact.consent is None:
        out.append(Problem(mp.path, line, f"the kit contact of partner '{stakeholder.id}' has no consent record",
                           "add consent: {source: ..., date: YYYY-MM-DD} to that contact"))
    return out


def _check_targets(project: Project) -> list[Problem]:
    out: list[Problem] = []
    if project.programme is None:
        return out
    doc, path = project.programme.doc, project.programme.path
    raw_targets = doc.data.get("targets") or []
    known = {"audiences": (project.declared_audiences, project.audiences_known, "audience"),
             "channels": (project.declared_channels, project.channels_known, "channel"),
             "campaigns": (set(project.campaigns), True, "campaign"),
             "milestones": (set(project.milestones), True, "milestone")}
    first_line: dict[str, int] = {}
    for i, raw in enumerate(raw_targets if isinstance(raw_targets, list) else []):
        try:
            target = m.Target.model_validate(raw)
        except ValueError:
            continue  # reported by the reader
        line = doc.line_of(("targets", i, "id"))
        if target.id in first_line:
            out.append(Problem(path, line, f"duplicate target id '{target.id}'",
                               f"already used at line {first_line[target.id]}"))
            continue
        first_line[target.id] = line
        for key, (ids, judged, kind) in known.items():
            for j, value in enumerate(getattr(target, key)):
                if judged and value not in ids:
                    msg, hint = _unknown(kind, value, ids)
                    out.append(Problem(path, doc.line_of(("targets", i, key, j)), msg, hint))
    return out


def _check_knowledge(project: Project) -> list[Problem]:
    out: list[Problem] = []
    for item in project.knowledge.values():
        for j, audience_id in enumerate(item.meta.audiences):
            if project.audiences_known and audience_id not in project.declared_audiences:
                msg, hint = _unknown("audience", audience_id, project.declared_audiences)
                out.append(Problem(item.path, item.doc.line_of(("audiences", j)), msg, hint))
        image = item.meta.image
        if image and not image.lower().startswith(("http://", "https://")):
            out += image_problems(project.root, item.path, item.doc.line_of, image, item.meta.image_alt,
                                  "or a https:// address", alt_limit(project), image_limit(project),
                                  refused_types(project))
    return out


def alt_limit(project: Project) -> tuple[int, str] | None:
    """The shortest alt text a channel accepts (live, else declared), and its channel."""
    limits = [(c.alt_length, cid) for cid, c in _capabilities(project).items()
              if c.max_images and c.alt_length is not None]
    return min(limits) if limits else None


def image_limit(project: Project) -> tuple[int, str] | None:
    """The largest image file every channel that posts images takes, and the kind that limits it."""
    limits = [(c.image_bytes, c.label) for c in _capabilities(project).values()
              if c.max_images and c.image_bytes is not None]
    return min(limits) if limits else None


def refused_types(project: Project) -> dict[str, str]:
    """Image types (MIME) some channel that posts images does not take, and which kind that is."""
    out: dict[str, str] = {}
    for caps in _capabilities(project).values():
        if caps.max_images and caps.image_types:
            out |= {t: caps.label for t in set(m.IMAGE_TYPES.values()) - set(caps.image_types) if t not in out}
    return out


def _megabytes(size: int) -> str:
    return f"{size // 2**20} MB" if size % 2**20 == 0 else f"{size / 1e6:g} MB"


def _capabilities(project: Project) -> dict[str, Capabilities]:
    from dissemination.publish.channels.base import capabilities_of

    return {cid: capabilities_of(c) for cid, c in project.channels.items()}


def image_problems(root: Path, path: str, line_of, image: str, alt: str | None,
                   remote: str = "", alt_max: tuple[int, str] | None = None,
                   size_max: tuple[int, str] | None = None, refused: dict[str, str] | None = None) -> list[Problem]:
    """A local image must be a file under the content root, of a type and size a social channel
    takes, with alt text it accepts (`alt_max`: see `alt_limit`; the instance is asked again when
    posting)."""
    line = line_of(("image",))
    hint = f"give a path relative to the content root{' ' + remote if remote else ''}"
    try:
        file = inside(root, image, "image")
    except OutsideRoot as exc:
        return [Problem(path, line, str(exc), hint)]
    if not file.is_file():
        return [Problem(path, line, f"image file '{image}' not found", hint)]
    out = [] if alt else [Problem(path, line, m.ALT_MISSING, m.ALT_HINT)]
    if file.suffix.lower() not in m.IMAGE_TYPES:
        out.append(Problem(path, line, f"image '{image}' is not a JPEG, PNG, GIF or WebP file",
                           "convert it, e.g. to .jpg or .png"))
    elif refused and m.IMAGE_TYPES[file.suffix.lower()] in refused:
        out.append(Problem(path, line, f"image '{image}' is a {m.IMAGE_TYPES[file.suffix.lower()]} file, which "
                           f"{refused[m.IMAGE_TYPES[file.suffix.lower()]]} does not take", "convert it, e.g. to .jpg"))
    size = file.stat().st_size
    if size_max and size > size_max[0]:
        out.append(Problem(path, line, f"image '{image}' is {size / 2**20:.1f} MB, over the "
                           f"{_megabytes(size_max[0])} {size_max[1]} accepts", "make it smaller"))
    if alt and alt_max and len(alt) > alt_max[0]:
        out.append(Problem(path, line_of(("image_alt",)), f"image_alt is {len(alt)} characters, over the "
                           f"{alt_max[0]} channel '{alt_max[1]}' accepts", "describe the image more briefly"))
    return out


def _check_campaign(project: Project, campaign: Campaign) -> list[Problem]:
    out: list[Problem] = []
    meta, doc, path = campaign.meta, campaign.doc, campaign.path

    def ref(kind: str, values: list[str], key: str, known, skip=frozenset()) -> bool:
        """Report unknown references; True when all of them are known."""
        all_known = True
        for j, value in enumerate(values):
            if value not in known and value not in skip:
                msg, hint = _unknown(kind, value, known)
                out.append(Problem(path, doc.line_of((key, j)), msg, hint))
                all_known = False
        return all_known

    audiences_ok = not project.audiences_known or ref(
        "audience", meta.audiences, "audiences", project.declared_audiences)
    channels_ok = not project.channels_known or ref(
        "channel", meta.channels, "channels", project.declared_channels)
    ref("knowledge item", meta.knowledge, "knowledge", set(project.knowledge), project.broken_knowledge)
    if meta.milestones and project.programme is None and project.milestones_known:
        out.append(Problem(path, doc.line_of(("milestones",)), "milestones are referenced but there is no "
                           "programme.yaml", "declare the milestones in programme.yaml"))
    elif project.programme is not None:
        ref("milestone", meta.milestones, "milestones", set(project.milestones))

    if meta.status == m.CampaignStatus.approved:
        for key in ("approved_by", "approved_at"):
            if not getattr(meta, key):
                out.append(Problem(path, doc.line_of(("status",)), f"approved campaign without {key}",
                                   "approve it with: dissemination approve " + path + " --by NAME"))

    audiences, channels = set(meta.audiences), set(meta.channels)
    seen_posts: dict[str, int] = {}
    for post in campaign.posts:
        if post.id in seen_posts:
            out.append(Problem(path, post.line, f"duplicate post id '{post.id}' (first at line "
                               f"{seen_posts[post.id]})", "give the post another title or an 'id:'"))
        seen_posts.setdefault(post.id, post.line)
        # When the campaign's own list has a typo, comparing posts against it only adds noise.
        subsets = [("audiences", audiences, "audience")] if audiences_ok else []
        subsets += [("channels", channels, "channel")] if channels_ok else []
        for key, allowed, kind in subsets:
            for j, value in enumerate(getattr(post.meta, key)):
                if value not in allowed:
                    out.append(Problem(path, post.line_of((key, j)),
                                       f"post targets {kind} '{value}', which is not one of the campaign's {key}",
                                       f"add it to the campaign's {key} or remove it here"))
        if post.meta.image:
            out += image_problems(project.root, path, post.line_of, post.meta.image, post.meta.image_alt,
                                  alt_max=alt_limit(project), size_max=image_limit(project),
                                  refused=refused_types(project))
        for j, value in enumerate(post.meta.knowledge):
            if value not in project.knowledge and value not in project.broken_knowledge:
                msg, hint = _unknown("knowledge item", value, set(project.knowledge))
                out.append(Problem(path, post.line_of(("knowledge", j)), msg, hint))
        post_channels = set(post.meta.channels or meta.channels)
        post_audiences = set(post.meta.audiences or meta.audiences)
        for variant in post.variants if audiences_ok and channels_ok else ():
            targets = list(variant.targets)
            unknown = [t for t in targets if t not in post_channels | post_audiences]
            if unknown:
                out.append(Problem(path, variant.line, f"variant for '{unknown[0]}', which is not a channel or "
                                   "audience of this post", f"use one of: {', '.join(sorted(post_channels | post_audiences))}"))
            elif sum(t in post_channels for t in targets) > 1 or sum(t in post_audiences for t in targets) > 1:
                out.append(Problem(path, variant.line, "a variant names at most one channel and one audience",
                                   "e.g. '### variant: linkedin mkb'"))
        out += _ambiguous_variants(campaign, post, post_channels, post_audiences)
    if meta.cadence is not None and meta.cadence.post not in seen_posts:
        msg, hint = _unknown("post", meta.cadence.post, set(seen_posts))
        out.append(Problem(path, doc.line_of(("cadence", "post")), f"cadence uses {msg}", hint))
    return out


def _ambiguous_variants(campaign: Campaign, post, channels: set[str], audiences: set[str]) -> list[Problem]:
    """Two variants for the same targets is an error; a channel variant and an audience variant
    that both apply to one channel + audience is a warning, since only one of them can be used."""
    out: list[Problem] = []
    seen: dict[frozenset[str], int] = {}
    for variant in post.variants:
        key = frozenset(variant.targets)
        if key in seen:
            out.append(Problem(campaign.path, variant.line, f"a second variant for {' '.join(sorted(key))} "
                               f"(the first is at line {seen[key]})", "merge the two texts"))
        seen.setdefault(key, variant.line)
    for channel in sorted(channels):
        for audience in sorted(audiences):
            applying = [v for v in post.variants if v.applies_to(channel, audience)]
            if any(len(v.targets) == 2 for v in applying):
                continue
            singles = [v for v in applying if len(v.targets) == 1]
            if len({v.targets for v in singles}) > 1:
                first, second = singles[0], next(v for v in singles if v.targets != singles[0].targets)
                out.append(Problem(
                    campaign.path, second.line,
                    f"for {channel} and {audience} both variant '{first.targets[0]}' (line {first.line}) and "
                    f"'{second.targets[0]}' apply; the first is used",
                    f"add '### variant: {channel} {audience}' to say which text they get", "warning"))
    return out
