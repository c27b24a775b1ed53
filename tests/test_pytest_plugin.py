"""The pytest plugin, used the way a project uses it: the example of docs/pytest.md run by pytest itself."""

from __future__ import annotations

import re
from pathlib import Path

import jwt
import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[1] / "docs" / "pytest.md"


def example_from_the_docs() -> str:
    return re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)


def test_the_documented_example_passes(pytester: pytest.Pytester):
    pytester.makepyfile(test_daemon=example_from_the_docs())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)


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


def test_every_helper_takes_the_app_that_add_app_returns(m365):
    """add_app()'s dict, the app id and the display name all name the same app, in every helper that takes one."""
    from m365_mock.client import GraphError

    reporting = m365.add_app("Reporting Daemon", ["Mail.Read"])
    m365.add_policy(reporting, "cctr_sec_group@contoso.onmicrosoft.com")
    client = m365.mail_client(reporting)
    assert len(list(client.messages("support@contoso.onmicrosoft.com"))) == 13
    with pytest.raises(GraphError) as denied:
        list(client.messages("sales@contoso.onmicrosoft.com"))
    assert denied.value.code == "ErrorAccessDenied"

    app_id = reporting["app_id"]
    for ref in (reporting, app_id, "reporting daemon"):
        assert m365.app(ref)["app_id"] == app_id
        assert m365.client_settings(ref).client_id == app_id
        assert m365.msal_kwargs(ref)["client_id"] == app_id
        assert m365.azure_identity_kwargs(ref)["client_id"] == app_id
        assert jwt.decode(m365.token(ref), options={"verify_signature": False})["appid"] == app_id
        assert len(m365.messages("billing@contoso.onmicrosoft.com", app=ref)) == 3
        [entry] = m365.log(app=ref, outcome="denied")
        assert entry["app_id"] == app_id and entry["mailbox"] == "sales@contoso.onmicrosoft.com"


def test_deliver_with_attachments_and_deliver_mime(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_attachments="""
        import base64, hashlib
        from email.message import EmailMessage

        SUPPORT = "support@contoso.onmicrosoft.com"

        def test_attachments_arrive_intact(m365):
            pdf = bytes(range(256)) * 40
            message_id = m365.deliver(SUPPORT, subject="Invoice", attachments=[("invoice.pdf", pdf, "application/pdf")])
            [attachment] = m365.mail_client().attachments(SUPPORT, message_id)
            assert attachment["name"] == "invoice.pdf"
            assert hashlib.sha256(base64.b64decode(attachment["contentBytes"])).digest() == hashlib.sha256(pdf).digest()

        def test_mime_arrives_as_a_message(m365):
            mime = EmailMessage()
            mime["From"] = "Ada <ada@example.org>"
            mime["To"] = SUPPORT
            mime["Subject"] = "Printer on fire"
            mime.set_content("Help.")
            mime.add_attachment(b"photo", maintype="image", subtype="jpeg", filename="fire.jpg")
            message_id = m365.deliver_mime(SUPPORT, mime.as_bytes())
            [message] = [m for m in m365.messages(SUPPORT) if m["id"] == message_id]
            assert message["subject"] == "Printer on fire" and message["hasAttachments"] is True
            assert message["from"]["emailAddress"] == {"name": "Ada", "address": "ada@example.org"}
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)


def test_throttling_limits_scaled_down_for_one_test(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_throttled="""
        import requests

        SUPPORT = "support@contoso.onmicrosoft.com"

        def test_the_third_request_in_a_minute_is_throttled(m365, m365_trust):
            assert m365.throttle(mailboxRequests=2, mailboxWindow=60)["mailboxRequests"] == 2
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {m365.token()}"
            url = f"{m365.graph_url}/users/{SUPPORT}/messages"
            statuses = [session.get(url).status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
            third = session.get(url)
            assert third.json()["error"]["code"] == "TooManyRequests" and 1 <= int(third.headers["Retry-After"]) <= 60

        def test_the_next_test_has_the_defaults_again(m365):
            assert m365.control("GET", "/throttling")["limits"]["mailboxRequests"] == 10_000
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


DAEMON = Path(__file__).resolve().parents[1] / "examples" / "contact_centre" / "daemon.py"


def test_a_daemon_under_test_started_waited_on_and_judged_and_each_test_from_a_reset_tenant(
    pytester: pytest.Pytester,
):
    """One pytest run (each starts its own emulator): a daemon started, waited on and judged from a test; a test's
    daemons stopped with it; and each test starting from the tenant as it was, whatever the last one changed."""
    pytester.makepyfile(
        test_connector=f"""
        import os
        import sys

        DAEMON = {str(DAEMON)!r}

        def test_the_connector_answers_and_behaves(m365, tmp_path):
            m365.deliver("support@contoso.onmicrosoft.com", subject="Printer jammed", sender="ann.lee@example.org")
            env = {{"QUEUE_MAILBOX": "support@{{domain}}", "POLL_SECONDS": "0.2", "ATTACHMENTS_DIR": str(tmp_path)}}
            m365.start_daemon([sys.executable, DAEMON], env=env, name="connector")
            m365.wait_until(
                timeout=20,
                message={{"mailbox": "support@{{domain}}", "folder": "Processed", "subject": "Printer jammed"}},
            )
            m365.check(outbound={{"to": "ann.lee@example.org", "subject": "RE: Printer jammed", "count": 1}})
            run = m365.stop_daemon("connector")
            assert run.exit_code == 0, run.stderr()
            report = m365.behaviour(daemon="connector")
            assert report.rules_found == [], report.text()
            assert report.token_requests == 1

        def test_a_wait_that_fails_says_what_the_world_looked_like(m365):
            run = m365.start_daemon("echo started; sleep 30")
            try:
                m365.wait_until(timeout=0.5, folder={{"mailbox": "support@{{domain}}", "folder": "inbox", "total": 0}})
            except AssertionError as exc:
                assert "not within 0.5 s" in str(exc) and "total 13 (expected 0)" in str(exc), str(exc)
                assert "daemon: " in str(exc)  # what the daemon said comes with it
            else:
                raise AssertionError("the wait passed")
            with open("daemon-pid", "w") as kept:
                kept.write(str(run.process.pid))

        def test_a_test_that_changes_the_world(m365):
            m365.add_mailbox("temp@contoso.onmicrosoft.com")
            m365.add_policy("*", "cctr_sec_group", "DenyAccess")
            m365.advance(86400)

        def test_the_next_one_sees_none_of_it(m365):
            assert "temp@contoso.onmicrosoft.com" not in [m["address"] for m in m365.control(
                "GET", m365.tenant_path("/mailboxes"))["value"]]
            assert len(m365.control("GET", m365.tenant_path("/accessPolicies"))["value"]) == 1
            assert m365.log() == []
            m365.token()

        def test_the_daemon_of_the_last_test_was_stopped_with_it(m365):
            pid = int(open("daemon-pid").read())
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            status = open(f"/proc/{{pid}}/status").read()
            assert "State:\\tZ" in status, "the last test's daemon is still running"
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    result.assert_outcomes(passed=5)
