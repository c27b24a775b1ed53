"""Your own daemon in a pytest test: started against the test's emulator with the scenario runner's process
control and environment (scenarios/daemons.py), waited on with its world conditions (scenarios/conditions.py),
and judged with its behaviour report (scenarios/behaviour.py). `m365.start_daemon`, `m365.wait_until`,
`m365.check` and `m365.behaviour` are these; the `m365` fixture stops every daemon a test started."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m365_mock.scenarios import conditions, daemons
from m365_mock.scenarios.behaviour import BehaviourReport, judge
from m365_mock.scenarios.target import EmulatorTarget
from m365_mock.scenarios.world import ScenarioFailure, World

if TYPE_CHECKING:
    from m365_mock.scenarios.daemons import DaemonRun
    from m365_mock.tools.process import RunningEmulator


class DaemonBench:
    """The daemons of one test and the world they act on (the emulator's first tenant)."""

    def __init__(self, emulator: RunningEmulator, tenant_id: str, domain: str, workdir: Path) -> None:
        target = EmulatorTarget(emulator.base_url, emulator.facts["admin_key"], emulator.ca_file)
        workdir.mkdir(parents=True, exist_ok=True)
        self.world = World(target, tenant_id, domain, [], base_dir=Path.cwd(), workdir=workdir)
        self.world.first_seq = daemons.last_seq(self.world) or 0

    def start(
        self,
        command: str | list[str],
        *,
        app: str | None = None,
        env: dict[str, Any] | None = None,
        name: str = daemons.DEFAULT_NAME,
        credential: str = "secret",
    ) -> DaemonRun:
        world = self.world
        if name in world.daemons and world.daemons[name].running:
            raise AssertionError(f"a daemon called {name!r} is already running; give this one another name")
        world.refresh_apps()
        try:
            started = daemons.launch(world, name, world.fill(command), world.fill(env), app, credential)
        except ScenarioFailure as exc:
            raise AssertionError(str(exc)) from None
        world.daemons[name] = started
        return started

    def stop(self, name: str = daemons.DEFAULT_NAME) -> DaemonRun:
        run = self.world.daemons.get(name)
        if run is None:
            raise AssertionError(f"no daemon called {name!r} was started (started: {', '.join(self.world.daemons)})")
        if run.running:
            daemons.end(self.world, [run])
        return run

    def stop_all(self) -> None:
        daemons.stop_all(self.world)

    def wait_until(self, timeout: float, conditions_given: dict[str, Any]) -> None:
        world = self.world
        wanted = world.fill(conditions_given)
        began = time.monotonic()
        while True:
            failing = conditions.unmet(world, wanted)
            if not failing:
                return
            if time.monotonic() - began >= timeout:
                raise AssertionError(f"not within {timeout:g} s: " + "; ".join(failing) + self._daemons_said())
            time.sleep(conditions.POLL)

    def check(self, conditions_given: dict[str, Any]) -> None:
        failing = conditions.unmet(self.world, self.world.fill(conditions_given))
        if failing:
            raise AssertionError("; ".join(failing) + self._daemons_said())

    def behaviour(self, daemon: str | None, app: str | None) -> BehaviourReport:
        self.world.refresh_apps()
        try:
            return judge(self.world, daemon, app)
        except ScenarioFailure as exc:
            raise AssertionError(str(exc)) from None

    def _daemons_said(self) -> str:
        said = [f"{run.name}: {run.output_tail()}" for run in self.world.daemons.values()]
        return ("\n" + "\n".join(said)) if said else ""
