"""Application access policies, enforced as Exchange Online does (graph-mail.md section 7)."""

from __future__ import annotations

import pytest

from m365_mock.app import create_app
from m365_mock.state import access
from m365_mock.state.access import Operation
from m365_mock.state.tenantfile import load_demo_world
from tests.conftest import ADMIN_KEY, shared_signing_key
from tests.helpers import (
    BILLING,
    DENIED,
    GROUP,
    RAOP,
    SALES,
    SUPPORT,
    TENANT,
    GraphClient,
    can_read,
    issue_token,
)

OK = (200, None, None)
BLOCKED = (403, "ErrorAccessDenied", RAOP)


def test_demo_tenant_restricts_the_app_to_cctr_sec_group(clock):
    """The runbook's setup: the app reads support@ (in cctr_sec_group) but not sales@."""
    app = create_app(load_demo_world(), signing_key=shared_signing_key(), clock=clock, admin_key=ADMIN_KEY)
    emulator = app.extensions["m365"]
    tenant = emulator.directory.tenants[0]
    demo = next(iter(tenant.applications.values()))
    graph = GraphClient(
        app.test_client(), emulator.issuer.issue(tenant, demo, "https://graph.microsoft.com", "1").access_token
    )
    assert can_read(graph, SUPPORT) == OK
    assert can_read(graph, BILLING) == OK
    assert can_read(graph, SALES) == BLOCKED
    response = graph.post(
        f"/users/{SALES}/sendMail",
        json={"message": {"subject": "x", "toRecipients": [{"emailAddress": {"address": SUPPORT}}]}},
    )
    assert (response.status_code, response.get_json()["error"]["message"]) == (403, RAOP)


def test_app_without_policy_is_unaffected(graph, admin, demo_app):
    other = admin.call("POST", "applications", {"display_name": "Other", "permissions": ["Mail.Read"]}, expect=201)
    admin.policy(other.get_json()["app_id"], GROUP)
    assert can_read(graph, SALES) == OK


def test_restrict_grants_members_and_denies_the_rest(graph, admin, demo_app):
    admin.policy(demo_app.app_id, GROUP)
    assert can_read(graph, SUPPORT) == OK
    assert can_read(graph, SALES) == BLOCKED


def test_deny_blocks_members_only(graph, admin, demo_app):
    admin.policy(demo_app.app_id, GROUP, "DenyAccess")
    assert can_read(graph, SUPPORT) == BLOCKED
    assert can_read(graph, SALES) == OK


def test_deny_beats_restrict(graph, admin, demo_app):
    admin.policy(demo_app.app_id, GROUP, "RestrictAccess")
    admin.call("POST", "groups", {"address": "vip@contoso.onmicrosoft.com", "members": [SUPPORT]}, expect=201)
    admin.policy(demo_app.app_id, "vip@contoso.onmicrosoft.com", "DenyAccess")
    assert can_read(graph, SUPPORT) == BLOCKED
    assert can_read(graph, BILLING) == OK


def test_two_restrict_policies_are_a_union(graph, admin, demo_app):
    admin.call("POST", "groups", {"address": "sales_sg@contoso.onmicrosoft.com", "members": [SALES]}, expect=201)
    admin.policy(demo_app.app_id, GROUP)
    admin.policy(demo_app.app_id, "sales_sg@contoso.onmicrosoft.com")
    assert can_read(graph, SUPPORT) == OK
    assert can_read(graph, SALES) == OK
    assert can_read(graph, "paul.tran@contoso.onmicrosoft.com") == BLOCKED


@pytest.mark.parametrize("nested", [True, False])
def test_nested_group_membership_follows_the_setting(graph, admin, demo_app, nested):
    admin.call("POST", "groups", {"address": "inner@contoso.onmicrosoft.com", "members": [SALES]}, expect=201)
    admin.call(
        "POST",
        "groups",
        {"address": "outer@contoso.onmicrosoft.com", "members": ["inner@contoso.onmicrosoft.com"]},
        expect=201,
    )
    admin.call("PATCH", "/_m365/settings", {"nestedGroupMembership": nested}, expect=200)
    admin.policy(demo_app.app_id, "outer@contoso.onmicrosoft.com")
    assert can_read(graph, SALES) == (OK if nested else BLOCKED)


def test_star_app_id_covers_every_app(graph, graph_as, admin):
    admin.policy("*", GROUP)
    assert can_read(graph, SALES) == BLOCKED
    assert can_read(graph_as("Mail.Read"), SALES) == BLOCKED
    assert can_read(graph_as("Mail.Read"), SUPPORT) == OK


def test_policy_on_a_user_mailbox(graph, admin, demo_app):
    admin.policy(demo_app.app_id, "paul.tran@contoso.onmicrosoft.com")
    assert can_read(graph, "paul.tran@contoso.onmicrosoft.com") == OK
    assert can_read(graph, SUPPORT) == BLOCKED


def test_shared_mailbox_cannot_be_the_scope(admin, demo_app):
    response = admin.call(
        "POST",
        "accessPolicies",
        {"app_id": demo_app.app_id, "scope": SALES, "access_right": "RestrictAccess"},
        expect=400,
    )
    assert response.get_json()["error"]["message"] == "The identity of the policy scope is not a security principal."
    assert admin.call("GET", "accessPolicies").get_json()["value"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"app_id": "not-a-guid", "scope": GROUP, "access_right": "RestrictAccess"},
            "The AppId 'not-a-guid' isn't valid: give application ids (GUIDs) or *.",
        ),
        (
            {"app_id": "*", "scope": GROUP, "access_right": "AllowAccess"},
            "The AccessRight 'AllowAccess' isn't valid: use RestrictAccess or DenyAccess.",
        ),
        (
            {"app_id": "*", "scope": "nobody@contoso.onmicrosoft.com", "access_right": "DenyAccess"},
            "The operation couldn't be performed because object 'nobody@contoso.onmicrosoft.com' couldn't be found.",
        ),
    ],
)
def test_bad_policies_are_refused(admin, body, message):
    response = admin.call("POST", "accessPolicies", body)
    assert response.status_code == (404 if "couldn't be found" in message else 400)
    assert message in response.get_json()["error"]["message"]
    assert admin.call("GET", "accessPolicies").get_json()["value"] == []


def test_policy_changes_apply_to_live_tokens(graph, admin, demo_app):
    assert can_read(graph, SALES) == OK
    policy = admin.policy(demo_app.app_id, GROUP)
    assert can_read(graph, SALES) == BLOCKED
    admin.call("DELETE", f"accessPolicies/{policy['id']}", expect=204)
    assert can_read(graph, SALES) == OK


def test_propagation_delay(graph, admin, demo_app):
    admin.call("PATCH", "/_m365/settings", {"propagationDelay": 600}, expect=200)
    policy = admin.policy(demo_app.app_id, GROUP)
    assert policy["in_force"] is False
    test = admin.call("POST", "accessPolicies/test", {"app_id": demo_app.app_id, "mailbox": SALES}).get_json()
    assert test["access_check_result"] == "Denied"
    assert can_read(graph, SALES) == OK
    admin.advance(599)
    assert can_read(graph, SALES) == OK
    admin.advance(1)
    assert can_read(graph, SALES) == BLOCKED
    admin.call("DELETE", f"accessPolicies/{policy['id']}", expect=204)
    assert can_read(graph, SALES) == BLOCKED
    admin.advance(600)
    assert can_read(graph, SALES) == OK


def test_set_changes_only_the_description(admin, demo_app):
    policy = admin.policy(demo_app.app_id, GROUP)
    assert policy["description"].startswith(f"AppId: {demo_app.app_id}; ScopeIdentitySid: S-1-5-21-")
    updated = admin.call("PATCH", f"accessPolicies/{policy['id']}", {"description": "helpdesk"}, expect=200)
    assert updated.get_json()["description"] == "helpdesk"
    refused = admin.call("PATCH", f"accessPolicies/{policy['id']}", {"access_right": "DenyAccess"}, expect=400)
    assert "Only 'description'" in refused.get_json()["error"]["message"]


def test_test_application_access_policy_answers(admin, demo_app):
    admin.policy(demo_app.app_id, GROUP)
    granted = admin.call("POST", "accessPolicies/test", {"app_id": demo_app.app_id, "mailbox": SUPPORT}).get_json()
    assert granted["access_check_result"] == "Granted" and granted["mailbox"] == "support"
    assert granted["mailbox_sid"].startswith("S-1-5-21-")
    denied = admin.call("POST", "accessPolicies/test", {"app_id": demo_app.app_id, "mailbox": SALES}).get_json()
    assert denied["access_check_result"] == "Denied"


def test_missing_permission_is_the_plain_denial_even_in_scope(graph_as, admin, emulator, tenant):
    reader = graph_as("Mail.Read")
    app_id = next(a for a in tenant.applications.values() if a.permissions == ["Mail.Read"]).app_id
    admin.policy(app_id, GROUP)
    response = reader.post(
        f"/users/{SUPPORT}/sendMail",
        json={"message": {"subject": "x", "toRecipients": [{"emailAddress": {"address": SALES}}]}},
    )
    assert (response.status_code, response.get_json()["error"]["message"]) == (403, DENIED)


def test_policies_do_not_limit_mail_flow(graph, admin, demo_app):
    admin.policy(demo_app.app_id, GROUP)
    assert (
        graph.post(
            f"/users/{SUPPORT}/sendMail",
            json={"message": {"subject": "to sales", "toRecipients": [{"emailAddress": {"address": SALES}}]}},
        ).status_code
        == 202
    )
    admin.call("DELETE", f"accessPolicies/{admin.call('GET', 'accessPolicies').get_json()['value'][0]['id']}")
    assert [m["subject"] for m in graph.get(f"/users/{SALES}/messages").get_json()["value"]] == ["to sales"]


def test_token_for_an_unrelated_app_in_the_same_tenant(client, emulator, tenant, admin, demo_app):
    admin.policy(demo_app.app_id, GROUP, "DenyAccess")
    other = GraphClient(client, issue_token(emulator, tenant, ["Mail.Read"]))
    assert can_read(other, SUPPORT) == OK


def test_remembered_decisions_follow_the_clock_both_ways(graph, admin, demo_app, emulator):
    """Decisions are remembered per tenant version and rule period: the same answer is reused while nothing
    changes, and a delay running out, or the clock moved back before it, changes the answer at once."""
    admin.call("PATCH", "/_m365/settings", {"propagationDelay": 60}, expect=200)
    admin.policy(demo_app.app_id, GROUP, "DenyAccess")
    tenant = emulator.directory.tenant(TENANT)
    mailbox = tenant.mailbox(SUPPORT)

    def decision():
        return access.decide(
            tenant, demo_app.app_id, demo_app.permissions, mailbox, Operation.READ_BASIC, now=emulator.clock.now()
        )

    first = decision()
    assert first.allowed and decision() is first, "remembered while nothing changes"
    assert can_read(graph, SUPPORT)[0] == 200
    admin.advance(61)
    assert not decision().allowed
    assert can_read(graph, SUPPORT) == (403, "ErrorAccessDenied", RAOP)
    admin.advance(-61)
    assert decision() is first
    assert can_read(graph, SUPPORT)[0] == 200
