"""Templates: one sandboxed Jinja2 environment per project, lookup with fallbacks, errors as problems.

Templates come from the content root's `templates/` first, then from the defaults shipped with
dissemination (the repository's `templates/`); the project's own templates win at every level. For a channel `mastodon` of kind `mastodon` and
audience `beleid`, `post.j2` is looked up as

    mastodon/post.beleid.j2   (channel id + audience)
    mastodon/post.j2          (channel id)

and then the same under the channel's kind (`mastodon/`, `linkedin/`, `email/`, `outbox/`), so a
second e-mail channel `nieuwsbrief` uses `email/` unless `nieuwsbrief/` has its own templates.

Campaign authors and template authors are trusted with text, not with Python: the environment is
a `SandboxedEnvironment` (no `__class__`, `__globals__`, ...), HTML templates autoescape, and a
mistake anywhere is reported as `file:line: message`, never as a traceback.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from jinja2 import (
    FileSystemLoader,
    meta,
    nodes,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from dissemination.problems import Problem
from dissemination.render.context import FILTERS

TEMPLATES = "templates"
_PACKAGE = Path(__file__).resolve().parent


def default_templates_dir() -> Path:
    """The templates shipped with dissemination: packaged in a wheel, else the source checkout's."""
    packaged = _PACKAGE / "default_templates"
    return packaged if packaged.is_dir() else _PACKAGE.parent.parent / TEMPLATES


def make_environment(search_path: list[Path]) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader([str(p) for p in search_path]),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters.update(FILTERS)
    return env


# What differs between the renderings of one slot: the channel, the audience, the UTM-tagged link,
# and the filters bound to them. Post text that uses none of these is rendered once per slot.
_PER_CHANNEL_NAMES = frozenset({"channel", "audience", "link", "items", "body", "subject", "_bound"})
_PER_CHANNEL_FILTERS = frozenset({"utm", "mention"})


def _uses_channel_or_audience(ast: nodes.Template) -> bool:
    if meta.find_undeclared_variables(ast) & _PER_CHANNEL_NAMES:
        return True
    if any(f.name in _PER_CHANNEL_FILTERS for f in ast.find_all(nodes.Filter)):
        return True
    # item.link is UTM-tagged per channel and audience
    return any(a.attr == "link" for a in ast.find_all(nodes.Getattr)) or any(
        isinstance(g.arg, nodes.Const) and g.arg.value == "link" for g in ast.find_all(nodes.Getitem))


class TemplateFailure(Exception):
    """A template could not be loaded or rendered; carries the located problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _describe(exc: Exception) -> str:
    if isinstance(exc, TemplateError):
        message = exc.message or type(exc).__name__
    else:  # e.g. a ZeroDivisionError or TypeError raised by an expression in the template
        message = f"{type(exc).__name__}: {exc}"
    return " ".join(message.split())


def locate(exc: Exception, template_file: str, path: str, first_line: int = 1) -> Problem:
    """Turn an exception from compiling or rendering a template into `path:line: message`.

    `template_file` is the name Jinja knows the template by; `first_line` is the file line of the
    template's first line (for post text inside a campaign file)."""
    line = None
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        line = exc.lineno
    else:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename == template_file or frame.filename.endswith("/" + template_file):
                line = frame.lineno
                break
    return Problem(path, first_line + (line or 1) - 1, f"template error: {_describe(exc)}",
                   "see the templates section of docs/writing-campaigns.md")


class Templates:
    """The compiled templates of one project; each is compiled once and kept."""

    def __init__(self, root: Path) -> None:
        own = root / TEMPLATES
        self.own = own if own.is_dir() else None
        self.search_path = [p for p in (own, default_templates_dir()) if p.is_dir()]
        self.env = make_environment(self.search_path)
        self._globals = dict(self.env.globals)
        self._chosen: dict[tuple[str, ...], Template] = {}
        self._strings: dict[str, Template] = {}
        self._per_channel: dict[str, bool] = {}

    def path_of(self, name: str) -> str:
        """The template's path as the user sees it, relative to the content root."""
        return f"{TEMPLATES}/{name}"

    def select(self, channel_id: str, kind: str, audience: str, name: str) -> Template:
        """`name` (e.g. 'post.j2') for this channel and audience, most specific first."""
        key = (channel_id, kind, audience, name)
        found = self._chosen.get(key)
        if found is not None:
            return found
        stem, dot, ext = name.partition(".")
        folders = [channel_id] if channel_id == kind else [channel_id, kind]
        candidates = [f"{d}/{stem}.{audience}.{ext}" for d in folders] + [f"{d}/{name}" for d in folders]
        # The project's own templates win over the defaults at every level: its `mastodon/post.j2`
        # beats a default `mastodon/post.beleid.j2`.
        own = [c for c in candidates if self.own is not None and (self.own / c).is_file()]
        try:
            found = self.env.select_template(own or candidates)
        except TemplateNotFound:
            raise TemplateFailure(Problem(
                self.path_of(f"{kind}/{name}"), 1, f"no template for {kind} {name}",
                f"create one of: {', '.join(self.path_of(c) for c in candidates)}")) from None
        except TemplateSyntaxError as exc:
            raise TemplateFailure(locate(exc, exc.name or "", self.path_of(exc.name or name))) from None
        except TemplateError as exc:
            raise TemplateFailure(Problem(self.path_of(name), 1, f"template error: {_describe(exc)}")) from None
        self._chosen[key] = found
        return found

    def _run(self, template: Template, context: dict) -> str:  # type: ignore[type-arg]
        """`template.render(context)` without copying the globals into every context: the context
        already holds them (see `context`). On an error, render again the ordinary way, which
        maps the traceback to template lines."""
        try:
            return self.env.concat(template.root_render_func(template.new_context(context, shared=True)))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001
            return template.render(context)

    def context(self, values: dict) -> dict:  # type: ignore[type-arg]
        """A render context: the environment's globals (range, dict, ...) plus `values`."""
        return {**self._globals, **values}

    def render(self, template: Template, context: dict) -> str:  # type: ignore[type-arg]
        try:
            return self._run(template, context)
        except Exception as exc:  # noqa: BLE001 - any error inside a template is the author's to fix
            name = template.name or ""
            raise TemplateFailure(locate(exc, template.filename or name, self.path_of(name))) from None

    def from_text(self, text: str, path: str, first_line: int) -> Template:
        """Post text is a template too: `{{ item.title }}` for the featured knowledge item."""
        found = self._strings.get(text)
        if found is None:
            try:
                found = self.env.from_string(text)
                self._per_channel[text] = _uses_channel_or_audience(self.env.parse(text))
            except TemplateSyntaxError as exc:
                raise TemplateFailure(locate(exc, "<template>", path, first_line)) from None
            self._strings[text] = found
        return found

    def same_for_every_channel(self, text: str) -> bool:
        """Whether post text (compiled by `from_text`) renders the same for every channel and
        audience of one slot, so it can be rendered once per slot."""
        return not self._per_channel.get(text, True)

    def render_text(self, template: Template, context: dict, path: str, first_line: int) -> str:  # type: ignore[type-arg]
        try:
            return self._run(template, context)
        except Exception as exc:  # noqa: BLE001
            raise TemplateFailure(locate(exc, "<template>", path, first_line)) from None
