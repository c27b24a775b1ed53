"""A private emulator for the scenario tests, and the scenario command run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from m365_mock.scenarios.schema import STEP_KINDS
from m365_mock.scenarios.target import EmulatorTarget, local_emulator

REPO = Path(__file__).resolve().parents[2]
# How a refusal of `do` lists the kinds of step: 'token', 'fetch', ... or 'check'.
EXPECTED_KINDS = ", ".join(f"'{kind}'" for kind in STEP_KINDS[:-1]) + f" or '{STEP_KINDS[-1]}'"


@pytest.fixture(scope="session")
def target() -> Iterator[EmulatorTarget]:
    with local_emulator() as running:
        yield running


def clean_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without a way to a running emulator, but for `state_dir` and `extra`: a run
    must never find (and reset) an emulator someone runs on this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("M365_MOCK_")}
    return {**env, "M365_MOCK_STATE_DIR": str(state_dir), **extra}


def run_cli(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "m365_mock", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )
