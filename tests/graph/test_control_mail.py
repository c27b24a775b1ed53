"""The control API's mail routes: the admin key, the outbound log, and putting mail into mailboxes."""

from __future__ import annotations

import base64
import hashlib

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


# ---------------------------------------------------------------- what a mailbox holds, read without a Graph token


def listing(client, address: str = SUPPORT, **query):
    return client.get(f"/_m365/mailboxes/{address}/messages", query_string=query, headers=ADMIN)


def test_a_mailbox_is_read_with_its_folders_and_newest_messages_and_leaves_no_log_record(client, graph, emulator):
    client.post(f"/_m365/mailboxes/{SUPPORT}/messages", json={"subject": "older"}, headers=ADMIN)
    client.post(
        f"/_m365/mailboxes/{SUPPORT}/messages",
        json={"subject": "Printer jammed", "categories": ["Urgent"], "flag": {"flagStatus": "flagged"}},
        headers=ADMIN,
    )
    folder = graph.post(f"/users/{SUPPORT}/mailFolders/inbox/childFolders", json={"displayName": "Done"}).get_json()
    logged = len(emulator.log.since(0))

    answer = listing(client, top=1).get_json()
    assert answer["total"] == 2 and [m["subject"] for m in answer["value"]] == ["Printer jammed"]
    [newest] = answer["value"]
    assert (newest["isRead"], newest["categories"], newest["flagStatus"]) == (False, ["Urgent"], "flagged")
    assert newest["from"] == "sender@external.example" and newest["internetMessageId"].startswith("<")
    paths = {f["path"]: f for f in answer["folders"]}
    assert paths["Inbox"]["totalItemCount"] == 2 and paths["Inbox"]["unreadItemCount"] == 2
    assert paths["Inbox/Done"]["id"] == folder["id"] and paths["Inbox"]["wellKnownName"] == "inbox"
    assert newest["parentFolderId"] == paths["Inbox"]["id"]
    for key in ("Done", "inbox/done", "INBOX/Done/", folder["id"]):
        [only] = listing(client, folder=key).get_json()["folders"]
        assert only["path"] == "Inbox/Done", key
    assert listing(client, folder="Inbox").get_json()["total"] == 2
    assert len(emulator.log.since(0)) == logged


def test_a_folder_the_mailbox_has_not_or_names_twice_is_refused(client, graph):
    graph.post(f"/users/{SUPPORT}/mailFolders/inbox/childFolders", json={"displayName": "Done"})
    graph.post(f"/users/{SUPPORT}/mailFolders/archive/childFolders", json={"displayName": "Done"})
    twice = listing(client, folder="done")
    assert twice.status_code == 400 and twice.get_json()["error"] == {
        "code": "InvalidField",
        "message": f"'folder' 'done' names 2 folders of '{SUPPORT}' (Archive/Done, Inbox/Done); give its path.",
    }
    assert [f["path"] for f in listing(client, folder="Inbox/Done").get_json()["folders"]] == ["Inbox/Done"]
    graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "Done"})
    assert [f["path"] for f in listing(client, folder="done").get_json()["folders"]] == ["Done"]  # a path first
    missing = listing(client, folder="Processed")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "FolderNotFound"
    assert missing.get_json()["error"]["message"].startswith(
        f"Mailbox '{SUPPORT}' has no folder 'Processed'; its folders: Archive, Archive/Done, Conversation History, "
    )
    assert listing(client, "nobody@contoso.com").status_code == 404
    for top in ("0", "10001", "x", "-1"):
        refused = listing(client, top=top)
        assert refused.status_code == 400, top
        assert refused.get_json()["error"]["message"] == "'top' must be a whole number from 1 to 10000."
    assert listing(client, fodler="inbox").get_json()["error"]["code"] == "UnknownQueryParameter"


def test_the_outbound_log_keeps_each_attachments_name_size_and_hash(client, graph):
    content = b"%PDF-1.4 receipt"
    graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "Your receipt",
                "toRecipients": [{"emailAddress": {"address": "customer@example.org"}}],
                "attachments": [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "receipt.pdf",
                        "contentType": "application/pdf",
                        "contentBytes": base64.b64encode(content).decode(),
                    }
                ],
            }
        },
    )
    [mail] = client.get("/_m365/outbound", headers=ADMIN).get_json()["value"]
    assert mail["attachments"] == [
        {
            "name": "receipt.pdf",
            "contentType": "application/pdf",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    ]
    exported = client.get("/_m365/export", headers=ADMIN).get_json()
    assert exported["outbound"][0]["attachments"][0]["sha256"] == hashlib.sha256(content).hexdigest()
    assert client.post("/_m365/import", json=exported, headers=ADMIN).status_code == 200
    assert client.get("/_m365/outbound", headers=ADMIN).get_json()["value"][0]["attachments"] == mail["attachments"]
