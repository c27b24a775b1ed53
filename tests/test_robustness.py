"""Inputs a review found crashing or corrupting the emulator: each now gets a clean error and changes nothing."""

from __future__ import annotations

import threading
import time

import jwt
import pytest

from tests.helpers import ADMIN_KEY, SUPPORT, GraphClient
from tests.identity.helpers import BASE, JWT_BEARER, add_certificate, post_token


@pytest.mark.parametrize(
    "body",
    [
        '{"advance": 1e300}',
        '{"advance": -1e12}',
        '{"advance": Infinity}',
        '{"advance": NaN}',
        '{"freeze": "9999-12-31T00:00:00Z"}',
    ],
)
def test_absurd_clock_moves_are_refused_and_the_clock_untouched(admin, graph, emulator, body):
    before = time.time()
    response = admin.client.post(
        "/_m365/time", data=body, content_type="application/json", headers={"X-M365-Admin-Key": ADMIN_KEY}
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "InvalidField"
    assert admin.call("GET", "/_m365/time").status_code == 200
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200
    assert before - 1 < emulator.clock.now() < time.time() + 1


@pytest.mark.parametrize("settings", [{"propagationDelay": 10**12}, {"tokenLifetime": 10**12}])
def test_settings_have_bounds(admin, settings):
    response = admin.call("PATCH", "/_m365/settings", settings)
    assert (
        response.status_code == 400
        and "must be a whole number of seconds from" in response.get_json()["error"]["message"]
    )


def test_a_policy_id_cannot_be_used_twice_in_any_spelling(admin, demo_app):
    identity = "0f8fad5b-d9cb-469f-a165-70867728950e"
    body = {"app_id": demo_app.app_id, "scope": "cctr_sec_group", "access_right": "RestrictAccess"}
    assert admin.call("POST", "accessPolicies", {**body, "id": identity}).status_code == 201
    for spelling in (identity.upper().replace("-", ""), "{" + identity + "}", "urn:uuid:" + identity):
        assert admin.call("POST", "accessPolicies", {**body, "id": spelling}).status_code == 409
    assert len(admin.call("GET", "accessPolicies").get_json()["value"]) == 1
    assert admin.call("POST", "accessPolicies", {**body, "id": "nope"}).status_code == 400


def test_a_tenant_file_with_a_duplicate_policy_id_is_refused(admin, demo_app):
    exported = admin.call("GET", "/_m365/export").get_json()
    policy = {
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "app_id": demo_app.app_id,
        "scope": "cctr_sec_group",
        "access_right": "DenyAccess",
    }
    exported["tenants"][0]["access_policies"] = [policy, policy]
    response = admin.call("POST", "/_m365/import", exported)
    assert response.status_code == 400 and "already exists" in response.get_json()["error"]["message"]


def test_patch_racing_a_move_is_a_404_not_a_500(app, graph, deliver):
    messages = [deliver(SUPPORT, subject=f"m{i}") for i in range(40)]
    ids = [m.id for m in messages]
    statuses: list[int] = []

    def patch() -> None:
        client = GraphClient(app.test_client(), graph.token)
        for message_id in ids:
            statuses.append(client.patch(f"/users/{SUPPORT}/messages/{message_id}", json={"isRead": True}).status_code)

    def move() -> None:
        client = GraphClient(app.test_client(), graph.token)
        for message_id in ids:
            client.post(f"/users/{SUPPORT}/messages/{message_id}/move", json={"destinationId": "archive"})

    threads = [threading.Thread(target=patch), threading.Thread(target=move)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 404}


def test_deeply_nested_json_is_unreadable_not_a_crash(graph, deliver, admin):
    message = deliver(SUPPORT)
    nested = '{"message":' * 5000 + "1" + "}" * 5000
    response = graph.patch(f"/users/{SUPPORT}/messages/{message.id}", data=nested, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "BadRequest"
    response = admin.client.post(
        "/_m365/import", data=nested, content_type="application/json", headers={"X-M365-Admin-Key": ADMIN_KEY}
    )
    assert response.status_code == 400


@pytest.mark.parametrize("claims", [{"nbf": 1e20}, {"exp": -1e20}, {"exp": float("inf")}, {"exp": float("nan")}])
def test_assertions_with_absurd_times_are_refused(client, tenant, demo_app, claims):
    key_pem, cert = add_certificate(demo_app)
    payload = {
        "aud": f"{BASE}/{tenant.id}/oauth2/v2.0/token",
        "iss": demo_app.app_id,
        "sub": demo_app.app_id,
        "exp": time.time() + 600,
        **claims,
    }
    from m365_mock.identity.keys import b64url

    assertion = jwt.encode(payload, key_pem, algorithm="RS256", headers={"x5t": b64url(cert.sha1)})
    response = post_token(
        client,
        tenant.id,
        client_id=demo_app.app_id,
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion,
        grant_type="client_credentials",
        scope="https://graph.microsoft.com/.default",
    )
    assert response.status_code == 401
    assert response.get_json()["error_codes"][0] in (50027, 700024)


def test_instance_discovery_with_a_broken_url(client):
    response = client.get("/common/discovery/instance", query_string={"authorization_endpoint": "https://[::1"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_instance"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_m365/mailboxes/support@contoso.onmicrosoft.com/messages", {"count": 3, "unreadRatio": "x"}),
        ("/_m365/mailboxes/support@contoso.onmicrosoft.com/messages", {"count": 3, "unreadRatio": [1]}),
        ("applications/{app}/secrets", {"expires_in_days": 3000000}),
        ("applications/{app}/certificates", {"file": "/etc/passwd"}),
        ("applications/{app}/certificates", {"file": "\u0000"}),
    ],
)
def test_bad_control_inputs_are_400s(admin, demo_app, path, body):
    response = admin.call("POST", path.format(app=demo_app.app_id), body)
    assert response.status_code == 400, response.get_data(as_text=True)


def test_log_limit_with_non_ascii_digits(admin):
    assert admin.call("GET", "/_m365/log?limit=\u00b2").status_code == 400


def test_mail_given_with_a_new_mailbox_is_delivered(admin, graph):
    admin.call(
        "POST",
        "mailboxes",
        {"address": "new1@contoso.onmicrosoft.com", "generate": 5, "messages": [{"subject": "hello"}]},
        expect=201,
    )
    assert graph.get("/users/new1@contoso.onmicrosoft.com/mailFolders/inbox").get_json()["totalItemCount"] == 6


def test_flag_dates_are_typed(graph, deliver):
    message = deliver(SUPPORT)
    response = graph.patch(
        f"/users/{SUPPORT}/messages/{message.id}",
        json={"flag": {"flagStatus": "flagged", "dueDateTime": {"dateTime": 5, "timeZone": []}}},
    )
    assert response.status_code == 400
    assert (
        response.get_json()["error"]["message"] == "Cannot convert the literal '5' to the expected type 'Edm.String'."
    )
    ok = graph.patch(
        f"/users/{SUPPORT}/messages/{message.id}",
        json={"flag": {"flagStatus": "flagged", "dueDateTime": {"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"}}},
    )
    assert ok.get_json()["flag"]["dueDateTime"] == {"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"}
