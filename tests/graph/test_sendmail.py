"""POST /users/{u}/sendMail: accepted as the SDKs send it, and really delivered."""

from __future__ import annotations

import base64

import pytest

from tests.helpers import ADMIN_KEY, error_of

SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
BILLING = "billing@contoso.onmicrosoft.com"


def to(*addresses: str) -> list[dict]:
    return [{"emailAddress": {"address": a}} for a in addresses]


def inbox(graph, address: str) -> list[dict]:
    return graph.get(f"/users/{address}/mailFolders/inbox/messages?$top=100").get_json()["value"]


def sent_items(graph, address: str) -> list[dict]:
    return graph.get(f"/users/{address}/mailFolders/sentitems/messages?$top=100").get_json()["value"]


def folder_counts(graph, address: str, folder: str) -> tuple[int, int]:
    body = graph.get(f"/users/{address}/mailFolders/{folder}").get_json()
    return body["totalItemCount"], body["unreadItemCount"]


def test_msgraph_sdk_shape_is_delivered(graph):
    """PascalCase top-level keys and @odata.type, exactly as msgraph-sdk serializes them."""
    response = graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "Message": {
                "@odata.type": "#microsoft.graph.message",
                "subject": "Hi",
                "body": {"@odata.type": "#microsoft.graph.itemBody", "contentType": "text", "content": "Hello"},
                "toRecipients": to(SALES),
            },
            "SaveToSentItems": True,
        },
    )
    assert response.status_code == 202 and response.get_data() == b""
    [received] = inbox(graph, SALES)
    assert received["subject"] == "Hi" and received["body"] == {"contentType": "text", "content": "Hello"}
    assert received["isRead"] is False and received["isDraft"] is False
    assert received["from"] == received["sender"] == {"emailAddress": {"name": "Customer Support", "address": SUPPORT}}
    assert received["receivedDateTime"] and received["sentDateTime"]
    [sent] = sent_items(graph, SUPPORT)
    assert sent["isRead"] is True
    assert sent["internetMessageId"] == received["internetMessageId"]
    assert sent["conversationId"] == received["conversationId"]
    assert sent["id"] != received["id"]


def test_o365_shape_with_upper_case_html(graph):
    """Lower-case `message`, `"HTML"`, empty recipient lists and extra properties, as O365 sends them."""
    response = graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "Invoice",
                "body": {"contentType": "HTML", "content": "<p>Attached</p>"},
                "importance": "normal",
                "flag": {"flagStatus": "notFlagged"},
                "isReadReceiptRequested": False,
                "isDeliveryReceiptRequested": False,
                "toRecipients": to(BILLING),
                "ccRecipients": [],
                "bccRecipients": [],
                "replyTo": [],
            }
        },
    )
    assert response.status_code == 202
    [received] = inbox(graph, BILLING)
    assert received["body"] == {"contentType": "html", "content": "<p>Attached</p>"}
    assert len(sent_items(graph, SUPPORT)) == 1


def test_save_to_sent_items_false(graph):
    graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={"message": {"subject": "x", "toRecipients": to(SALES)}, "saveToSentItems": False},
    )
    assert sent_items(graph, SUPPORT) == []
    assert len(inbox(graph, SALES)) == 1


def test_each_internal_recipient_gets_one_copy_and_bcc_stays_hidden(graph):
    graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "Team",
                "toRecipients": to(SALES, "SALES@contoso.com"),
                "ccRecipients": to(BILLING),
                "bccRecipients": to("paul.tran@contoso.onmicrosoft.com"),
            }
        },
    )
    for address in (SALES, BILLING, "paul.tran@contoso.onmicrosoft.com"):
        [copy] = inbox(graph, address)
        assert copy["bccRecipients"] == []
        assert folder_counts(graph, address, "inbox") == (1, 1)
    [sent] = sent_items(graph, SUPPORT)
    assert [r["emailAddress"]["address"] for r in sent["bccRecipients"]] == ["paul.tran@contoso.onmicrosoft.com"]


def test_sending_to_a_group_delivers_to_its_members(graph):
    graph.post(
        f"/users/{SALES}/sendMail",
        json={"message": {"subject": "To the group", "toRecipients": to("cctr_sec_group@contoso.onmicrosoft.com")}},
    )
    assert [m["subject"] for m in inbox(graph, SUPPORT)] == ["To the group"]
    assert [m["subject"] for m in inbox(graph, BILLING)] == ["To the group"]
    assert inbox(graph, SALES) == []


def test_sending_to_yourself(graph):
    graph.post(f"/users/{SUPPORT}/sendMail", json={"message": {"subject": "note", "toRecipients": to(SUPPORT)}})
    assert folder_counts(graph, SUPPORT, "inbox") == (1, 1)
    assert folder_counts(graph, SUPPORT, "sentitems") == (1, 0)


def test_external_recipients_go_to_the_outbound_log(graph, client):
    graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "Your ticket",
                "body": {"contentType": "text", "content": "Solved"},
                "toRecipients": to("customer@example.org", SALES),
                "ccRecipients": to("boss@example.org"),
            }
        },
    )
    response = client.get("/_m365/outbound", headers={"X-M365-Admin-Key": ADMIN_KEY})
    assert response.status_code == 200
    [mail] = response.get_json()["value"]
    assert mail["sender"] == SUPPORT and mail["subject"] == "Your ticket"
    assert mail["recipients"] == ["customer@example.org", "boss@example.org"]
    assert mail["body"] == {"contentType": "text", "content": "Solved"}
    assert len(inbox(graph, SALES)) == 1


def test_attachments_are_kept(graph):
    graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "with file",
                "toRecipients": to(SALES),
                "attachments": [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "a.txt",
                        "contentType": "text/plain",
                        "contentBytes": base64.b64encode(b"hello").decode(),
                    }
                ],
            }
        },
    )
    [received] = inbox(graph, SALES)
    assert received["hasAttachments"] is True


DENIED_SEND_AS = (
    403,
    "ErrorSendAsDenied",
    "The user account which was used to submit this request does not have "
    "the right to send mail on behalf of the specified sending account.",
)


def test_from_another_mailbox_is_send_as_denied(graph):
    response = graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {"subject": "spoof", "from": {"emailAddress": {"address": SALES}}, "toRecipients": to(BILLING)}
        },
    )
    assert error_of(response) == DENIED_SEND_AS
    assert inbox(graph, BILLING) == []


def test_from_own_alias_is_fine(graph):
    response = graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "me",
                "from": {"emailAddress": {"address": "support@contoso.com"}},
                "toRecipients": to(BILLING),
            }
        },
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"message": {"subject": "nobody"}}, (400, "ErrorInvalidRecipients", "At least one recipient is not valid.")),
        (
            {"message": {"toRecipients": to("not-an-address")}},
            (400, "ErrorInvalidRecipients", "At least one recipient is not valid."),
        ),
        (
            {"message": {"toRecipients": [{"emailAddress": {}}]}},
            (400, "ErrorInvalidRecipients", "At least one recipient is not valid."),
        ),
        (
            {"message": {"toRecipients": {"emailAddress": {"address": SALES}}}},
            (
                400,
                "RequestBodyRead",
                "An unexpected 'StartObject' node was found for property named 'toRecipients' when "
                "reading from the JSON reader. A 'StartArray' node was expected.",
            ),
        ),
        (
            {"message": {"subject": 0, "toRecipients": to(SALES)}},
            (400, "RequestBodyRead", "Cannot convert the literal '0' to the expected type 'Edm.String'."),
        ),
        (
            {"message": {"toRecipients": to(SALES)}, "saveToSentItems": "false"},
            (400, "RequestBodyRead", "Cannot convert the literal 'false' to the expected type 'Edm.Boolean'."),
        ),
        ({"saveToSentItems": False}, (400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")),
        (
            {"message": {"toRecipients": to(SALES), "body": {"contentType": "markdown", "content": "x"}}},
            (400, "RequestBodyRead", "Requested value 'markdown' was not found."),
        ),
        (
            {"message": {"toRecipients": to(SALES), "internetMessageHeaders": [{"name": "Ticket", "value": "1"}]}},
            (
                400,
                "InvalidInternetMessageHeader",
                "The internet message header name 'Ticket' should start with 'x-' or 'X-'.",
            ),
        ),
        (
            {"message": {"toRecipients": to(*[f"u{i}@example.org" for i in range(501)])}},
            (
                400,
                "ErrorTooManyRecipients",
                "The message has more than 500 recipients; the limit is 500 across to, cc and bcc.",
            ),
        ),
    ],
)
def test_bad_send_requests_deliver_nothing(graph, client, payload, expected):
    assert error_of(graph.post(f"/users/{SUPPORT}/sendMail", json=payload)) == expected
    assert inbox(graph, SALES) == [] and sent_items(graph, SUPPORT) == []
    assert client.get("/_m365/outbound", headers={"X-M365-Admin-Key": ADMIN_KEY}).get_json()["value"] == []


def test_malformed_bodies(graph):
    assert error_of(graph.post(f"/users/{SUPPORT}/sendMail", data="{", content_type="application/json"))[:2] == (
        400,
        "BadRequest",
    )
    assert error_of(graph.post(f"/users/{SUPPORT}/sendMail", data=b"\xff\xfe", content_type="application/json"))[
        :2
    ] == (400, "BadRequest")
    assert error_of(graph.post(f"/users/{SUPPORT}/sendMail", data="[1]", content_type="application/json"))[:2] == (
        400,
        "BadRequest",
    )
    assert error_of(graph.post(f"/users/{SUPPORT}/sendMail")) == (
        400,
        "BadRequest",
        "Empty Payload. JSON content expected.",
    )


def test_huge_body_is_refused(graph, emulator):
    content = "x" * (emulator.settings.max_body_bytes + 10)
    response = graph.post(
        f"/users/{SUPPORT}/sendMail", json={"message": {"toRecipients": to(SALES), "body": {"content": content}}}
    )
    assert error_of(response)[:2] == (413, "RequestEntityTooLarge")
    assert inbox(graph, SALES) == []
