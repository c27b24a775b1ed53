"""The control API's mail routes: the admin key, the outbound log, and putting mail into mailboxes."""

from __future__ import annotations

from tests.helpers import ADMIN_KEY

ADMIN = {"X-M365-Admin-Key": ADMIN_KEY}
SUPPORT = "support@contoso.onmicrosoft.com"


def test_admin_key_is_required(client, graph):
    for headers in ({}, {"X-M365-Admin-Key": "wrong"}, {"Authorization": f"Bearer {graph.token}"}):
        response = client.get("/_m365/outbound", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "AdminKeyRequired"


def test_health_needs_no_key(client):
    assert client.get("/_m365/health").get_json() == {"status": "ok", "tenants": 1}


def test_generated_messages(client, graph):
    response = client.post(f"/_m365/mailboxes/{SUPPORT}/messages", json={"count": 25}, headers=ADMIN)
    assert response.status_code == 201 and response.get_json()["created"] == 25
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()
    assert inbox["totalItemCount"] == 25 and 0 < inbox["unreadItemCount"] < 25
    again = client.post("/_m365/mailboxes/sales@contoso.com/messages", json={"count": 25}, headers=ADMIN)
    subjects = [m["subject"] for m in graph.get("/users/sales@contoso.com/messages?$top=25").get_json()["value"]]
    first = [m["subject"] for m in graph.get(f"/users/{SUPPORT}/messages?$top=25").get_json()["value"]]
    assert again.status_code == 201 and subjects == first


def test_one_inbound_message(client, graph):
    response = client.post(
        f"/_m365/mailboxes/{SUPPORT}/messages",
        headers=ADMIN,
        json={
            "subject": "Printer broken",
            "from": {"emailAddress": {"address": "alice@example.org", "name": "Alice"}},
            "body": {"contentType": "text", "content": "It jams."},
            "receivedDateTime": "2026-05-01T08:00:00Z",
            "folder": "junkemail",
        },
    )
    assert response.status_code == 201
    [message] = graph.get(f"/users/{SUPPORT}/mailFolders/junkemail/messages").get_json()["value"]
    assert message["id"] == response.get_json()["ids"][0]
    assert message["subject"] == "Printer broken" and message["receivedDateTime"] == "2026-05-01T08:00:00Z"
    assert message["from"]["emailAddress"] == {"address": "alice@example.org", "name": "Alice"}


def test_bad_seeding_requests(client):
    assert client.post("/_m365/mailboxes/nobody@x.com/messages", json={"count": 1}, headers=ADMIN).status_code == 404
    assert client.post(f"/_m365/mailboxes/{SUPPORT}/messages", json={"count": 0}, headers=ADMIN).status_code == 400
    assert client.post(f"/_m365/mailboxes/{SUPPORT}/messages", json={"count": "many"}, headers=ADMIN).status_code == 400
    response = client.post(f"/_m365/mailboxes/{SUPPORT}/messages", json={"count": 1, "folder": "nope"}, headers=ADMIN)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "FolderNotFound"


def test_injected_and_generated_mail_has_message_and_conversation_ids(client, graph):
    client.post(f"/_m365/mailboxes/{SUPPORT}/messages", json={"subject": "x"}, headers=ADMIN)
    client.post(f"/_m365/mailboxes/{SUPPORT}/messages", json={"count": 2}, headers=ADMIN)
    for message in graph.get(f"/users/{SUPPORT}/messages").get_json()["value"]:
        assert message["internetMessageId"].startswith("<") and message["internetMessageId"].endswith(">")
        assert message["conversationId"] and message["conversationIndex"]
