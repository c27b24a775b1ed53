"""Daemons in other languages, run unmodified against the emulator: Node.js with @azure/msal-node and fetch
(installed from the npm registry by the test, as CI installs it), and a POSIX shell script with curl only."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.examples.conftest import EXAMPLES, QUEUE, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node_daemon(tmp_path_factory):
    """examples/node_daemon copied out and installed from its lock file (`npm ci`), node_modules outside the
    checkout."""
    if shutil.which("npm") is None:
        pytest.fail("npm is needed for the Node.js daemon (Node.js 20 or newer)")
    folder = tmp_path_factory.mktemp("node") / "node_daemon"
    shutil.copytree(EXAMPLES / "node_daemon", folder, ignore=shutil.ignore_patterns("node_modules"))
    install = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return folder


def test_the_node_daemon_lists_the_queue_and_files_it(node_daemon, contact_centre, tmp_path):
    contact_centre.deliver(QUEUE, "Printer jammed")
    contact_centre.deliver(QUEUE, "Toner is empty", sender="carl@example.org")

    result = run(["node", "index.mjs"], contact_centre.env(QUEUE_MAILBOX=QUEUE, ONCE="1"), cwd=node_daemon)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{QUEUE}: 2 unread"
    assert sorted(lines[1:3]) == [
        "- Printer jammed (from ann.lee@example.org)",
        "- Toner is empty (from carl@example.org)",
    ]
    assert contact_centre.mail(QUEUE) == [("Processed", "Printer jammed", True), ("Processed", "Toner is empty", True)]
    [token] = contact_centre.log(kind="token")
    assert token["outcome"] == "issued", "one token, kept in MSAL's cache"
    graph = contact_centre.log(kind="graph")
    assert all(r["status"] < 300 and r["client_request_id"] for r in graph)


def test_the_shell_daemon_lists_the_queue_with_curl(contact_centre, tmp_path):
    contact_centre.deliver(QUEUE, "Printer jammed")
    contact_centre.deliver(QUEUE, "Toner is empty", sender="carl@example.org")
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, ONCE="1")

    result = run(["sh", str(EXAMPLES / "shell_daemon" / "daemon.sh")], env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{QUEUE}: 2 unread"
    assert sorted(lines[1:]) == ["- Printer jammed", "- Toner is empty"]
    [token] = contact_centre.log(kind="token")
    [listing] = contact_centre.log(kind="graph")
    assert (token["status"], listing["status"], listing["mailbox"]) == (200, 200, QUEUE)
    assert token["client_request_id"] and listing["client_request_id"]


def test_the_shell_daemon_reports_a_refused_token(contact_centre, tmp_path):
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, ONCE="1", M365_MOCK_CLIENT_SECRET="not-the-secret")

    result = run(["sh", str(EXAMPLES / "shell_daemon" / "daemon.sh")], env, cwd=tmp_path)

    assert result.returncode == 1
    assert "cannot get a token" in result.stderr and "AADSTS7000215" in result.stderr
    assert contact_centre.log(kind="graph") == []
