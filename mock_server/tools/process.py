"""Run `m365-mock serve` as a child process and wait until it answers (for tests, the plugin and scripts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class EmulatorStartError(RuntimeError):
    """The emulator process exited or did not become ready; the message carries its output."""


@dataclass
class RunningEmulator:
    """A started emulator: its connection facts (as in connection.json) and the process serving them."""

    process: subprocess.Popen
    state_dir: Path
    facts: dict[str, Any] = field(repr=False)

    @property
    def base_url(self) -> str:
        return self.facts["base_url"]

    @property
    def ca_file(self) -> str | None:
        return self.facts["ca_file"]

    @property
    def tenant(self) -> dict[str, Any]:
        return self.facts["tenants"][0]

    @property
    def app(self) -> dict[str, Any]:
        return self.facts["apps"][0]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful stop); after `timeout`, SIGKILL to the whole process group, granian's worker too."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.process)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL `process` and everything in its process group (it was started as a session leader)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def start_emulator(
    state_dir: Path, *args: str, timeout: float = 20.0, env: dict[str, str] | None = None
) -> RunningEmulator:
    """Start `m365-mock serve --port 0 --state-dir state_dir *args`; return once connection.json is written.

    The output goes to `serve.log` in `state_dir`, which (like connection.json) is replaced only once the
    new emulator answers: a start that fails (a busy port) leaves a running emulator's files alone. The
    child leads its own process group, so that stopping it can reach granian's worker too.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    connection = state_dir / "connection.json"
    log_path = state_dir / "serve.log"
    fd, name = tempfile.mkstemp(dir=state_dir, prefix=".serve-", suffix=".log")
    starting_log = Path(name)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "m365_mock", "serve", "--port", "0", "--state-dir", str(state_dir), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmulatorStartError(
                    f"m365-mock serve exited with {process.returncode}:\n{starting_log.read_text()}"
                )
            if connection.exists():
                try:
                    facts = json.loads(connection.read_text())
                except (OSError, ValueError):
                    facts = {}
                if facts.get("pid") == process.pid:
                    os.replace(starting_log, log_path)
                    return RunningEmulator(process, state_dir, facts)
            time.sleep(0.02)
        raise EmulatorStartError(f"m365-mock serve did not answer within {timeout} s:\n{starting_log.read_text()}")
    except BaseException:
        if process.poll() is None:
            kill_group(process)
        raise
    finally:
        starting_log.unlink(missing_ok=True)
