"""docker-compose.yml's `daemon` profile without Docker, as tests/test_compose.py runs the rest: the emulator and
the team's daemon (examples/contact_centre, the image its Dockerfile builds) as local processes with their
services' environments, container paths mapped to folders and `emulator:8443` to the local emulator."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from m365_mock.tools.control_client import ControlClient
from tests.examples.conftest import CONTACT_CENTRE, REPO, until
from tests.test_compose import compose, host_paths, interpolate, local, start_emulator_service, volume_map

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


def image_files(dockerfile: Path) -> dict[str, Path]:
    """Container path -> the file of the build context a Dockerfile's `COPY source /path` puts there."""
    found = {}
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "COPY":
            found[words[2]] = dockerfile.parent / words[1]
    return found


def test_the_daemon_service_is_the_teams_image_beside_the_emulator_and_off_by_default():
    services = compose()["services"]
    daemon, runner = services["daemon"], services["daemon-scenarios"]
    assert [name for name, s in services.items() if "daemon" in s.get("profiles", [])] == ["daemon", "daemon-scenarios"]
    assert all("profiles" not in services[name] for name in ("emulator", "reports", "scenarios"))
    assert (REPO / daemon["build"] / "Dockerfile").is_file() and daemon["image"] != services["emulator"]["image"]
    assert daemon["depends_on"] == {"emulator": {"condition": "service_healthy"}}
    assert "ports" not in daemon
    assert runner["depends_on"]["daemon"] == {"condition": "service_started"}
    [script] = [arg for arg in daemon["command"] if arg.endswith(".py")]
    assert image_files(REPO / daemon["build"] / "Dockerfile")[script] == CONTACT_CENTRE / "daemon.py"


def test_the_daemon_gets_the_connection_facts_and_the_emulators_ca():
    services = compose()["services"]
    daemon, emulator = services["daemon"], services["emulator"]
    env = daemon["environment"]
    assert not any("ADMIN_KEY" in name for name in env), "the daemon never gets the control API's key"
    # the CA the emulator writes in its state folder, mounted read-only
    state = emulator["command"][emulator["command"].index("--state-dir") + 1]
    assert f"m365-state:{state}:ro" in daemon["volumes"]
    assert {env[name] for name in CA_VARIABLES} == {env["M365_MOCK_CA_FILE"]} == {f"{state}/ca.pem"}
    # the tenant and app of compose/tenant.yaml, by the emulator's name on the compose network
    [tenant] = yaml.safe_load((REPO / "compose" / "tenant.yaml").read_text())["tenants"]
    [app] = tenant["applications"]
    domain = tenant["domains"][0]
    assert (env["M365_MOCK_CLIENT_ID"], env["M365_MOCK_CLIENT_SECRET"]) == (app["app_id"], app["secrets"][0]["value"])
    assert (env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"]) == (app["app_id"], app["secrets"][0]["value"])
    assert env["M365_MOCK_AUTHORITY"] == f"https://emulator:8443/{domain}"
    assert env["M365_MOCK_TOKEN_ENDPOINT"] == f"https://emulator:8443/{domain}/oauth2/v2.0/token"
    assert env["M365_MOCK_GRAPH_URL"] == "https://emulator:8443/v1.0"
    assert env["QUEUE_MAILBOX"] in [m["address"] for m in tenant["mailboxes"]]
    # every variable daemon.py reads (os.environ["X"] / .get("X")) is set
    read = set(re.findall(r'os\.environ(?:\.get\()?\[?"([A-Z0-9_]+)"', (CONTACT_CENTRE / "daemon.py").read_text()))
    assert read - {"MAILBOXES", "ONCE"} <= set(env), read - set(env)


@dataclass
class Topology:
    """The emulator and the daemon services running as local processes."""

    admin: ControlClient  # the emulator's control API, as compose's admin key opens it
    port: int
    volumes: dict[str, Path]  # the named volumes' folders
    queue: str
    connector: subprocess.Popen
    connector_log: Path

    def answered(self, subject: str) -> int:
        """How many replies to `subject` went out."""
        return [m["subject"] for m in self.admin.outbound()].count(f"RE: {subject}")


@contextmanager
def daemon_topology(tmp_path: Path) -> Iterator[Topology]:
    """The emulator as tests/test_compose.py runs it, then the daemon service's command from its image (the
    Dockerfile's COPY lines) with its environment; stopped with SIGTERM afterwards, which it must answer with 0."""
    spec = compose()
    daemon = spec["services"]["daemon"]
    server, named, port = start_emulator_service(spec, tmp_path, subprocess.DEVNULL)
    connector = None
    log = tmp_path / "daemon.log"
    try:
        until(lambda: (named["m365-state"] / "connection.json").exists(), 30, "the emulator's start")
        admin = ControlClient(
            f"https://127.0.0.1:{port}",
            interpolate(str(spec["services"]["emulator"]["environment"]["M365_MOCK_ADMIN_KEY"])),
            ca_file=str(named["m365-state"] / "ca.pem"),
        )
        mapped = image_files(REPO / daemon["build"] / "Dockerfile") | volume_map(daemon, named)
        command = [sys.executable if arg == "python" else arg for arg in host_paths(daemon["command"], mapped)]
        daemon_env = {k: v for k, v in os.environ.items() if not k.startswith("M365_MOCK_")}
        for name, value in daemon["environment"].items():
            value = str(value).replace("https://emulator:8443", f"https://127.0.0.1:{port}")
            daemon_env[name] = host_paths([value], mapped)[0]
        daemon_env["ATTACHMENTS_DIR"] = str(tmp_path / "attachments")  # in the container's own /tmp
        daemon_env["POLL_SECONDS"] = "0.2"  # the service polls every 2 s; the test need not wait so long
        with log.open("w") as stderr:
            connector = subprocess.Popen(command, env=daemon_env, stderr=stderr, cwd=tmp_path)
        yield Topology(admin, port, named, daemon_env["QUEUE_MAILBOX"], connector, log)
        assert connector.poll() is None, log.read_text()
    finally:
        if connector is not None:
            connector.send_signal(signal.SIGTERM)
            connector.wait(15)
        server.terminate()
        server.wait(15)
    assert connector.returncode == 0, log.read_text()
    assert log.read_text().rstrip().endswith("INFO stopped"), log.read_text()


CUSTOMER = {"from": {"emailAddress": {"address": "ann.lee@example.org"}}, "body": {"content": "It jams."}}


@pytest.mark.slow
def test_the_daemon_topology_runs_as_local_processes(tmp_path):
    with daemon_topology(tmp_path) as topology:
        topology.admin.deliver(topology.queue, {"subject": "Printer jammed", **CUSTOMER})
        until(lambda: topology.answered("Printer jammed"), 30, "the daemon's reply")
        # What daemon-scenarios does first: import the tenant the daemon was configured for, under it.
        topology.admin.import_world(yaml.safe_load((REPO / "compose" / "tenant.yaml").read_text()))
        topology.admin.deliver(topology.queue, {"subject": "Toner is empty", **CUSTOMER})
        until(lambda: topology.answered("Toner is empty"), 30, "a reply after the tenant was imported again")
        assert topology.answered("Toner is empty") == 1


@pytest.mark.slow
def test_the_daemon_scenarios_runner_waits_for_the_daemons_effects(tmp_path):
    runner = compose()["services"]["daemon-scenarios"]
    reports = tmp_path / "reports"
    reports.mkdir()
    with daemon_topology(tmp_path) as topology:
        volumes = volume_map(runner, topology.volumes) | {"/reports": reports}
        env = {**os.environ, **{k: str(v) for k, v in runner["environment"].items()}}
        result = subprocess.run(
            local(runner["command"], volumes, topology.port), env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed, 0 failed" in result.stdout  # its check: exactly one reply went out, nothing filed twice
    assert (reports / "daemon-junit.xml").exists()
