"""Runs scenarios: set the emulator's world up as the admin, then act as the daemon with the reference client.

A run talks to an emulator over HTTPS like any daemon: a private one started for the run (`local_emulator`) or
a running one (`EmulatorTarget`), both in target.py. Each scenario first imports its tenant (the demo by default)
into that emulator, so scenarios never see each other's changes (world.py); then its setup actions run
(actions.py), then each step (steps.py), checked against its `expect` (expectations.py). Files a scenario makes
(a certificate's private key, a daemon's output) live in a temporary folder that is removed when the scenario ends,
however it ends; so are the daemons it started (daemons.py) stopped.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from m365_mock.scenarios.actions import run_setup
from m365_mock.scenarios.daemons import describe_exit, stop_all
from m365_mock.scenarios.expectations import check
from m365_mock.scenarios.model import Scenario
from m365_mock.scenarios.results import ScenarioResult, StepResult, describe_requests
from m365_mock.scenarios.steps import perform
from m365_mock.scenarios.target import EmulatorTarget, local_emulator
from m365_mock.scenarios.world import ScenarioFailure, World, prepare
from m365_mock.tools.control_client import ControlError, ControlUnavailable

__all__ = ["EmulatorTarget", "ScenarioResult", "StepResult", "local_emulator", "run_scenario"]


def run_scenario(target: EmulatorTarget, scenario: Scenario) -> ScenarioResult:
    """Prepare the world, run the setup, then each step; a failed step does not stop the later ones.

    Whatever goes wrong in a scenario is reported in its result, never raised (but Ctrl+C is); the files it made
    are removed in every case.
    """
    started = time.monotonic()
    result = ScenarioResult(scenario.name, str(scenario.source or "inline"))
    with tempfile.TemporaryDirectory(prefix="m365-scenario-", ignore_cleanup_errors=True) as workdir:
        try:
            _run(target, scenario, Path(workdir), result)
        finally:
            result.seconds = time.monotonic() - started
    return result


def _run(target: EmulatorTarget, scenario: Scenario, workdir: Path, result: ScenarioResult) -> None:
    try:
        world = prepare(target, scenario, workdir)
        for action in scenario.setup:
            note = run_setup(world, action)
            result.steps.append(StepResult(f"setup: {note}", True, "done"))
    except Exception as exc:
        result.error = f"setup failed: {_explain(exc)}"
        return
    try:
        for step in scenario.steps:
            began = time.monotonic()
            logged = _logged(world)
            report = None
            try:
                outcome = perform(world, step)
                report = outcome.behaviour
                passed, detail = check(dataclasses.replace(step, expect=world.fill(step.expect)), outcome)
            except Exception as exc:
                passed, detail = False, f"could not run: {_explain(exc)}"
            seconds = time.monotonic() - began
            made = describe_requests(_since(world, logged)) if step.do != "log" else ""
            result.steps.append(StepResult(step.name, passed, detail, seconds, made, report))
    finally:
        # Whatever happened (a failed step, an error, Ctrl+C), no daemon of the scenario outlives it.
        for stopped in stop_all(world):
            detail = f"still running when the scenario ended: {stopped.ended}; {describe_exit(stopped.exit_code)}"
            result.steps.append(StepResult(f"end: {stopped.name}", True, detail))


def _logged(world: World) -> int | None:
    """How many records the request log holds now (None when it cannot be read)."""
    try:
        return len(world.admin.log())
    except (ControlError, ControlUnavailable, requests.RequestException):
        return None


def _since(world: World, logged: int | None) -> list[dict[str, Any]]:
    """The request log's records after the first `logged`: what the step sent (its log is bounded at 10,000)."""
    if logged is None:
        return []
    try:
        return world.admin.log()[logged:]
    except (ControlError, ControlUnavailable, requests.RequestException):
        return []


def _explain(exc: Exception) -> str:
    """What went wrong, for the report: our own failures, the control API's and HTTP errors as they are, anything
    else with its type."""
    if isinstance(exc, ControlError):
        return exc.describe()
    if isinstance(exc, ScenarioFailure | ControlUnavailable | requests.RequestException):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
