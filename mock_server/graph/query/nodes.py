"""The nodes of a parsed $filter and how each evaluates against one message through a getter.

The getter, ``get(canonical_path)``, returns the message's value as Graph JSON shows it, except that
DateTimeOffset properties come back as timezone-aware ``datetime`` (UTC), and ``None`` for a missing value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from m365_mock.graph.query.edm import (
    BOOLEAN,
    CASE_SENSITIVE_PATHS,
    DATE,
    DATETIMEOFFSET,
    ENUM_MEMBERS,
    NUMERIC,
    STRING,
    as_datetime,
)

Getter = Callable[[str], Any]


def truth(value: Any) -> bool:
    return value is True


def normalize(value: Any, type_name: str, case_sensitive: bool) -> Any:
    """Bring a value into the comparable form of ``type_name``; None when it is not of that type."""
    if type_name == STRING:
        if not isinstance(value, str):
            return None
        return value if case_sensitive else value.casefold()
    if type_name in ENUM_MEMBERS:
        return value.casefold() if isinstance(value, str) else None
    if type_name == BOOLEAN:
        return value if isinstance(value, bool) else None
    if type_name in (DATETIMEOFFSET, DATE):
        return as_datetime(value)
    if type_name in NUMERIC:
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return None


def compare(op: str, value: Any, literal: Any, type_name: str, case_sensitive: bool) -> bool:
    if value is None or literal is None:
        both_null = value is None and literal is None
        return both_null if op == "eq" else (not both_null if op == "ne" else False)
    left, right = normalize(value, type_name, case_sensitive), normalize(literal, type_name, case_sensitive)
    if left is None or right is None:
        return op == "ne"
    try:
        if op == "eq":
            return bool(left == right)
        if op == "ne":
            return bool(left != right)
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


class Node:
    type: str = BOOLEAN

    def eval(self, get: Getter, env: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Literal(Node):
    def __init__(self, type_name: str, value: Any) -> None:
        self.type, self.value = type_name, value

    def eval(self, get: Getter, env: dict[str, Any]) -> Any:
        return self.value


class Ref(Node):
    """A property: of the message (var None) or of a lambda's range variable."""

    def __init__(self, var: str | None, path: str, type_name: str) -> None:
        self.var, self.path, self.type = var, path, type_name
        self.segments = [s for s in path.split("/") if s] if var is not None else []

    def eval(self, get: Getter, env: dict[str, Any]) -> Any:
        if self.var is None:
            return get(self.path)
        value = env.get(self.var)
        for segment in self.segments:
            value = value.get(segment) if isinstance(value, dict) else None
        return value


class Comparison(Node):
    def __init__(self, op: str, ref: Ref, literal: Literal) -> None:
        self.op, self.ref, self.literal = op, ref, literal
        self.case_sensitive = ref.var is None and ref.path in CASE_SENSITIVE_PATHS

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return compare(self.op, self.ref.eval(get, env), self.literal.value, self.ref.type, self.case_sensitive)


class And(Node):
    def __init__(self, parts: list[Node]) -> None:
        self.parts = parts

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return all(truth(part.eval(get, env)) for part in self.parts)


class Or(Node):
    def __init__(self, parts: list[Node]) -> None:
        self.parts = parts

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return any(truth(part.eval(get, env)) for part in self.parts)


class Not(Node):
    def __init__(self, operand: Node) -> None:
        self.operand = operand

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return not truth(self.operand.eval(get, env))


class StringFunction(Node):
    def __init__(self, name: str, ref: Ref, literal: Literal) -> None:
        self.name, self.ref, self.literal = name, ref, literal

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        value, needle = self.ref.eval(get, env), self.literal.value
        if not isinstance(value, str) or not isinstance(needle, str):
            return False
        value, needle = value.casefold(), needle.casefold()
        return value.startswith(needle) if self.name == "startswith" else needle in value


class Any_(Node):
    def __init__(self, collection: Ref, var: str, body: Node) -> None:
        self.collection, self.var, self.body = collection, var, body

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        items = self.collection.eval(get, env)
        if not isinstance(items, list | tuple):
            return False
        return any(truth(self.body.eval(get, {**env, self.var: item})) for item in items)
