"""YAML that remembers where every value was written, and that types values as people expect.

PyYAML implements YAML 1.1, whose implicit typing surprises people who write by hand: `no` and
`on` become booleans, `10:30` becomes the integer 630 and `0930` an octal error. Content files
use the YAML 1.2 core schema instead: only `true`/`false` are booleans, integers are decimal,
and a time like `10:30` stays text. Duplicate keys, which PyYAML silently collapses, are reported.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dissemination.problems import Problem

_NEWLINE = re.compile("\n")
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


# The C loader where PyYAML was built with it: a base class chosen at run time, which mypy cannot follow.
class _ContentLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    def line(self, mark: yaml.Mark) -> int:
        """1-based line of a mark within the parsed text, counting '\n' only."""
        return bisect.bisect_right(self.newlines, mark.index - 1) + 1

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # YAML also breaks lines at NEL, U+2028 and U+2029; editors and people count '\n' only.
        self.newlines = [m.start() for m in _NEWLINE.finditer(stream)]
        # id(container) -> line of each key (dict) or item (list), 1-based within the YAML text
        self.value_lines: dict[int, dict[Any, int] | list[int]] = {}
        self.duplicates: list[tuple[Any, int, int]] = []


_ContentLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_ContentLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ContentLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_ContentLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


_MERGE = "tag:yaml.org,2002:merge"
MAX_EXPANSION = 100_000
_SCALARS = {
    "tag:yaml.org,2002:str": lambda loader, node: node.value,
    "tag:yaml.org,2002:null": lambda loader, node: None,
    _BOOL: lambda loader, node: node.value.lower() == "true",
    _FLOAT: lambda loader, node: yaml.constructor.SafeConstructor.construct_yaml_float(loader, node),
}


def _construct_int(loader: _ContentLoader, node: yaml.ScalarNode) -> int | str:
    try:
        return int(node.value, 10)
    except ValueError:  # an explicit !!int tag on something that is not a number
        return node.value


def _construct_timestamp(loader: _ContentLoader, node: yaml.ScalarNode) -> Any:
    # `2026-02-30` matches the timestamp pattern but is no date; keep the text so that
    # validation reports it at its line instead of the parser crashing.
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError):
        return node.value


_SCALARS[_INT] = _construct_int
_SCALARS[_TIMESTAMP] = _construct_timestamp


class _Builder:
    """Turns composed YAML nodes into plain Python values, recording the line of every key and
    list item. Written for the few types content files use; much faster than PyYAML's general
    constructor, and any other tag (!!python/..., !!binary, ...) is refused."""

    def __init__(self, loader: _ContentLoader, text_length: int) -> None:
        self.loader = loader
        self.done: dict[int, Any] = {}  # an anchored node is built once, however often it is used
        self.active: set[int] = set()
        # Aliases share what they point to, but everything downstream (validation, rendering) sees
        # one copy per use: ten aliases of ten aliases of ... is a "billion laughs". The values a
        # document expands to are bounded by its length, with room for ordinary reuse of anchors.
        self.sizes: dict[int, int] = {}
        self.max_size = 2 * text_length + MAX_EXPANSION

    def _sized(self, node: yaml.Node, value: Any, size: int) -> None:
        if size > self.max_size:
            raise yaml.constructor.ConstructorError(
                None, None, f"the YAML expands to more than {self.max_size} values through its aliases "
                "(a 'billion laughs')", node.start_mark)
        self.sizes[id(value)] = size

    def size(self, value: Any) -> int:
        return self.sizes.get(id(value), 1)

    def build(self, node: yaml.Node) -> Any:
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise yaml.constructor.ConstructorError(
                None, None, "the YAML refers to itself (an anchor used inside itself)", node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            make = _SCALARS.get(node.tag)
            if make is None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"could not determine a constructor for the tag {node.tag!r}", node.start_mark)
            value = make(self.loader, node)
        else:
            self.active.add(key)
            try:
                if isinstance(node, yaml.SequenceNode) and node.tag == "tag:yaml.org,2002:seq":
                    value = [self.build(item) for item in node.value]
                    self.loader.value_lines[id(value)] = [self.loader.line(n.start_mark) for n in node.value]
                    self._sized(node, value, 1 + sum(self.size(v) for v in value))
                elif isinstance(node, yaml.MappingNode) and node.tag == "tag:yaml.org,2002:map":
                    value = self._mapping(node)
                else:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"could not determine a constructor for the tag {node.tag!r}", node.start_mark)
            finally:
                self.active.discard(key)
        self.done[key] = value
        return value

    def _mapping(self, node: yaml.MappingNode) -> dict[Any, Any]:
        loader = self.loader
        data: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        own: set[Any] = set()
        size = 1
        # Merge keys (`<<: *defaults`) copy the keys of mappings already built, once each, instead
        # of PyYAML's flatten_mapping, which copies node lists and grows exponentially with nested
        # merges. Earlier mappings in `<<: [*a, *b]` win; keys written here override them all.
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in reversed(sources):
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a merge key (<<) takes a mapping or a list of mappings", source.start_mark)
                merged = self.build(source)
                merged_lines = loader.value_lines.get(id(merged), {})
                assert isinstance(merged_lines, dict)  # a mapping's lines: by key
                for key, value in merged.items():
                    data[key] = value
                    lines[key] = merged_lines.get(key, loader.line(key_node.start_mark))
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.build(key_node)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be plain text, not a list or mapping", key_node.start_mark
                ) from None
            line = loader.line(key_node.start_mark)
            if key in own:
                loader.duplicates.append((key, line, lines[key]))
            else:
                own.add(key)
                lines[key] = line
            data[key] = self.build(value_node)
        size += sum(1 + self.size(v) for v in data.values())
        self._sized(node, data, size)
        loader.value_lines[id(data)] = lines
        return data


@dataclass
class YamlDoc:
    """Parsed YAML plus the file line of every key and list item in it."""

    data: Any
    first_line: int
    value_lines: dict[int, dict[Any, int] | list[int]] = field(repr=False, default_factory=dict)

    def line_of(self, loc: tuple[Any, ...] | list[Any]) -> int:
        """File line of the deepest part of `loc` that exists in the document."""
        line = self.first_line
        container = self.data
        for part in loc:
            lines = self.value_lines.get(id(container))
            if isinstance(container, dict) and isinstance(lines, dict) and part in lines:
                line = lines[part] + self.first_line - 1
                container = container[part]
            elif (
                isinstance(container, list)
                and isinstance(lines, list)
                and isinstance(part, int)
                and 0 <= part < len(lines)
            ):
                line = lines[part] + self.first_line - 1
                container = container[part]
            else:
                break
        return line


def parse_yaml(text: str, path: str, first_line: int = 1) -> tuple[YamlDoc | None, list[Problem]]:
    """Parse one YAML document; `first_line` is the file line where `text` starts."""
    loader = _ContentLoader(text)
    try:
        try:
            node = loader.get_single_node()
            data = _Builder(loader, len(text)).build(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + (loader.line(mark) - 1 if mark else 0)
        what = exc.problem or exc.context or "not valid YAML"
        hint = _yaml_hint(exc, text.split("\n"), loader.line(mark) if mark else 0)
        return None, [Problem(path, line, f"YAML syntax error: {what}", hint)]
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = first_line + (text.count("\n", 0, position) if isinstance(position, int) else 0)
        reason = getattr(exc, "reason", None) or "the text cannot be read as YAML"
        return None, [
            Problem(path, line, f"YAML error: {reason}", "remove control characters from the file")
        ]
    except RecursionError:
        return None, [Problem(path, first_line, "YAML is nested too deeply", "flatten the structure")]

    doc = YamlDoc(data, first_line, loader.value_lines)
    problems = [
        Problem(
            path,
            line + first_line - 1,
            f"duplicate key '{key}' (first written at line {first + first_line - 1})",
            "each key may appear once; remove or rename one of them",
        )
        for key, line, first in sorted(loader.duplicates, key=lambda d: d[1])
    ]
    return doc, problems


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _misindented(lines: list[str], number: int) -> bool:
    """Whether line `number` (1-based) is indented deeper than the `key: value` line above it,
    which YAML reads as a continuation of that value."""
    if not 1 <= number <= len(lines):
        return False
    here = lines[number - 1]
    above = next((text for text in reversed(lines[:number - 1]) if text.strip() and not text.lstrip().startswith("#")), None)
    if above is None:
        return False
    key, colon, value = above.strip().partition(": ")
    return _indent(here) > _indent(above) and bool(colon) and bool(value.strip()) and not value.strip().startswith(("|", ">", "&"))


def _yaml_hint(exc: yaml.MarkedYAMLError, lines: list[str] | None = None, number: int = 0) -> str:
    problem = (exc.problem or "") + " " + (exc.context or "")
    if "expands to more than" in problem:
        return "use fewer aliases (*name); write the repeated values out or restructure the file"
    if lines and ("mapping values are not allowed" in problem or "could not find expected ':'" in problem) and (
            _misindented(lines, number) or _misindented(lines, number + 1)):
        return "check the indentation: this line is indented deeper than the line above, as if it continued " \
               "that value; line it up with the keys it belongs with"
    if "mapping values are not allowed" in problem:
        return "a value that contains ': ' must be quoted, e.g. title: \"Let op: dit\""
    if "found character '\\t'" in problem or "tab" in problem:
        return "indent with spaces, not tabs"
    if "could not find expected ':'" in problem:
        return "every line needs 'key: value'; check the line above for a missing colon"
    if "refers to itself" in problem:
        return "an anchor (&name) cannot be used inside itself; remove the alias (*name)"
    if "found undefined alias" in problem or "found unhashable key" in problem:
        return "check the anchors (&name) and aliases (*name)"
    if "could not determine a constructor" in problem:
        return "tags like !!python/... are not allowed in content files"
    return "check the indentation and quoting on this line and the one above"
