"""RBAC for Applications, every mailbox route under a policy, the request log and the control API's key."""

from __future__ import annotations

import pytest

from tests.helpers import ADMIN_KEY, GROUP, RAOP, SALES, SUPPORT, can_read

OK = (200, None, None)
BLOCKED = (403, "ErrorAccessDenied", RAOP)
DENIED = (403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


@pytest.fixture
def rbac_app(admin, client, emulator, tenant):
    """An app with no Entra permissions, known to Exchange as a service principal."""
    from tests.helpers import GraphClient, issue_token

    token = issue_token(emulator, tenant, [], name="RBAC Reader")
    app = next(a for a in tenant.applications.values() if a.display_name == "RBAC Reader")
    admin.call("POST", "servicePrincipals", {"app_id": app.app_id}, expect=201)
    return app, GraphClient(client, token)


def test_rbac_role_over_a_scope_grants_inside_only(admin, rbac_app):
    app, graph = rbac_app
    assert can_read(graph, SUPPORT) == DENIED
    admin.call(
        "POST",
        "managementScopes",
        {"name": "Contact centre", "filter": "MemberOfGroup -eq 'cctr_sec_group'"},
        expect=201,
    )
    admin.call(
        "POST",
        "roleAssignments",
        {"role": "Application Mail.Read", "app_id": app.app_id, "scope": "Contact centre"},
        expect=201,
    )
    assert can_read(graph, SUPPORT) == OK
    assert can_read(graph, SALES) == DENIED
    message = graph.get(f"/users/{SUPPORT}/messages").get_json()
    assert message["value"] == []


@pytest.mark.parametrize(
    ("filter_text", "inside", "outside"),
    [
        ("CustomAttribute1 -eq 'emea'", "support@contoso.onmicrosoft.com", SALES),
        ("PrimarySmtpAddress -eq 'sales@contoso.onmicrosoft.com'", SALES, SUPPORT),
        ("RecipientTypeDetails -eq 'SharedMailbox' -and -not(CustomAttribute1 -eq 'emea')", SALES, SUPPORT),
        ("RecipientTypeDetails -eq 'UserMailbox' -or CustomAttribute1 -eq 'emea'", SUPPORT, SALES),
    ],
)
def test_scope_filters_match_and_miss(admin, rbac_app, filter_text, inside, outside):
    app, graph = rbac_app
    admin.call("PATCH", f"mailboxes/{SUPPORT}", {"custom_attributes": {"CustomAttribute1": "emea"}}, expect=200)
    admin.call("POST", "managementScopes", {"name": "s", "filter": filter_text}, expect=201)
    admin.call(
        "POST", "roleAssignments", {"role": "Application Mail.Read", "app_id": app.app_id, "scope": "s"}, expect=201
    )
    assert can_read(graph, inside) == OK
    assert can_read(graph, outside) == DENIED


def test_member_of_group_scope_ignores_nested_members(admin, rbac_app):
    app, graph = rbac_app
    admin.call("POST", "groups", {"address": "inner@contoso.onmicrosoft.com", "members": [SALES]}, expect=201)
    admin.call("POST", "groups/cctr_sec_group/members", {"member": "inner@contoso.onmicrosoft.com"}, expect=201)
    admin.call(
        "POST", "managementScopes", {"name": "cc", "filter": "MemberOfGroup -eq 'CN=cctr_sec_group,OU=x'"}, expect=201
    )
    admin.call(
        "POST", "roleAssignments", {"role": "Application Mail.Read", "app_id": app.app_id, "scope": "cc"}, expect=201
    )
    assert can_read(graph, SUPPORT) == OK
    assert can_read(graph, SALES) == DENIED


def test_organisation_wide_assignment(admin, rbac_app):
    app, graph = rbac_app
    admin.call("POST", "roleAssignments", {"role": "Application Mail Full Access", "app_id": app.app_id}, expect=201)
    assert can_read(graph, SALES) == OK
    response = graph.post(
        f"/users/{SALES}/sendMail",
        json={"message": {"subject": "x", "toRecipients": [{"emailAddress": {"address": SUPPORT}}]}},
    )
    assert response.status_code == 202


def test_rbac_and_entra_permissions_add_up(admin, client, emulator, tenant):
    from tests.helpers import GraphClient, issue_token

    graph = GraphClient(client, issue_token(emulator, tenant, ["Mail.Read"], name="Mixed"))
    app = next(a for a in tenant.applications.values() if a.display_name == "Mixed")
    admin.call("POST", "servicePrincipals", {"app_id": app.app_id}, expect=201)
    send = {"message": {"subject": "x", "toRecipients": [{"emailAddress": {"address": SALES}}]}}
    assert graph.post(f"/users/{SUPPORT}/sendMail", json=send).status_code == 403
    admin.call("POST", "roleAssignments", {"role": "Application Mail.Send", "app_id": app.app_id}, expect=201)
    assert graph.post(f"/users/{SUPPORT}/sendMail", json=send).status_code == 202
    assert can_read(graph, SUPPORT) == OK


def test_policies_do_not_constrain_rbac_grants(admin, rbac_app):
    app, graph = rbac_app
    admin.call("POST", "roleAssignments", {"role": "Application Mail.Read", "app_id": app.app_id}, expect=201)
    admin.policy(app.app_id, GROUP)
    assert can_read(graph, SALES) == OK


def test_rbac_grant_keeps_reading_where_a_policy_blocks_entra(admin, graph, demo_app):
    admin.policy(demo_app.app_id, GROUP)
    assert can_read(graph, SALES) == BLOCKED
    admin.call("POST", "servicePrincipals", {"app_id": demo_app.app_id}, expect=201)
    admin.call("POST", "managementScopes", {"name": "sales", "filter": f"PrimarySmtpAddress -eq '{SALES}'"}, expect=201)
    admin.call(
        "POST",
        "roleAssignments",
        {"role": "Application Mail.ReadBasic", "app_id": demo_app.app_id, "scope": "sales"},
        expect=201,
    )
    response = graph.get(f"/users/{SALES}/messages")
    assert response.status_code == 200
    log = admin.call("GET", "/_m365/log?mailbox=" + SALES).get_json()["value"]
    assert "by RBAC role 'Application Mail.ReadBasic'" in log[-1]["decision"]


def test_role_assignment_needs_a_service_principal_and_a_known_role(admin, tenant, demo_app):
    response = admin.call("POST", "roleAssignments", {"role": "Application Mail.Read", "app_id": demo_app.app_id})
    assert response.status_code == 404 and "couldn't be found" in response.get_json()["error"]["message"]
    admin.call("POST", "servicePrincipals", {"app_id": demo_app.app_id}, expect=201)
    response = admin.call("POST", "roleAssignments", {"role": "Application Mail.Everything", "app_id": demo_app.app_id})
    assert response.status_code == 400 and "isn't an application role" in response.get_json()["error"]["message"]
    response = admin.call("POST", "managementScopes", {"name": "bad", "filter": "Department -eq 'x'"})
    assert response.status_code == 400
    assert "The property 'Department' can't be used" in response.get_json()["error"]["message"]
    response = admin.call("POST", "managementScopes", {"name": "bad", "filter": "CustomAttribute1 -eq"})
    assert response.status_code == 400 and "Invalid filter syntax" in response.get_json()["error"]["message"]


def test_rbac_propagation_and_removal(admin, rbac_app):
    app, graph = rbac_app
    admin.call("PATCH", "/_m365/settings", {"propagationDelay": 120}, expect=200)
    created = admin.call(
        "POST", "roleAssignments", {"role": "Application Mail.Read", "app_id": app.app_id}, expect=201
    ).get_json()
    assert can_read(graph, SALES) == DENIED
    admin.advance(120)
    assert can_read(graph, SALES) == OK
    admin.call("DELETE", f"roleAssignments/{created['name']}", expect=204)
    assert can_read(graph, SALES) == OK
    admin.advance(120)
    assert can_read(graph, SALES) == DENIED


def test_test_service_principal_authorization(admin, rbac_app):
    app, _ = rbac_app
    admin.call("POST", "managementScopes", {"name": "cc", "filter": "MemberOfGroup -eq 'cctr_sec_group'"}, expect=201)
    admin.call(
        "POST", "roleAssignments", {"role": "Application Mail.Read", "app_id": app.app_id, "scope": "cc"}, expect=201
    )
    rows = admin.call("POST", f"servicePrincipals/{app.app_id}/testAuthorization", {"resource": SALES}).get_json()
    assert rows["value"] == [
        {
            "role_name": "Application Mail.Read",
            "granted_permissions": ["Mail.Read"],
            "allowed_resource_scope": "cc",
            "scope_type": "CustomRecipientScope",
            "in_scope": False,
        }
    ]
    rows = admin.call("POST", f"servicePrincipals/{app.app_id}/testAuthorization", {}).get_json()
    assert rows["value"][0]["in_scope"] == "Not Run"


# ---------------------------------------------------------------- every route class under a policy


def _routes(message_id: str, folder_id: str) -> list[tuple[str, str, dict | None]]:
    base = f"/users/{SALES}"
    return [
        ("GET", f"{base}/messages", None),
        ("GET", f"{base}/mailFolders/inbox/messages", None),
        ("GET", f"{base}/messages/{message_id}", None),
        ("GET", f"{base}/mailFolders/inbox/messages/{message_id}", None),
        ("PATCH", f"{base}/messages/{message_id}", {"isRead": True}),
        ("DELETE", f"{base}/messages/{message_id}", None),
        ("POST", f"{base}/messages/{message_id}/move", {"destinationId": "archive"}),
        ("POST", f"{base}/messages/{message_id}/copy", {"destinationId": "archive"}),
        ("GET", f"{base}/mailFolders", None),
        ("GET", f"{base}/mailFolders/{folder_id}", None),
        ("GET", f"{base}/mailFolders/inbox/childFolders", None),
        ("POST", f"{base}/mailFolders", {"displayName": "X"}),
        ("POST", f"{base}/mailFolders/inbox/childFolders", {"displayName": "Y"}),
        ("POST", f"{base}/sendMail", {"message": {"toRecipients": [{"emailAddress": {"address": SUPPORT}}]}}),
    ]


def test_every_mailbox_route_is_denied_out_of_scope(graph, admin, demo_app, deliver, emulator, tenant):
    message = deliver(SALES, subject="secret")
    inbox = emulator.mail.store(tenant.mailbox(SALES)).well_known["inbox"]
    admin.policy(demo_app.app_id, GROUP)
    for method, path, body in _routes(message.id, inbox.id):
        response = graph.request(method, path, json=body)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"] == {
            "code": "ErrorAccessDenied",
            "message": RAOP,
            "innerError": response.get_json()["error"]["innerError"],
        }
    assert inbox.total_count == 1 and message.subject == "secret" and not message.is_read
    assert [
        c.display_name
        for c in emulator.mail.store(tenant.mailbox(SALES)).child_folders(
            emulator.mail.store(tenant.mailbox(SALES)).root
        )
    ].count("X") == 0


# ---------------------------------------------------------------- request log


def test_request_log_records_decisions(graph, admin, demo_app, client):
    admin.policy(demo_app.app_id, GROUP)
    graph.get(f"/users/{SUPPORT}/messages")
    graph.get(f"/users/{SALES}/messages")
    graph.get("/users/nobody@contoso.onmicrosoft.com/messages")
    records = admin.call("GET", "/_m365/log").get_json()["value"]
    assert [(r["mailbox"], r["status"], r["outcome"]) for r in records] == [
        (SUPPORT, 200, "granted"),
        (SALES, 403, "denied"),
        (None, 404, "error"),
    ]
    granted, denied, missing = records
    assert granted["decision"].startswith("granted: Mail.ReadWrite (Entra-consented); RestrictAccess policy ")
    assert granted["decision"].endswith("matches via cctr_sec_group")
    assert denied["decision"] == (
        f"denied: RestrictAccess policies limit the app to cctr_sec_group; {SALES} is in none"
    )
    assert denied["app_id"] == demo_app.app_id and denied["operation"] == "read"
    assert missing["error_code"] == "ErrorInvalidUser"
    assert [r["mailbox"] for r in admin.call("GET", "/_m365/log?outcome=denied").get_json()["value"]] == [SALES]
    assert len(admin.call("GET", f"/_m365/log?app={demo_app.app_id}&limit=2").get_json()["value"]) == 2


def test_missing_permission_reason_in_the_log(graph_as, admin):
    graph_as("Mail.Read").post(
        f"/users/{SUPPORT}/sendMail", json={"message": {"toRecipients": [{"emailAddress": {"address": SALES}}]}}
    )
    [record] = admin.call("GET", "/_m365/log?outcome=denied").get_json()["value"]
    assert record["decision"] == "denied: missing Mail.Send" and record["operation"] == "send"


# ---------------------------------------------------------------- the control API's key


@pytest.mark.parametrize(
    "path", ["/_m365/tenants", "/_m365/log", "/_m365/export", "/_m365/tenants/contoso.com/accessPolicies"]
)
def test_control_api_needs_the_admin_key_and_never_takes_a_graph_token(client, graph, path):
    for headers in ({}, {"Authorization": f"Bearer {graph.token}"}, {"X-M365-Admin-Key": graph.token}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "AdminKeyRequired"
    assert client.get(path, headers={"X-M365-Admin-Key": ADMIN_KEY}).status_code == 200


def test_unknown_control_route_is_a_json_404(client):
    response = client.get("/_m365/nothing", headers={"X-M365-Admin-Key": ADMIN_KEY})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "NotFound"
