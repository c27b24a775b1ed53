"""The typed control client, in-process over Flask's test client: each admin action, its refusals and timeouts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from m365_mock.identity.keys import certificate_pem, new_rsa_key, self_signed_certificate
from m365_mock.tools.control_client import (
    BULK_TIMEOUT,
    DEFAULT_TIMEOUT,
    CmdletError,
    ControlClient,
    ControlError,
    FlaskSession,
)
from m365_mock.tools.pytest_plugin import M365Error
from tests.helpers import ADMIN_KEY, BASE, GROUP, SALES, SUPPORT, TENANT


@pytest.fixture
def api(client) -> ControlClient:
    return ControlClient(BASE, ADMIN_KEY, session=FlaskSession(client))


def test_the_directory(api):
    assert api.tenant["domains"][0] == TENANT and api.tenant_id == api.tenants()[0]["id"]
    app = api.add_application("Ticketing", ["mail.read"])
    assert app["permissions"] == ["Mail.Read"] and len(app["secrets"][0]["value"]) == 40
    assert api.application("ticketing")["app_id"] == app["app_id"]
    assert api.update_application(app, enabled=False)["enabled"] is False
    secret = api.add_secret(app, expires_in_days=1)
    api.remove_secret(app, secret["id"])
    cert = api.add_certificate(app, certificate_pem(self_signed_certificate(new_rsa_key(), "t")), display_name="ci")
    api.remove_certificate(app, cert["id"])
    assert [a["display_name"] for a in api.applications()] == ["Contact Center Connector", "Ticketing"]
    api.remove_application(app["app_id"])

    box = api.add_mailbox("helpdesk@contoso.com", kind="shared", display_name="Help Desk")
    assert (box["type"], box["display_name"]) == ("shared", "Help Desk")
    changed = api.update_mailbox("helpdesk@contoso.com", custom_attributes={"1": "emea"})
    assert changed["custom_attributes"] == {"1": "emea"}
    assert "helpdesk@contoso.com" in [m["address"] for m in api.mailboxes("shared")]
    assert api.mailbox("helpdesk@contoso.com")["id"] == box["id"]
    group = api.add_group("escalations@contoso.com", [SALES], display_name="Escalations")
    assert api.add_member("escalations", "helpdesk@contoso.com")["members"] == [SALES, "helpdesk@contoso.com"]
    api.remove_member("escalations", SALES)
    assert api.group(group["id"])["members"] == ["helpdesk@contoso.com"]
    api.remove_group("escalations")
    api.remove_mailbox("helpdesk@contoso.com")
    assert GROUP in [g["address"] for g in api.groups()]


def test_the_rules(api, demo_app):
    policy = api.add_access_policy(demo_app.app_id, "cctr_sec_group", description="runbook")
    assert api.access_policy(policy["id"])["description"] == "runbook"
    assert api.set_access_policy(policy["id"], "changed")["description"] == "changed"
    assert api.test_access_policy(demo_app.display_name, SALES)["access_check_result"] == "Denied"
    assert api.test_access_policy({"app_id": demo_app.app_id}, SUPPORT)["access_check_result"] == "Granted"
    api.remove_access_policy(policy["id"])
    assert api.access_policies() == []

    api.add_service_principal(demo_app.display_name)
    api.add_management_scope("EMEA", "CustomAttribute1 -eq 'emea'")
    assignment = api.add_role_assignment("Application Mail.Read", demo_app.app_id, scope="EMEA")
    [row] = api.test_authorization(demo_app.app_id, SUPPORT)
    assert (row["role_name"], row["in_scope"]) == ("Application Mail.Read", False)
    assert [a["name"] for a in api.role_assignments()] == [assignment["name"]]
    api.remove_role_assignment(assignment["name"])
    api.remove_management_scope("EMEA")
    api.remove_service_principal(demo_app.app_id)
    assert api.service_principals() == [] and api.management_scopes() == []


def test_mail_log_time_settings_and_the_world(api):
    message_id = api.deliver(SUPPORT, {"subject": "Printer broken"}, folder="archive")
    assert message_id
    assert api.generate(SUPPORT, 3, seed=1, unread_ratio=1)["created"] == 3
    assert api.log(outcome="denied") == [] and api.outbound() == []
    assert api.freeze("2030-01-01T00:00:00Z") == {"now": "2030-01-01T00:00:00.000000Z", "frozen": True}
    assert api.advance(60)["now"] == "2030-01-01T00:01:00.000000Z"
    assert api.resume()["frozen"] is False and api.reset_time()["frozen"] is False
    assert api.time()["frozen"] is False
    assert api.update_settings(tokenLifetime=600)["tokenLifetime"] == 600 == api.settings()["tokenLifetime"]
    world = api.export()
    api.reset()
    assert api.settings()["tokenLifetime"] != 600
    assert api.import_world(world) == [api.tenant_id]
    assert api.export() == world
    assert api.health()["status"] == "ok" and api.openapi()["openapi"].startswith("3.1")


def test_a_refusal_carries_status_code_message_and_details(api):
    with pytest.raises(ControlError) as missing:
        api.group("ghost")
    error = missing.value
    assert (error.status, error.code) == (404, "GroupNotFound")
    assert str(error) == error.message == f"Tenant {api.tenant_id} has no group 'ghost'."
    assert error.describe() == f"GET /_m365/tenants/{api.tenant_id}/groups/ghost answered 404 GroupNotFound: {error}"
    assert isinstance(error, CmdletError), "the cmdlet shell reports it as the failing cmdlet's error"

    with pytest.raises(ControlError) as refused:
        api.add_mailbox("new@contoso.com", tipe="shared")
    assert refused.value.code == "InvalidField"
    assert [d["target"] for d in refused.value.details] == ["tipe"]

    assert api.request("GET", "/groups", expect=404)["error"]["code"] == "NotFound"
    with pytest.raises(ControlError, match="answered HTTP 200, not 404"):
        api.request("GET", "/tenants", expect=404)

    unkeyed = ControlClient(BASE, "wrong", session=api.session)
    with pytest.raises(ControlError) as unauthorised:
        unkeyed.tenants()
    assert (unauthorised.value.status, unauthorised.value.code) == (401, "AdminKeyRequired")


def test_the_tenant_it_acts_on(api, client):
    with pytest.raises(ControlError, match=r"This emulator has no tenant 'fabrikam\.com'; it has: contoso"):
        _ = api.for_tenant("fabrikam.com").tenant
    assert api.for_tenant("CONTOSO.COM").tenant_id == api.tenant_id
    world = api.export()
    world["tenants"][0]["id"] = "00000000-0000-4000-8000-000000000001"
    api.tenant  # noqa: B018 - the tenant is looked up once...
    api.import_world(world)
    assert api.tenant_id == "00000000-0000-4000-8000-000000000001", "...and again after the world was replaced"


class Recorder:
    """A session that answers 200 `{}` and keeps what it was asked."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append({"method": method, "url": url, **kwargs})
        return SimpleNamespace(status_code=200, text='{"value": [], "ids": ["x"], "tenants": []}')


def test_timeouts_a_sensible_default_and_longer_for_bulk_work():
    session = Recorder()
    api = ControlClient("https://emulator.test/", "key", ca_file="/ca.pem", session=session)
    api.log(app="a b", limit=5)
    api.request("GET", "/settings", timeout=1.5)
    api.generate(SUPPORT, 100_000)
    api.export()
    api.import_world({"tenants": []})
    api.generate(SUPPORT, 10, timeout=5)
    assert [c["timeout"] for c in session.calls] == [DEFAULT_TIMEOUT, 1.5, BULK_TIMEOUT, BULK_TIMEOUT, BULK_TIMEOUT, 5]
    assert session.calls[0]["url"] == "https://emulator.test/_m365/log?app=a+b&limit=5"
    assert session.calls[0]["headers"] == {"X-M365-Admin-Key": "key"} and session.calls[0]["verify"] == "/ca.pem"
    assert session.calls[2]["url"] == "https://emulator.test/_m365/mailboxes/support%40contoso.onmicrosoft.com/messages"
    assert session.calls[2]["json"] == {"count": 100_000}
    assert DEFAULT_TIMEOUT == 30 and ControlClient("https://x", "k", session=session, timeout=5).timeout == 5


def test_the_plugin_error_is_a_control_error_and_a_failed_assertion(client):
    api = ControlClient(BASE, ADMIN_KEY, session=FlaskSession(client), error=M365Error)
    with pytest.raises(M365Error) as failed:
        api.mailbox("ghost@contoso.com")
    assert isinstance(failed.value, ControlError) and isinstance(failed.value, AssertionError)
    assert failed.value.status == 404
    assert str(failed.value).startswith(
        f"GET /_m365/tenants/{api.tenant_id}/mailboxes/ghost%40contoso.com answered 404"
    )
