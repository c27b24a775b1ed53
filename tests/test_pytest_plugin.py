"""The pytest plugin, used the way a project uses it: the example of docs/pytest.md run by pytest itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[1] / "docs" / "pytest.md"


def example_from_the_docs() -> str:
    return re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)


def test_the_documented_example_passes(pytester: pytest.Pytester):
    pytester.makepyfile(test_daemon=example_from_the_docs())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)


def test_each_test_starts_from_a_reset_tenant(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_reset="""
        def test_first_changes_the_world(m365):
            m365.add_mailbox("temp@contoso.onmicrosoft.com")
            m365.add_policy("*", "cctr_sec_group", "DenyAccess")
            m365.advance(86400)

        def test_second_sees_none_of_it(m365):
            assert "temp@contoso.onmicrosoft.com" not in [m["address"] for m in m365.control(
                "GET", m365.tenant_path("/mailboxes"))["value"]]
            assert len(m365.control("GET", m365.tenant_path("/accessPolicies"))["value"]) == 1
            assert m365.log() == []
            m365.token()
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_a_tenant_file_option(pytester: pytest.Pytester):
    pytester.makefile(
        ".yaml",
        tenant="""
tenants:
  - domains: [fabrikam.onmicrosoft.com]
    mailboxes: [{address: helpdesk@fabrikam.onmicrosoft.com, type: shared, generate: 3}]
    applications: [{display_name: Ticketing, permissions: [Mail.Read], secrets: [{}]}]
""",
    )
    pytester.makepyfile(
        test_tenant="""
        def test_fabrikam(m365):
            assert m365.domain == "fabrikam.onmicrosoft.com"
            assert len(m365.messages("helpdesk@fabrikam.onmicrosoft.com", app="Ticketing")) == 3
            assert m365.app()["permissions"] == ["Mail.Read"]
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--m365-tenant", "tenant.yaml")
    result.assert_outcomes(passed=1)
