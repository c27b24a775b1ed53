"""Fault rules the way projects set them: `m365.fault(...)` in their tests, and `fault:` in a scenario's setup."""

from __future__ import annotations

import pytest
import yaml

from m365_mock.scenarios.model import parse_scenario
from m365_mock.scenarios.report import console
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.target import EmulatorTarget

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow


def test_m365_fault_as_a_context_manager(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_daemon="""
        import pytest
        import requests

        from m365_mock.tools.pytest_plugin import M365Error

        SUPPORT = "support@contoso.onmicrosoft.com"

        def inbox(m365):
            return requests.get(
                f"{m365.graph_url}/users/{SUPPORT}/messages",
                headers={"Authorization": f"Bearer {m365.token()}"},
                verify=m365.ca_file,
                timeout=30,
            )

        def test_throttled_once_inside_the_block(m365):
            with m365.fault("throttle", mailbox=SUPPORT, times=1, retry_after=0) as rule:
                throttled = inbox(m365)
                assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "0")
                assert inbox(m365).status_code == 200
                assert rule.fired == 1 and rule.state()["spent"] is True
            assert m365.faults() == []

        def test_removed_on_exit_even_when_the_block_fails(m365):
            with pytest.raises(ZeroDivisionError):
                with m365.fault(status=503, app=m365.app(), operation="read"):
                    assert inbox(m365).status_code == 503
                    1 / 0
            assert m365.faults() == [] and inbox(m365).status_code == 200

        def test_a_reset_inside_the_block_is_fine(m365):
            with m365.fault(latency=0.01):
                m365.reset()

        def test_refused_with_the_reason(m365):
            with pytest.raises(M365Error, match="did you mean 'mailbox'"):
                m365.fault("throttle", mailbx=SUPPORT)
            with pytest.raises(M365Error, match="expected 'throttle'"):
                m365.fault("throttl")

        def test_without_a_block_it_lasts_until_the_next_test(m365):
            m365.fault("gateway-timeout", id="left-in-force")

        def test_the_next_test_starts_without_it(m365):
            assert m365.faults() == []
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    result.assert_outcomes(passed=6)


# The scenario daemon retries once: the first fetch is throttled once, the second meets a 503 (the third request
# of the app that reads); both are retried and succeed.
SCENARIO = """
name: A throttled fetch and a 503 are retried
setup:
  - deliver: {mailbox: "support@{domain}", count: 3, unread_ratio: 1}
  - fault: {preset: throttle, mailbox: "support@{domain}", times: 1, retry_after: 0}
  - fault: {id: blip, status: 503, app: "{app_id:Contact Center Connector}", operation: read, nth: 3}
steps:
  - do: fetch
    mailbox: support@{domain}
    expect: {count_at_least: 3}
  - do: fetch
    mailbox: support@{domain}
    expect: {count_at_least: 3}
"""


def test_a_scenario_with_faults_in_its_setup(served):
    target = EmulatorTarget.from_connection(served.facts)
    try:
        result = run_scenario(target, parse_scenario(yaml.safe_load(SCENARIO)))
        report = console([result], color=False)
        assert result.passed, report
        assert "fault fault-1: throttle (429 TooManyRequests), Retry-After 0" in report
        assert "fault blip: 503" in report
        faults = {r["id"]: r for r in target.client.faults()}
        assert (faults["fault-1"]["fired"], faults["blip"]["fired"], faults["blip"]["matched"]) == (1, 1, 4)
        assert [(r["status"], r["fault"]) for r in target.client.log(kind="graph")] == [
            (429, "fault-1"),
            (200, None),
            (503, "blip"),
            (200, None),
        ]
    finally:
        target.client.reset()
