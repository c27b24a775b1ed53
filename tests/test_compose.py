"""docker-compose.yml, the Dockerfile and .dockerignore, exercised without Docker (none runs on CI machines here).

Each compose service's command runs as a local process with the service's environment and its volumes mapped
to folders: the emulator bound to loopback on a free port, the step that opens ./reports, the runner pointed at
the emulator by URL. The compose health check runs as written (with the port changed) to decide when the
emulator is up.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from m365_mock.scenarios.model import builtin_scenarios
from m365_mock.server import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def host_paths(command: list[str], volumes: dict[str, Path]) -> list[str]:
    """A command with container paths replaced by the host folders mounted there."""
    out = []
    for arg in command:
        for container_path, host_path in volumes.items():
            if arg == container_path or arg.startswith(container_path + "/"):
                arg = str(host_path) + arg[len(container_path) :]
        out.append(arg)
    return out


def local(command: list[str], volumes: dict[str, Path], port: int) -> list[str]:
    """A service command for this machine: m365-mock from this checkout, container paths and addresses mapped."""
    out = []
    for arg in host_paths(command, volumes):
        arg = arg.replace("https://emulator:8443", f"https://127.0.0.1:{port}").replace(
            "127.0.0.1:8443", f"127.0.0.1:{port}"
        )
        out.append({"0.0.0.0": "127.0.0.1", "8443": str(port)}.get(arg, arg))
    assert out[0] == "m365-mock"
    return [sys.executable, "-m", "m365_mock", *out[1:]]


def volume_map(service: dict, named: dict[str, Path]) -> dict[str, Path]:
    mapping = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        mapping[target] = (REPO / source).resolve() if source.startswith(".") else named[source]
    return mapping


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}`: the variable when it is set and not empty, else the default."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1)) or m.group(2), value)


def start_emulator_service(
    spec: dict, tmp_path: Path, output: int = subprocess.PIPE
) -> tuple[subprocess.Popen, dict[str, Path], int]:
    """The compose file's `emulator` service as a local process: its named volumes as folders under `tmp_path`,
    its command and environment, a free port. (the process, the volumes' folders, the port)"""
    emulator = spec["services"]["emulator"]
    named = {name: tmp_path / name for name in spec["volumes"]}
    for folder in named.values():
        folder.mkdir()
    port = free_port()
    env = {**os.environ, **{k: interpolate(str(v)) for k, v in emulator["environment"].items()}}
    server = subprocess.Popen(
        local(emulator["command"], volume_map(emulator, named), port),
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output == subprocess.PIPE else output,
        start_new_session=True,
    )
    return server, named, port


def test_compose_topology_runs_the_scenario_runner_against_the_emulator(tmp_path):
    spec = compose()
    emulator, opener, runner = (spec["services"][name] for name in ("emulator", "reports", "scenarios"))
    assert runner["depends_on"]["emulator"]["condition"] == "service_healthy"
    assert runner["depends_on"]["reports"]["condition"] == "service_completed_successfully"
    server, named, port = start_emulator_service(spec, tmp_path)
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
        reports.chmod(0o755)  # as a checkout or Docker makes it: only its owner (the host user or root) may write
        subprocess.run(host_paths(opener["command"], volume_map(opener, named) | {"/reports": reports}), check=True)
        assert stat.S_IMODE(reports.stat().st_mode) & 0o007 == 0o007, "uid 10001 may not write the reports"
        runner_volumes = volume_map(runner, named) | {"/reports": reports}
        runner_env = {**os.environ, **{k: str(v) for k, v in runner["environment"].items()}}
        # The runner's own command, with two of the built-ins for `--builtin`: the topology is what is tested here;
        # the whole library runs against a served emulator in test_scenarios.py (each scenario, and `demo`).
        command = local(runner["command"], runner_volumes, port)
        assert "--builtin" in command
        chosen = [str(p) for p in builtin_scenarios() if p.stem.startswith(("01-", "12-"))]
        at = command.index("--builtin")
        command[at : at + 1] = chosen
        result = subprocess.run(command, env=runner_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 passed, 0 failed" in result.stdout
        suite = ET.parse(reports / "junit.xml").getroot()
        assert (suite.get("tests"), suite.get("failures")) == ("2", "0")
        assert stat.S_IMODE((reports / "junit.xml").stat().st_mode) & 0o004, "the host user may not read the report"
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


def test_the_image_is_built_once_for_every_service():
    # `daemon` is the team's own image, not the emulator's (tests/examples/test_compose_daemon.py)
    services = {name: service for name, service in compose()["services"].items() if name != "daemon"}
    assert [name for name, service in services.items() if "build" in service] == ["emulator"]
    image = services["emulator"]["image"]
    assert services["emulator"]["pull_policy"] == "build", "built from this checkout on every up, never pulled"
    for name, service in services.items():
        assert service["image"] == image, name
        if name != "emulator":
            assert service["pull_policy"] == "never", f"{name} would try to pull {image} from a registry"


def test_the_emulator_is_published_on_loopback_only():
    services = compose()["services"]
    assert services["emulator"]["ports"] == ["127.0.0.1:8443:8443"]
    published = [str(port) for service in services.values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in published), published


def test_the_reports_folder_is_opened_to_the_runner_by_root_before_it_runs():
    services = compose()["services"]
    opener, runner = services["reports"], services["scenarios"]
    assert str(opener["user"]).split(":")[0] in ("0", "root")
    assert runner["depends_on"]["reports"] == {"condition": "service_completed_successfully"}
    mounted = {v for v in runner["volumes"] if v.split(":")[0] == "./reports"}
    assert mounted and mounted <= set(opener["volumes"])
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--uid 10001" in dockerfile and re.search(r"^USER m365$", dockerfile, re.M), "the runner is not root"
    assert "user" not in runner


def dockerignore() -> list[re.Pattern[str]]:
    """.dockerignore's patterns as Docker reads them (Go's filepath.Match, plus ** for any number of folders)."""
    patterns = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not modelled here"
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", line.strip("/")):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        patterns.append(re.compile(regex))
    return patterns


def left_out(path: str, patterns: list[re.Pattern[str]]) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context: it or a folder above it matches."""
    parts = path.split("/")
    return any(p.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1) for p in patterns)


def test_the_build_context_leaves_out_the_virtualenv_git_caches_and_reports():
    patterns = dockerignore()
    for path in (
        ".venv/lib/python3.11/site-packages/flask/app.py",
        ".git/objects/pack/pack-1.pack",
        "mock_server/__pycache__/app.cpython-311.pyc",
        "mock_server/state/__pycache__/config.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/0.6.9/123",
        ".hypothesis/examples/1",
        "reports/junit.xml",
        "build/lib/mock_server/app.py",
        "dist/m365_mock-0.1.0-py3-none-any.whl",
        "m365_mock.egg-info/PKG-INFO",
    ):
        assert left_out(path, patterns), path
    copied = [line.split()[1:-1] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    for source in [s for sources in copied for s in sources]:
        assert not left_out(source, patterns), source
    for path in ("mock_server/app.py", "scenarios/library/01-restricted-mailbox.yaml", "scenarios/schema.json"):
        assert not left_out(path, patterns), path
    size = 0
    for folder, subfolders, files in os.walk(REPO):
        here = Path(folder).relative_to(REPO).as_posix()
        inside = "" if here == "." else here + "/"
        subfolders[:] = [d for d in subfolders if not left_out(inside + d, patterns)]
        size += sum(os.path.getsize(Path(folder, f)) for f in files if not left_out(inside + f, patterns))
    assert size < 20_000_000, f"the build context is {size / 1e6:.0f} MB"
