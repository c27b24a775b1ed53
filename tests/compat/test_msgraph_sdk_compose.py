"""msgraph-sdk writes mail: a draft, an attachment, send, a reply (PascalCase `Comment`), MIME content.

Large attachments: msgraph-sdk's `LargeFileUploadTask` has an open defect for Outlook attachments
(msgraph-sdk-python-core #691), so upload sessions are driven with raw chunked PUTs in tests/graph and
tests/client, as Graph documents them; this module keeps to what the SDK itself does correctly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from msgraph import GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.messages.item.reply.reply_post_request_body import ReplyPostRequestBody

from m365_mock.tools.process import RunningEmulator
from tests.compat.conftest import empty_contoso
from tests.compat.test_msgraph_sdk import wire, with_client  # noqa: F401 - the wire fixture

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]

DOMAIN = "contoso.onmicrosoft.com"
SUPPORT = f"support@{DOMAIN}"
SALES = f"sales@{DOMAIN}"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 20


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with empty_contoso(tmp_path_factory.mktemp("msgraph-sdk-compose")) as running:
        yield running


@pytest.fixture
def graph(emu: RunningEmulator, trust: Callable[[RunningEmulator], Path]) -> RunningEmulator:
    trust(emu)
    return emu


def test_draft_attachment_send_and_reply(graph: RunningEmulator, wire: list[httpx.Request]) -> None:  # noqa: F811
    async def work(client: GraphServiceClient) -> tuple[Message, bytes, Message]:
        support, sales = client.users.by_user_id(SUPPORT), client.users.by_user_id(SALES)
        draft = await support.messages.post(
            Message(
                subject="sdk-compose quote",
                body=ItemBody(content_type=BodyType.Text, content="Our quote."),
                to_recipients=[Recipient(email_address=EmailAddress(address=SALES))],
            )
        )
        assert draft is not None and draft.id is not None and draft.is_draft is True
        added = await support.messages.by_message_id(draft.id).attachments.post(
            FileAttachment(
                odata_type="#microsoft.graph.fileAttachment",
                name="quote.pdf",
                content_type="application/pdf",
                content_bytes=PDF,
            )
        )
        assert added is not None and added.id is not None
        await support.messages.by_message_id(draft.id).send.post()
        inbox = await sales.mail_folders.by_mail_folder_id("inbox").messages.get()
        assert inbox is not None and inbox.value
        [received] = inbox.value
        assert received.id is not None
        attachments = await sales.messages.by_message_id(received.id).attachments.get()
        assert attachments is not None and attachments.value
        [attachment] = attachments.value
        assert isinstance(attachment, FileAttachment) and attachment.content_bytes is not None
        await sales.messages.by_message_id(received.id).reply.post(ReplyPostRequestBody(comment="Accepted."))
        answers = await support.mail_folders.by_mail_folder_id("inbox").messages.get()
        assert answers is not None and answers.value
        return received, attachment.content_bytes, answers.value[0]

    received, content, answer = with_client(graph, work)
    assert received.subject == "sdk-compose quote" and received.has_attachments is True
    assert content == PDF
    assert answer.subject == "RE: sdk-compose quote"
    assert answer.conversation_id == received.conversation_id
    assert answer.body is not None and "Accepted." in (answer.body.content or "")
    [reply_post] = [r for r in wire if r.url.path.endswith("/reply")]
    assert json.loads(reply_post.content) == {"Comment": "Accepted."}
    [attachment_post] = [r for r in wire if r.method == "POST" and r.url.path.endswith("/attachments")]
    sent = json.loads(attachment_post.content)
    assert sent["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert base64.b64decode(sent["contentBytes"]) == PDF


def test_message_mime_content(graph: RunningEmulator) -> None:
    async def work(client: GraphServiceClient) -> bytes:
        support = client.users.by_user_id(SUPPORT)
        draft = await support.messages.post(Message(subject="sdk-compose mime"))
        assert draft is not None and draft.id is not None
        content = await support.messages.by_message_id(draft.id).content.get()
        assert content is not None
        return content

    assert b"Subject: sdk-compose mime" in with_client(graph, work)
