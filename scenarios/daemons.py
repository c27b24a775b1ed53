"""The team's own daemon in a scenario: `run` a command to completion, `start` one in the background and `stop` it.

A daemon runs in its own process group (stopping it stops what it started), in the scenario file's folder, with
its output captured to files in the scenario's folder and the connection facts in its environment
(`daemon_environment`): the M365_MOCK_* names, azure-identity's EnvironmentCredential names and the CA for every
stack. `world.daemons` keeps each started daemon with the request log's last seq before it started and after it
ended, so its own requests can be told from the rest; the runner stops every daemon still running when the
scenario ends (`stop_all`), however it ends.

Imported by steps.py, so by the schema: nothing heavy at import time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m365_mock.scenarios.outcome import Outcome
from m365_mock.scenarios.world import ScenarioFailure

if TYPE_CHECKING:
    from m365_mock.scenarios.world import World

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
RUN_TIMEOUT = 60.0  # `run`'s default timeout (seconds)
DEFAULT_NAME = "daemon"
TAIL = 600  # characters of output a failure quotes
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# The runner's own variables that never reach a daemon: its admin key and connection, and Azure credentials that
# would point an SDK somewhere else.
WITHHELD_PREFIXES = ("M365_MOCK_", "AZURE_")


@dataclass
class DaemonRun:
    """One process the scenario ran: what it is, its process, its captured output, and where its requests lie in
    the request log (after `first_seq`, up to `last_seq`)."""

    name: str
    app_id: str
    command: list[str]
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    first_seq: int
    started: float  # time.monotonic() when it started
    last_seq: int | None = None  # None while it runs
    exit_code: int | None = None  # negative: ended by that signal (-15 SIGTERM, -9 SIGKILL)
    ended: str = ""  # how it ended, for the report

    @property
    def running(self) -> bool:
        return self.last_seq is None

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def output_tail(self) -> str:
        """The end of its error output, else of its output, for a report."""
        for label, text in (("stderr", self.stderr()), ("stdout", self.stdout())):
            if text.strip():
                return f"{label} ends: {tail(text)!r}"
        return "no output"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def tail(text: str, size: int = TAIL) -> str:
    text = text.rstrip()
    return text if len(text) <= size else "..." + text[-size:]


# ---------------------------------------------------------------- the environment


def daemon_environment(world: World, app: dict[str, Any], credential: str = "secret") -> dict[str, str]:
    """The environment a daemon acting as `app` with `credential` runs with: the runner's own (less its M365_MOCK_*
    and AZURE_* variables), then the connection facts under the documented names (docs/scenarios.md)."""
    base = world.target.base_url
    env = {k: v for k, v in os.environ.items() if not k.startswith(WITHHELD_PREFIXES)}
    env.setdefault("PYTHONUNBUFFERED", "1")  # a Python daemon's output reaches its files before SIGTERM ends it
    facts = {
        "M365_MOCK_BASE_URL": base,
        "M365_MOCK_GRAPH_URL": f"{base}/v1.0",
        "M365_MOCK_TENANT_ID": world.tenant_id,
        "M365_MOCK_TENANT_DOMAIN": world.domain,
        "M365_MOCK_AUTHORITY": f"{base}/{world.tenant_id}",
        "M365_MOCK_AUTHORITY_HOST": base,
        "M365_MOCK_TOKEN_ENDPOINT": f"{base}/{world.tenant_id}/oauth2/v2.0/token",
        "M365_MOCK_SCOPE": GRAPH_SCOPE,
        "M365_MOCK_CLIENT_ID": app["app_id"],
        "AZURE_TENANT_ID": world.tenant_id,
        "AZURE_CLIENT_ID": app["app_id"],
        "AZURE_AUTHORITY_HOST": base,
    }
    if credential == "certificate":
        path = world.certificates.get(app["app_id"])
        if path is None:
            raise ScenarioFailure(f"no certificate was made for {app['display_name']} (add a `certificate` setup)")
        facts |= {
            "M365_MOCK_CERTIFICATE_PATH": path,
            "M365_MOCK_CERTIFICATE_THUMBPRINT": _thumbprint(Path(path)),
            "AZURE_CLIENT_CERTIFICATE_PATH": path,
        }
    else:
        if not app["secrets"]:
            raise ScenarioFailure(f"{app['display_name']} has no client secret")
        newest = app["secrets"][-1]
        secret = newest["id"] if credential == "secret_id" else newest["value"]
        facts |= {"M365_MOCK_CLIENT_SECRET": secret, "AZURE_CLIENT_SECRET": secret}
    ca_file = world.target.ca_file
    if ca_file:
        bundle = str(_ca_bundle(world, Path(ca_file)))
        facts |= {
            "M365_MOCK_CA_FILE": ca_file,
            "REQUESTS_CA_BUNDLE": bundle,
            "SSL_CERT_FILE": bundle,
            "CURL_CA_BUNDLE": bundle,
            "NODE_EXTRA_CA_CERTS": ca_file,
        }
    return env | facts


def _thumbprint(path: Path) -> str:
    """The SHA-1 thumbprint (hex, upper case) of the certificate in a PEM file, as MSAL takes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(path.read_bytes()).fingerprint(hashes.SHA1()).hex().upper()


def _ca_bundle(world: World, ca_file: Path) -> Path:
    """A file with the emulator's CA and the CAs the runner trusts, so that a daemon trusting it still reaches
    anything else it talks to."""
    import ssl

    paths = ssl.get_default_verify_paths()
    candidates = [os.environ.get(n) for n in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")]
    system = next(
        (Path(c) for c in [*candidates, paths.cafile, paths.openssl_cafile] if c and Path(c).is_file()),
        None,
    )
    content = ca_file.read_bytes().rstrip() + b"\n"
    if system is not None and system.resolve() != ca_file.resolve():
        content += system.read_bytes()
    bundle = _workdir(world) / "ca-bundle.pem"
    bundle.write_bytes(content)
    return bundle


def _workdir(world: World) -> Path:
    if world.workdir is None:
        raise ScenarioFailure("no folder to keep a daemon's files in")
    return world.workdir


# ---------------------------------------------------------------- processes


def command_line(command: str | list[str]) -> list[str]:
    """The argv of a step's `command` (its placeholders, {here} among them, filled): a list as it is, a string
    run by `sh -c`."""
    if isinstance(command, str):
        return ["sh", "-c", command]
    return list(command)


def launch(
    world: World,
    name: str,
    command: str | list[str],
    extra: dict[str, Any] | None,
    app_key: str | None,
    credential: str = "secret",
) -> DaemonRun:
    """Start `command` in its own process group, in the scenario file's folder, with the environment of a daemon
    acting as the app (`as`) with `credential`, and the step's `env` over it."""
    app = world.app(app_key)
    env = daemon_environment(world, app, credential)
    env |= {str(k): str(v) for k, v in (extra or {}).items()}
    argv = command_line(command)
    stdout_path, stderr_path = _output_files(world, name)
    first = last_seq(world)
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=world.base_dir,
                start_new_session=True,
            )
        except OSError as exc:
            raise ScenarioFailure(f"cannot start {argv}: {exc.strerror or exc}") from None
    return DaemonRun(name, app["app_id"], argv, process, stdout_path, stderr_path, first or 0, time.monotonic())


def _output_files(world: World, name: str) -> tuple[Path, Path]:
    """Two new files in the scenario's folder for a process's stdout and stderr."""
    folder = _workdir(world) / "daemons"
    folder.mkdir(exist_ok=True)
    stem = re.sub(r"[^\w.-]", "_", name) or DEFAULT_NAME
    number = 1
    while (folder / f"{stem}-{number}.stdout").exists():
        number += 1
    return folder / f"{stem}-{number}.stdout", folder / f"{stem}-{number}.stderr"


def last_seq(world: World) -> int | None:
    """The request log's newest seq now (0 when it is empty; None when it cannot be read)."""
    from m365_mock.tools.control_client import ControlError, ControlUnavailable

    try:
        newest = world.admin.log(limit=1)
    except (ControlError, ControlUnavailable, ValueError):
        return None
    return newest[-1]["seq"] if newest else 0


def _signal_group(run: DaemonRun, signum: int) -> bool:
    """Send `signum` to the daemon's process group; whether any process of it was there to receive it."""
    try:
        os.killpg(run.process.pid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of the group that is no longer ours; the leader is signalled alone
        try:
            run.process.send_signal(signum)
        except ProcessLookupError:
            return False
    return True


def _finish(world: World, run: DaemonRun, how: str) -> None:
    """Note how the daemon ended, its exit code and the log's seq now; anything left of its group is killed."""
    _signal_group(run, signal.SIGKILL)
    run.exit_code = run.process.wait()
    seq = last_seq(world)
    run.last_seq = seq if seq is not None else run.first_seq
    run.ended = how


def end(world: World, runs: list[DaemonRun], grace: float | None = None) -> None:
    """Stop these daemons: SIGTERM to each process group, then SIGKILL to the group once its first process has
    ended, or after `grace` seconds. A daemon that had already exited is noted as such (with its exit code)."""
    grace = STOP_GRACE if grace is None else grace
    signalled = []
    try:
        for run in runs:
            if run.process.poll() is not None:
                _finish(world, run, f"had exited on its own with {describe_exit(run.process.returncode)}")
            else:
                _signal_group(run, signal.SIGTERM)
                signalled.append(run)
        deadline = time.monotonic() + grace
        for run in signalled:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(max(0.0, deadline - time.monotonic()))
    finally:
        for run in signalled:
            if run.process.poll() is None:
                _finish(world, run, f"did not stop within {grace:g} s of SIGTERM: killed (SIGKILL)")
            else:
                _finish(world, run, "stopped (SIGTERM)")


def stop_all(world: World) -> list[DaemonRun]:
    """Stop every daemon of the scenario still running (the runner calls it when the scenario ends); those it
    stopped."""
    running = [run for run in world.daemons.values() if run.running]
    end(world, running)
    return running


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            return f"signal {-code} (exit code {code})"
    return f"exit code {code}"


# ---------------------------------------------------------------- the handlers: run, start, stop


def run(world: World, o: dict[str, Any]) -> Outcome:
    """A command to completion within `timeout` seconds (default 60), else killed with its process group."""
    name = o.get("daemon", "run")
    if "daemon" in o and name in world.daemons and world.daemons[name].running:
        raise ScenarioFailure(f"a daemon called {name!r} is already running")
    timeout = float(o.get("timeout", RUN_TIMEOUT))
    process = launch(world, name, o["command"], o.get("env"), o.get("as"), o.get("credential", "secret"))
    if "daemon" in o:
        world.daemons[name] = process
    try:
        process.process.wait(timeout)
    except subprocess.TimeoutExpired:
        end(world, [process], grace=min(STOP_GRACE, 1.0))
        return Outcome(
            exit_code=process.exit_code,
            stdout=process.stdout(),
            stderr=process.stderr(),
            failure=f"did not finish within {timeout:g} s: killed with its process group; {process.output_tail()}",
        )
    finally:
        if process.running:
            _finish(world, process, "ended")
    seconds = time.monotonic() - process.started
    return Outcome(
        exit_code=process.exit_code,
        stdout=process.stdout(),
        stderr=process.stderr(),
        success_exit=0,
        note=f"{describe_exit(process.exit_code)} after {seconds:.1f} s",
    )


def start(world: World, o: dict[str, Any]) -> Outcome:
    """A daemon in the background, kept in `world.daemons` under its name (`daemon`, default "daemon")."""
    name = o.get("daemon", DEFAULT_NAME)
    if name in world.daemons and world.daemons[name].running:
        raise ScenarioFailure(f"a daemon called {name!r} is already running; give this one another `daemon` name")
    started = launch(world, name, o["command"], o.get("env"), o.get("as"), o.get("credential", "secret"))
    world.daemons[name] = started
    return Outcome(note=f"{name} started (pid {started.process.pid}): {' '.join(started.command)}")


def stop(world: World, o: dict[str, Any]) -> Outcome:
    """Stop a started daemon: SIGTERM to its process group, SIGKILL after a grace of 5 s. A daemon that exited
    on its own before must have exited with 0, unless `expect.exit_code` says otherwise."""
    name = o.get("daemon", DEFAULT_NAME)
    stopped = world.daemons.get(name)
    if stopped is None:
        known = ", ".join(world.daemons) or "none"
        raise ScenarioFailure(f"no daemon called {name!r} was started (started: {known})")
    if not stopped.running:
        raise ScenarioFailure(f"{name} was already stopped: it {stopped.ended}")
    on_its_own = stopped.process.poll() is not None
    ran = time.monotonic() - stopped.started
    end(world, [stopped])
    note = f"{name} {stopped.ended}"
    if not on_its_own:
        note += f" after running {ran:.1f} s; {describe_exit(stopped.exit_code)}"
    return Outcome(
        exit_code=stopped.exit_code,
        stdout=stopped.stdout(),
        stderr=stopped.stderr(),
        success_exit=0 if on_its_own else None,
        note=note,
    )
