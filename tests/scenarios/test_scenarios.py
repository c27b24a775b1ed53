"""Scenario files, the runner and its reports: the built-in library passes, a wrong expectation fails clearly."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from m365_mock.scenarios.model import ScenarioError, builtin_scenarios, load_scenario, parse_scenario
from m365_mock.scenarios.report import console, junit
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.schema import SCHEMA, SCHEMA_FILE, schema_text
from tests.scenarios.conftest import clean_env, run_cli

pytestmark = pytest.mark.slow


def test_schema_file_is_the_schema():
    assert json.loads(SCHEMA_FILE.read_text()) == SCHEMA
    assert SCHEMA_FILE.read_text() == schema_text(), "run: python -m m365_mock.scenarios.schema"


def test_library_has_the_situations_teams_hit():
    names = [p.stem for p in builtin_scenarios()]
    assert len(names) == 11 and names[0] == "01-restricted-mailbox" and names[-1] == "11-fetch-loop"


@pytest.mark.parametrize("path", builtin_scenarios(), ids=lambda p: p.stem)
def test_each_builtin_scenario_passes(target, path):
    result = run_scenario(target, load_scenario(path))
    assert result.passed, console([result])
    assert result.steps and all(step.passed for step in result.steps)


def test_a_wrong_expectation_fails_with_what_was_expected_and_what_came(target):
    scenario = parse_scenario(
        {
            "name": "wrong on purpose",
            "steps": [
                {"do": "fetch", "mailbox": "support@{domain}", "expect": {"count": 99}},
                {"do": "fetch", "mailbox": "sales@{domain}"},
                {"do": "fetch", "mailbox": "support@{domain}", "expect": {"error": {"status": 403}}},
                {"do": "token", "expect": {"claims": {"roles": ["Mail.Read"]}}},
            ],
        }
    )
    result = run_scenario(target, scenario)
    assert not result.passed
    details = [step.detail for step in result.steps]
    assert details[0] == "count 13 (expected 99)"
    assert details[1] == (
        "expected success, got 403 ErrorAccessDenied: Access to OData is disabled: [RAOP] : "
        "Blocked by tenant configured AppOnly AccessPolicy settings."
    )
    assert details[2] == "expected error 403, but the step succeeded"
    assert details[3] == "claim roles = ['Mail.ReadWrite', 'Mail.Send'] (expected ['Mail.Read'])"
    report = console([result])
    assert "FAIL  wrong on purpose" in report and "0 passed, 1 failed" in report


def test_a_failing_setup_stops_the_scenario(target):
    scenario = parse_scenario(
        {"name": "bad setup", "setup": [{"exo": "New-Nothing -Foo bar"}], "steps": [{"do": "token"}]}
    )
    result = run_scenario(target, scenario)
    assert not result.passed and result.steps == []
    assert result.error.startswith("setup failed: exo failed: New-Nothing : The term 'New-Nothing' is not recognized")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": [{"do": "token"}]}, "scenario: name: required"),
        (
            {"name": "x", "steps": [{"do": "dance"}]},
            "scenario: steps[0].do: expected 'token', 'fetch', 'read', 'mark_read', 'move', 'send', "
            "'wait_for_delivery', 'process', 'folder', 'log' or 'admin', got 'dance'",
        ),
        (
            {"name": "x", "steps": [{"do": "fetch", "mailbox": "a@b.example", "expect": {"count": "many"}}]},
            "scenario: steps[0].expect.count: expected a whole number, got a string",
        ),
        (
            {"name": "x", "steps": [{"do": "fetch", "mailbox": "a@b.example", "expct": {"count": 1}}]},
            "scenario: steps[0].expct: unknown key; did you mean 'expect'?",
        ),
        (
            {"name": "x", "setup": [{"exo": "a", "advance": 1}], "steps": [{"do": "token"}]},
            "scenario: setup[0]: give only one of 'exo' and 'advance'",
        ),
        (
            {"name": "x", "setup": [{}], "steps": [{"do": "token"}]},
            "scenario: setup[0]: give 'exo', 'control', 'deliver', 'advance', 'settings' or 'certificate'",
        ),
    ],
)
def test_invalid_scenarios_name_the_place(data, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert str(info.value) == message


def test_every_problem_of_plain_data_is_reported_in_the_order_of_its_keys():
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": " ", "tenant": 7, "steps": [{"do": "send", "mailbox": "a@b.example", "to": 3}]})
    assert str(info.value).splitlines() == [
        "scenario: name: expected a non-empty string",
        "scenario: tenant: expected a string or a mapping, got a whole number",
        "scenario: steps[0].to: expected a string or a list, got a whole number",
    ]


def test_junit_report(target, tmp_path):
    good = run_scenario(target, load_scenario(builtin_scenarios()[4]))
    bad = run_scenario(
        target,
        parse_scenario(
            {"name": "bad", "steps": [{"do": "fetch", "mailbox": "support@{domain}", "expect": {"count": 1}}]}
        ),
    )
    junit([good, bad], tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [good.name, "bad"]
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == "1. fetch: count 13 (expected 1)"


def test_cli_runs_files_and_writes_junit(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: wrong\nsteps:\n  - do: fetch\n    mailbox: support@{domain}\n    expect: {count: 2}\n")
    result = run_cli(
        "scenario",
        "run",
        str(builtin_scenarios()[4]),
        str(wrong),
        "--junit",
        str(tmp_path / "j.xml"),
        env=clean_env(tmp_path / "state"),
    )
    assert result.returncode == 1, result.stderr
    assert "PASS  Wrong secret" in result.stdout and "FAIL  wrong" in result.stdout
    assert "count 13 (expected 2)" in result.stdout and "1 passed, 1 failed" in result.stdout
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "1"


def test_cli_refuses_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps: []\n")
    result = run_cli("scenario", "run", str(bad), env=clean_env(tmp_path / "state"))
    assert result.returncode == 2 and f"{bad}:2:1: steps: expected a non-empty list" in result.stderr


def test_cli_against_a_running_emulator_by_url(tmp_path):
    from m365_mock.tools.process import start_emulator

    with start_emulator(tmp_path / "state") as running:
        result = run_cli(
            "scenario",
            "run",
            str(builtin_scenarios()[0]),
            "--url",
            running.base_url,
            f"--admin-key={running.facts['admin_key']}",  # a generated key may start with '-'
            "--ca-file",
            running.ca_file,
            "--json",
            env=clean_env(tmp_path / "nothing-here"),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    [report] = json.loads(result.stdout)
    assert report["passed"] is True and report["name"].startswith("Restricted mailbox")


def test_demo_runs_the_library_against_a_served_emulator(tmp_path):
    result = run_cli("demo", "--no-serve", "--port", "0", "--state-dir", str(tmp_path), env=clean_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 passed, 0 failed" in result.stdout


def test_attachments_are_found_next_to_the_scenario_file(target, tmp_path):
    (tmp_path / "invoice.txt").write_text("amount due: 42")
    path = tmp_path / "attach.yaml"
    path.write_text(
        "name: attach\nsteps:\n"
        "  - do: send\n    mailbox: support@{domain}\n    to: billing@{domain}\n    subject: With file\n"
        "    attachments: [invoice.txt]\n"
        "  - do: wait_for_delivery\n    mailbox: billing@{domain}\n    subject: With file\n    expect: {count: 1}\n"
    )
    result = run_scenario(target, load_scenario(path))
    assert result.passed, console([result])
