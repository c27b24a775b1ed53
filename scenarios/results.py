"""What a run found: each scenario's result and its steps', as the reports (report.py) show them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepResult:
    name: str
    passed: bool
    detail: str
    seconds: float = 0.0


@dataclass
class ScenarioResult:
    name: str
    source: str
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None  # why the scenario stopped before its steps (setup failed), or was not run
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(step.passed for step in self.steps)
