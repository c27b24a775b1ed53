"""Attachments: list, get, add, delete, $value, $expand; byte-identical through sendMail to every copy."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from tests.helpers import BASE, error_of

SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
BILLING = "billing@contoso.onmicrosoft.com"
PDF = b"%PDF-1.4\n" + os.urandom(5000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(700)


def file_json(name: str, content: bytes, content_type: str, **extra) -> dict:
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentType": content_type,
        "contentBytes": base64.b64encode(content).decode(),
        **extra,
    }


def send_with_attachments(graph, *attachments: dict, to=(SALES,), cc=()) -> None:
    message = {
        "subject": "Invoice",
        "body": {"contentType": "html", "content": '<p>See attached <img src="cid:logo"></p>'},
        "toRecipients": [{"emailAddress": {"address": a}} for a in to],
        "ccRecipients": [{"emailAddress": {"address": a}} for a in cc],
        "attachments": list(attachments),
    }
    response = graph.post(f"/users/{SUPPORT}/sendMail", json={"message": message})
    assert response.status_code == 202, response.get_json()


def only_message(graph, address: str, folder: str = "inbox") -> dict:
    [message] = graph.get(f"/users/{address}/mailFolders/{folder}/messages").get_json()["value"]
    return message


def attachments_of(graph, address: str, message_id: str) -> list[dict]:
    response = graph.get(f"/users/{address}/messages/{message_id}/attachments")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["value"]


def test_sent_attachments_arrive_byte_identical_in_every_copy(graph):
    send_with_attachments(
        graph,
        file_json("invoice.pdf", PDF, "application/pdf"),
        file_json("logo.png", PNG, "image/png", isInline=True, contentId="logo"),
        cc=(BILLING,),
    )
    for address, folder in ((SALES, "inbox"), (BILLING, "inbox"), (SUPPORT, "sentitems")):
        message = only_message(graph, address, folder)
        assert message["hasAttachments"] is True
        found = attachments_of(graph, address, message["id"])
        assert [a["name"] for a in found] == ["invoice.pdf", "logo.png"]
        pdf, png = found
        assert pdf["@odata.type"] == "#microsoft.graph.fileAttachment"
        assert base64.b64decode(pdf["contentBytes"]) == PDF and pdf["size"] == len(PDF)
        assert pdf["isInline"] is False and pdf["contentType"] == "application/pdf"
        assert png["isInline"] is True and png["contentId"] == "logo"
        raw = graph.get(f"/users/{address}/messages/{message['id']}/attachments/{pdf['id']}/$value")
        assert raw.status_code == 200 and raw.mimetype == "application/pdf"
        assert hashlib.sha256(raw.get_data()).digest() == hashlib.sha256(PDF).digest()


def test_attachment_ids_differ_between_copies_and_name_their_message(graph):
    send_with_attachments(graph, file_json("a.txt", b"hello", "text/plain"))
    inbox_copy = only_message(graph, SALES)
    sent_copy = only_message(graph, SUPPORT, "sentitems")
    [a] = attachments_of(graph, SALES, inbox_copy["id"])
    [b] = attachments_of(graph, SUPPORT, sent_copy["id"])
    assert a["id"] != b["id"]
    other = graph.get(f"/users/{SUPPORT}/messages/{sent_copy['id']}/attachments/{a['id']}")
    assert error_of(other) == (404, "ErrorItemNotFound", "The specified object was not found in the store.")


def test_only_inline_attachments_leave_has_attachments_false(graph):
    send_with_attachments(graph, file_json("logo.png", PNG, "image/png", isInline=True, contentId="logo"))
    message = only_message(graph, SALES)
    assert message["hasAttachments"] is False
    assert len(attachments_of(graph, SALES, message["id"])) == 1


def test_get_one_attachment_with_its_context_and_select(graph):
    send_with_attachments(graph, file_json("invoice.pdf", PDF, "application/pdf"))
    message = only_message(graph, SALES)
    [listed] = attachments_of(graph, SALES, message["id"])
    one = graph.get(f"/users/{SALES}/messages/{message['id']}/attachments/{listed['id']}").get_json()
    assert one["@odata.context"] == (
        f"{BASE}/v1.0/$metadata#users('sales%40contoso.onmicrosoft.com')/messages('{message['id']}')/attachments/$entity"
    )
    assert list(one)[1:] == [
        "@odata.type",
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
        "contentId",
        "contentLocation",
        "contentBytes",
    ]
    selected = graph.get(f"/users/{SALES}/messages/{message['id']}/attachments/{listed['id']}?$select=name,size")
    assert selected.get_json() == {
        "@odata.context": one["@odata.context"],
        "@odata.type": "#microsoft.graph.fileAttachment",
        "@odata.mediaContentType": "application/pdf",
        "id": listed["id"],
        "name": "invoice.pdf",
        "size": len(PDF),
    }
    wrong = graph.get(f"/users/{SALES}/messages/{message['id']}/attachments?$select=nmae")
    assert error_of(wrong) == (
        400,
        "RequestBroker--ParseUri",
        "Could not find a property named 'nmae' on type 'microsoft.graph.attachment'.",
    )


def test_expand_attachments_on_a_message_and_on_a_listing(graph):
    send_with_attachments(graph, file_json("invoice.pdf", PDF, "application/pdf"))
    message = only_message(graph, SALES)
    one = graph.get(f"/users/{SALES}/messages/{message['id']}?$expand=attachments").get_json()
    assert [a["name"] for a in one["attachments"]] == ["invoice.pdf"]
    assert base64.b64decode(one["attachments"][0]["contentBytes"]) == PDF
    listing = graph.get(f"/users/{SALES}/messages?$top=999&$expand=attachments($select=name)").get_json()
    [expanded] = listing["value"]
    assert expanded["attachments"] == [
        {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "@odata.mediaContentType": "application/pdf",
            "id": one["attachments"][0]["id"],
            "name": "invoice.pdf",
        }
    ]
    plain = graph.get(f"/users/{SALES}/messages").get_json()["value"][0]
    assert "attachments" not in plain


def test_expand_of_something_else_is_refused_not_ignored(graph):
    response = graph.get(f"/users/{SALES}/messages?$expand=extensionz")
    assert error_of(response) == (
        400,
        "RequestBroker--ParseUri",
        "Could not find a property named 'extensionz' on type 'microsoft.graph.message'.",
    )


def test_unknown_query_parameters_are_refused(graph):
    response = graph.get(f"/users/{SALES}/messages?$fitler=isRead eq false")
    status, code, message = error_of(response)
    assert (status, code) == (400, "BadRequest")
    assert message.startswith("The query parameter '$fitler' is not supported here; this request takes $select")


def test_add_list_and_delete_an_attachment_on_a_draft(graph):
    draft = graph.post(f"/users/{SUPPORT}/messages", json={"subject": "Quote"}).get_json()
    assert draft["hasAttachments"] is False
    added = graph.post(
        f"/users/{SUPPORT}/messages/{draft['id']}/attachments", json=file_json("quote.pdf", PDF, "application/pdf")
    )
    assert added.status_code == 201
    attachment = added.get_json()
    assert attachment["name"] == "quote.pdf" and attachment["size"] == len(PDF)
    after = graph.get(f"/users/{SUPPORT}/messages/{draft['id']}").get_json()
    assert after["hasAttachments"] is True and after["changeKey"] != draft["changeKey"]
    gone = graph.delete(f"/users/{SUPPORT}/messages/{draft['id']}/attachments/{attachment['id']}")
    assert gone.status_code == 204
    assert attachments_of(graph, SUPPORT, draft["id"]) == []
    assert graph.get(f"/users/{SUPPORT}/messages/{draft['id']}").get_json()["hasAttachments"] is False
    again = graph.delete(f"/users/{SUPPORT}/messages/{draft['id']}/attachments/{attachment['id']}")
    assert error_of(again)[:2] == (404, "ErrorItemNotFound")


def test_a_direct_add_of_3_mb_or_more_is_refused(graph):
    draft = graph.post(f"/users/{SUPPORT}/messages", json={"subject": "Big"}).get_json()
    big = file_json("big.bin", b"\0" * (3 * 2**20), "application/octet-stream")
    response = graph.post(f"/users/{SUPPORT}/messages/{draft['id']}/attachments", json=big)
    status, code, _ = error_of(response)
    assert (status, code) == (413, "RequestEntityTooLarge")
    assert attachments_of(graph, SUPPORT, draft["id"]) == []


@pytest.mark.parametrize(
    ("attachment", "message"),
    [
        (
            {"name": "x.txt", "contentBytes": "aGk="},
            "The property 'contentBytes' does not exist on type 'microsoft.graph.attachment'. Make sure to only use "
            "property names that are defined by the type or mark the type as open type.",
        ),
        (
            {"@odata.type": "#Microsoft.OutlookServices.FileAttachment", "name": "x.txt", "contentBytes": "aGk="},
            "A type named 'Microsoft.OutlookServices.FileAttachment' could not be resolved by the model. When a model "
            "is available, each type name must resolve to a valid type.",
        ),
        (
            {"@odata.type": "#microsoft.graph.fileAttachment", "name": "x.txt", "contentBytes": "not base64!"},
            "Cannot convert the literal 'not base64!' to the expected type 'Edm.Binary'.",
        ),
        (
            {"@odata.type": "#microsoft.graph.fileAttachment", "name": "x.txt", "contentByte": "aGk="},
            "The property 'contentByte' does not exist on type 'microsoft.graph.fileAttachment'. Make sure to only "
            "use property names that are defined by the type or mark the type as open type.",
        ),
    ],
)
def test_attachments_graph_would_not_read_are_refused_and_nothing_is_sent(graph, attachment, message):
    response = graph.post(
        f"/users/{SUPPORT}/sendMail",
        json={
            "message": {
                "subject": "x",
                "toRecipients": [{"emailAddress": {"address": SALES}}],
                "attachments": [attachment],
            }
        },
    )
    assert error_of(response) == (400, "RequestBodyRead", message)
    assert graph.get(f"/users/{SALES}/mailFolders/inbox/messages").get_json()["value"] == []


def test_item_attachment_with_its_expanded_item_and_mime_value(graph):
    draft = graph.post(f"/users/{SUPPORT}/messages", json={"subject": "Forwarding the complaint"}).get_json()
    item = {
        "@odata.type": "#microsoft.graph.itemAttachment",
        "name": "Complaint",
        "item": {
            "@odata.type": "microsoft.graph.message",
            "subject": "It broke",
            "body": {"contentType": "text", "content": "The device broke."},
            "toRecipients": [{"emailAddress": {"address": SUPPORT}}],
        },
    }
    added = graph.post(f"/users/{SUPPORT}/messages/{draft['id']}/attachments", json=item).get_json()
    assert added["@odata.type"] == "#microsoft.graph.itemAttachment" and "item" not in added
    base = f"/users/{SUPPORT}/messages/{draft['id']}/attachments/{added['id']}"
    expanded = graph.get(f"{base}?$expand=microsoft.graph.itemattachment/item").get_json()
    assert expanded["item"]["@odata.type"] == "#microsoft.graph.message"
    assert expanded["item"]["subject"] == "It broke"
    mime = graph.get(f"{base}/$value")
    assert mime.status_code == 200 and b"Subject: It broke" in mime.get_data()


def test_reference_attachment_value_is_405(graph):
    draft = graph.post(f"/users/{SUPPORT}/messages", json={"subject": "Link"}).get_json()
    added = graph.post(
        f"/users/{SUPPORT}/messages/{draft['id']}/attachments",
        json={"@odata.type": "#microsoft.graph.referenceAttachment", "name": "Spec"},
    ).get_json()
    response = graph.get(f"/users/{SUPPORT}/messages/{draft['id']}/attachments/{added['id']}/$value")
    assert error_of(response)[:2] == (405, "Request_BadRequest")


def test_attachments_need_mail_read(graph, graph_as, deliver):
    message = deliver(SUPPORT)
    basic = graph_as("Mail.ReadBasic.All")
    response = basic.get(f"/users/{SUPPORT}/messages/{message.id}/attachments")
    assert error_of(response) == (403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    expanded = basic.get(f"/users/{SUPPORT}/messages/{message.id}?$expand=attachments")
    assert error_of(expanded)[:2] == (403, "ErrorAccessDenied")


def test_attachment_routes_follow_the_access_policy(graph, admin, demo_app, deliver):
    message = deliver(SALES)
    admin.policy(demo_app.app_id, "cctr_sec_group@contoso.onmicrosoft.com")
    for path in (
        f"/users/{SALES}/messages/{message.id}/attachments",
        f"/users/{SALES}/messages/{message.id}/$value",
    ):
        status, code, text = error_of(graph.get(path))
        assert (status, code) == (403, "ErrorAccessDenied") and "[RAOP]" in text


def test_malformed_attachment_id(graph, deliver):
    message = deliver(SUPPORT)
    response = graph.get(f"/users/{SUPPORT}/messages/{message.id}/attachments/not-an-id")
    assert error_of(response) == (400, "ErrorInvalidIdMalformed", "Id is malformed.")


@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("GET", "/messages/{id}/attachments/createUploadSession"),
        ("DELETE", "/messages/{id}/attachments/createUploadSession"),
        ("PATCH", "/mailFolders/inbox/messages/delta"),
        ("DELETE", "/messages/delta"),
        ("PATCH", "/messages/$count"),
    ],
)
def test_named_segments_refuse_other_methods_not_as_malformed_ids(graph, deliver, method, tail):
    message = deliver(SUPPORT)
    response = graph.request(method, f"/users/{SUPPORT}" + tail.replace("{id}", message.id))
    assert error_of(response) == (
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
