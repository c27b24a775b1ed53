"""Every Graph request is authorized: the bearer token, the mailbox, then the permission for the operation."""

from __future__ import annotations

import jwt
import pytest

from m365_mock.identity.keys import SigningKey
from tests.helpers import GraphClient, error_of

SUPPORT = "support@contoso.onmicrosoft.com"
CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)


def assert_401(response, message: str) -> None:
    assert error_of(response) == (401, "InvalidAuthenticationToken", message)
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    inner = response.get_json()["error"]["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    assert inner["client-request-id"] == response.headers["client-request-id"]
    assert len(inner["date"]) == 19 and "Z" not in inner["date"]


def test_no_token(client):
    assert_401(GraphClient(client, None).get(f"/users/{SUPPORT}/messages"), "Access token is empty.")


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer   "])
def test_authorization_header_without_a_bearer_token(client, header):
    response = GraphClient(client, None).get(f"/users/{SUPPORT}/messages", headers={"Authorization": header})
    assert_401(response, "Access token is empty.")


def test_garbled_token(client):
    assert_401(
        GraphClient(client, "not-a-token").get(f"/users/{SUPPORT}/messages"),
        "CompactToken parsing failed with error code: 80049217",
    )


def test_expired_token(graph, clock):
    clock.advance(3600)
    assert_401(graph.get(f"/users/{SUPPORT}/messages"), "Lifetime validation failed, the token is expired.")


def test_forged_token(graph, emulator):
    claims = jwt.decode(graph.token, options={"verify_signature": False})
    forged = jwt.encode(
        claims, SigningKey.generate().private_key, algorithm="RS256", headers={"kid": emulator.signing_key.kid}
    )
    assert_401(GraphClient(graph.client, forged).get(f"/users/{SUPPORT}/messages"), "Access token validation failure.")


def test_token_for_another_audience(graph, emulator):
    claims = jwt.decode(graph.token, options={"verify_signature": False}) | {"aud": "https://vault.azure.net"}
    other = jwt.encode(
        claims, emulator.signing_key.private_key, algorithm="RS256", headers={"kid": emulator.signing_key.kid}
    )
    assert_401(
        GraphClient(graph.client, other).get(f"/users/{SUPPORT}/messages"),
        "Access token validation failure. Invalid audience.",
    )


def test_client_request_id_is_echoed_in_headers_and_inner_error(client):
    response = GraphClient(client, None).get(f"/users/{SUPPORT}/messages", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    assert response.get_json()["error"]["innerError"]["client-request-id"] == "abc-123"
    assert response.headers["request-id"] != "abc-123"


def test_me_with_an_app_token(graph):
    for path in ("/me", "/me/messages", "/me/mailFolders/inbox/messages"):
        assert error_of(graph.get(path)) == (
            400,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        )


def test_me_without_a_token_is_401_first(client):
    assert GraphClient(client, None).get("/me/messages").status_code == 401


@pytest.mark.parametrize(
    "user",
    [
        "nobody@contoso.onmicrosoft.com",
        "cctr_sec_group@contoso.onmicrosoft.com",
        "00000000-0000-0000-0000-000000000000",
        "support@fabrikam.com",
    ],
)
def test_unknown_mailbox(graph, user):
    assert error_of(graph.get(f"/users/{user}/messages")) == (
        404,
        "ErrorInvalidUser",
        f"The requested user '{user}' is invalid.",
    )


def test_mailbox_by_id_alias_and_any_case(graph, tenant):
    support = tenant.mailbox(SUPPORT)
    for user in (support.id, support.id.upper(), "SUPPORT@contoso.com", "Support@Contoso.OnMicrosoft.com"):
        assert graph.get(f"/users/{user}/mailFolders/inbox").status_code == 200, user


def test_url_encoded_user_principal_name(graph):
    assert graph.get("/users/support%40contoso.onmicrosoft.com/messages").status_code == 200


# ---------------------------------------------------------------- permissions per operation class

DENIED = (403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


@pytest.mark.parametrize("permissions", [(), ("Mail.Send",), ("MailboxSettings.Read",)])
def test_reading_needs_a_read_permission(graph_as, permissions):
    client = graph_as(*permissions)
    assert error_of(client.get(f"/users/{SUPPORT}/messages")) == DENIED
    assert error_of(client.get(f"/users/{SUPPORT}/mailFolders")) == DENIED


@pytest.mark.parametrize("permission", ["Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"])
def test_each_read_permission_lists_messages(graph_as, deliver, permission):
    deliver(SUPPORT)
    response = graph_as(permission).get(f"/users/{SUPPORT}/messages")
    assert response.status_code == 200 and len(response.get_json()["value"]) == 1


def test_read_basic_hides_the_body(graph_as, deliver):
    message = deliver(SUPPORT)
    for path in (f"/users/{SUPPORT}/messages", f"/users/{SUPPORT}/messages/{message.id}"):
        body = graph_as("Mail.ReadBasic.All").get(path).get_json()
        item = body["value"][0] if "value" in body else body
        assert "body" not in item and "bodyPreview" not in item
        assert item["subject"] == "Hello"
    full = graph_as("Mail.Read").get(f"/users/{SUPPORT}/messages/{message.id}").get_json()
    assert full["body"]["content"] and full["bodyPreview"] == "Hi there"


def test_read_basic_cannot_search(graph_as):
    assert error_of(graph_as("Mail.ReadBasic.All").get(f"/users/{SUPPORT}/messages?$search=hello")) == DENIED


@pytest.mark.parametrize("permissions", [("Mail.Read",), ("Mail.Send",), ("Mail.ReadBasic.All", "Mail.Send")])
def test_writing_needs_mail_readwrite(graph_as, deliver, permissions):
    message = deliver(SUPPORT)
    client = graph_as(*permissions)
    assert error_of(client.patch(f"/users/{SUPPORT}/messages/{message.id}", json={"isRead": True})) == DENIED
    assert error_of(client.delete(f"/users/{SUPPORT}/messages/{message.id}")) == DENIED
    assert (
        error_of(client.post(f"/users/{SUPPORT}/messages/{message.id}/move", json={"destinationId": "archive"}))
        == DENIED
    )
    assert error_of(client.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "X"})) == DENIED
    assert not message.is_read


@pytest.mark.parametrize("permissions", [("Mail.ReadWrite",), ("Mail.Read",), ()])
def test_sending_needs_mail_send(graph_as, emulator, tenant, permissions):
    response = graph_as(*permissions).post(
        f"/users/{SUPPORT}/sendMail",
        json={"message": {"subject": "x", "toRecipients": [{"emailAddress": {"address": "sales@contoso.com"}}]}},
    )
    assert error_of(response) == DENIED
    assert emulator.mail.store(tenant.mailbox("sales@contoso.com")).counts() == (0, 0)


def test_app_without_consent_is_denied(graph_as):
    assert error_of(graph_as("Mail.ReadWrite", consent=False).get(f"/users/{SUPPORT}/messages")) == DENIED


def test_graph_responses_have_odata_content_type(graph):
    response = graph.get(f"/users/{SUPPORT}/mailFolders")
    assert response.headers["Content-Type"] == (
        "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
    )
    assert response.headers["request-id"] == response.headers["client-request-id"]


def test_unknown_segment(graph):
    assert error_of(graph.get(f"/users/{SUPPORT}/calendars")) == (
        400,
        "BadRequest",
        "Resource not found for the segment 'calendars'.",
    )
    assert error_of(graph.get("/groups")) == (400, "BadRequest", "Resource not found for the segment 'groups'.")
