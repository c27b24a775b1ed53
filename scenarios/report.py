"""Scenario results for people (console), for CI (JUnit XML) and for programs (JSON)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from m365_mock.identity.keys import atomic_write
from m365_mock.scenarios.results import ScenarioResult, StepResult


def console(results: list[ScenarioResult], *, color: bool = False) -> str:
    """Each scenario with each step's pass/fail and why; a summary line last."""
    green, red, reset = ("\033[32m", "\033[31m", "\033[0m") if color else ("", "", "")
    lines = []
    for result in results:
        mark = f"{green}PASS{reset}" if result.passed else f"{red}FAIL{reset}"
        lines.append(f"{mark}  {result.name}  ({result.source}, {result.seconds:.2f} s)")
        for step in result.steps:
            sign = f"{green}ok{reset}  " if step.passed else f"{red}FAIL{reset}"
            lines.append(f"      {sign} {step.name}: {step.detail}")
            if step.requests:
                lines.append(f"           {step.requests}")
            if step.behaviour is not None:
                lines.extend(f"           {line}" for line in step.behaviour.text().splitlines())
        if result.error:
            lines.append(f"      {red}FAIL{reset} {result.error}")
    passed = sum(r.passed for r in results)
    lines.append("")
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def junit(results: list[ScenarioResult], path: str | Path, suite: str = "m365-mock scenarios") -> None:
    """One <testcase> per scenario (classname: its file), with the failed steps as the failure message."""
    failures = sum(not r.passed for r in results)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures))
    cases = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for result in results:
        case = ET.SubElement(
            cases, "testcase", name=result.name, classname=Path(result.source).stem, time=f"{result.seconds:.3f}"
        )
        if not result.passed:
            failed = [f"{s.name}: {s.detail}" + _behaviour_text(s) for s in result.steps if not s.passed]
            if result.error:
                failed.append(result.error)
            failure = ET.SubElement(case, "failure", message=failed[0][:500], type="ScenarioFailure")
            failure.text = "\n".join(failed)
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            f"{'ok' if s.passed else 'FAIL'} {s.name}: {s.detail}"
            + (f" [{s.requests}]" if s.requests else "")
            + _behaviour_text(s)
            for s in result.steps
        )
    ET.indent(root)
    atomic_write(Path(path), ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def result_json(result: ScenarioResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "source": result.source,
        "passed": result.passed,
        "error": result.error,
        "seconds": round(result.seconds, 3),
        "steps": [_step_json(s) for s in result.steps],
    }


def _step_json(step: StepResult) -> dict[str, Any]:
    found: dict[str, Any] = {"name": step.name, "passed": step.passed, "detail": step.detail}
    if step.behaviour is not None:
        found["behaviour"] = step.behaviour.to_json()
    return found


def _behaviour_text(step: StepResult) -> str:
    """A behaviour step's report on the lines after the step's, indented."""
    if step.behaviour is None:
        return ""
    return "".join(f"\n    {line}" for line in step.behaviour.text().splitlines())


def dumps(results: list[ScenarioResult]) -> str:
    return json.dumps([result_json(r) for r in results], indent=2)
