"""Scenario files are read as strictly as tenant files: repeated keys refused, date-times kept as written, every
problem named by file, line, column and key path; an inline tenant is checked against the tenant-file schema when
the file is read; certificate files a tenant names are read by the runner, not by the control API."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from m365_mock.identity.keys import certificate_pem, new_rsa_key, self_signed_certificate
from m365_mock.scenarios.actions import run_setup
from m365_mock.scenarios.model import ScenarioError, load_scenario
from m365_mock.scenarios.report import console
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.steps import perform
from m365_mock.scenarios.world import prepare
from tests.scenarios.conftest import EXPECTED_KINDS, clean_env, run_cli


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


def test_a_step_with_two_expect_blocks_is_refused_naming_both_lines(tmp_path):
    path = write(
        tmp_path / "twice.yaml",
        """
        name: two expectations
        steps:
          - do: fetch
            mailbox: support@{domain}
            expect: {count: 13}
            expect: {count: 0}
        """,
    )
    assert refusal(path) == f"{path}:6:5: steps[0].expect: repeated key (first given on line 5)"


def test_a_repeated_key_in_a_json_scenario_is_refused_with_its_line(tmp_path):
    path = write(
        tmp_path / "twice.json",
        """
        {
          "name": "json",
          "steps": [
            {"do": "token", "name": "first", "name": "second"}
          ]
        }
        """,
    )
    assert refusal(path) == f"{path}:4:38: steps[0].name: repeated key (first given on line 4)"


def test_every_problem_is_reported_with_file_line_and_column_in_file_order(tmp_path):
    path = write(
        tmp_path / "many.yaml",
        """
        name: many problems
        description: [not, text]
        steps:
          - do: fetch
            mailbox: support@{domain}
            expct: {count: 13}
          - do: read
            subject: Hello
          - do: fetch
            mailbox: sales@{domain}
            top: many
          - do: Fetch
            mailbox: sales@{domain}
        setup:
          - exo: Get-ApplicationAccessPolicy
            advance: 60
        """,
    )
    assert refusal(path).splitlines() == [
        f"{path}:2:1: description: expected a string, got a list",
        f"{path}:6:5: steps[0].expct: unknown key; did you mean 'expect'?",
        f"{path}:7:5: steps[1].mailbox: required when do is 'read'",
        f"{path}:11:5: steps[2].top: expected a whole number, got a string",
        f"{path}:12:5: steps[3].do: expected {EXPECTED_KINDS}, got 'Fetch'",
        f"{path}:15:5: setup[0]: give only one of 'exo' and 'advance'",
    ]


def test_a_misspelt_key_in_an_inline_tenant_is_refused_before_anything_runs(tmp_path):
    path = write(
        tmp_path / "inline.yaml",
        """
        name: inline tenant
        tenant:
          tenants:
            - domains: [fabrikam.onmicrosoft.com]
              mailboxes: [{address: helpdesk@fabrikam.onmicrosoft.com}]
              applications: [{display_name: Daemon, permissions: [Mail.Read], secrets: [{}]}]
              accessPolicies:
                - {app_id: Daemon, scope: helpdesk@fabrikam.onmicrosoft.com, access_right: RestrictAccess}
        steps:
          - do: fetch
            mailbox: helpdesk@fabrikam.onmicrosoft.com
        """,
    )
    line = f"{path}:7:7: tenant.tenants[0].accessPolicies: unknown key; did you mean 'access_policies'?"
    assert refusal(path) == line
    result = run_cli("scenario", "run", str(path), env=clean_env(tmp_path / "no-emulator"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        f"m365-mock scenario run: {line}\nm365-mock scenario run: nothing was run: fix the file(s) above\n"
    )


@pytest.mark.slow
def test_unquoted_date_times_are_kept_as_written(target, tmp_path):
    path = write(
        tmp_path / "dates.yaml",
        """
        name: unquoted date-times
        tenant:
          tenants:
            - domains: [fabrikam.onmicrosoft.com]
              mailboxes: [{address: helpdesk@fabrikam.onmicrosoft.com}]
              applications:
                - display_name: Daemon
                  permissions: [Mail.Read]
                  secrets: [{starts: 2019-01-01T00:00:00Z, expires: 2020-01-01T00:00:00Z}, {}]
        setup:
          - deliver:
              mailbox: helpdesk@fabrikam.onmicrosoft.com
              message: {subject: Old news, received: 2026-05-01T08:00:00Z}
        steps:
          - do: fetch
            mailbox: helpdesk@fabrikam.onmicrosoft.com
            expect: {subjects: [Old news]}
        """,
    )
    scenario = load_scenario(path)
    result = run_scenario(target, scenario)
    assert result.passed, console([result])
    world = prepare(target, scenario)
    run_setup(world, scenario.setup[0])
    [message] = perform(world, scenario.steps[0]).messages
    assert message["receivedDateTime"] == "2026-05-01T08:00:00Z"
    assert world.apps[0]["secrets"][0]["expires"] == "2020-01-01T00:00:00Z"


TENANT_WITH_CERTIFICATE = """
tenants:
  - domains: [fabrikam.onmicrosoft.com]
    mailboxes: [{address: helpdesk@fabrikam.onmicrosoft.com}]
    applications:
      - display_name: Daemon
        permissions: [Mail.Read]
        secrets: [{}]
        certificates:
          - display_name: daemon cert
            file: certs/daemon.pem
"""

SCENARIO_WITH_TENANT_FILE = """
name: certificate named by file
tenant: tenants/tenant.yaml
steps:
  - do: fetch
    mailbox: helpdesk@fabrikam.onmicrosoft.com
    expect: {count: 0}
"""


def certificate_text() -> str:
    return certificate_pem(self_signed_certificate(new_rsa_key(), "Daemon"))


@pytest.mark.slow
def test_a_certificate_file_is_read_relative_to_the_tenant_file_and_sent_as_pem(target, tmp_path):
    pem = certificate_text()
    write(tmp_path / "tenants" / "certs" / "daemon.pem", pem)
    write(tmp_path / "tenants" / "tenant.yaml", TENANT_WITH_CERTIFICATE)
    scenario = load_scenario(write(tmp_path / "scenario.yaml", SCENARIO_WITH_TENANT_FILE))
    result = run_scenario(target, scenario)
    assert result.passed, console([result])
    [certificate] = prepare(target, scenario).apps[0]["certificates"]
    assert (certificate["display_name"], certificate["pem"].strip()) == ("daemon cert", pem.strip())


@pytest.mark.slow
def test_a_certificate_file_that_is_not_there_fails_the_scenario_naming_its_place(target, tmp_path):
    tenant = write(tmp_path / "tenants" / "tenant.yaml", TENANT_WITH_CERTIFICATE)
    result = run_scenario(target, load_scenario(write(tmp_path / "scenario.yaml", SCENARIO_WITH_TENANT_FILE)))
    assert not result.passed and result.steps == []
    assert result.error == (
        f"setup failed: {tenant}:10:13: tenants[0].applications[0].certificates[0].file: "
        f"cannot read {tmp_path / 'tenants' / 'certs' / 'daemon.pem'}: No such file or directory"
    )


@pytest.mark.slow
def test_an_inline_tenant_reads_its_certificate_file_next_to_the_scenario(target, tmp_path):
    pem = certificate_text()
    write(tmp_path / "certs" / "daemon.pem", pem)
    inline = textwrap.indent(TENANT_WITH_CERTIFICATE.strip("\n"), "  ")
    path = write(tmp_path / "inline.yaml", "name: inline certificate\ntenant:\n" + inline + "\nsteps:\n  - do: token\n")
    result = run_scenario(target, load_scenario(path))
    assert result.passed, console([result])
    assert result.steps[0].detail == "token for Daemon with roles ['Mail.Read']"
    (tmp_path / "certs" / "daemon.pem").unlink()
    result = run_scenario(target, load_scenario(path))
    assert result.error == (
        f"setup failed: {path}:12:15: tenant.tenants[0].applications[0].certificates[0].file: "
        f"cannot read {tmp_path / 'certs' / 'daemon.pem'}: No such file or directory"
    )
