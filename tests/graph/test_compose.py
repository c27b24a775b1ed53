"""Drafts, send, reply / replyAll / forward and their create* drafts, permanentDelete, MIME in and out."""

from __future__ import annotations

import base64
import email
import os
from email import policy

import pytest

from tests.helpers import error_of

SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
BILLING = "billing@contoso.onmicrosoft.com"
CUSTOMER = "customer@example.org"


def folder(graph, address: str, name: str) -> list[dict]:
    return graph.get(f"/users/{address}/mailFolders/{name}/messages?$top=50").get_json()["value"]


def to(*addresses: str) -> list[dict]:
    return [{"emailAddress": {"address": a}} for a in addresses]


def test_a_draft_is_created_in_drafts_and_sent_into_sent_items(graph):
    response = graph.post(
        f"/users/{SUPPORT}/messages",
        json={"subject": "Quote", "body": {"contentType": "text", "content": "Price: 10"}, "toRecipients": to(SALES)},
    )
    assert response.status_code == 201
    draft = response.get_json()
    assert draft["isDraft"] is True and draft["isRead"] is True
    assert draft["from"]["emailAddress"]["address"] == SUPPORT
    assert [m["id"] for m in folder(graph, SUPPORT, "drafts")] == [draft["id"]]
    patched = graph.patch(f"/users/{SUPPORT}/messages/{draft['id']}", json={"subject": "Quote v2"})
    assert patched.status_code == 200 and patched.get_json()["subject"] == "Quote v2"
    sent = graph.post(f"/users/{SUPPORT}/messages/{draft['id']}/send")
    assert sent.status_code == 202 and sent.get_data() == b""
    assert folder(graph, SUPPORT, "drafts") == []
    [in_sent] = folder(graph, SUPPORT, "sentitems")
    assert in_sent["isDraft"] is False and in_sent["subject"] == "Quote v2"
    [received] = folder(graph, SALES, "inbox")
    assert received["internetMessageId"] == in_sent["internetMessageId"]
    assert received["body"] == {"contentType": "text", "content": "Price: 10"}
    again = graph.post(f"/users/{SUPPORT}/messages/{in_sent['id']}/send")
    assert error_of(again)[:2] == (400, "ErrorInvalidOperation")
    assert len(folder(graph, SALES, "inbox")) == 1


def test_a_draft_in_a_named_folder_and_draft_only_properties(graph):
    created = graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "Templates"}).get_json()
    draft = graph.post(f"/users/{SUPPORT}/mailFolders/{created['id']}/messages", json={"subject": "T1"}).get_json()
    assert draft["parentFolderId"] == created["id"] and draft["isDraft"] is True


def test_a_draft_without_recipients_cannot_be_sent(graph):
    draft = graph.post(f"/users/{SUPPORT}/messages", json={"subject": "Nobody"}).get_json()
    response = graph.post(f"/users/{SUPPORT}/messages/{draft['id']}/send")
    assert error_of(response) == (400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
    assert [m["id"] for m in folder(graph, SUPPORT, "drafts")] == [draft["id"]]


def test_send_needs_mail_send_and_create_needs_mail_readwrite(graph, graph_as):
    writer = graph_as("Mail.ReadWrite")
    draft = writer.post(f"/users/{SUPPORT}/messages", json={"subject": "x", "toRecipients": to(SALES)}).get_json()
    refused = writer.post(f"/users/{SUPPORT}/messages/{draft['id']}/send")
    assert error_of(refused)[:2] == (403, "ErrorAccessDenied")
    sender = graph_as("Mail.Send")
    assert error_of(sender.post(f"/users/{SUPPORT}/messages", json={"subject": "x"}))[:2] == (403, "ErrorAccessDenied")


@pytest.fixture
def customer_mail(deliver):
    return deliver(
        SUPPORT,
        subject="Broken printer",
        body_type="text",
        body_content="It jams.",
        to=[
            {"emailAddress": {"name": "Support", "address": SUPPORT}},
            {"emailAddress": {"name": "S", "address": SALES}},
        ],
        cc=[{"emailAddress": {"name": "Billing", "address": BILLING}}],
        internet_message_id="<original@example.org>",
    )


def test_reply_goes_to_the_sender_in_the_same_thread(graph, customer_mail, emulator):
    response = graph.post(f"/users/{SUPPORT}/messages/{customer_mail.id}/reply", json={"comment": "We are on it."})
    assert response.status_code == 202
    outbound = emulator.mail.outbound()
    assert [m.recipients for m in outbound] == [[CUSTOMER]]
    [sent] = folder(graph, SUPPORT, "sentitems")
    assert sent["subject"] == "RE: Broken printer"
    assert sent["conversationId"] == customer_mail.conversation_id
    assert sent["toRecipients"] == [{"emailAddress": {"name": "A Customer", "address": CUSTOMER}}]
    assert "We are on it." in sent["body"]["content"] and "It jams." in sent["body"]["content"]
    parent = base64.b64decode(customer_mail.conversation_index)
    child = base64.b64decode(sent["conversationIndex"])
    assert child[: len(parent)] == parent and len(child) == len(parent) + 5
    mime = graph.get(f"/users/{SUPPORT}/messages/{sent['id']}/$value").get_data()
    parsed = email.message_from_bytes(mime, policy=policy.default)
    assert parsed["In-Reply-To"] == "<original@example.org>"
    assert parsed["References"] == "<original@example.org>"


def test_reply_all_reaches_everyone_but_the_mailbox_itself(graph, customer_mail):
    draft = graph.post(f"/users/{SUPPORT}/messages/{customer_mail.id}/createReplyAll", json={}).get_json()
    assert draft["isDraft"] is True and draft["subject"] == "RE: Broken printer"
    assert [r["emailAddress"]["address"] for r in draft["toRecipients"]] == [CUSTOMER, SALES]
    assert [r["emailAddress"]["address"] for r in draft["ccRecipients"]] == [BILLING]
    assert [m["id"] for m in folder(graph, SUPPORT, "drafts")] == [draft["id"]]


def test_forward_carries_the_attachments_and_needs_exactly_one_recipient_list(graph, deliver, emulator):
    from m365_mock.state.mailstore.attachments import file_attachment

    pdf = os.urandom(3000)
    original = deliver(
        SUPPORT,
        subject="RE: Invoice",
        attachments=[file_attachment("inv.pdf", pdf, "application/pdf", modified=emulator.mail.now())],
        has_attachments=True,
    )
    path = f"/users/{SUPPORT}/messages/{original.id}/forward"
    neither = graph.post(path, json={"comment": "FYI"})
    assert error_of(neither)[:2] == (400, "ErrorInvalidParameter")
    both = graph.post(path, json={"toRecipients": to(SALES), "message": {"toRecipients": to(BILLING)}})
    assert error_of(both)[:2] == (400, "ErrorInvalidParameter")
    assert graph.post(path, json={"Comment": "FYI", "ToRecipients": to(SALES)}).status_code == 202
    [received] = folder(graph, SALES, "inbox")
    assert received["subject"] == "FW: RE: Invoice" and received["hasAttachments"] is True
    [attachment] = graph.get(f"/users/{SALES}/messages/{received['id']}/attachments").get_json()["value"]
    assert base64.b64decode(attachment["contentBytes"]) == pdf


def test_comment_and_message_body_together_are_refused(graph, customer_mail):
    response = graph.post(
        f"/users/{SUPPORT}/messages/{customer_mail.id}/reply",
        json={"comment": "a", "message": {"body": {"contentType": "text", "content": "b"}}},
    )
    assert error_of(response)[:2] == (400, "ErrorInvalidParameter")
    assert folder(graph, SUPPORT, "sentitems") == []


def test_an_unknown_action_parameter_is_refused(graph, customer_mail):
    response = graph.post(f"/users/{SUPPORT}/messages/{customer_mail.id}/reply", json={"coment": "typo"})
    assert error_of(response) == (
        400,
        "RequestBodyRead",
        "The parameter 'coment' in the request payload is not a valid parameter for the operation 'reply'.",
    )


def test_permanent_delete_takes_the_message_out_of_sight(graph, customer_mail):
    response = graph.post(f"/users/{SUPPORT}/messages/{customer_mail.id}/permanentDelete")
    assert response.status_code == 204
    assert folder(graph, SUPPORT, "inbox") == [] and folder(graph, SUPPORT, "deleteditems") == []
    assert graph.get(f"/users/{SUPPORT}/messages").get_json()["value"] == []


def test_mime_round_trip_through_sendmail(graph):
    logo = os.urandom(400)
    sheet = os.urandom(2000)
    mime = email.message.EmailMessage()
    mime["From"] = SUPPORT
    mime["To"] = f"Sales Team <{SALES}>"
    mime["Subject"] = "Figures"
    mime["X-Ticket"] = "T-1"
    mime.set_content("Figures attached.")
    mime.add_alternative('<p>Figures attached. <img src="cid:logo"></p>', subtype="html")
    mime.get_body(("html",)).add_related(logo, "image", "png", cid="<logo>", filename="logo.png")
    mime.add_attachment(sheet, maintype="application", subtype="vnd.ms-excel", filename="q1.xls")
    response = graph.post(
        f"/users/{SUPPORT}/sendMail",
        data=base64.b64encode(mime.as_bytes()),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 202, response.get_json()
    [received] = folder(graph, SALES, "inbox")
    assert received["subject"] == "Figures" and received["hasAttachments"] is True
    assert received["body"]["contentType"] == "html" and "Figures attached." in received["body"]["content"]
    raw = graph.get(f"/users/{SALES}/messages/{received['id']}/$value")
    assert raw.status_code == 200 and raw.mimetype == "text/plain"
    parsed = email.message_from_bytes(raw.get_data(), policy=policy.default)
    assert parsed["Subject"] == "Figures" and parsed["Message-ID"] == received["internetMessageId"]
    assert parsed["X-Ticket"] == "T-1"
    parts = {p.get_filename(): p.get_payload(decode=True) for p in parsed.walk() if p.get_filename()}
    assert parts == {"logo.png": logo, "q1.xls": sheet}
    html = parsed.get_body(("html",))
    assert html is not None and "Figures attached." in html.get_content()


def test_bad_base64_mime_is_refused(graph):
    response = graph.post(f"/users/{SUPPORT}/sendMail", data=b"not base64 !!", headers={"Content-Type": "text/plain"})
    assert error_of(response) == (400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
    assert folder(graph, SALES, "inbox") == []


def test_a_draft_from_mime(graph):
    mime = email.message.EmailMessage()
    mime["To"] = SALES
    mime["Subject"] = "From MIME"
    mime.set_content("Plain body")
    response = graph.post(
        f"/users/{SUPPORT}/messages", data=base64.b64encode(mime.as_bytes()), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 201
    draft = response.get_json()
    assert draft["isDraft"] is True and draft["subject"] == "From MIME"
    assert draft["toRecipients"] == [{"emailAddress": {"name": SALES, "address": SALES}}]


def test_message_value_needs_mail_read_and_follows_the_policy(graph_as, customer_mail):
    basic = graph_as("Mail.ReadBasic.All")
    response = basic.get(f"/users/{SUPPORT}/messages/{customer_mail.id}/$value")
    assert error_of(response)[:2] == (403, "ErrorAccessDenied")


@pytest.mark.parametrize(
    ("method", "tail", "payload"),
    [
        ("POST", "/messages", {"subject": "x"}),
        ("POST", "/mailFolders/drafts/messages", {"subject": "x"}),
        ("POST", "/messages/{id}/send", None),
        ("POST", "/messages/{id}/reply", {"comment": "x"}),
        ("POST", "/messages/{id}/replyAll", {"comment": "x"}),
        ("POST", "/messages/{id}/forward", {"toRecipients": to(SUPPORT)}),
        ("POST", "/messages/{id}/createReply", {}),
        ("POST", "/messages/{id}/createReplyAll", {}),
        ("POST", "/messages/{id}/createForward", {}),
        ("POST", "/messages/{id}/permanentDelete", None),
        ("GET", "/messages/{id}/$value", None),
        ("GET", "/messages/{id}/attachments", None),
        ("POST", "/messages/{id}/attachments/createUploadSession", {"AttachmentItem": {"name": "a", "size": 3000000}}),
    ],
)
def test_every_compose_route_follows_the_access_policy(graph, admin, demo_app, deliver, method, tail, payload):
    message = deliver(SALES)
    admin.policy(demo_app.app_id, "cctr_sec_group@contoso.onmicrosoft.com")
    path = f"/users/{SALES}" + tail.replace("{id}", message.id)
    response = graph.request(method, path, json=payload) if payload is not None else graph.request(method, path)
    status, code, text = error_of(response)
    assert (status, code) == (403, "ErrorAccessDenied") and "[RAOP]" in text
    assert [m["subject"] for m in folder(graph, SUPPORT, "inbox")] == []
