"""MailClient against a real emulator: folders, paging, read state, moves, sending, and Graph's typed errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from m365_mock.client import ClientSettings, GraphError, MailClient
from tests.client.conftest import BILLING, RAOP, SALES, SUPPORT, Control, RecordingSession

pytestmark = pytest.mark.slow


def inbox_total(mail: MailClient, mailbox: str = SUPPORT) -> int:
    return mail.folder(mailbox, "inbox")["totalItemCount"]


# ---------------------------------------------------------------- folders


def test_folders_lists_the_root_children_with_counts(mail: MailClient) -> None:
    folders = {f["displayName"]: f for f in mail.folders(SUPPORT)}
    assert {"Inbox", "Sent Items", "Deleted Items", "Drafts", "Junk Email"} <= set(folders)
    assert folders["Inbox"]["totalItemCount"] == 13
    assert 0 <= folders["Inbox"]["unreadItemCount"] <= 13
    assert len({f["parentFolderId"] for f in folders.values()}) == 1  # all directly under the root


def test_folders_follow_pages(mail: MailClient) -> None:
    for n in range(12):
        mail.ensure_folder(SUPPORT, f"Queue {n:02d}")
    names = [f["displayName"] for f in mail.folders(SUPPORT)]
    assert len(names) == len(set(names)) >= 12 + 9
    assert {f"Queue {n:02d}" for n in range(12)} <= set(names)


def test_folder_by_well_known_name_display_name_and_id(mail: MailClient) -> None:
    inbox = mail.folder(SUPPORT, "inbox")
    assert inbox is not None and inbox["displayName"] == "Inbox"
    assert mail.folder(SUPPORT, "INBOX")["id"] == inbox["id"]
    sent = mail.folder(SUPPORT, "sent items")  # display name, any case
    assert sent is not None and sent["id"] == mail.folder(SUPPORT, "sentitems")["id"]
    assert mail.folder(SUPPORT, inbox["id"])["displayName"] == "Inbox"
    assert mail.folder(SUPPORT, "No Such Folder") is None
    assert mail.folder(SUPPORT, "AAEuALgK1UAAYFI0lY2F3kkZ3FpXXXXXXXXXXXXXXXXXXXXXXXXXXXXX") is None


def test_folder_by_id_of_a_nested_folder(mail: MailClient) -> None:
    url = mail.url(SUPPORT, "mailFolders", "inbox", "childFolders")
    child = mail.request("POST", url, json={"displayName": "Escalations"}).json()
    found = mail.folder(SUPPORT, child["id"])
    assert found is not None and found["displayName"] == "Escalations"
    assert mail.folder(SUPPORT, "Escalations") is None  # display names are looked up under the root only


def test_ensure_folder_creates_once(mail: MailClient) -> None:
    before = len(mail.folders(SUPPORT))
    created = mail.ensure_folder(SUPPORT, "Processed")
    again = mail.ensure_folder(SUPPORT, "processed")
    assert created["displayName"] == "Processed" and again["id"] == created["id"]
    assert len(mail.folders(SUPPORT)) == before + 1
    assert mail.ensure_folder(SUPPORT, "Inbox")["id"] == mail.folder(SUPPORT, "inbox")["id"]


# ---------------------------------------------------------------- listing


def test_messages_page_through_every_message_once(mail: MailClient, control: Control) -> None:
    control.add_mail(SUPPORT, count=30)
    total = inbox_total(mail)
    assert total == 43
    seen = [m["id"] for m in mail.messages(SUPPORT, folder="inbox", top=10, select=["id", "subject"])]
    assert len(seen) == len(set(seen)) == total
    pages = [r for r in control.log(mailbox=SUPPORT) if "/messages" in r.get("path", r.get("url", ""))]
    assert len(pages) == 5  # 10 + 10 + 10 + 10 + 3, each nextLink followed once


def test_messages_limit_stops_early(mail: MailClient, control: Control) -> None:
    control.add_mail(SUPPORT, count=30)
    got = list(mail.messages(SUPPORT, top=10, limit=12))
    assert len(got) == 12 and len({m["id"] for m in got}) == 12
    assert list(mail.messages(SUPPORT, limit=0)) == []


def test_whole_mailbox_listing_covers_every_folder(mail: MailClient) -> None:
    first = next(mail.messages(SUPPORT, folder="inbox"))
    mail.move(SUPPORT, first["id"], "Processed")
    assert len(list(mail.messages(SUPPORT))) == 13
    assert len(list(mail.messages(SUPPORT, folder="inbox"))) == 12
    assert len(list(mail.messages(SUPPORT, folder="Processed"))) == 1


def test_unread_filter_and_select(mail: MailClient) -> None:
    inbox = mail.folder(SUPPORT, "inbox")
    unread = list(mail.messages(SUPPORT, folder="inbox", unread=True, select="id,isRead,subject"))
    read = list(mail.messages(SUPPORT, folder="inbox", unread=False, select=["id", "isRead"]))
    assert len(unread) == inbox["unreadItemCount"] > 0
    assert len(unread) + len(read) == inbox["totalItemCount"]
    assert all(m["isRead"] is False for m in unread) and all(m["isRead"] is True for m in read)
    assert set(unread[0]) <= {"@odata.etag", "id", "isRead", "subject"}


def test_filter_combined_with_unread(mail: MailClient, control: Control) -> None:
    control.add_mail(SUPPORT, subject="Invoice 77", **{"from": {"emailAddress": {"address": "ap@vendor.example"}}})
    found = list(mail.messages(SUPPORT, filter="from/emailAddress/address eq 'ap@vendor.example'", unread=True))
    assert [m["subject"] for m in found] == ["Invoice 77"]
    assert list(mail.messages(SUPPORT, filter="from/emailAddress/address eq 'ap@vendor.example'", unread=False)) == []


def test_orderby(mail: MailClient) -> None:
    got = list(mail.messages(SUPPORT, orderby="receivedDateTime asc", select="receivedDateTime"))
    times = [m["receivedDateTime"] for m in got]
    assert len(times) == 13 and times == sorted(times)


def test_messages_in_a_missing_folder(mail: MailClient) -> None:
    with pytest.raises(GraphError) as caught:
        list(mail.messages(SUPPORT, folder="Nowhere"))
    assert caught.value.status == 404 and caught.value.code == "ErrorItemNotFound"


# ---------------------------------------------------------------- one message


def test_message_mark_read_and_unread(mail: MailClient) -> None:
    target = next(mail.messages(SUPPORT, folder="inbox", unread=True))
    unread_before = mail.folder(SUPPORT, "inbox")["unreadItemCount"]
    updated = mail.mark_read(SUPPORT, target["id"])
    assert updated["id"] == target["id"] and updated["isRead"] is True
    assert mail.message(SUPPORT, target["id"])["isRead"] is True
    assert mail.folder(SUPPORT, "inbox")["unreadItemCount"] == unread_before - 1
    assert mail.mark_read(SUPPORT, target["id"], read=False)["isRead"] is False
    assert mail.folder(SUPPORT, "inbox")["unreadItemCount"] == unread_before


def test_message_by_id(mail: MailClient) -> None:
    listed = next(mail.messages(SUPPORT, folder="inbox"))
    got = mail.message(SUPPORT, listed["id"])
    assert got["id"] == listed["id"] and got["subject"] == listed["subject"] and "body" in got


def test_move_creates_processed_and_gives_a_new_id(mail: MailClient) -> None:
    assert mail.folder(SUPPORT, "Processed") is None
    target = next(mail.messages(SUPPORT, folder="inbox"))
    moved = mail.move(SUPPORT, target["id"], "Processed")
    processed = mail.folder(SUPPORT, "Processed")
    assert processed is not None and processed["totalItemCount"] == 1
    assert moved["id"] != target["id"] and moved["parentFolderId"] == processed["id"]
    assert moved["subject"] == target["subject"]
    assert inbox_total(mail) == 12
    with pytest.raises(GraphError) as caught:
        mail.message(SUPPORT, target["id"])
    assert caught.value.status == 404 and caught.value.code == "ErrorItemNotFound"
    second = next(mail.messages(SUPPORT, folder="inbox"))
    assert mail.move(SUPPORT, second["id"], "processed")["parentFolderId"] == processed["id"]  # no second folder
    assert mail.move(SUPPORT, moved["id"], processed["id"]) and mail.folder(SUPPORT, "Processed")["totalItemCount"] == 2
    assert [f["displayName"] for f in mail.folders(SUPPORT)].count("Processed") == 1


def test_move_to_well_known_folder_and_without_create(mail: MailClient) -> None:
    target = next(mail.messages(SUPPORT, folder="inbox"))
    moved = mail.move(SUPPORT, target["id"], "deleteditems")
    assert moved["parentFolderId"] == mail.folder(SUPPORT, "deleteditems")["id"]
    with pytest.raises(GraphError) as caught:
        mail.move(SUPPORT, moved["id"], "Archive 2020", create=False)
    assert caught.value.status == 404 and mail.folder(SUPPORT, "Archive 2020") is None


# ---------------------------------------------------------------- sending


def test_send_with_attachments_arrives_in_billing(mail: MailClient, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_text("ticket,amount\n1,10\n")
    mail.send(
        SUPPORT,
        to=BILLING,
        cc=["Sales Team <" + SALES + ">"],
        subject="Refund request 4711",
        body="<p>Please refund.</p>",
        html=True,
        attachments=[report, ("note.txt", b"hello", "text/plain")],
    )
    [arrived] = mail.messages(BILLING, folder="inbox", filter="subject eq 'Refund request 4711'")
    assert arrived["hasAttachments"] is True
    assert arrived["from"]["emailAddress"]["address"] == SUPPORT
    assert arrived["toRecipients"][0]["emailAddress"]["address"] == BILLING
    assert arrived["ccRecipients"][0]["emailAddress"] == {"name": "Sales Team", "address": SALES}
    assert arrived["body"]["contentType"] == "html" and "Please refund." in arrived["body"]["content"]
    sent = list(mail.messages(SUPPORT, folder="sentitems"))
    assert [m["subject"] for m in sent] == ["Refund request 4711"]


def test_send_without_saving_and_to_outside(mail: MailClient, control: Control) -> None:
    mail.send(SUPPORT, to=["customer@example.org"], subject="Your ticket", body="Done.", save_to_sent=False)
    assert list(mail.messages(SUPPORT, folder="sentitems")) == []
    outbound = control("GET", "/outbound", expect=200)["value"]
    assert [m["subject"] for m in outbound] == ["Your ticket"]
    assert outbound[0]["body"] == {"contentType": "text", "content": "Done."}


def test_send_refuses_a_bad_address(mail: MailClient) -> None:
    with pytest.raises(ValueError, match="not an e-mail address"):
        mail.send(SUPPORT, to="not an address", subject="x", body="y")


# ---------------------------------------------------------------- errors


def test_access_policy_denial_is_typed(settings: ClientSettings) -> None:
    session = RecordingSession()
    with MailClient(settings, session=session) as mail, pytest.raises(GraphError) as caught:
        list(mail.messages(SALES))
    error = caught.value
    assert (error.status, error.code, error.message) == (403, "ErrorAccessDenied", RAOP)
    assert uuid.UUID(error.request_id)
    sent = session.sent[-1]
    assert error.client_request_id == sent.headers["client-request-id"]
    assert uuid.UUID(sent.headers["client-request-id"]).version == 4
    assert "/users/sales@contoso.onmicrosoft.com/messages" in sent.url  # the UPN as given, @ not encoded


def test_every_request_has_its_own_client_request_id(settings: ClientSettings) -> None:
    session = RecordingSession()
    with MailClient(settings, session=session) as mail:
        mail.folders(SUPPORT)
        mail.folder(SUPPORT, "inbox")
    ids = [r.headers["client-request-id"] for r in session.sent]
    assert len(ids) == 3 and len(set(ids)) == 3  # token, folders, folder
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_unknown_and_malformed_message_ids(mail: MailClient) -> None:
    target = next(mail.messages(SUPPORT, folder="inbox"))
    mail.move(SUPPORT, target["id"], "deleteditems")
    with pytest.raises(GraphError) as caught:
        mail.message(SUPPORT, target["id"])
    assert (caught.value.status, caught.value.code) == (404, "ErrorItemNotFound")
    assert caught.value.message.startswith("The specified object was not found in the store.")
    with pytest.raises(GraphError) as caught:
        mail.mark_read(SUPPORT, "not-an-id")
    assert (caught.value.status, caught.value.code) == (400, "ErrorInvalidIdMalformed")


def test_unknown_mailbox(mail: MailClient) -> None:
    with pytest.raises(GraphError) as caught:
        mail.folders("nobody@contoso.onmicrosoft.com")
    assert (caught.value.status, caught.value.code) == (404, "ErrorInvalidUser")
    assert "nobody@contoso.onmicrosoft.com" in caught.value.message


def test_missing_permission_is_access_denied(settings: ClientSettings, control: Control) -> None:
    control("PATCH", control.app_path(), {"permissions": ["Mail.Read"]}, expect=200)
    with MailClient(settings) as mail:
        assert len(list(mail.messages(SUPPORT))) == 13  # reading still works
        with pytest.raises(GraphError) as caught:
            mail.send(SUPPORT, to=BILLING, subject="x", body="y")
        assert (caught.value.status, caught.value.code) == (403, "ErrorAccessDenied")
        assert mail.tokens.claims()["roles"] == ["Mail.Read"]


# ---------------------------------------------------------------- attachments, replies, MIME


def test_attachments_download_byte_identical(mail: MailClient) -> None:
    pdf = bytes(range(256)) * 64
    mail.send(SUPPORT, to=BILLING, subject="Statement 12", body="Attached.", attachments=[("s.pdf", pdf)])
    [arrived] = mail.messages(BILLING, folder="inbox", filter="subject eq 'Statement 12'")
    [attachment] = mail.attachments(BILLING, arrived["id"])
    assert attachment["name"] == "s.pdf" and attachment["contentType"] == "application/pdf"
    assert mail.download_attachment(BILLING, arrived["id"], attachment["id"]) == pdf


@pytest.mark.slow
def test_reply_in_thread_with_a_large_attachment_through_an_upload_session(mail: MailClient, control: Control) -> None:
    sender = {"emailAddress": {"address": BILLING}}
    [first] = control.add_mail(SUPPORT, subject="Where is my order?", **{"from": sender})
    big = bytes(range(256)) * (10 * 2**20 // 256)
    draft = mail.reply(SUPPORT, first, "It ships today; the label is attached.", attachments=[("label.pdf", big)])
    assert draft["subject"] == "RE: Where is my order?"
    [answer] = mail.messages(BILLING, folder="inbox", filter="subject eq 'RE: Where is my order?'")
    original = mail.message(SUPPORT, first)
    assert answer["conversationId"] == original["conversationId"]
    [attachment] = mail.attachments(BILLING, answer["id"])
    assert attachment["size"] == len(big)
    assert mail.download_attachment(BILLING, answer["id"], attachment["id"]) == big
    uploads = [r for r in control.log() if "AttachmentSessions" in r["path"]]
    assert len(uploads) == 3 and all(r["status"] in (200, 201) for r in uploads)


def test_mime_export(mail: MailClient) -> None:
    mail.send(SUPPORT, to=BILLING, subject="MIME please", body="Raw.")
    [arrived] = mail.messages(BILLING, folder="inbox", filter="subject eq 'MIME please'")
    raw = mail.mime(BILLING, arrived["id"])
    assert b"Subject: MIME please" in raw and arrived["internetMessageId"].encode() in raw


# ---------------------------------------------------------------- delta sync


def test_sync_reports_each_change_once_across_rounds(mail: MailClient, control: Control) -> None:
    folder = mail.ensure_folder(BILLING, "Queue")
    first, _ = mail.sync(BILLING, folder["id"])
    assert first == []
    _, link = mail.sync(BILLING, folder["id"])
    [a, b] = [mail.move(BILLING, i, folder["id"]) for i in control.add_mail(BILLING, count=2)]
    changes, link = mail.sync(BILLING, folder["id"], link)
    assert sorted(m["id"] for m in changes) == sorted([a["id"], b["id"]])
    mail.mark_read(BILLING, a["id"])
    mail.move(BILLING, b["id"], "deleteditems")
    changes, link = mail.sync(BILLING, folder["id"], link)
    assert [(m["id"], "@removed" in m) for m in sorted(changes, key=lambda m: "@removed" in m)] == [
        (a["id"], False),
        (b["id"], True),
    ]
    assert mail.sync(BILLING, folder["id"], link)[0] == []
