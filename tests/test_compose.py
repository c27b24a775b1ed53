"""docker-compose.yml and the Dockerfile, exercised without Docker (none runs on CI machines here).

Each compose service's command runs as a local process with the service's environment and its volumes mapped
to folders: the emulator bound to loopback on a free port, the runner pointed at it by URL. The compose health
check runs as written (with the port changed) to decide when the emulator is up.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from mock_server.server import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def local(command: list[str], volumes: dict[str, Path], port: int) -> list[str]:
    """A service command for this machine: m365-mock from this checkout, container paths and addresses mapped."""
    out = []
    for arg in command:
        for container_path, host_path in volumes.items():
            if arg == container_path or arg.startswith(container_path + "/"):
                arg = str(host_path) + arg[len(container_path) :]
        arg = arg.replace("https://emulator:8443", f"https://127.0.0.1:{port}").replace(
            "127.0.0.1:8443", f"127.0.0.1:{port}"
        )
        out.append({"0.0.0.0": "127.0.0.1", "8443": str(port)}.get(arg, arg))
    assert out[0] == "m365-mock"
    return [sys.executable, "-m", "mock_server", *out[1:]]


def volume_map(service: dict, named: dict[str, Path]) -> dict[str, Path]:
    mapping = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        mapping[target] = (REPO / source).resolve() if source.startswith(".") else named[source]
    return mapping


def test_compose_topology_runs_the_builtin_scenarios(tmp_path):
    spec = compose()
    emulator, runner = spec["services"]["emulator"], spec["services"]["scenarios"]
    assert runner["depends_on"]["emulator"]["condition"] == "service_healthy"
    named = {name: tmp_path / name for name in spec["volumes"]}
    for folder in named.values():
        folder.mkdir()
    port = free_port()
    env = {**os.environ, **{k: str(v) for k, v in emulator["environment"].items()}}
    server = subprocess.Popen(
        local(emulator["command"], volume_map(emulator, named), port),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health = emulator["healthcheck"]["test"]
        assert health[0] == "CMD"
        check = [
            sys.executable if part == "python" else part.replace("127.0.0.1:8443", f"127.0.0.1:{port}")
            for part in health[1:]
        ]
        deadline = time.monotonic() + 30
        while subprocess.run(check, capture_output=True, timeout=10).returncode != 0:
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "the emulator never became healthy"
            time.sleep(0.2)
        reports = tmp_path / "reports"
        reports.mkdir()
        runner_volumes = volume_map(runner, named) | {"/reports": reports}
        runner_env = {**os.environ, **{k: str(v) for k, v in runner["environment"].items()}}
        result = subprocess.run(
            local(runner["command"], runner_volumes, port), env=runner_env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "11 passed, 0 failed" in result.stdout
        suite = ET.parse(reports / "junit.xml").getroot()
        assert (suite.get("tests"), suite.get("failures")) == ("11", "0")
        assert (named["m365-state"] / "ca.pem").exists()
    finally:
        server.terminate()
        server.wait(15)


def pip_installs(lines: list[str]) -> list[list[str]]:
    """The targets of each `pip install` in shell lines (options such as -q and --no-cache-dir dropped)."""
    found = []
    for line in lines:
        for command in re.split(r"&&|;", line):
            words = shlex.split(command)
            if len(words) > 2 and words[0] == "pip" and words[1] == "install":
                found.append([w for w in words[2:] if not w.startswith("-")])
    return found


def test_dockerfile_installs_the_way_the_readme_does():
    dockerfile = [line[4:] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("RUN ")]
    readme = (REPO / "README.md").read_text()
    run_block = re.search(r"## Run the emulator.*?```sh\n(.*?)```", readme, re.S).group(1)
    assert pip_installs(dockerfile) == pip_installs(run_block.splitlines()) == [["."]]
    copied = {line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    assert {"mock_server", "client", "scenarios", "pyproject.toml"} <= copied
