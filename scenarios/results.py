"""What a run found: each scenario's result and its steps', as the reports (report.py) show them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m365_mock.scenarios.behaviour import BehaviourReport


@dataclass
class StepResult:
    name: str
    passed: bool
    detail: str
    seconds: float = 0.0
    requests: str = ""  # what the step sent the emulator: how many requests, their statuses, throttling, faults
    behaviour: BehaviourReport | None = None  # a behaviour step's report


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


def describe_requests(records: list[dict[str, Any]]) -> str:
    """A step's Graph requests as the report shows them: `5 requests: 200 x4, 429 x1; throttled 1; faults: ...`."""
    if not records:
        return ""
    statuses = Counter(r["status"] for r in records)
    text = f"{len(records)} request{'s' if len(records) != 1 else ''}: " + ", ".join(
        f"{status} x{count}" for status, count in sorted(statuses.items())
    )
    if statuses.get(429):
        waits = sorted({r["retry_after"] for r in records if r.get("retry_after") is not None})
        text += f"; throttled {statuses[429]} (Retry-After {', '.join(map(str, waits)) or '-'} s)"
    faults = Counter(f"{r['fault']} ({r.get('fault_action') or '?'})" for r in records if r.get("fault"))
    if faults:
        text += "; faults: " + ", ".join(f"{name} x{count}" for name, count in faults.items())
    return text
