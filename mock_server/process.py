"""Run `m365-mock serve` as a child process and wait until it answers (for tests, the plugin and scripts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    state_dir: Path, *args: str, timeout: float = 20.0, env: dict[str, str] | None = None
) -> RunningEmulator:
    """Start `m365-mock serve --port 0 --state-dir state_dir *args`; return once connection.json is written."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    connection = state_dir / "connection.json"
    connection.unlink(missing_ok=True)
    log_path = state_dir / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--state-dir", str(state_dir), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorStartError(f"m365-mock serve exited with {process.returncode}:\n{log_path.read_text()}")
        if connection.exists():
            facts = json.loads(connection.read_text())
            if facts.get("pid") == process.pid:
                return RunningEmulator(process, state_dir, facts)
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise EmulatorStartError(f"m365-mock serve did not answer within {timeout} s:\n{log_path.read_text()}")
