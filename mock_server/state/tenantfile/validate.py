"""Tenant-file data checked against the JSON Schema, every problem in words a user can act on.

`problems` judges a whole tenant file; `entry_problems` one object of the control API (an application, a
mailbox, an access policy, ...) against the schema's definition of that kind of object.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from m365_mock.state.tenantfile.problems import Path, Problem
from m365_mock.state.tenantfile.schema import SCHEMA

NO_FILES = "the control API reads no files; give the certificate as 'pem'"

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}

# Enumerated values whose refusal has the words of the real service (the cmdlet shell shows them as they are).
_ENUM_MESSAGES = {
    "access_right": "The AccessRight '{value}' isn't valid: use RestrictAccess or DenyAccess.",
}


@functools.cache
def _validator(definition: str | None) -> Draft202012Validator:
    """A validator for the whole schema or one of its definitions, with the `$ref`s written out in place (the
    schema has no recursion), which validates a large file about a third faster."""
    if definition is not None and definition not in SCHEMA["$defs"]:
        raise KeyError(f"the tenant-file schema has no definition {definition!r}")
    root = SCHEMA if definition is None else SCHEMA["$defs"][definition]
    schema = {k: v for k, v in _inline(root).items() if k != "$defs"}
    return Draft202012Validator({**schema, "$schema": SCHEMA["$schema"]})


def _inline(node: Any) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
            return _inline(SCHEMA["$defs"][ref.removeprefix("#/$defs/")])
        return {key: value if key == "$defs" else _inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item) for item in node]
    return node


def problems(data: Any, *, files: bool = True, noun: str = "key") -> list[Problem]:
    """Every place where a whole tenant file's data leaves the schema; `files=False` refuses certificate files."""
    return _check(data, None, files, noun)


def entry_problems(definition: str, data: Any, *, noun: str = "field") -> list[Problem]:
    """Every place where one object (`$defs/<definition>`, e.g. `accessPolicy`) leaves the schema."""
    return _check(data, definition, False, noun)


def _check(data: Any, definition: str | None, files: bool, noun: str) -> list[Problem]:
    found: list[Problem] = []
    for error in _validator(definition).iter_errors(data):
        found.extend(explain(error, noun))
    if not files:
        found.extend(Problem((*path, "file"), NO_FILES) for path in _certificates(data, definition))
    return in_data_order(list(dict.fromkeys(found)), data) if found else []


def in_data_order(found: list[Problem], data: Any) -> list[Problem]:
    """Problems in the order of the places they name in `data` (a missing key: where its mapping is)."""
    order: dict[Path, int] = {}
    pending: list[tuple[Path, Any]] = [((), data)]
    while pending:
        path, value = pending.pop()
        order[path] = len(order)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        pending.extend(reversed([((*path, key), item) for key, item in items]))

    def rank(problem: Problem) -> int:
        for end in range(len(problem.path), -1, -1):
            if problem.path[:end] in order:
                return order[problem.path[:end]]
        return 0

    return sorted(found, key=rank)


def _certificates(data: Any, definition: str | None) -> Iterator[Path]:
    """Paths of the certificate entries that give a `file`."""

    def entries(value: Any, path: Path, key: str) -> Iterator[tuple[Path, Any]]:
        items = value.get(key) if isinstance(value, dict) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            yield (*path, key, i), item

    if definition == "certificate":
        certificates: list[tuple[Path, Any]] = [((), data)]
    elif definition == "application":
        certificates = list(entries(data, (), "certificates"))
    elif definition is None:
        certificates = [
            cert
            for tenant in entries(data, (), "tenants")
            for app in entries(tenant[1], tenant[0], "applications")
            for cert in entries(app[1], app[0], "certificates")
        ]
    else:
        certificates = []
    for path, cert in certificates:
        if isinstance(cert, dict) and "file" in cert:
            yield path


def suggestion(key: str, known: list[str]) -> str:
    """`; did you mean 'access_policies'?` for a near miss (camelCase, a typo, a shortened or a longer name such
    as a cmdlet's `CustomResourceScope` for `scope`), else the keys there are."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower().replace("-", "_")
    close = (
        [k for k in known if k == snake]
        or difflib.get_close_matches(snake, known, n=1, cutoff=0.75)
        or [k for k in known if len(snake) >= 3 and k.startswith(snake)]
        or sorted((k for k in known if snake.endswith(f"_{k}") or snake.startswith(f"{k}_")), key=len, reverse=True)
    )
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known: {', '.join(known)}" if known else ""


def _words(types: Any) -> str:
    names = [types] if isinstance(types, str) else [t for t in types if t != "null"] or list(types)
    words = [_TYPE_WORDS.get(t, t) for t in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def describe(value: Any) -> str:
    """A value's kind in the words of the type messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _one_of(choices: list[str], conjunction: str = "or") -> str:
    quoted = [f"'{c}'" for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" {conjunction} " + quoted[-1]


def explain(error: ValidationError, noun: str) -> Iterator[Problem]:
    """One schema error as the problems a user reads (`noun` is "key" for files, "field" for request bodies)."""
    path: Path = tuple(error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(error.schema.get("properties", {}))
        for key in value:
            if key not in known:
                yield Problem((*path, key), f"unknown {noun}{suggestion(str(key), known)}")
    elif kind == "required":
        for name in expected:
            if isinstance(value, dict) and name not in value:
                yield Problem((*path, name), "required")
    elif kind == "type":
        yield Problem(path, f"expected {_words(expected)}, got {describe(value)}")
    elif kind == "enum":
        if isinstance(value, str) and value.lower() in (str(v).lower() for v in expected):
            return  # enumerated values are matched in any case
        template = _ENUM_MESSAGES.get(str(path[-1]) if path else "")
        if template:
            yield Problem(path, template.format(value=value), exact=True)
        else:
            yield Problem(path, f"expected {_one_of(expected)}, got {value!r}")
    elif "propertyNames" in error.schema_path:
        yield Problem(path, f"{value!r} is not {error.schema.get('description', 'an allowed key')}")
    elif kind == "pattern" and expected == r"\S":
        yield Problem(path, "expected a non-empty string")
    elif kind in ("minimum", "maximum"):
        yield Problem(path, _range_message(error))
    elif kind == "minItems":
        yield Problem(path, "expected a non-empty list" if expected == 1 else f"expected at least {expected} entries")
    elif kind in ("oneOf", "anyOf") and all("required" in s for s in expected):
        names = [n for s in expected for n in s["required"]]
        given = [n for n in names if isinstance(value, dict) and n in value]
        yield Problem(path, f"give {_one_of(names)}" if not given else f"give only one of {_one_of(given, 'and')}")
    else:
        yield Problem(path, error.message)


def _range_message(error: ValidationError) -> str:
    """`expected a whole number from 0 to 200000, got -1`: both bounds, whichever was passed."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    low, high = schema.get("minimum"), schema.get("maximum")
    what = "a whole number" if schema.get("type") == "integer" else "a number"
    if low is not None and high is not None:
        bounds = f"from {low} to {high}"
    elif low is not None:
        bounds = f"of {low} or more"
    else:
        bounds = f"of at most {high}"
    return f"expected {what} {bounds}, got {error.instance}"
