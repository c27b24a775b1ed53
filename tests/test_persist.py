"""`serve --persist`: the world, mail included, survives a restart, a clean stop and a kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from m365_mock.tools.process import RunningEmulator, start_emulator

pytestmark = pytest.mark.slow

SUPPORT = "support@contoso.onmicrosoft.com"
BILLING = "billing@contoso.onmicrosoft.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def admin(running: RunningEmulator, method: str, path: str, body=None) -> requests.Response:
    return requests.request(
        method,
        f"{running.base_url}/_m365{path}",
        json=body,
        headers={"X-M365-Admin-Key": running.facts["admin_key"]},
        verify=running.ca_file,
        timeout=30,
    )


def graph(running: RunningEmulator, method: str, path: str, **kwargs) -> requests.Response:
    app, tenant = running.app, running.tenant
    token = requests.post(
        tenant["token_endpoint"],
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
        },
        verify=running.ca_file,
        timeout=30,
    ).json()["access_token"]
    return requests.request(
        method,
        f"{running.base_url}/v1.0{path}",
        headers={"Authorization": f"Bearer {token}"},
        verify=running.ca_file,
        timeout=30,
        **kwargs,
    )


def subjects(running: RunningEmulator, mailbox: str) -> list[str]:
    listed = graph(running, "GET", f"/users/{mailbox}/mailFolders/inbox/messages?$top=100&$select=subject")
    assert listed.status_code == 200, listed.text
    return [m["subject"] for m in listed.json()["value"]]


def kept_subjects(state: Path) -> list[str]:
    """What the world file holds right now (read beside the running server, as SQLite allows)."""
    db = sqlite3.connect(state / "world.sqlite")
    try:
        return [json.loads(data).get("subject", "") for (data,) in db.execute("SELECT data FROM messages")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def send(running: RunningEmulator, subject: str) -> None:
    message = {"subject": subject, "toRecipients": [{"emailAddress": {"address": BILLING}}]}
    assert graph(running, "POST", f"/users/{SUPPORT}/sendMail", json={"message": message}).status_code == 202


def test_mail_and_rules_survive_a_kill_9(tmp_path):
    state = tmp_path / "state"
    with start_emulator(state, "--persist") as first:
        send(first, "sent before the kill")
        before = graph(first, "GET", f"/users/{BILLING}/mailFolders/inbox/messages?$top=100").json()
        policy = admin(
            first,
            "POST",
            f"/tenants/{first.tenant['id']}/accessPolicies",
            {
                "app_id": first.app["app_id"],
                "scope": BILLING.replace("billing", "cctr_sec_group"),
                "access_right": "DenyAccess",
            },
        )
        assert policy.status_code == 201, policy.text
        wait_until(lambda: "sent before the kill" in kept_subjects(state), "the write of the sent mail")
        time.sleep(1.0)  # the directory is written at the next interval after its change
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(10)

    with start_emulator(state, "--persist") as second:
        assert "the world kept in" in (state / "serve.log").read_text()
        denied = graph(second, "GET", f"/users/{BILLING}/mailFolders/inbox/messages")
        assert denied.status_code == 403, "the DenyAccess policy made before the kill is in force again"
        assert admin(second, "DELETE", f"/tenants/{second.tenant['id']}/accessPolicies/{policy.json()['id']}").ok
        after = graph(second, "GET", f"/users/{BILLING}/mailFolders/inbox/messages?$top=100").json()
        assert [m["id"] for m in after["value"]] == [m["id"] for m in before["value"]]
        assert after["value"][0]["subject"] == "sent before the kill"


def test_the_world_file_holds_the_world_from_the_first_answer(tmp_path):
    state = tmp_path / "state"
    with start_emulator(state, "--persist") as running:
        assert running.facts["admin_key"]
        assert "Order #10423 arrived damaged" in kept_subjects(state), "written before the emulator answered"


def test_a_clean_stop_keeps_the_last_change(tmp_path):
    state = tmp_path / "state"
    with start_emulator(state, "--persist") as first:
        send(first, "sent just before the stop")
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(20)
    with start_emulator(state, "--persist") as second:
        assert subjects(second, BILLING)[0] == "sent just before the stop"


def test_fresh_starts_from_the_tenant_and_reset_goes_back_to_it(tmp_path):
    state = tmp_path / "state"
    with start_emulator(state, "--persist") as first:
        send(first, "from the first run")
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(20)
    with start_emulator(state, "--persist") as second:
        assert "from the first run" in subjects(second, BILLING)
        assert admin(second, "POST", "/reset").ok
        assert "from the first run" not in subjects(second, BILLING)
    with start_emulator(state, "--persist", "--fresh") as third:
        assert "from the first run" not in subjects(third, BILLING)


def test_without_persist_nothing_is_kept(tmp_path):
    state = tmp_path / "state"
    with start_emulator(state) as first:
        send(first, "forgotten")
    assert not (state / "world.sqlite").exists()
    with start_emulator(state) as second:
        assert "forgotten" not in subjects(second, BILLING)


def test_the_setting_and_the_environment_variable_turn_it_on(tmp_path):
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(
        "settings: {persist: true}\n"
        "tenants:\n"
        "  - domains: [fabrikam.onmicrosoft.com]\n"
        "    mailboxes: [{address: desk@fabrikam.onmicrosoft.com, type: shared}]\n"
        "    applications: [{display_name: Daemon, permissions: [Mail.ReadWrite], secrets: [{value: s3cr3t-value}]}]\n"
    )
    with start_emulator(tmp_path / "by-setting", "--config", str(tenant)):
        pass
    assert (tmp_path / "by-setting" / "world.sqlite").exists()
    with start_emulator(tmp_path / "by-env", env={"M365_MOCK_PERSIST": "1"}):
        pass
    assert (tmp_path / "by-env" / "world.sqlite").exists()


def test_a_world_file_that_cannot_be_read_stops_the_start_in_one_line(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "world.sqlite").write_bytes(b"not a database, " * 100)
    result = subprocess.run(
        [sys.executable, "-m", "m365_mock", "serve", "--persist", "--port", "0", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"m365-mock: cannot restore the world kept in {state / 'world.sqlite'}: ")
    assert "--fresh starts from the built-in demo tenant" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
