"""The runner's tables and the schema agree: every kind of step has a handler and its options in the schema, a
handler reads exactly the options declared for it, the required ones are required by the schema, the documentation
lists the same, and a kind no handler does is refused before anything runs. Likewise for admin actions and
expectations. The schema (read for every file) imports none of what running needs."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from m365_mock.scenarios.actions import ACTIONS
from m365_mock.scenarios.expectations import CHECKS
from m365_mock.scenarios.model import ScenarioError, Step, parse_scenario
from m365_mock.scenarios.schema import REQUIRED_OPTIONS, SCHEMA, STEP_KINDS
from m365_mock.scenarios.steps import COMMON_OPTIONS, STEPS, perform
from m365_mock.scenarios.world import ScenarioFailure
from tests.scenarios.conftest import REPO

STEP_SCHEMA = SCHEMA["properties"]["steps"]["items"]
STEP_KEYS = {"do", "name", "expect"}  # the step's own keys; every other key is an option


def required_by_schema(kind: str) -> set[str]:
    """What the schema requires of a step with `do: kind`, read from the schema itself (its if/then rules)."""
    required: set[str] = set()
    for rule in STEP_SCHEMA.get("allOf", []):
        if rule["if"]["properties"]["do"] == {"const": kind}:
            required.update(rule["then"]["required"])
    return required


def test_the_kinds_of_step_are_the_table_of_handlers():
    assert STEP_SCHEMA["properties"]["do"]["enum"] == STEP_KINDS == list(STEPS)
    assert all(callable(kind.handler) for kind in STEPS.values())


@pytest.mark.parametrize("kind", list(STEPS))
def test_each_kind_has_its_options_in_the_schema_and_requires_what_its_handler_needs(kind):
    step = STEPS[kind]
    options = set(step.required) | set(step.optional)
    assert not set(step.required) & set(step.optional)
    assert options <= set(STEP_SCHEMA["properties"]), "an option the schema does not know would be refused"
    assert required_by_schema(kind) == set(step.required) == set(REQUIRED_OPTIONS[kind])


def test_every_option_of_the_schema_is_read_by_some_handler():
    read = {option for step in STEPS.values() for option in (*step.required, *step.optional)}
    assert set(STEP_SCHEMA["properties"]) - STEP_KEYS - set(COMMON_OPTIONS) == read


def options_read(function) -> tuple[set[str], set[str]]:
    """(options read as o["x"], options read as o.get("x") or tested with "x" in o) in a handler's source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    indexed, got = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "o":
            assert isinstance(node.slice, ast.Constant), "options are read by name"
            indexed.add(node.slice.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "o"
        ):
            got.add(node.args[0].value)
        elif isinstance(node, ast.Compare) and any(isinstance(c, ast.Name) and c.id == "o" for c in node.comparators):
            got.add(node.left.value)
    return indexed, got


@pytest.mark.parametrize("kind", list(STEPS))
def test_a_handler_reads_its_required_options_outright_and_the_others_with_defaults(kind):
    step = STEPS[kind]
    indexed, got = options_read(step.handler)
    common = set(COMMON_OPTIONS)
    assert indexed - common == set(step.required), "o['x'] is for required options"
    assert got - common - indexed == set(step.optional)


@pytest.mark.parametrize("kind", ["dance", "Fetch", "FETCH", " fetch", "", "perform", "setup"])
def test_a_kind_no_handler_does_is_refused_when_the_file_is_read(kind):
    assert kind not in STEPS
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": "x", "steps": [{"do": "token"}, {"do": kind, "mailbox": "a@b.example"}]})
    assert str(info.value).startswith("scenario: steps[1].do: expected 'token', 'fetch', ")
    assert str(info.value).endswith(f", got {kind!r}")


def test_a_step_built_by_hand_with_an_unknown_kind_fails_instead_of_passing():
    with pytest.raises(ScenarioFailure, match="no kind of step is called 'dance'; the kinds are token, fetch, "):
        perform(None, Step("dance", "1. dance", {}, {}))


def test_the_admin_actions_are_the_schema_actions():
    assert list(ACTIONS) == list(SCHEMA["$defs"]["action"]["properties"])


def test_every_expectation_of_the_schema_is_checked():
    expect = STEP_SCHEMA["properties"]["expect"]["properties"]
    assert {"ok", "error", *CHECKS} == set(expect)


def documented_steps() -> dict[str, tuple[set[str], set[str]]]:
    """docs/scenarios.md's table of steps: kind -> (bold options, all options), without `as` and `credential`."""
    text = (REPO / "docs" / "scenarios.md").read_text()
    table = text.split("### Steps", 1)[1].split("###", 1)[0]
    found = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0] != "`do`":
            bold = set(re.findall(r"\*\*`(\w+)`\*\*", cells[1]))
            every = set(re.findall(r"`(\w+)`", cells[1])) - set(COMMON_OPTIONS)
            found[cells[0].strip("`")] = (bold, every)
    return found


def test_the_documentation_lists_each_kind_with_its_options():
    documented = documented_steps()
    assert list(documented) == list(STEPS)
    for kind, step in STEPS.items():
        assert documented[kind] == (set(step.required), set(step.required) | set(step.optional)), kind


def test_the_schema_imports_nothing_that_running_needs():
    heavy = [
        "requests",
        "jwt",
        "cryptography",
        "flask",
        "m365_mock.client",
        "m365_mock.scenarios.target",
        "m365_mock.scenarios.actions",
        "m365_mock.scenarios.runner",
    ]
    code = f"import sys, m365_mock.scenarios.schema; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_private_emulator_is_the_production_server(target):
    response = requests.get(f"{target.base_url}/_m365/health", verify=target.ca_file, timeout=10)
    assert target.base_url.startswith("https://127.0.0.1:") and response.status_code == 200
    assert response.headers["server"] == "granian"
    assert Path(target.ca_file).parent.name == "state"
