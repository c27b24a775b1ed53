"""Scenario files: YAML (or JSON) checked against scenarios/schema.json, read into plain objects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from scenarios.schema import SCHEMA

LIBRARY = Path(__file__).resolve().parent / "library"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the place in it."""


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

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()


def _where(error: jsonschema.ValidationError, data: Any) -> str:
    """Where a problem is, e.g. `steps[2].expect.count`; a step itself is named with its kind: `steps[2] (fetch)`."""
    path = list(error.absolute_path)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(top)"
    if len(path) == 2 and path[0] == "steps" and isinstance(data, dict):
        step = data["steps"][path[1]]
        if isinstance(step, dict) and isinstance(step.get("do"), str):
            where += f" ({step['do']})"
    return where


def _order(error: jsonschema.ValidationError) -> list[tuple[int, int, str]]:
    """Errors in document order (list positions as numbers, so steps[10] comes after steps[2])."""
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return error.message.replace(" is a required property", " is required")
    return error.message


def parse_scenario(data: Any, source: Path | None = None) -> Scenario:
    """Check `data` against the schema and read it; ScenarioError naming the first place with problems."""
    label = str(source) if source else "scenario"
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=_order)
    if errors:
        first = [e for e in errors if e.absolute_path == errors[0].absolute_path]
        raise ScenarioError(f"{label}: {_where(first[0], data)}: " + "; ".join(dict.fromkeys(map(_message, first))))
    steps = []
    for index, raw in enumerate(data["steps"]):
        options = {k: v for k, v in raw.items() if k not in ("do", "name", "expect")}
        steps.append(Step(raw["do"], raw.get("name") or f"{index + 1}. {raw['do']}", options, raw.get("expect") or {}))
    return Scenario(
        data["name"],
        data.get("description", ""),
        source,
        data.get("tenant", "demo"),
        list(data.get("setup") or []),
        steps,
    )


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from None
    return parse_scenario(data, path)


def builtin_scenarios() -> list[Path]:
    """The built-in library, in file-name order."""
    return sorted(LIBRARY.glob("*.yaml"))
