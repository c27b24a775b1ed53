"""The examples' scenario suites, run by the scenario runner against a private emulator: every file of
examples/contact_centre/scenarios passes (the good connector and, judged by its own expectations, the flawed
one), and the flawed connector judged as the good one fails with a report that names each of its flaws.

They use the daemon step kinds (`start`, `wait`, `check`, `stop`, `run`) and the `behaviour` step of issue 14;
until the runner has them these tests are skipped, saying so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from m365_mock.scenarios.model import load_scenario
from m365_mock.scenarios.report import console
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.target import EmulatorTarget, local_emulator
from tests.examples.conftest import CONTACT_CENTRE

pytestmark = pytest.mark.slow
SUITE = sorted((CONTACT_CENTRE / "scenarios").glob("*.yaml"))
FLAWS = [
    "token-not-cached",
    "retried-403",
    "full-listing",
    "no-select",
    "unbounded-top",
    "retry-after-ignored",
    "no-client-request-id",
]


@pytest.fixture(scope="module")
def target() -> Iterator[EmulatorTarget]:
    with local_emulator() as running:
        yield running


def test_the_suite_covers_the_situations_of_the_issue():
    assert [path.name for path in SUITE] == [
        "01-happy-path.yaml",
        "02-restricted-mailbox.yaml",
        "03-policy-added-while-running.yaml",
        "04-expired-secret.yaml",
        "05-throttled.yaml",
        "flawed.yaml",
    ]


def files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if "__pycache__" not in path.parts}


@pytest.mark.parametrize("path", SUITE, ids=lambda p: p.stem)
def test_every_example_scenario_passes(target: EmulatorTarget, path: Path):
    before = files(CONTACT_CENTRE)
    result = run_scenario(target, load_scenario(path))
    assert result.passed, console([result], color=False)
    # the daemons run in the scenario's folder: what they save goes to {workdir}, the run's own temporary folder
    assert files(CONTACT_CENTRE) == before


def test_the_flawed_connector_judged_as_the_good_one_fails_naming_each_flaw(target: EmulatorTarget):
    scenario = load_scenario(CONTACT_CENTRE / "expected-to-fail" / "flawed-judged-as-good.yaml")
    result = run_scenario(target, scenario)
    report = console([result], color=False)
    assert not result.passed, report
    assert [step.name for step in result.steps if not step.passed] == ["its behaviour is not (this step fails)"], report
    [behaviour] = [step for step in result.steps if not step.passed]
    missing = [rule for rule in FLAWS if rule not in behaviour.detail]
    assert not missing, f"the report does not name {missing}:\n{report}"
