"""`m365-mock scenario run` as a user starts it: which emulator it uses, what it leaves behind, how it fails."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from m365_mock.scenarios import runner
from m365_mock.scenarios.cli import add_arguments
from m365_mock.scenarios.cli import main as scenario_main
from m365_mock.scenarios.model import builtin_scenarios
from m365_mock.server import free_port
from m365_mock.tools.control_client import control_request
from m365_mock.tools.process import start_emulator
from tests.scenarios.conftest import clean_env, run_cli

pytestmark = pytest.mark.slow
LIBRARY = {path.stem: path for path in builtin_scenarios()}
PREFIX = "m365-mock scenario run: "


def run_in_process(*argv: str) -> int | str:
    parser = argparse.ArgumentParser(prog="m365-mock scenario")
    add_arguments(parser)
    try:
        return scenario_main(parser.parse_args(["run", *argv]))
    except KeyboardInterrupt:
        return "KeyboardInterrupt escaped"


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty TMPDIR for this process and its children; no emulator to find but a private one."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    for name in [n for n in os.environ if n.startswith("M365_MOCK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("M365_MOCK_STATE_DIR", str(tmp_path / "no-emulator"))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return temp


def test_a_run_with_its_private_emulator_leaves_nothing_in_the_temp_folder(temp_dir, tmp_path, capsys):
    """The run's own files (its private emulator, the scenarios' key files and downloads) go; that each built-in
    leaves nothing is checked scenario by scenario in test_scenarios.py."""
    files = [str(LIBRARY[name]) for name in ("09-certificate-credential", "12-attachments-intact")]
    assert run_in_process(*files, "--junit", str(tmp_path / "junit.xml")) == 0, capsys.readouterr().out
    assert sorted(p.name for p in temp_dir.iterdir()) == []


@pytest.mark.parametrize(("trouble", "status"), [(KeyboardInterrupt, 130), (RuntimeError, 1)])
def test_an_interrupted_or_broken_run_leaves_nothing_either(temp_dir, monkeypatch, capsys, trouble, status):
    def broken(world, step):
        assert list(world.workdir.glob("*.pem")), "the certificate's private key is written before the steps"
        raise trouble("boom")

    monkeypatch.setattr(runner, "perform", broken)
    assert run_in_process(str(LIBRARY["09-certificate-credential"])) == status
    assert sorted(p.name for p in temp_dir.iterdir()) == []
    if trouble is RuntimeError:
        assert "could not run: RuntimeError: boom" in capsys.readouterr().out


def test_a_file_with_a_step_missing_its_option_is_refused_up_front(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - do: token\n  - do: token\n  - do: fetch\n")
    junit = tmp_path / "junit.xml"
    result = run_cli(
        "scenario", "run", str(LIBRARY["05-wrong-secret"]), str(bad), "--junit", str(junit), env=clean_env(tmp_path)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{PREFIX}{bad}:5:5: steps[2].mailbox: required when do is 'fetch'\n" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    [case] = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert "steps[2].mailbox: required when do is 'fetch'" in case.find("failure").get("message")


def test_a_scenario_that_breaks_at_run_time_is_reported_and_the_others_still_run(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: missing tenant\ntenant: no-such-tenant.yaml\nsteps:\n  - do: token\n")
    missing_file = tmp_path / "missing-file.yaml"
    missing_file.write_text(
        "name: missing attachment\nsteps:\n"
        "  - do: send\n    mailbox: support@{domain}\n    to: billing@{domain}\n    attachments: [nowhere.pdf]\n"
        "  - do: token\n"
    )
    junit = tmp_path / "junit.xml"
    result = run_cli(
        "scenario",
        "run",
        str(broken),
        str(missing_file),
        str(LIBRARY["05-wrong-secret"]),
        "--junit",
        str(junit),
        env=clean_env(tmp_path),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "FAIL  missing tenant" in result.stdout and "no-such-tenant.yaml: cannot read tenant file" in result.stdout
    assert "FAIL  missing attachment" in result.stdout and "nowhere.pdf" in result.stdout
    assert "ok   2. token" in result.stdout and "PASS  Wrong secret" in result.stdout
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")


def test_without_an_emulator_a_private_one_runs_quietly(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    stale = {"base_url": f"https://127.0.0.1:{free_port()}", "admin_key": "k", "ca_file": None}
    (state / "connection.json").write_text(json.dumps(stale))
    result = run_cli("scenario", "run", str(LIBRARY["05-wrong-secret"]), env=clean_env(state))
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{PREFIX}using a private emulator at https://127.0.0.1:"), line
    assert f"{stale['base_url']}: it cannot be reached" in line


TENANT = """
tenants:
  - domains: [fabrikam.onmicrosoft.com]
    mailboxes: [{address: helpdesk@fabrikam.onmicrosoft.com, type: shared}]
    applications: [{display_name: Ticketing, permissions: [Mail.Read], secrets: [{}]}]
"""


def test_a_running_emulator_is_found_used_and_reset_to_its_own_tenant(tmp_path):
    (tmp_path / "tenant.yaml").write_text(TENANT)
    scenario = str(LIBRARY["05-wrong-secret"])
    with start_emulator(tmp_path / "state", "--config", str(tmp_path / "tenant.yaml")) as running:
        key, ca = running.facts["admin_key"], running.ca_file

        def control(method: str, path: str, body=None):
            response = control_request(running.base_url, key, method, path, body, ca_file=ca)
            assert response.status_code < 300, response.text
            return response.json()

        def mailboxes() -> list[str]:
            tenant = running.tenant["id"]
            return sorted(m["address"] for m in control("GET", f"/tenants/{tenant}/mailboxes")["value"])

        control("POST", f"/tenants/{running.tenant['id']}/mailboxes", {"address": "temp@fabrikam.onmicrosoft.com"})
        found = run_cli("scenario", "run", scenario, env=clean_env(running.state_dir))
        assert found.returncode == 0, found.stdout + found.stderr
        assert found.stderr.splitlines() == [
            f"{PREFIX}using the running emulator at {running.base_url} (from {running.state_dir / 'connection.json'})"
            "; reset to its own tenant afterwards"
        ]
        assert [t["domains"] for t in control("GET", "/tenants")["value"]] == [["fabrikam.onmicrosoft.com"]]
        assert mailboxes() == ["helpdesk@fabrikam.onmicrosoft.com"]

        by_env = clean_env(
            tmp_path / "elsewhere", M365_MOCK_BASE_URL=running.base_url, M365_MOCK_ADMIN_KEY=key, M365_MOCK_CA_FILE=ca
        )
        from_env = run_cli("scenario", "run", scenario, env=by_env)
        assert from_env.returncode == 0, from_env.stdout + from_env.stderr
        assert from_env.stderr.startswith(
            f"{PREFIX}using the emulator at {running.base_url} (from $M365_MOCK_BASE_URL)"
        )

        wrong_key = run_cli(
            "scenario",
            "run",
            scenario,
            "--url",
            running.base_url,
            "--admin-key",
            "wrong",
            "--ca-file",
            ca,
            env=clean_env(running.state_dir),
        )
        assert wrong_key.returncode == 2, wrong_key.stdout + wrong_key.stderr
        assert "its control API refuses the admin key" in wrong_key.stderr

        local = run_cli("scenario", "run", scenario, "--local", env=clean_env(running.state_dir))
        assert local.returncode == 0, local.stdout + local.stderr
        [line] = local.stderr.splitlines()
        assert line.startswith(f"{PREFIX}using a private emulator at ") and running.base_url not in line


def test_an_emulator_named_by_url_that_does_not_answer_is_refused(tmp_path):
    url = f"https://127.0.0.1:{free_port()}"
    result = run_cli(
        "scenario",
        "run",
        "--builtin",
        "--url",
        url,
        "--admin-key",
        "k",
        "--junit",
        str(tmp_path / "j.xml"),
        env=clean_env(tmp_path),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"{PREFIX}cannot use the emulator at {url}: it cannot be reached (ConnectionError)\n"
    cases = ET.parse(tmp_path / "j.xml").getroot().findall("./testsuite/testcase")
    assert len(cases) == len(LIBRARY)
    assert all("not run: cannot use the emulator" in c.find("failure").text for c in cases)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_run_stopped_by_a_signal_removes_its_files_and_its_emulator(tmp_path, signum, status):
    temp = tmp_path / "tmp"
    temp.mkdir()
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "name: slow\nsetup:\n  - certificate: {app: Contact Center Connector}\n"
        "steps:\n  - do: wait_for_delivery\n    mailbox: support@{domain}\n    subject: never\n    timeout: 60\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "m365_mock", "scenario", "run", str(slow)],
        env=clean_env(tmp_path / "no-emulator", TMPDIR=str(temp)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as on a terminal
    )
    try:
        deadline = time.monotonic() + 60
        while not list(temp.glob("m365-scenario-*/*.pem")):
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.1)
        run.send_signal(signum)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == status, out + err
    assert "Traceback" not in err
    assert sorted(p.name for p in temp.iterdir()) == [], "the private emulator's state or the key was left"
