"""The control API's directory, time, settings, reset and import/export routes."""

from __future__ import annotations

import pytest

from m365_mock.identity.keys import certificate_pem, new_rsa_key, self_signed_certificate
from tests.helpers import ADMIN_KEY, GROUP, SALES, SUPPORT
from tests.identity.helpers import decode_unverified, post_token, secret_form


def test_tenants(admin, tenant):
    assert admin.call("GET", "/_m365/tenants").get_json() == {
        "value": [{"id": tenant.id, "name": "Contoso", "domains": ["contoso.onmicrosoft.com", "contoso.com"]}]
    }
    assert admin.call("GET", "/_m365/tenants/fabrikam.com/mailboxes").status_code == 404


def test_application_lifecycle(admin, client, tenant):
    created = admin.call(
        "POST", "applications", {"display_name": "Ticketing", "permissions": ["mail.read"], "secrets": [{}]}, expect=201
    ).get_json()
    assert created["permissions"] == ["Mail.Read"] and len(created["secrets"][0]["value"]) == 40
    app_id = created["app_id"]
    form = {
        "client_id": app_id,
        "client_secret": created["secrets"][0]["value"],
        "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default",
    }
    assert decode_unverified(post_token(client, tenant.id, **form).get_json()["access_token"])["roles"] == ["Mail.Read"]

    admin.call(
        "PATCH",
        f"applications/{app_id}",
        {"permissions": ["Mail.Read", "Mail.Send"], "admin_consent": False},
        expect=200,
    )
    assert "roles" not in decode_unverified(post_token(client, tenant.id, **form).get_json()["access_token"])
    admin.call("PATCH", f"applications/{app_id}", {"admin_consent": True}, expect=200)
    claims = decode_unverified(post_token(client, tenant.id, **form).get_json()["access_token"])
    assert claims["roles"] == ["Mail.Read", "Mail.Send"]

    admin.call("PATCH", f"applications/{app_id}", {"enabled": False}, expect=200)
    assert post_token(client, tenant.id, **form).get_json()["error_codes"] == [7000112]
    admin.call("DELETE", f"applications/{app_id}", expect=204)
    assert post_token(client, tenant.id, **form).get_json()["error_codes"] == [700016]


def test_bad_application_changes(admin, demo_app):
    response = admin.call("PATCH", f"applications/{demo_app.app_id}", {"permissions": ["Mail.Everything"]})
    assert (
        response.status_code == 400
        and "unknown Graph application permission" in response.get_json()["error"]["message"]
    )
    assert admin.call("PATCH", f"applications/{demo_app.app_id}", {"colour": "red"}).status_code == 400
    assert admin.call("PATCH", "applications/00000000-0000-0000-0000-000000000001", {}).status_code == 404
    assert admin.call("POST", "applications", {"permissions": []}).status_code == 400
    assert demo_app.permissions == ["Mail.ReadWrite", "Mail.Send"]


def test_secret_rotation_and_expiry(admin, client, tenant, demo_app, clock):
    new = admin.call("POST", f"applications/{demo_app.app_id}/secrets", {"expires_in_days": 1}, expect=201).get_json()
    assert post_token(client, tenant.id, **secret_form(demo_app, client_secret=new["value"])).status_code == 200
    clock.advance(2 * 86400)
    expired = post_token(client, tenant.id, **secret_form(demo_app, client_secret=new["value"]))
    assert expired.get_json()["error_codes"] == [7000222]
    admin.call("DELETE", f"applications/{demo_app.app_id}/secrets/{new['id']}", expect=204)
    wrong = post_token(client, tenant.id, **secret_form(demo_app, client_secret=new["value"]))
    assert wrong.get_json()["error_codes"] == [7000215]


def test_certificate_upload(admin, emulator, demo_app):
    def current_certificates() -> list:
        return emulator.directory.tenants[0].application(demo_app.app_id).certificates

    pem = certificate_pem(self_signed_certificate(new_rsa_key(), "daemon"))
    created = admin.call("POST", f"applications/{demo_app.app_id}/certificates", {"pem": pem}, expect=201).get_json()
    assert created["pem"] == pem and len(current_certificates()) == 1
    assert demo_app.certificates == [], "the version read before the change stays as it was"
    assert admin.call("POST", f"applications/{demo_app.app_id}/certificates", {"pem": pem}).status_code == 409
    assert admin.call("POST", f"applications/{demo_app.app_id}/certificates", {"pem": "nope"}).status_code == 400
    admin.call("DELETE", f"applications/{demo_app.app_id}/certificates/{created['id']}", expect=204)
    assert current_certificates() == []


def test_mailbox_lifecycle(admin, graph):
    created = admin.call(
        "POST",
        "mailboxes",
        {"address": "helpdesk@contoso.com", "type": "shared", "display_name": "Helpdesk"},
        expect=201,
    ).get_json()
    assert created["type"] == "shared"
    assert graph.get("/users/helpdesk@contoso.com/mailFolders/inbox").status_code == 200
    assert admin.call("POST", "mailboxes", {"address": "HELPDESK@contoso.com"}).status_code == 409
    shared = admin.call("GET", "mailboxes?type=shared").get_json()["value"]
    assert "helpdesk@contoso.com" in [m["address"] for m in shared]
    patched = admin.call("PATCH", "mailboxes/helpdesk@contoso.com", {"custom_attributes": {"1": "emea"}}, expect=200)
    assert patched.get_json()["custom_attributes"] == {"1": "emea"}
    admin.call("DELETE", "mailboxes/helpdesk@contoso.com", expect=204)
    assert graph.get("/users/helpdesk@contoso.com/messages").status_code == 404


def test_group_membership(admin):
    admin.call(
        "POST", "groups", {"address": "escalations@contoso.onmicrosoft.com", "display_name": "escalations"}, expect=201
    )
    admin.call("POST", "groups/escalations/members", {"member": SALES}, expect=201)
    again = admin.call("POST", "groups/escalations/members", {"member": "sales@contoso.com"})
    assert again.status_code == 409 and "is already a member" in again.get_json()["error"]["message"]
    missing = admin.call("POST", "groups/escalations/members", {"member": "ghost@contoso.com"})
    assert missing.status_code == 404
    assert admin.call("GET", "groups/escalations").get_json()["members"] == [SALES]
    admin.call("DELETE", f"groups/escalations/members/{SALES}", expect=204)
    assert admin.call("DELETE", f"groups/escalations/members/{SALES}").status_code == 404
    admin.call("DELETE", "groups/escalations", expect=204)
    assert admin.call("GET", "groups/escalations").status_code == 404


def test_groups_used_by_a_policy_cannot_be_deleted(admin, demo_app):
    admin.policy(demo_app.app_id, "cctr_sec_group")
    assert admin.call("DELETE", "groups/cctr_sec_group").status_code == 409


def test_time_and_settings(admin):
    frozen = admin.call("POST", "/_m365/time", {"freeze": "2027-01-01T00:00:00Z"}, expect=200).get_json()
    assert frozen == {"now": "2027-01-01T00:00:00.000000Z", "frozen": True}
    assert admin.call("POST", "/_m365/time", {"advance": 90}).get_json()["now"] == "2027-01-01T00:01:30.000000Z"
    assert admin.call("POST", "/_m365/time", {"resume": True}).get_json()["frozen"] is False
    assert admin.call("POST", "/_m365/time", {"advance": "soon"}).status_code == 400
    settings = admin.call("PATCH", "/_m365/settings", {"tokenLifetime": 600}, expect=200).get_json()
    assert {k: v for k, v in settings.items() if k != "throttling"} == {
        "tokenLifetime": 600,
        "propagationDelay": 0,
        "nestedGroupMembership": True,
    }
    assert settings["throttling"]["mailboxRequests"] == 10_000
    assert admin.call("PATCH", "/_m365/settings", {"propagationDelay": -1}).status_code == 400
    assert admin.call("PATCH", "/_m365/settings", {"speed": 1}).status_code == 400


def test_reset_restores_the_loaded_world(admin, graph, demo_app, emulator, tenant):
    admin.policy(demo_app.app_id, "cctr_sec_group")
    admin.call("POST", "mailboxes", {"address": "temp@contoso.com"}, expect=201)
    graph.post(
        f"/users/{SUPPORT}/sendMail", json={"message": {"toRecipients": [{"emailAddress": {"address": SUPPORT}}]}}
    )
    admin.call("POST", "/_m365/reset", expect=200)
    fresh = emulator.directory.tenant("contoso.com")
    assert fresh.id == tenant.id and fresh.mailbox("temp@contoso.com") is None
    assert fresh.rules.policies == []
    assert admin.call("GET", "/_m365/log").get_json()["value"] == []
    assert graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()["totalItemCount"] == 0
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200


def test_export_and_import_round_trip(admin, demo_app):
    admin.policy(demo_app.app_id, "cctr_sec_group")
    admin.call("POST", "servicePrincipals", {"app_id": demo_app.app_id}, expect=201)
    admin.call("POST", "managementScopes", {"name": "s", "filter": "CustomAttribute3 -like 'em*'"}, expect=201)
    admin.call(
        "POST",
        "roleAssignments",
        {"role": "Application Mail.Read", "app_id": demo_app.app_id, "scope": "s"},
        expect=201,
    )
    exported = admin.call("GET", "/_m365/export", expect=200).get_json()
    admin.call("POST", "/_m365/reset", expect=200)
    assert admin.call("GET", "accessPolicies").get_json()["value"] == []
    admin.call("POST", "/_m365/import", exported, expect=200)
    assert admin.call("GET", "/_m365/export").get_json() == exported
    bad = admin.call("POST", "/_m365/import", {"tenants": [{"domains": []}]})
    assert bad.status_code == 400 and "domains" in bad.get_json()["error"]["message"]
    assert admin.call("GET", "/_m365/export").get_json() == exported


def test_time_reset_and_reset_of_the_world_bring_back_real_time(admin):
    import time as _time

    admin.call("POST", "/_m365/time", {"advance": 86400}, expect=200)
    body = admin.call("POST", "/_m365/time", {"reset": True}, expect=200).get_json()
    assert body["frozen"] is False and body["now"][:13] == _time.strftime("%Y-%m-%dT%H", _time.gmtime())
    admin.call("POST", "/_m365/time", {"freeze": "2030-01-01T00:00:00Z"}, expect=200)
    admin.call("POST", "/_m365/reset", expect=200)
    assert admin.call("GET", "/_m365/time").get_json()["frozen"] is False


def test_import_refuses_unknown_keys_naming_every_place(admin):
    """`accessPolicies` in an import used to load no policy at all, so the app could read every mailbox."""
    before = admin.call("GET", "/_m365/export").get_json()
    body = {
        "tenants": [
            {
                "domains": ["fabrikam.onmicrosoft.com"],
                "mailboxes": [{"address": "help@fabrikam.onmicrosoft.com", "typ": "shared"}],
                "accessPolicies": [],
            }
        ]
    }
    response = admin.call("POST", "/_m365/import", body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "InvalidTenantFile"
    assert sorted(error["message"].splitlines()) == [
        "tenants[0].accessPolicies: unknown key; did you mean 'access_policies'?",
        "tenants[0].mailboxes[0].typ: unknown key; did you mean 'type'?",
    ]
    assert sorted(d["target"] for d in error["details"]) == ["tenants[0].accessPolicies", "tenants[0].mailboxes[0].typ"]
    assert admin.call("GET", "/_m365/export").get_json() == before


def test_import_reads_no_files_and_tells_nothing_about_them(admin, tmp_path):
    real = tmp_path / "daemon.pem"
    real.write_text(certificate_pem(self_signed_certificate(new_rsa_key(), "daemon")))
    answers = []
    for file in (str(real), str(tmp_path / "missing.pem"), "/etc/passwd"):
        app = {"display_name": "A", "certificates": [{"file": file}]}
        body = {"tenants": [{"domains": ["fabrikam.onmicrosoft.com"], "applications": [app]}]}
        response = admin.call("POST", "/_m365/import", body)
        answers.append((response.status_code, response.get_json()["error"]["message"]))
    assert set(answers) == {
        (
            400,
            "tenants[0].applications[0].certificates[0].file: the control API reads no files; "
            "give the certificate as 'pem'",
        )
    }


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "applications",
            {"display_name": "Ticketing", "permisions": ["Mail.Read"]},
            "permisions: unknown field; did you mean 'permissions'?",
        ),
        (
            "applications",
            {"display_name": "Ticketing", "secrets": [{"expires_in_day": 1}]},
            "secrets[0].expires_in_day: unknown field; did you mean 'expires_in_days'?",
        ),
        ("mailboxes", {"address": "new@contoso.com", "Type": "shared"}, "Type: unknown field; did you mean 'type'?"),
        ("groups", {"address": "g@contoso.com", "member": [SALES]}, "member: unknown field; did you mean 'members'?"),
        (
            "accessPolicies",
            {"app_id": "*", "scope": GROUP, "access_right": "DenyAccess", "descripton": "x"},
            "descripton: unknown field; did you mean 'description'?",
        ),
        ("servicePrincipals", {"app_id": "*", "appId": "*"}, "appId: unknown field; did you mean 'app_id'?"),
        (
            "managementScopes",
            {"name": "s", "filter": "Alias -eq 'a'", "recipient_filter": "x"},
            "recipient_filter: unknown field; did you mean 'filter'?",
        ),
        (
            "roleAssignments",
            {"role": "Application Mail.Read", "app_id": "*", "custom_resource_scope": "s"},
            "custom_resource_scope: unknown field; did you mean 'scope'?",
        ),
        (
            "applications/Contact Center Connector/secrets",
            {"valeu": "s3cret"},
            "valeu: unknown field; did you mean 'value'?",
        ),
        (
            "applications/Contact Center Connector/certificates",
            {"pem": "x", "name": "ci"},
            "name: unknown field; known: display_name, pem, file, id",
        ),
        (
            "applications/Contact Center Connector/certificates",
            {"file": "/etc/passwd"},
            "file: the control API reads no files; give the certificate as 'pem'",
        ),
    ],
)
def test_routes_that_create_an_object_refuse_misspelt_fields(admin, path, body, message):
    before = admin.call("GET", "/_m365/export").get_json()
    response = admin.call("POST", path, body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "InvalidField"
    assert response.get_json()["error"]["message"] == message
    assert admin.call("GET", "/_m365/export").get_json() == before


# ---------------------------------------------------------------- found by fuzzing the OpenAPI document


@pytest.mark.parametrize(
    ("path", "body", "target"),
    [
        ("applications/Contact Center Connector/secrets", {"starts": "0159-07-29T23:24:50Z"}, "starts"),
        (
            "applications",
            {"display_name": "Old", "secrets": [{"expires": "0250-06-20T11:15:51Z"}]},
            "secrets[0].expires",
        ),
        (
            "mailboxes",
            {"address": "old@contoso.com", "messages": [{"received": "9999-12-31T23:00:00-05:00"}]},
            "messages[0].received",
        ),
    ],
)
def test_times_outside_the_clocks_years_are_refused(admin, path, body, target):
    """A secret starting in the year 159 was taken, and answered (and exported) as "159-07-29T23:24:50Z", which is
    no date-time: the export could not be imported again. Times lie within the years the clock covers."""
    before = admin.call("GET", "/_m365/export").get_json()
    response = admin.call("POST", path, body, expect=400)
    error = response.get_json()["error"]
    assert error["code"] == "InvalidField"
    assert error["message"] == f"{target}: must lie between the years 1971 and 2999"
    assert admin.call("GET", "/_m365/export").get_json() == before


@pytest.mark.parametrize("sent", ["0001-01-01T00:00:00+14:00", "0159-01-01T00:00:00Z"])
def test_an_import_with_outbound_mail_sent_outside_the_clocks_years_is_refused(admin, sent):
    """The first was a 500 (no UTC time that early); the second was taken and exported as "159-01-01T00:00:00Z",
    which the import then refused."""
    data = admin.call("GET", "/_m365/export").get_json()
    data["outbound"] = [{"sent": sent, "sender": SUPPORT, "recipients": ["someone@example.org"]}]
    error = admin.call("POST", "/_m365/import", data, expect=400).get_json()["error"]
    assert (error["code"], error["message"]) == (
        "InvalidTenantFile",
        "outbound[0].sent: must lie between the years 1971 and 2999",
    )


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        (
            "/_m365/time",
            {"advnce": 60},
            "UnknownField",
            "The clock takes: advance, freeze, resume, reset; not ['advnce'].",
        ),
        ("/_m365/time", {"resume": "yes"}, "InvalidField", "'resume' must be true or false."),
        (
            f"/_m365/mailboxes/{SUPPORT}/messages",
            {"count": 2, "unread_ratio": 1},
            "UnknownField",
            "Generated mail takes: count, seed, unreadRatio, folder; not ['unread_ratio'].",
        ),
        (
            f"/_m365/mailboxes/{SUPPORT}/messages",
            {"count": 2, "seed": True},
            "InvalidSeed",
            "'seed' must be a whole number.",
        ),
    ],
)
def test_bodies_the_document_refuses_are_refused(admin, path, body, code, message):
    """A misspelt field used to be dropped without a word (the clock did not move, the ratio stayed 0.3)."""
    error = admin.call("POST", path, body, expect=400).get_json()["error"]
    assert (error["code"], error["message"]) == (code, message)


def test_log_and_mailbox_filters_outside_their_values_are_refused(admin):
    assert admin.call("GET", "/_m365/log?outcome=allowed", expect=400).get_json()["error"]["message"] == (
        "'outcome' must be one of granted, denied, error, issued, refused."
    )
    assert admin.call("GET", "/_m365/log?outcome=DENIED", expect=200).get_json() == {"value": []}
    assert admin.call("GET", "mailboxes?type=room", expect=400).get_json()["error"]["code"] == "InvalidField"


@pytest.mark.parametrize(
    ("path", "takes"),
    [
        ("/_m365/log?limt=3", "it takes app, mailbox, outcome, kind, limit."),
        ("/_m365/export?mail=false", "it takes none."),
        ("/_m365/health?verbose=1", "it takes none."),
    ],
)
def test_a_query_parameter_the_route_does_not_take_is_refused_not_ignored(client, path, takes):
    answer = client.get(path, headers={"X-M365-Admin-Key": ADMIN_KEY})
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "UnknownQueryParameter"
    assert error["message"].endswith(takes) and path.split("?")[1].split("=")[0] in error["message"]


def test_without_the_key_the_key_is_asked_for_first(client):
    assert client.get("/_m365/log?limt=3").get_json()["error"]["code"] == "AdminKeyRequired"
