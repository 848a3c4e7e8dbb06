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

import contextvars
import dataclasses
import functools
import math
import os
import posixpath
import re
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    meta,
    nodes,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    select_autoescape,
)
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from dissemination.contained import is_inside
from dissemination.problems import Problem, suggest
from dissemination.render.context import FILTERS

TEMPLATES = "templates"
_PACKAGE = Path(__file__).resolve().parent


def default_templates_dir() -> Path:
    """The templates shipped with dissemination: packaged in a wheel, else the source checkout's."""
    packaged = _PACKAGE / "default_templates"
    return packaged if packaged.is_dir() else _PACKAGE.parent.parent / TEMPLATES


# Templates write text. These limits are far above what any real post or newsletter needs and far
# below what would hang `check` or the scheduler or exhaust memory: every render is bounded in
# steps (attribute reads, calls, loop iterations, operators), in time, and in the size of every
# value and of its output. The checks run *before* an operation allocates, so `'a' * 10**9` or
# `9 ** (9 ** 9)` is refused instead of attempted.
MAX_TEXT = 1_000_000  # characters in any one value and in the output of one render
MAX_ITEMS = 100_000  # items in a list made by the template (`[0] * n`, `range(n)`)
MAX_ARGUMENT = 10_000  # a number given to a filter or function (widths, counts, ...)
MAX_NUMBER_BITS = 1024  # about 300 decimal digits
MAX_STEPS = 500_000
MAX_SECONDS = 5.0
_BIG_FORMAT = re.compile(r"\d{5,}")  # a width or precision of 10000 or more in a format string
_HINT = "templates are for text: simplify the expression; see the templates section of docs/writing-campaigns.md"


class TemplateLimit(SecurityError):
    """A template went beyond the render budget; raised before the work is done."""


@dataclasses.dataclass
class _Budget:
    deadline: float
    steps: int = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimit(f"the template does too much work (more than {MAX_STEPS} steps)")
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"the template took longer than {MAX_SECONDS:g} seconds to render")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _step() -> None:
    budget = _BUDGET.get()
    if budget is not None:  # compile-time constant folding runs outside a render
        budget.step()


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)) else 0


def _check_value(value: Any) -> Any:
    if isinstance(value, (str, bytes)) and len(value) > MAX_TEXT:
        raise TemplateLimit(f"the template makes a text longer than {MAX_TEXT} characters")
    if isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > MAX_ITEMS:
        raise TemplateLimit(f"the template makes a list longer than {MAX_ITEMS} items")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_NUMBER_BITS:
        raise TemplateLimit("the template makes a number too large to show")
    return value


def _check_arguments(args: Iterable[Any], what: str) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_ARGUMENT:
            raise TemplateLimit(f"{what}: the number {arg} is too large (at most {MAX_ARGUMENT})")
        if isinstance(arg, float) and math.isfinite(arg) and abs(arg) > MAX_ARGUMENT:
            raise TemplateLimit(f"{what}: the number {arg:g} is too large (at most {MAX_ARGUMENT})")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and (match := _BIG_FORMAT.search(text)) and ("%" in text or "{" in text):
        raise TemplateLimit(f"a width or precision of {match.group()} in a format string is too large")


def _bits(number: Any) -> float:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return 0.0
    return math.log2(abs(number)) if number not in (0, 1, -1) and math.isfinite(number) else 0.0


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "**":
        if isinstance(right, (int, float)) and not isinstance(right, bool):
            if abs(right) > MAX_NUMBER_BITS or _bits(left) * max(right, 0) > MAX_NUMBER_BITS:
                raise TemplateLimit(f"{left!r} ** {right!r} makes a number too large to show")
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            if _size(seq) and isinstance(times, int):
                limit = MAX_TEXT if isinstance(seq, str) else MAX_ITEMS
                if _size(seq) * times > limit:
                    raise TemplateLimit(f"repeating {_size(seq)} {'characters' if isinstance(seq, str) else 'items'} "
                                        f"{times} times is too long (at most {limit})")
        if _bits(left) + _bits(right) > MAX_NUMBER_BITS:
            raise TemplateLimit("the multiplication makes a number too large to show")
    elif operator == "+":
        if _size(left) + _size(right) > MAX_TEXT:
            raise TemplateLimit(f"the template makes a text longer than {MAX_TEXT} characters")
    elif operator == "%" and isinstance(left, str):
        _check_format(left)
        _check_arguments(right if isinstance(right, tuple) else (right,), "a format string")


def _bounded_filter(name: str, func: Any) -> Any:
    """A filter that refuses huge numeric arguments (`center(10**9)`, `indent(10**9)`) and whose
    result is size-checked."""
    skip = 2 if getattr(func, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _step()
        _check_arguments([*args[skip:], *kwargs.values()], f"filter '{name}'")
        if name == "format" and len(args) >= skip:
            _check_format(args[skip - 1])
        return _check_value(func(*args, **kwargs))

    return bounded


def _counted(iterable: Any) -> Iterator[Any]:
    """Wrapped around the iterable of every `{% for %}` loop: each iteration is a step."""
    for value in iterable:
        _step()
        yield value


def _bounded_range(*args: int) -> range:
    _check_arguments(args[1:] if len(args) > 1 else (), "range")
    found = range(*args)
    if len(found) > MAX_ITEMS:
        raise TemplateLimit(f"range of {len(found)} numbers is too long (at most {MAX_ITEMS})")
    return found


def _fields_hint(obj: Any, attribute: str) -> str | None:
    """`item has no field 'samenvatting' (fields: id, title, ...)` instead of a Python class name."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return None
    fields = [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]
    close = suggest(attribute, fields)
    what = type(obj).__name__.removesuffix("View").lower()
    return (f"{what} has no field '{attribute}'" + (f"; did you mean '{close}'?" if close else "")
            + f" (fields: {', '.join(fields)})")


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox plus a render budget (see MAX_*)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _step()
        _check_binop(operator, left, right)
        return _check_value(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _step()
        if __obj is not _bounded_range:
            _check_arguments([*args, *kwargs.values()], f"calling {getattr(__obj, '__name__', 'a function')}")
        for arg in (*args, *kwargs.values()):
            _check_value(arg)
        return _check_value(SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _step()
        if attribute in ("format", "format_map") and isinstance(obj, str):
            _check_format(obj)
        value = super().getattr(obj, attribute)
        if isinstance(value, Undefined):
            hint = _fields_hint(obj, attribute)
            if hint:
                return self.undefined(hint=hint, obj=obj, name=attribute)
        return _check_value(value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _step()
        value = super().getitem(obj, argument)
        if isinstance(value, Undefined) and isinstance(argument, str):
            hint = _fields_hint(obj, argument)
            if hint:
                return self.undefined(hint=hint, obj=obj, name=argument)
        return _check_value(value)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_counted", [], [], None, None, lineno=loop.lineno)
        return tree


class _ContainedLoader(FileSystemLoader):
    """Templates from the search path that resolve inside their root (the content root for the
    project's own templates; see dissemination.contained), read as UTF-8 with a located error."""

    def __init__(self, search_path: list[Path], roots: list[Path]) -> None:
        super().__init__([str(p) for p in search_path])
        self.roots = dict(zip(self.searchpath, roots))

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Any]:
        for searchpath in self.searchpath:
            filename = posixpath.join(searchpath, *split_template_path(template))
            if os.path.isfile(filename):
                break
        else:
            return super().get_source(environment, template)  # raises TemplateNotFound
        if not is_inside(self.roots[searchpath], Path(filename)):
            raise TemplateSyntaxError("the template is a symbolic link to outside the content root "
                                      "(copy the file into the content root instead)", 1, template, filename)
        with open(filename, "rb") as handle:
            data = handle.read()
        try:
            contents = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TemplateSyntaxError("the file is not UTF-8 text (save it with UTF-8 encoding)",
                                      data.count(b"\n", 0, exc.start) + 1, template, filename) from None
        return contents, os.path.normpath(filename), lambda: True


def make_environment(search_path: list[Path], roots: list[Path] | None = None) -> SandboxedEnvironment:
    env = BoundedEnvironment(
        loader=_ContainedLoader(search_path, roots or search_path),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters.update(FILTERS)
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    env.filters["_counted"] = _counted
    env.globals.pop("lipsum", None)
    env.globals["range"] = _bounded_range
    return env


def render_bounded(env: SandboxedEnvironment, template: Template, context: dict) -> str:
    """Render within the budget: the output is built piece by piece and checked as it grows."""
    token = _BUDGET.set(_Budget(time.monotonic() + MAX_SECONDS))
    try:
        parts: list[str] = []
        size = 0
        for part in template.root_render_func(template.new_context(context, shared=True)):
            size += len(part)
            if size > MAX_TEXT:
                raise TemplateLimit(f"the template's output is longer than {MAX_TEXT} characters")
            parts.append(part)
        return "".join(parts)
    except Exception:  # noqa: BLE001
        env.handle_exception()  # re-raises with the traceback mapped to template lines
        raise
    finally:
        _BUDGET.reset(token)


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
    elif isinstance(exc, RecursionError):
        message = "the template calls itself too deeply (a macro that never stops calling itself?)"
    elif isinstance(exc, MemoryError):
        message = "the template needs too much memory"
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
                   _HINT if isinstance(exc, TemplateLimit) else
                   "see the templates section of docs/writing-campaigns.md")


class Templates:
    """The compiled templates of one project; each is compiled once and kept."""

    def __init__(self, root: Path) -> None:
        own = root / TEMPLATES
        self.own = own if own.is_dir() else None
        self.search_path = [p for p in (own, default_templates_dir()) if p.is_dir()]
        # The project's own templates must stay inside the content root, links included.
        self.env = make_environment(self.search_path, [root if p == own else p for p in self.search_path])
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

    def _run(self, template: Template, context: dict) -> str:
        """Render without copying the globals into every context: the context already holds them
        (see `context`)."""
        return render_bounded(self.env, template, context)

    def context(self, values: dict) -> dict:
        """A render context: the environment's globals (range, dict, ...) plus `values`."""
        return {**self._globals, **values}

    def render(self, template: Template, context: dict) -> str:
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

    def render_text(self, template: Template, context: dict, path: str, first_line: int) -> str:
        try:
            return self._run(template, context)
        except Exception as exc:  # noqa: BLE001
            raise TemplateFailure(locate(exc, "<template>", path, first_line)) from None
