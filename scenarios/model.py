"""Scenario files: YAML (or JSON) read as tenant files are read, checked against scenarios/schema.json (and an
inline tenant against the tenant-file schema), then turned into plain objects.

Reading goes through the tenant files' parser (m365_mock.state.tenantfile.source): a key given twice in one
mapping is refused (YAML and JSON would otherwise keep the last one), nesting is bounded, date-times stay the text
written, and every key path keeps its line and column. Every problem is reported at once, in file order, as
`file:line:col: key.path: what is wrong`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from m365_mock.scenarios.schema import SCHEMA
from m365_mock.state.tenantfile.problems import ConfigError, Problem, refusal
from m365_mock.state.tenantfile.problems import Path as KeyPath
from m365_mock.state.tenantfile.source import Source, decode, find_places, parse
from m365_mock.state.tenantfile.validate import _words as words
from m365_mock.state.tenantfile.validate import describe, explain, in_data_order
from m365_mock.state.tenantfile.validate import problems as tenant_problems

LIBRARY = Path(__file__).resolve().parent / "library"
NOT_A_MAPPING = "the top level must be a mapping with 'name' and 'steps'"

_VALIDATOR = Draft202012Validator(SCHEMA)


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the place of every problem."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Step:
    do: str
    name: str
    options: dict[str, Any]
    expect: dict[str, Any]


@dataclass
class Scenario:
    name: str
    description: str
    source: Path | None
    tenant: str | dict[str, Any]
    setup: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    read_from: Source | None = field(default=None, repr=False, compare=False)  # lines of an inline tenant's keys

    @property
    def base_dir(self) -> Path:
        """The scenario file's folder (absolute: a daemon runs in it, and `{here}` names it)."""
        return (self.source.parent if self.source else Path.cwd()).resolve()


def problems(data: Any) -> list[Problem]:
    """Every place where scenario data leaves its schema, an inline tenant's included, in the order of `data`."""
    found: list[Problem] = []
    for error in _VALIDATOR.iter_errors(data):
        found.extend(_explain_error(error, data))
    tenant = data.get("tenant") if isinstance(data, dict) else None
    if isinstance(tenant, dict):
        found.extend(dataclasses.replace(p, path=("tenant", *p.path)) for p in tenant_problems(tenant))
    return in_data_order(list(dict.fromkeys(found)), data) if found else []


def _explain_error(error: ValidationError, data: Any) -> list[Problem]:
    """A schema error in the tenant files' words; enumerations are matched exactly (the runner compares them so),
    and an option a kind of step needs is named with that kind."""
    path: KeyPath = tuple(error.absolute_path)
    branch = _the_branch_meant(error)
    if branch:
        return [problem for sub in branch for problem in _explain_error(sub, data)]
    types = _types_wanted(error)
    if types:
        return [Problem(path, f"expected {words(types)}, got {describe(error.instance)}")]
    if error.validator == "not" and isinstance(error.schema, dict) and "description" in error.schema:
        return [Problem(path, error.schema["description"])]
    if error.validator == "enum":
        choices = [f"'{choice}'" for choice in error.validator_value]
        expected = choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]
        return [Problem(path, f"expected {expected}, got {error.instance!r}")]
    if error.validator == "required" and "then" in error.schema_path and len(path) == 2 and path[0] == "steps":
        kind = data["steps"][path[1]]["do"]
        return [
            Problem((*path, name), f"required when do is {kind!r}")
            for name in error.validator_value
            if name not in error.instance
        ]
    return list(explain(error, "key"))


def _the_branch_meant(error: ValidationError) -> list[ValidationError]:
    """The errors of the one branch of a oneOf/anyOf whose type the value has (a condition given as a mapping, not
    a list): explained as they are, `totl` is an unknown key of that mapping rather than 'not valid under any of
    the given schemas'. Empty when the branch meant cannot be told."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return []
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    typed = [errors for errors in branches.values() if not any(e.validator == "type" and not e.path for e in errors)]
    return typed[0] if len(typed) == 1 and len(branches) > 1 else []


def _types_wanted(error: ValidationError) -> list[str]:
    """The types a oneOf/anyOf takes, when the value has none of them (else empty)."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return []
    roots = [e for e in error.context if not e.path]
    branches = {e.schema_path[0] for e in error.context}
    if len(roots) != len(branches) or any(e.validator != "type" for e in roots):
        return []
    return [
        t for e in roots for t in ([e.validator_value] if isinstance(e.validator_value, str) else e.validator_value)
    ]


def _checked(source: Source, path: Path | None) -> Scenario:
    """The scenario in `source`, or ScenarioError naming every problem (with its line when `source` has them)."""
    data = source.data
    if not isinstance(data, dict):
        raise ScenarioError(f"{source.name}: {NOT_A_MAPPING}")
    found = problems(data)
    if source.problems or found:
        if source.text and not source.places:
            find_places(source)  # JSON: lines are looked up only when there is something to report
        error = refusal([source.locate(p) for p in [*source.problems, *found]], source.name)
        raise ScenarioError(str(error), error.problems)
    steps = []
    for index, raw in enumerate(data["steps"]):
        options = {k: v for k, v in raw.items() if k not in ("do", "name", "expect")}
        steps.append(Step(raw["do"], raw.get("name") or f"{index + 1}. {raw['do']}", options, raw.get("expect") or {}))
    return Scenario(
        data["name"],
        data.get("description", ""),
        path,
        data.get("tenant", "demo"),
        list(data.get("setup") or []),
        steps,
        source,
    )


def parse_scenario(data: Any, source: Path | None = None) -> Scenario:
    """Check plain data against the schema and read it; ScenarioError naming every place with a problem."""
    return _checked(Source(str(source) if source else "scenario", data), source)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file (`.json` as JSON, anything else as YAML); ScenarioError naming file, line and column."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        source = parse(name, decode(name, raw), as_json=path.suffix.lower() == ".json")
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    return _checked(source, path)


def builtin_scenarios() -> list[Path]:
    """The built-in library, in file-name order."""
    return sorted(LIBRARY.glob("*.yaml"))
