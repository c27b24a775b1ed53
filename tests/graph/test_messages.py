"""Messages: listing with paging, get, PATCH, DELETE, move and copy, with Graph's shapes and errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import BASE, error_of

SUPPORT = "support@contoso.onmicrosoft.com"
ENCODED = "support%40contoso.onmicrosoft.com"
ALL_PROPERTIES = [
    "@odata.etag",
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
]


@pytest.fixture
def fifteen(deliver):
    """Fifteen inbox messages received a minute apart; index 14 is the newest."""
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    return [
        deliver(SUPPORT, subject=f"Ticket {i}", received=start + timedelta(minutes=i), is_read=i % 3 == 0)
        for i in range(15)
    ]


def test_message_shape(graph, deliver):
    message = deliver(SUPPORT, subject="Refund request", categories=["Red"], importance="high")
    body = graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json()
    assert list(body) == ["@odata.context", *ALL_PROPERTIES]
    assert body["@odata.context"] == f"{BASE}/v1.0/$metadata#users('{ENCODED}')/messages/$entity"
    assert body["@odata.etag"] == f'W/"{body["changeKey"]}"'
    assert body["id"] == message.id
    assert body["subject"] == "Refund request" and body["importance"] == "high" and body["categories"] == ["Red"]
    assert body["body"] == {"contentType": "html", "content": "<html><body><p>Hi there</p></body></html>"}
    assert body["bodyPreview"] == "Hi there"
    assert body["from"] == body["sender"] == {"emailAddress": {"name": "A Customer", "address": "customer@example.org"}}
    assert body["toRecipients"][0]["emailAddress"]["address"] == SUPPORT
    assert body["ccRecipients"] == body["bccRecipients"] == body["replyTo"] == []
    assert body["flag"] == {"flagStatus": "notFlagged"}
    assert body["isRead"] is False and body["isDraft"] is False and body["hasAttachments"] is False
    assert body["inferenceClassification"] == "focused"
    for stamp in ("createdDateTime", "lastModifiedDateTime", "receivedDateTime", "sentDateTime"):
        assert datetime.strptime(body[stamp], "%Y-%m-%dT%H:%M:%SZ")
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()
    assert body["parentFolderId"] == inbox["id"]
    assert body["webLink"].startswith("https://outlook.office365.com/owa/?ItemID=")


def test_ids_look_like_graph_ids(deliver):
    message = deliver(SUPPORT)
    assert message.id.startswith("AAMkA") and len(message.id) == 56
    base64.urlsafe_b64decode(message.id)


def test_list_defaults_to_ten_newest_first_with_an_absolute_next_link(graph, fifteen):
    response = graph.get(f"/users/{SUPPORT}/messages")
    body = response.get_json()
    assert [m["subject"] for m in body["value"]] == [f"Ticket {i}" for i in range(14, 4, -1)]
    assert body["@odata.context"] == f"{BASE}/v1.0/$metadata#users('{ENCODED}')/messages"
    assert body["@odata.nextLink"] == f"{BASE}/v1.0/users/{SUPPORT}/messages?%24top=10&%24skip=10"
    rest = graph.get(body["@odata.nextLink"]).get_json()
    assert [m["subject"] for m in rest["value"]] == [f"Ticket {i}" for i in range(4, -1, -1)]
    assert "@odata.nextLink" not in rest


def test_following_next_links_visits_every_message_once(graph, fifteen):
    seen, url = [], f"/users/{SUPPORT}/mailFolders/Inbox/messages?$top=4&$select=subject"
    while url:
        body = graph.get(url).get_json()
        seen += [m["id"] for m in body["value"]]
        url = body.get("@odata.nextLink")
    assert sorted(seen) == sorted(m.id for m in fifteen)


def test_percent_encoded_dollar_and_plus_for_space(graph, fifteen):
    body = graph.get(
        f"/users/{SUPPORT}/mailFolders/Inbox/messages?%24top=3&%24orderby=receivedDateTime+desc"
    ).get_json()
    assert [m["subject"] for m in body["value"]] == ["Ticket 14", "Ticket 13", "Ticket 12"]
    assert "%24top=3" in body["@odata.nextLink"] and "%24orderby=receivedDateTime%20desc" in body["@odata.nextLink"]


def test_select_returns_id_and_the_chosen_properties(graph, fifteen):
    body = graph.get(f"/users/{SUPPORT}/messages?$select=subject,from&$top=1").get_json()
    assert body["@odata.context"] == f"{BASE}/v1.0/$metadata#users('{ENCODED}')/messages(subject,from)"
    assert list(body["value"][0]) == ["@odata.etag", "id", "subject", "from"]


def test_select_only_properties(graph, deliver):
    message = deliver(SUPPORT, internet_message_headers=[{"name": "X-Ticket", "value": "42"}])
    default = graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json()
    assert "internetMessageHeaders" not in default and "uniqueBody" not in default
    chosen = graph.get(f"/users/{SUPPORT}/messages/{message.id}?$select=internetMessageHeaders,uniqueBody").get_json()
    assert chosen["internetMessageHeaders"] == [{"name": "X-Ticket", "value": "42"}]
    assert chosen["uniqueBody"]["contentType"] == "html"


def test_count(graph, fifteen):
    body = graph.get(f"/users/{SUPPORT}/messages?$count=true&$top=2").get_json()
    assert body["@odata.count"] == 15 and len(body["value"]) == 2
    unread = graph.get(f"/users/{SUPPORT}/messages?$count=true&$filter=isRead eq false").get_json()
    assert unread["@odata.count"] == 10


def test_unread_filter_in_default_order(graph, fifteen):
    body = graph.get(f"/users/{SUPPORT}/messages?$filter=isRead eq false&$top=3").get_json()
    assert [m["subject"] for m in body["value"]] == ["Ticket 14", "Ticket 13", "Ticket 11"]
    read = graph.get(f"/users/{SUPPORT}/messages?$filter=isRead eq true").get_json()
    assert [m["subject"] for m in read["value"]] == ["Ticket 12", "Ticket 9", "Ticket 6", "Ticket 3", "Ticket 0"]


def test_folder_listing_only_shows_that_folder(graph, deliver):
    deliver(SUPPORT, subject="in inbox")
    deliver(SUPPORT, folder="archive", subject="archived")
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages").get_json()["value"]
    assert [m["subject"] for m in inbox] == ["in inbox"]
    everything = graph.get(f"/users/{SUPPORT}/messages").get_json()["value"]
    assert sorted(m["subject"] for m in everything) == ["archived", "in inbox"]


def test_prefer_text_body(graph, deliver):
    message = deliver(SUPPORT, body_content="<html><body><p>Dear &amp; hello</p></body></html>")
    response = graph.get(
        f"/users/{SUPPORT}/messages/{message.id}", headers={"Prefer": 'outlook.body-content-type="text"'}
    )
    assert response.headers["Preference-Applied"] == 'outlook.body-content-type="text"'
    assert response.get_json()["body"] == {"contentType": "text", "content": "Dear & hello"}
    listed = graph.get(f"/users/{SUPPORT}/messages", headers={"Prefer": 'outlook.body-content-type="text"'})
    assert listed.get_json()["value"][0]["body"]["contentType"] == "text"
    assert "Preference-Applied" not in graph.get(f"/users/{SUPPORT}/messages/{message.id}").headers


def test_get_message_through_its_folder(graph, deliver):
    message = deliver(SUPPORT)
    assert graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages/{message.id}").status_code == 200
    assert error_of(graph.get(f"/users/{SUPPORT}/mailFolders/archive/messages/{message.id}"))[1] == "ErrorItemNotFound"


def test_standard_base64_spelling_of_an_id(graph, deliver):
    """`+` for `-` (a `/` for `_` could not travel in a path segment anyway)."""
    message = next(m for m in iter(lambda: deliver(SUPPORT), None) if "-" in m.id)
    standard = message.id.replace("-", "+")
    assert graph.get(f"/users/{SUPPORT}/messages/{standard}").get_json()["id"] == message.id


@pytest.mark.parametrize("bad", ["123", "not-an-id", "AAMkA" + "!" * 50])
def test_malformed_message_id(graph, bad):
    assert error_of(graph.get(f"/users/{SUPPORT}/messages/{bad}")) == (
        400,
        "ErrorInvalidIdMalformed",
        "Id is malformed.",
    )


def test_message_of_another_mailbox_is_not_found(graph, deliver):
    other = deliver("sales@contoso.onmicrosoft.com")
    assert error_of(graph.get(f"/users/{SUPPORT}/messages/{other.id}")) == (
        404,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )


# ---------------------------------------------------------------- PATCH


def test_patch_updatable_properties(graph, deliver):
    message = deliver(SUPPORT)
    before = graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json()
    response = graph.patch(
        f"/users/{SUPPORT}/messages/{message.id}",
        json={
            "isRead": True,
            "categories": ["Done"],
            "importance": "Low",
            "flag": {"flagStatus": "flagged"},
            "inferenceClassification": "other",
        },
    )
    assert response.status_code == 200
    after = response.get_json()
    assert after["isRead"] is True and after["categories"] == ["Done"] and after["importance"] == "low"
    assert after["flag"]["flagStatus"] == "flagged" and after["inferenceClassification"] == "other"
    assert after["changeKey"] != before["changeKey"]
    assert graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json()["isRead"] is True


@pytest.mark.parametrize(
    "payload",
    [
        {"subject": "changed"},
        {"body": {"contentType": "text", "content": "x"}},
        {"replyTo": []},
        {"internetMessageId": "<x@y>"},
    ],
)
def test_draft_only_properties_on_received_mail(graph, deliver, payload):
    message = deliver(SUPPORT, subject="original")
    assert error_of(graph.patch(f"/users/{SUPPORT}/messages/{message.id}", json=payload)) == (
        400,
        "ErrorInvalidPropertyUpdateSentMessage",
        "Update operation is invalid for property of a sent message.",
    )
    assert graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json()["subject"] == "original"


def test_draft_only_properties_on_a_draft(graph, deliver):
    draft = deliver(SUPPORT, folder="drafts", is_draft=True, subject="draft")
    response = graph.patch(
        f"/users/{SUPPORT}/messages/{draft.id}",
        json={"subject": "final", "body": {"contentType": "Text", "content": "Hello"}},
    )
    assert response.status_code == 200
    assert response.get_json()["subject"] == "final"
    assert response.get_json()["body"] == {"contentType": "text", "content": "Hello"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"isRead": "yes"},
            (400, "RequestBodyRead", "Cannot convert the literal 'yes' to the expected type 'Edm.Boolean'."),
        ),
        (
            {"categories": "Red"},
            (
                400,
                "RequestBodyRead",
                "An unexpected 'PrimitiveValue' node was found for property named "
                "'categories' when reading from the JSON reader. A 'StartArray' "
                "node was expected.",
            ),
        ),
        ({"importance": "urgent"}, (400, "RequestBodyRead", "Requested value 'urgent' was not found.")),
        (
            {"colour": "red"},
            (
                400,
                "RequestBodyRead",
                "The property 'colour' does not exist on type "
                "'microsoft.graph.message'. Make sure to only use property names "
                "that are defined by the type or mark the type as open type.",
            ),
        ),
        (
            {"receivedDateTime": "2020-01-01T00:00:00Z"},
            (400, "ErrorInvalidPropertyRequest", "The property 'receivedDateTime' is read-only and can't be updated."),
        ),
    ],
)
def test_bad_patches_change_nothing(graph, deliver, payload, expected):
    message = deliver(SUPPORT)
    before = graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json()
    assert error_of(graph.patch(f"/users/{SUPPORT}/messages/{message.id}", json=payload)) == expected
    assert graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json() == before


def test_patch_annotations_are_ignored(graph, deliver):
    message = deliver(SUPPORT)
    response = graph.patch(
        f"/users/{SUPPORT}/messages/{message.id}", json={"@odata.type": "#microsoft.graph.message", "IsRead": True}
    )
    assert response.status_code == 200 and response.get_json()["isRead"] is True


# ---------------------------------------------------------------- DELETE, move, copy


def test_delete_moves_to_deleted_items(graph, deliver):
    message_id = deliver(SUPPORT).id
    assert graph.delete(f"/users/{SUPPORT}/messages/{message_id}").status_code == 204
    assert error_of(graph.get(f"/users/{SUPPORT}/messages/{message_id}"))[1] == "ErrorItemNotFound"
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()
    deleted = graph.get(f"/users/{SUPPORT}/mailFolders/deleteditems").get_json()
    assert (inbox["totalItemCount"], inbox["unreadItemCount"]) == (0, 0)
    assert deleted["totalItemCount"] == 1
    again = graph.get(f"/users/{SUPPORT}/mailFolders/deleteditems/messages").get_json()["value"][0]["id"]
    assert graph.delete(f"/users/{SUPPORT}/messages/{again}").status_code == 204
    assert graph.get(f"/users/{SUPPORT}/mailFolders/deleteditems").get_json()["totalItemCount"] == 0
    assert graph.get(f"/users/{SUPPORT}/messages?$count=true").get_json()["@odata.count"] == 0


def test_delete_unknown_message(graph, deliver):
    message_id = deliver(SUPPORT).id
    graph.delete(f"/users/{SUPPORT}/messages/{message_id}")
    assert error_of(graph.delete(f"/users/{SUPPORT}/messages/{message_id}"))[:2] == (404, "ErrorItemNotFound")


def test_move_gives_a_new_id(graph, deliver):
    message_id = deliver(SUPPORT).id
    processed = graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "Processed"}).get_json()
    response = graph.post(f"/users/{SUPPORT}/messages/{message_id}/move", json={"destinationId": processed["id"]})
    assert response.status_code == 201
    moved = response.get_json()
    assert moved["id"] != message_id and moved["parentFolderId"] == processed["id"]
    assert error_of(graph.get(f"/users/{SUPPORT}/messages/{message_id}"))[1] == "ErrorItemNotFound"
    assert graph.get(f"/users/{SUPPORT}/mailFolders/{processed['id']}").get_json()["totalItemCount"] == 1
    assert graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()["totalItemCount"] == 0


def test_move_by_well_known_name_keeps_the_id_when_immutable_ids_are_asked_for(graph, deliver):
    message = deliver(SUPPORT)
    prefer = {"Prefer": 'IdType="ImmutableId"'}
    immutable = graph.get(f"/users/{SUPPORT}/messages/{message.id}", headers=prefer).get_json()["id"]
    moved = graph.post(
        f"/users/{SUPPORT}/messages/{immutable}/move", json={"DestinationId": "Archive"}, headers=prefer
    ).get_json()
    assert moved["id"] == immutable
    assert graph.get(f"/users/{SUPPORT}/messages/{immutable}", headers=prefer).status_code == 200


def test_copy_keeps_the_original(graph, deliver):
    message = deliver(SUPPORT, subject="keep me")
    response = graph.post(
        f"/users/{SUPPORT}/mailFolders/inbox/messages/{message.id}/copy", json={"destinationId": "archive"}
    )
    assert response.status_code == 201
    copy = response.get_json()
    assert copy["id"] != message.id and copy["subject"] == "keep me"
    assert graph.get(f"/users/{SUPPORT}/messages/{message.id}").status_code == 200
    assert graph.get(f"/users/{SUPPORT}/mailFolders/archive").get_json()["totalItemCount"] == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "ErrorInvalidParameter"),
        ({"destinationId": "nowhere"}, "ErrorInvalidIdMalformed"),
        ({"destinationId": 7}, "RequestBodyRead"),
    ],
)
def test_bad_move_destinations(graph, deliver, payload, code):
    message = deliver(SUPPORT)
    assert error_of(graph.post(f"/users/{SUPPORT}/messages/{message.id}/move", json=payload))[1] == code
    assert graph.get(f"/users/{SUPPORT}/messages/{message.id}").status_code == 200


def test_wrong_method(graph, deliver):
    message = deliver(SUPPORT)
    response = graph.request("PUT", f"/users/{SUPPORT}/messages/{message.id}", json={})
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "Request_BadRequest"


def test_empty_path_segments_are_skipped_as_graphs_uri_parser_does(graph, deliver):
    deliver(SUPPORT, subject="Found through a doubled slash")
    listed = graph.get(f"/users/{SUPPORT}//mailFolders//inbox/messages")
    assert listed.status_code == 200
    assert [m["subject"] for m in listed.get_json()["value"]] == ["Found through a doubled slash"]
    missing = graph.get(f"//users//{SUPPORT}//bogus")  # `/users/messages` is the user 'messages' now
    assert missing.status_code == 400
    assert missing.get_json()["error"]["message"] == "Resource not found for the segment 'bogus'."
