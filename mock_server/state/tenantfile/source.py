"""Reading a tenant file's text into plain data, keeping where each entry is written.

YAML is composed into its node tree first (SafeLoader), so every key path keeps its line and column, repeated
keys are found (PyYAML would silently keep the last), and a file cannot make the reader recurse without bound or
expand aliases into more than it holds. JSON is parsed with the standard library, refusing repeated names; its
lines are found (through the same YAML composer, JSON being YAML) only when there is something to report.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from m365_mock.state.tenantfile.problems import ConfigError, Path, Problem

MAX_DEPTH = 64  # levels of nesting; a real tenant file needs under 15
MAX_ALIAS_EXPANSION = 100_000  # entries that YAML aliases may add beyond what the file itself holds

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps date-times as the text written (the reader parses them), and every mapping key as
    its text (`1:` is the key "1", as in JSON)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):  # other keys are reported by _Walk
                mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping


class _Object(dict):
    """A JSON object that remembers the names it was given more than once."""

    repeated: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = _Object(pairs)
    obj.repeated = [] if len(obj) == len(pairs) else _repeats(name for name, _ in pairs)
    return obj


def _repeats(names: Any) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    return repeated


@dataclass
class Source:
    """A tenant file read into plain data: its name, the data, where each key path is, and what was refused."""

    name: str
    data: Any
    text: str = ""
    places: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def place(self, path: Path) -> tuple[int, int] | None:
        """Line and column (from 1) of the entry at `path`, or of the nearest entry holding it."""
        for end in range(len(path), -1, -1):
            found = self.places.get(path[:end])
            if found is not None:
                return found
        return None

    def locate(self, problem: Problem) -> Problem:
        if problem.line is not None:
            return problem
        found = self.place(problem.path)
        return problem if found is None else dataclasses.replace(problem, line=found[0], column=found[1])


def one_line(name: str, reason: str) -> ConfigError:
    return ConfigError(f"{name}: {reason}")


def decode(name: str, raw: bytes) -> str:
    """The file's text; a file that is not UTF-8 is refused in one line saying where and what to do."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise one_line(name, "not UTF-8 text: it starts with a UTF-16 byte-order mark; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise one_line(f"{name}:{line}", f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8") from None


def too_deep(name: str) -> ConfigError:
    return one_line(name, f"nested deeper than {MAX_DEPTH} levels")


def parse(name: str, text: str, *, as_json: bool) -> Source:
    """Plain data from YAML or JSON text, with repeated keys reported and the places of the keys (YAML)."""
    return _parse_json(name, text) if as_json else _parse_yaml(name, text)


def _parse_yaml(name: str, text: str) -> Source:
    try:
        node = yaml.compose(text, Loader=_Loader)
        source = Source(name, None, text)
        if node is not None:
            _Walk(source).run(node)
            source.data = _Loader("").construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        reason = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem:
            reason += f" ({exc.context})"
        raise one_line(where, f"not valid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise one_line(name, f"not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise too_deep(name) from None
    return source


def _parse_json(name: str, text: str) -> Source:
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise one_line(f"{name}:{exc.lineno}:{exc.colno}", f"not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise too_deep(name) from None
    source = Source(name, data, text)
    if depth(data) > MAX_DEPTH:
        raise too_deep(name)
    source.problems = [
        Problem((*path, key), "repeated key: a key may be given once in each mapping")
        for path, obj in _objects(data)
        for key in getattr(obj, "repeated", ())
    ]
    return source


def find_places(source: Source) -> None:
    """Lines for a JSON file's problems, found through the YAML composer; none when it cannot read the file.

    Tabs become spaces first (same line and column): JSON allows them between tokens, YAML not everywhere, and a
    JSON string cannot hold a raw tab."""
    try:
        node = yaml.compose(source.text.replace("\t", " "), Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        return
    if node is None:
        return
    walked = Source(source.name, None)
    try:
        _Walk(walked).run(node)
    except ConfigError:
        return
    source.places = walked.places
    repeated = {p.path for p in source.problems if p.message.startswith("repeated key")}
    exact = [p for p in walked.problems if p.path in repeated]
    source.problems = [p for p in source.problems if p.path not in repeated] + exact


def _objects(data: Any, path: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    pending: list[tuple[Path, Any]] = [(path, data)]
    while pending:
        here, value = pending.pop()
        if isinstance(value, dict):
            yield here, value
            pending.extend(((*here, k), v) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend(((*here, i), v) for i, v in enumerate(value))


def depth(data: Any) -> int:
    """How deeply lists and mappings nest in `data` (a scalar: 0), without recursion."""
    deepest = 0
    pending: list[tuple[int, Any]] = [(0, data)]
    seen: set[int] = set()
    while pending:
        level, value = pending.pop()
        if isinstance(value, dict | list):
            if id(value) in seen or level > MAX_DEPTH:
                deepest = max(deepest, level)
                continue
            seen.add(id(value))
            level += 1
            deepest = max(deepest, level)
            pending.extend((level, v) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


class _Walk:
    """Records where each key path is, repeated keys and keys that are not text; bounds depth and aliases."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.visited: set[int] = set()
        self.sizes: dict[int, int] = {}

    def run(self, node: Node) -> None:
        self.source.places[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.visit(node, (), 1)
        expanded = self.size(node)
        if expanded - len(self.sizes) > MAX_ALIAS_EXPANSION:
            raise one_line(self.source.name, f"its aliases expand to more than {MAX_ALIAS_EXPANSION} further entries")

    def mark(self, path: Path, node: Node) -> None:
        self.source.places.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))

    def visit(self, node: Node, path: Path, level: int) -> None:
        if id(node) in self.visited:  # an alias: its entries are reported where the anchor is
            return
        self.visited.add(id(node))
        if level > MAX_DEPTH and isinstance(node, MappingNode | SequenceNode):
            raise too_deep(self.source.name)
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.mark((*path, i), item)
                self.visit(item, (*path, i), level + 1)
        elif isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    self.visit(value_node, path, level + 1)
                    continue
                if not isinstance(key_node, ScalarNode):
                    line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                    self.source.problems.append(Problem(path, "a key must be text", line, column))
                    continue
                key = key_node.value
                here = (*path, key)
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                if key in first:
                    self.source.problems.append(
                        Problem(here, f"repeated key (first given on line {first[key]})", line, column)
                    )
                else:
                    first[key] = line
                self.mark(here, key_node)
                self.visit(value_node, here, level + 1)

    def size(self, node: Node) -> int:
        """Entries under `node` once aliases are expanded (each distinct node's count is worked out once)."""
        done, open_ = self.sizes, set()
        pending: list[tuple[Node, bool]] = [(node, False)]
        while pending:
            current, children_done = pending.pop()
            if children_done:
                open_.discard(id(current))
                done[id(current)] = 1 + sum(done[id(child)] for child in _children(current))
                continue
            if id(current) in done:
                continue
            if id(current) in open_:
                raise one_line(self.source.name, "an alias refers to the entry that holds it")
            open_.add(id(current))
            pending.append((current, True))
            pending.extend((child, False) for child in _children(current) if id(child) not in done)
        return done[id(node)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []
