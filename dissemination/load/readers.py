"""Readers: one per kind of content file, each `text -> (model or None, problems)`.

A reader never raises for bad content. It reports every problem it can find in its file with the
file line, so the checker can show all of them at once.
"""

from __future__ import annotations

import re

import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dissemination.load import models as m
from dissemination.load.markdown import normalise, split_front_matter, split_posts
from dissemination.load.yamlsrc import YamlDoc, parse_yaml
from dissemination.problems import Problem, suggest

M = TypeVar("M", bound=BaseModel)


# --- turning validation errors into problems ---------------------------------------------------


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, to list its allowed keys."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _inner_model(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _key_of(loc: tuple[Any, ...]) -> str:
    for part in reversed(loc):
        if isinstance(part, str) and not part.startswith(("function-", "[")):
            return part
    return "value"


def _describe(err: Any, model: type[BaseModel]) -> tuple[str, str | None]:
    kind, ctx, loc = err["type"], err.get("ctx") or {}, tuple(err["loc"])
    key = _key_of(loc)
    if kind == "content":
        return ctx["message"], ctx.get("hint")
    if kind == "missing":
        return f"missing required key '{key}'", f"add a line '{key}: ...'"
    if kind == "extra_forbidden":
        if key in m.SECRET_KEYS:
            return (
                f"'{key}' would put a secret in the repository",
                "remove it and name the environment variable instead, e.g. token_env: MASTODON_TOKEN",
            )
        owner = _model_at(model, loc[:-1])
        allowed = sorted(owner.model_fields) if owner else []
        close = suggest(key, allowed)
        hint = f"did you mean '{close}'?" if close else (
            f"allowed keys: {', '.join(allowed)}" if allowed else None
        )
        return f"unknown key '{key}'", hint
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"'{key}' must be one of: {expected}", None
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"'{key}' must be a whole number", None
    if kind == "greater_than_equal":
        return f"'{key}' must be at least {ctx.get('ge')}", None
    if kind == "less_than_equal":
        return f"'{key}' must be at most {ctx.get('le')}", None
    if kind in ("too_short", "string_too_short"):
        return f"'{key}' must not be empty", None
    if kind.startswith("date_") or kind == "date_type":
        return f"'{key}' must be a date", "write it as YYYY-MM-DD, e.g. 2026-03-01"
    if kind.startswith("datetime_"):
        return f"'{key}' must be a date and time", "write it as YYYY-MM-DD HH:MM, e.g. 2026-03-03 09:30"
    if kind == "string_type":
        return f"'{key}' must be text", "put quotes around it if it looks like a number or date"
    if kind in ("list_type", "tuple_type"):
        return f"'{key}' must be a list", "e.g. [a, b], or one '- item' per line"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"'{key}' must be a set of 'key: value' lines", None
    if kind in ("bool_type", "bool_parsing"):
        return f"'{key}' must be true or false", None
    if kind == "string_pattern_mismatch":
        return f"'{key}' has the wrong form", f"it must match {ctx.get('pattern')}"
    if kind == "recursion_loop":
        return "the YAML refers to itself (anchor/alias loop)", "remove the alias"
    return f"'{key}': {err['msg']}", None


def _without_invalid(model: type[M], data: Any, rounds: int = 3) -> M | None:
    """`data` validated without the keys and list items that fail, if what remains is valid."""
    if not isinstance(data, dict):
        return None
    trimmed: Any = {k: (list(v) if isinstance(v, list) else v) for k, v in data.items()}
    for _ in range(rounds):
        try:
            return model.model_validate(trimmed)
        except ValidationError as exc:
            doomed: dict[str, set[int]] = {}
            for err in exc.errors(include_url=False, include_input=False):
                loc = tuple(err["loc"])
                if len(loc) == 1 and err["type"] == "missing":  # written under a misspelt key?
                    typo = next((k for k in trimmed if k not in model.model_fields and suggest(k, [loc[0]])), None)
                    if typo is None:
                        return None
                    trimmed[loc[0]] = trimmed.pop(typo)
                    continue
                if err["type"] == "extra_forbidden" and len(loc) == 1:
                    trimmed.pop(loc[0], None)  # reported already; perhaps renamed above
                    continue
                if not loc or not isinstance(loc[0], str) or loc[0] not in trimmed:
                    return None
                if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(trimmed[loc[0]], list):
                    doomed.setdefault(loc[0], set()).add(loc[1])
                else:
                    doomed[loc[0]] = set()
            for key, indexes in doomed.items():
                if key in model.model_fields and key not in trimmed:
                    continue  # just renamed from a misspelt key: validated again in the next round
                if indexes and key in trimmed:
                    trimmed[key] = [v for j, v in enumerate(trimmed[key]) if j not in indexes]
                else:
                    trimmed.pop(key, None)
    return None


def validate(model: type[M], data: Any, doc: YamlDoc, path: str, loc: tuple[Any, ...] = ()) -> tuple[M | None, list[Problem]]:
    """Validate `data` (found at `loc` inside `doc`) and locate every error in the file."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        errors = exc.errors(include_url=False, include_input=False)
        # A misspelt key shows up twice: unknown 'titel' and missing 'title'. Report it once.
        typo_targets = set()
        for err in errors:
            if err["type"] == "extra_forbidden":
                owner = _model_at(model, tuple(err["loc"])[:-1])
                close = suggest(err["loc"][-1], owner.model_fields if owner else [])
                if close:
                    typo_targets.add(tuple(err["loc"])[:-1] + (close,))
        for err in errors:
            if err["type"] == "missing" and tuple(err["loc"]) in typo_targets:
                continue
            where = loc + tuple(err["loc"])
            message, hint = _describe(err, model)
            problems.append(Problem(path, doc.line_of(where), message, hint))
        return None, problems


# --- the content objects readers produce ---------------------------------------------------------


@dataclass(frozen=True)
class KnowledgeItem:
    path: str
    meta: m.KnowledgeMeta
    body: str
    doc: YamlDoc

    @property
    def id(self) -> str:
        return self.meta.id


@dataclass(frozen=True)
class Variant:
    """Text that replaces the post's text where every target (a channel or audience id) applies."""

    targets: tuple[str, ...]
    text: str
    line: int

    def applies_to(self, channel: str, audience: str) -> bool:
        return bool(self.targets) and set(self.targets) <= {channel, audience}


@dataclass(frozen=True)
class Post:
    id: str
    title: str
    line: int
    meta: m.PostMeta
    meta_doc: YamlDoc | None
    text: str
    text_line: int
    variants: tuple[Variant, ...]

    def line_of(self, loc: tuple[Any, ...]) -> int:
        return self.meta_doc.line_of(loc) if self.meta_doc else self.line

    def text_for(self, channel: str, audience: str) -> str:
        """The most specific text: a channel+audience variant, then either, then the post text."""
        matching = [v for v in self.variants if v.applies_to(channel, audience)]
        if not matching:
            return self.text
        return max(matching, key=lambda v: len(v.targets)).text


@dataclass(frozen=True)
class Campaign:
    path: str
    meta: m.CampaignMeta
    intro: str
    posts: tuple[Post, ...]
    doc: YamlDoc
    text: str  # the whole file, for approval digests

    @property
    def id(self) -> str:
        return self.meta.id

    def post(self, post_id: str) -> Post | None:
        return next((p for p in self.posts if p.id == post_id), None)


@dataclass(frozen=True)
class StakeholderMapFile:
    path: str
    audiences: tuple[m.Audience, ...]
    stakeholders: tuple[m.Stakeholder, ...]
    contact_budget: m.ContactBudget
    doc: YamlDoc
    # ids written in the file, valid or not, so one bad entry does not cascade into
    # "unknown audience" errors everywhere else
    declared_audience_ids: frozenset[str]


@dataclass(frozen=True)
class ChannelsFile:
    path: str
    channels: dict[str, m.ChannelSettings]
    doc: YamlDoc


@dataclass(frozen=True)
class ProgrammeFile:
    path: str
    programme: m.Programme
    doc: YamlDoc
    targets: tuple[m.Target, ...] = ()


# --- readers -----------------------------------------------------------------------------------


def _front_matter_doc(text: str, path: str) -> tuple[YamlDoc | None, Any, list[Problem]]:
    fm, problems = split_front_matter(normalise(text), path)
    if fm is None:
        return None, None, problems
    doc, problems = parse_yaml(fm.yaml_text, path, fm.yaml_first_line)
    if doc is not None and not isinstance(doc.data, dict):
        problems.append(
            Problem(path, fm.yaml_first_line, "front matter must be 'key: value' lines", None)
        )
        doc = None
    return doc, fm, problems


def _yaml_file(text: str, path: str) -> tuple[YamlDoc | None, list[Problem]]:
    doc, problems = parse_yaml(normalise(text), path)
    if doc is not None and doc.data is None:
        doc.data = {}
    if doc is not None and not isinstance(doc.data, dict):
        return None, problems + [Problem(path, 1, "expected 'key: value' lines at the top level")]
    return doc, problems


def read_knowledge(path: str, text: str) -> tuple[KnowledgeItem | None, list[Problem]]:
    doc, fm, problems = _front_matter_doc(text, path)
    if doc is None:
        return None, problems
    meta, invalid = validate(m.KnowledgeMeta, doc.data, doc, path)
    problems += invalid
    if meta is None:
        return None, problems
    return KnowledgeItem(path, meta, fm.body.strip(), doc), problems


def _slug(title: str) -> str:
    import unicodedata

    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:64].rstrip("-") or "post"


def read_campaign(path: str, text: str) -> tuple[Campaign | None, list[Problem]]:
    doc, fm, problems = _front_matter_doc(text, path)
    if doc is None:
        return None, problems
    meta, invalid = validate(m.CampaignMeta, doc.data, doc, path)
    problems += invalid
    if meta is None:
        # One bad field must not hide the cross-reference errors of the others: without the values
        # already reported, the rest is checked too (nothing is planned while errors remain).
        meta = _without_invalid(m.CampaignMeta, doc.data)
    body = split_posts(fm.body, fm.body_first_line)
    posts: list[Post] = []
    for raw in body.posts:
        post_meta, meta_doc = m.PostMeta(), None
        if raw.meta_text:
            meta_doc, yaml_problems = parse_yaml(raw.meta_text, path, raw.meta_first_line)
            problems += yaml_problems
            if meta_doc is not None:
                if not isinstance(meta_doc.data, dict):
                    problems.append(Problem(path, raw.meta_first_line, "post keys must be 'key: value' lines"))
                else:
                    validated, invalid = validate(m.PostMeta, meta_doc.data, meta_doc, path)
                    problems += invalid
                    post_meta = validated or post_meta
        if not raw.title:
            problems.append(Problem(path, raw.line, "post heading has no title", "write a title after '## '"))
        if not raw.text and not raw.variants:
            problems.append(
                Problem(path, raw.line, f"post '{raw.title}' has no text", "write the post text under its heading")
            )
        variants = []
        for v in raw.variants:
            if not v.targets:
                problems.append(
                    Problem(path, v.line, "variant names no channel or audience", "e.g. '### variant: linkedin mkb'")
                )
            if not v.text:
                problems.append(Problem(path, v.line, "variant has no text", "write its text under the heading"))
            variants.append(Variant(v.targets, v.text, v.line))
        posts.append(
            Post(
                id=post_meta.id or _slug(raw.title),
                title=raw.title,
                line=raw.line,
                meta=post_meta,
                meta_doc=meta_doc,
                text=raw.text,
                text_line=raw.text_line,
                variants=tuple(variants),
            )
        )
    if meta is None:
        return None, problems
    return Campaign(path, meta, body.intro, tuple(posts), doc, normalise(text)), problems



def _yaml_model(model: type[M], path: str, text: str) -> tuple[YamlDoc | None, M | None, list[Problem]]:
    """A YAML file validated as `model` at its top level."""
    doc, problems = _yaml_file(text, path)
    if doc is None:
        return None, None, problems
    parsed, invalid = validate(model, doc.data, doc, path)
    return doc, parsed, problems + invalid


def _each(model: type[M], raws: list[Any], doc: YamlDoc, path: str, key: str,
          problems: list[Problem]) -> list[M]:
    """Entries of the list under `key`, validated one by one: one bad entry hides no other."""
    valid = []
    for index, raw in enumerate(raws):
        entry, invalid = validate(model, raw, doc, path, (key, index))
        problems += invalid
        if entry is not None:
            valid.append(entry)
    return valid


def read_stakeholder_map(path: str, text: str) -> tuple[StakeholderMapFile | None, list[Problem]]:
    doc, shell, problems = _yaml_model(m.StakeholderMapShell, path, text)
    if doc is None or shell is None:
        return None, problems
    audiences = _each(m.Audience, shell.audiences, doc, path, "audiences", problems)
    stakeholders = _each(m.Stakeholder, shell.stakeholders, doc, path, "stakeholders", problems)
    declared = frozenset(
        a["id"] for a in shell.audiences if isinstance(a, dict) and isinstance(a.get("id"), str)
    )
    return (
        StakeholderMapFile(path, tuple(audiences), tuple(stakeholders), shell.contact_budget, doc, declared),
        problems,
    )


def read_channels(path: str, text: str) -> tuple[ChannelsFile | None, list[Problem]]:
    doc, problems = _yaml_file(text, path)
    if doc is None:
        return None, problems
    # The kinds are the channel modules (dissemination/publish/channels/<kind>.py); imported here,
    # not at the top, since they build on this package's models.
    from dissemination.publish.channels.base import kinds, settings_model

    channels: dict[str, m.ChannelSettings] = {}
    for channel_id, settings in doc.data.items():
        line = doc.line_of((channel_id,))
        if not isinstance(channel_id, str) or not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", channel_id):
            problems.append(
                Problem(path, line, f"'{channel_id}' is not a valid channel id",
                        "use lower-case letters, digits, '-' and '_'")
            )
            continue
        if not isinstance(settings, dict):
            problems.append(Problem(path, line, f"channel '{channel_id}' must be a set of 'key: value' lines"))
            continue
        kind = settings.get("kind")
        model = settings_model(kind) if isinstance(kind, str) else None
        if model is None:
            where = doc.line_of((channel_id, "kind")) if "kind" in settings else line
            what = "has no 'kind'" if kind is None else f"has unknown kind '{kind}'"
            close = suggest(kind, kinds()) if isinstance(kind, str) else None
            problems.append(
                Problem(path, where, f"channel '{channel_id}' {what}",
                        (f"did you mean '{close}'? " if close else "") + f"kind is one of: {', '.join(kinds())}")
            )
            continue
        channel, invalid = validate(model, settings, doc, path, (channel_id,))
        problems += invalid
        if isinstance(channel, m.ChannelSettings):
            channels[channel_id] = channel
            for at, message, hint, severity in channel.problems(channel_id):
                problems.append(Problem(path, doc.line_of(at), message, hint, severity))
    return ChannelsFile(path, channels, doc), problems


def read_programme(path: str, text: str) -> tuple[ProgrammeFile | None, list[Problem]]:
    doc, programme, problems = _yaml_model(m.Programme, path, text)
    if doc is None or programme is None:
        return None, problems
    # Targets one by one: a wrong target must not hide the milestones campaigns refer to.
    targets = _each(m.Target, programme.targets, doc, path, "targets", problems)
    return ProgrammeFile(path, programme, doc, tuple(targets)), problems


READERS = {
    "knowledge": read_knowledge,
    "campaign": read_campaign,
    "stakeholder_map": read_stakeholder_map,
    "channels": read_channels,
    "programme": read_programme,
}

__all__ = ["READERS", "Campaign", "KnowledgeItem", "Post", "Variant"]
