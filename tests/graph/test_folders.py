"""mailFolders: the well-known tree, lookups by id or well-known name, child folders, counts true to content."""

from __future__ import annotations

import pytest

from tests.helpers import BASE, error_of

SUPPORT = "support@contoso.onmicrosoft.com"
VISIBLE = [
    "Archive",
    "Conversation History",
    "Deleted Items",
    "Drafts",
    "Inbox",
    "Junk Email",
    "Outbox",
    "Sent Items",
    "Sync Issues",
]


def test_list_gives_the_children_of_the_root(graph):
    response = graph.get(f"/users/{SUPPORT}/mailFolders")
    assert response.status_code == 200
    body = response.get_json()
    assert body["@odata.context"] == f"{BASE}/v1.0/$metadata#users('support%40contoso.onmicrosoft.com')/mailFolders"
    assert [f["displayName"] for f in body["value"]] == VISIBLE
    folder = body["value"][4]
    assert set(folder) == {
        "id",
        "displayName",
        "parentFolderId",
        "childFolderCount",
        "unreadItemCount",
        "totalItemCount",
        "isHidden",
    }
    assert folder["isHidden"] is False and folder["totalItemCount"] == 0
    root = graph.get(f"/users/{SUPPORT}/mailFolders/msgfolderroot").get_json()
    assert all(f["parentFolderId"] == root["id"] for f in body["value"])
    assert body["value"][-1]["childFolderCount"] == 3


@pytest.mark.parametrize(
    "name",
    [
        "inbox",
        "Inbox",
        "INBOX",
        "sentitems",
        "SentItems",
        "deleteditems",
        "drafts",
        "junkemail",
        "archive",
        "outbox",
        "msgfolderroot",
        "conversationhistory",
        "recoverableitemsdeletions",
        "searchfolders",
        "syncissues",
        "scheduled",
    ],
)
def test_well_known_names_in_any_case(graph, name):
    response = graph.get(f"/users/{SUPPORT}/mailFolders/{name}")
    assert response.status_code == 200
    assert response.get_json()["@odata.context"].endswith("/mailFolders/$entity")


def test_folder_by_id_and_by_key_syntax(graph):
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()
    assert graph.get(f"/users/{SUPPORT}/mailFolders/{inbox['id']}").get_json()["displayName"] == "Inbox"
    assert graph.get(f"/users/{SUPPORT}/mailFolders('Inbox')").get_json()["id"] == inbox["id"]
    assert graph.get(f"/users('{SUPPORT}')/mailFolders('{inbox['id']}')").status_code == 200


def test_malformed_and_unknown_folder_ids(graph, tenant):
    assert error_of(graph.get(f"/users/{SUPPORT}/mailFolders/notafolder")) == (
        400,
        "ErrorInvalidIdMalformed",
        "Id is malformed.",
    )
    sales_inbox = graph.get("/users/sales@contoso.com/mailFolders/inbox").get_json()["id"]
    assert error_of(graph.get(f"/users/{SUPPORT}/mailFolders/{sales_inbox}")) == (
        404,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )


def test_counts_follow_the_content(graph, deliver):
    deliver(SUPPORT)
    read = deliver(SUPPORT, is_read=True)
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()
    assert (inbox["totalItemCount"], inbox["unreadItemCount"]) == (2, 1)
    graph.patch(f"/users/{SUPPORT}/messages/{read.id}", json={"isRead": False})
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()
    assert (inbox["totalItemCount"], inbox["unreadItemCount"]) == (2, 2)


def test_create_folder_under_the_root(graph):
    response = graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "Processed", "isHidden": False})
    assert response.status_code == 201
    created = response.get_json()
    assert created["displayName"] == "Processed" and created["totalItemCount"] == 0
    names = [f["displayName"] for f in graph.get(f"/users/{SUPPORT}/mailFolders").get_json()["value"]]
    assert "Processed" in names
    assert graph.get(f"/users/{SUPPORT}/mailFolders/{created['id']}").status_code == 200


def test_duplicate_folder_name_is_refused(graph):
    graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "Processed"})
    response = graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "processed"})
    assert error_of(response) == (409, "ErrorFolderExists", "A folder with the specified name already exists.")


def test_hidden_folders_are_listed_only_on_request(graph):
    graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "Quarantine", "isHidden": True})
    names = [f["displayName"] for f in graph.get(f"/users/{SUPPORT}/mailFolders").get_json()["value"]]
    assert "Quarantine" not in names
    everything = graph.get(f"/users/{SUPPORT}/mailFolders?includeHiddenFolders=true").get_json()["value"]
    assert [f["isHidden"] for f in everything if f["displayName"] == "Quarantine"] == [True]


def test_child_folders(graph):
    created = graph.post(f"/users/{SUPPORT}/mailFolders/inbox/childFolders", json={"displayName": "Tickets"})
    assert created.status_code == 201
    child = created.get_json()
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()
    assert child["parentFolderId"] == inbox["id"] and inbox["childFolderCount"] == 1
    listed = graph.get(f"/users/{SUPPORT}/mailFolders/inbox/childFolders").get_json()
    assert [f["displayName"] for f in listed["value"]] == ["Tickets"]
    assert listed["@odata.context"].endswith("/mailFolders('inbox')/childFolders")
    grandchild = graph.post(f"/users/{SUPPORT}/mailFolders/{child['id']}/childFolders", json={"displayName": "2026"})
    assert grandchild.get_json()["parentFolderId"] == child["id"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, (400, "ErrorInvalidParameter", "The value of the parameter 'DisplayName' is empty.")),
        (
            {"displayName": 5},
            (400, "RequestBodyRead", "Cannot convert the literal '5' to the expected type 'Edm.String'."),
        ),
        (
            {"displayName": "A", "isHidden": "yes"},
            (400, "RequestBodyRead", "Cannot convert the literal 'yes' to the expected type 'Edm.Boolean'."),
        ),
        (
            {"displayName": "A", "colour": "red"},
            (
                400,
                "RequestBodyRead",
                "The property 'colour' does not exist on type 'microsoft.graph.mailFolder'. Make sure to "
                "only use property names that are defined by the type or mark the type as open type.",
            ),
        ),
    ],
)
def test_bad_folder_bodies(graph, payload, expected):
    assert error_of(graph.post(f"/users/{SUPPORT}/mailFolders", json=payload)) == expected
    names = [f["displayName"] for f in graph.get(f"/users/{SUPPORT}/mailFolders").get_json()["value"]]
    assert names == VISIBLE


def test_malformed_json_and_wrong_content_type(graph):
    response = graph.post(f"/users/{SUPPORT}/mailFolders", data="{nope", content_type="application/json")
    assert error_of(response)[:2] == (400, "BadRequest")
    assert "Unable to read JSON request payload" in error_of(response)[2]
    response = graph.post(f"/users/{SUPPORT}/mailFolders", data="displayName=X", content_type="text/plain")
    assert error_of(response)[:2] == (415, "RequestBodyRead")
    response = graph.post(f"/users/{SUPPORT}/mailFolders", data="", content_type="application/json")
    assert error_of(response) == (400, "BadRequest", "Empty Payload. JSON content expected.")
