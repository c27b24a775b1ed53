"""msgraph-sdk (GraphServiceClient, async, kiota over httpx) against a served emulator, app-only on shared mailboxes.

The client is pointed at the emulator the documented way: an `azure.identity.aio.ClientSecretCredential` with
`authority=<base_url>` (and `connection_verify`, see `with_client`), `request_adapter.base_url = <base_url>/v1.0`,
and `SSL_CERT_FILE` (httpx reads it when the client is built) set by `trust` before anything is constructed.

This module starts its own emulator on a tenant file like the demo tenant but without its sample mail, so the
mailboxes hold only what these tests put there (through the control API or sendMail). Each test keeps to
its own mailbox or folder: listing on billing@, the inbox of support@, a new folder of support@ for paging, and
sendMail from support@ to sales@.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder as FolderMessagesRequestBuilder,
)
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

from m365_mock.tools.process import RunningEmulator
from tests.compat.conftest import empty_contoso, seed

pytestmark = [
    pytest.mark.compat,
    # msgraph-sdk's generated request builders warn about their own deprecated configuration classes on import.
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DOMAIN = "contoso.onmicrosoft.com"
SUPPORT = f"support@{DOMAIN}"
SALES = f"sales@{DOMAIN}"
BILLING = f"billing@{DOMAIN}"
EXTERNAL = "customer@fabrikam.example"

T = TypeVar("T")


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """This module's own emulator with empty mailboxes that no other test writes to."""
    with empty_contoso(tmp_path_factory.mktemp("msgraph-sdk-emulator")) as running:
        yield running


@pytest.fixture
def graph(emu: RunningEmulator, trust: Callable[[RunningEmulator], Path]) -> RunningEmulator:
    """The emulator, with SSL_CERT_FILE (httpx, aiohttp) and REQUESTS_CA_BUNDLE trusting its CA."""
    trust(emu)
    return emu


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Every request the SDK's httpx client sends (a pass-through spy), to check what went on the wire."""
    seen: list[httpx.Request] = []
    real = httpx.AsyncClient.send

    async def spy(self: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        seen.append(request)
        return await real(self, request, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", spy)
    return seen


def with_client(running: RunningEmulator, work: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
    """Build credential and client inside a fresh event loop, run `work(client)`, then close both."""

    async def main() -> T:
        credential = ClientSecretCredential(
            running.tenant["id"],
            running.app["app_id"],
            running.app["client_secret"],
            authority=running.base_url,
            disable_instance_discovery=True,
            # aiohttp builds its verifying SSL context once, when first imported, so SSL_CERT_FILE set later is
            # ignored if another test imported aiohttp first; connection_verify is per request.
            connection_verify=running.ca_file,
        )
        client = GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
        client.request_adapter.base_url = f"{running.base_url}/v1.0"
        try:
            return await work(client)
        finally:
            await credential.close()
            http_client: httpx.AsyncClient = client.request_adapter._http_client
            await http_client.aclose()
            # msgraph-core's AsyncGraphTransport has no aclose(), so closing the client leaves the wrapped
            # connection pool open (and the emulator waits on that idle connection when it is stopped).
            inner = getattr(http_client._transport, "transport", None)
            if isinstance(inner, httpx.AsyncBaseTransport):
                await inner.aclose()

    return asyncio.run(main())


def incoming(subject: str, received: str, *, is_read: bool, sender: str = EXTERNAL) -> dict[str, Any]:
    return {
        "subject": subject,
        "from": {"emailAddress": {"address": sender, "name": "Fabrikam Customer"}},
        "body": {"contentType": "text", "content": f"Body of {subject}"},
        "receivedDateTime": received,
        "isRead": is_read,
        "folder": "inbox",
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------- 1. query parameters


LISTED = [  # subject, receivedDateTime, isRead
    ("sdk-list before 2020", "2019-12-31T23:00:00Z", False),
    ("sdk-list A", "2024-01-01T09:00:00Z", False),
    ("sdk-list B", "2024-01-02T09:00:00Z", True),
    ("sdk-list C", "2024-01-03T09:00:00Z", False),
    ("sdk-list D", "2024-01-04T09:00:00Z", False),
    ("sdk-list E", "2024-01-05T09:00:00Z", True),
    ("sdk-list F", "2024-01-06T09:00:00Z", False),
]


def test_list_shared_mailbox_with_top_select_filter_orderby(graph: RunningEmulator, wire: list[httpx.Request]) -> None:
    for subject, received, is_read in LISTED:
        seed(
            graph,
            BILLING,
            incoming(subject, received, is_read=is_read, sender=f"{subject[-1].lower()}@fabrikam.example"),
        )
    received_at = {subject: at(received) for subject, received, _ in LISTED}

    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        top=3,
        select=["subject", "from", "receivedDateTime", "isRead"],
        filter="receivedDateTime ge 2020-01-01T00:00:00Z and isRead eq false",
        orderby=["receivedDateTime desc"],
    )

    async def work(client: GraphServiceClient) -> tuple[list[Message], list[Message], str | None]:
        messages = client.users.by_user_id(BILLING).messages
        first = await messages.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert first is not None and first.value is not None and first.odata_next_link
        rest = await messages.with_url(first.odata_next_link).get()
        assert rest is not None and rest.value is not None
        return first.value, rest.value, rest.odata_next_link

    first, rest, last_link = with_client(graph, work)

    # Unread and from 2020 on, newest first, three to a page: F D C, then A; "before 2020" and the read B, E never.
    assert [m.subject for m in first] == ["sdk-list F", "sdk-list D", "sdk-list C"]
    assert [m.subject for m in rest] == ["sdk-list A"]
    assert last_link is None
    for message in first + rest:
        assert message.id
        assert message.is_read is False
        assert message.received_date_time == received_at[message.subject]
        assert message.from_ is not None and message.from_.email_address is not None
        assert message.from_.email_address.address == f"{message.subject[-1].lower()}@fabrikam.example"
        # $select: only the chosen properties (and id) come back.
        assert message.body is None
        assert message.to_recipients is None
        assert message.sender is None

    assert [r.method for r in wire] == ["GET", "GET"]
    sent = wire[0].url
    assert sent.path == f"/v1.0/users/{BILLING}/messages"
    assert sent.params["$top"] == "3"
    assert sent.params["$filter"] == "receivedDateTime ge 2020-01-01T00:00:00Z and isRead eq false"
    assert sent.params["$orderby"] == "receivedDateTime desc"
    assert sent.params["$select"] == "subject,from,receivedDateTime,isRead"


def test_orderby_not_leading_the_filter_is_inefficient(graph: RunningEmulator) -> None:
    """Real Graph refuses `$orderby=receivedDateTime` unless receivedDateTime leads the `$filter`."""
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter="isRead eq false", orderby=["receivedDateTime desc"], top=5
    )

    async def work(client: GraphServiceClient) -> ODataError:
        with pytest.raises(ODataError) as caught:
            await client.users.by_user_id(BILLING).messages.get(
                request_configuration=RequestConfiguration(query_parameters=query)
            )
        return caught.value

    error = with_client(graph, work)
    assert error.response_status_code == 400
    assert error.error is not None
    assert error.error.code == "InefficientFilter"
    assert error.error.message


# ---------------------------------------------------------------- 2. a folder and its messages


def test_folder_messages_and_counts(graph: RunningEmulator) -> None:
    seeded = {
        "sdk-folder read": True,
        "sdk-folder unread one": False,
        "sdk-folder unread two": False,
    }
    for n, (subject, is_read) in enumerate(seeded.items()):
        seed(graph, SUPPORT, incoming(subject, f"2024-02-0{n + 1}T08:30:00Z", is_read=is_read))

    async def work(client: GraphServiceClient) -> tuple[list[Message], MailFolder]:
        inbox = client.users.by_user_id(SUPPORT).mail_folders.by_mail_folder_id("inbox")
        page = await inbox.messages.get()
        folder = await inbox.get()
        assert page is not None and page.value is not None and folder is not None
        return page.value, folder

    messages, folder = with_client(graph, work)

    assert {m.subject: m.is_read for m in messages} == seeded
    assert folder.display_name == "Inbox"
    assert folder.id and all(m.parent_folder_id == folder.id for m in messages)
    assert folder.total_item_count == 3
    assert folder.unread_item_count == 2
    assert folder.child_folder_count == 0
    for message in messages:
        assert message.body is not None
        assert message.body.content_type == BodyType.Text
        assert message.body.content == f"Body of {message.subject}"
        assert message.to_recipients and message.to_recipients[0].email_address is not None
        assert message.to_recipients[0].email_address.address == SUPPORT


# ---------------------------------------------------------------- 3. paging with @odata.nextLink


def test_follow_next_links_page_by_page(graph: RunningEmulator) -> None:
    async def make_folder(client: GraphServiceClient) -> str:
        created = await client.users.by_user_id(SUPPORT).mail_folders.post(MailFolder(display_name="sdk-paging"))
        assert created is not None and created.id and created.display_name == "sdk-paging"
        return created.id

    folder_id = with_client(graph, make_folder)
    ids = seed(graph, SUPPORT, {"count": 25, "folder": folder_id})
    assert len(ids) == len(set(ids)) == 25  # generated oldest first

    query = FolderMessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        top=10, orderby=["receivedDateTime desc"], select=["subject", "receivedDateTime"]
    )

    async def walk(client: GraphServiceClient) -> tuple[list[list[str]], list[str]]:
        messages = client.users.by_user_id(SUPPORT).mail_folders.by_mail_folder_id(folder_id).messages
        pages: list[list[str]] = []
        links: list[str] = []
        page = await messages.get(request_configuration=RequestConfiguration(query_parameters=query))
        while page is not None:
            assert page.value is not None
            pages.append([m.id for m in page.value if m.id])
            if not page.odata_next_link or len(pages) > 5:
                break
            links.append(page.odata_next_link)
            page = await messages.with_url(page.odata_next_link).get()
        return pages, links

    pages, links = with_client(graph, walk)

    assert [len(p) for p in pages] == [10, 10, 5]
    visited = [message_id for p in pages for message_id in p]
    assert visited == list(reversed(ids))  # each exactly once, newest first across the pages
    assert len(links) == 2
    for link in links:
        assert link.startswith(f"{graph.base_url}/v1.0/users/"), link


# ---------------------------------------------------------------- 4. sendMail


def test_send_mail_between_shared_mailboxes(graph: RunningEmulator, wire: list[httpx.Request]) -> None:
    kept, unsaved = "sdk-send saved to Sent Items", "sdk-send not saved"

    def request(subject: str, save: bool) -> SendMailPostRequestBody:
        return SendMailPostRequestBody(
            message=Message(
                subject=subject,
                body=ItemBody(content_type=BodyType.Text, content=f"Plain text of {subject}"),
                to_recipients=[Recipient(email_address=EmailAddress(address=SALES))],
            ),
            save_to_sent_items=save,
        )

    async def work(client: GraphServiceClient) -> tuple[list[Message], list[Message]]:
        support, sales = client.users.by_user_id(SUPPORT), client.users.by_user_id(SALES)
        assert await support.send_mail.post(request(kept, True)) is None  # 202, no body
        assert await support.send_mail.post(request(unsaved, False)) is None
        inbox = await sales.mail_folders.by_mail_folder_id("inbox").messages.get()
        sent = await support.mail_folders.by_mail_folder_id("sentitems").messages.get()
        assert inbox is not None and inbox.value is not None and sent is not None and sent.value is not None
        return inbox.value, sent.value

    inbox, sent = with_client(graph, work)

    posts = [r for r in wire if r.method == "POST" and r.url.path.endswith("/sendMail")]
    assert [str(r.url.path) for r in posts] == [f"/v1.0/users/{SUPPORT}/sendMail"] * 2
    bodies = [json.loads(r.content) for r in posts]
    assert [(sorted(b), b["SaveToSentItems"]) for b in bodies] == [
        (["Message", "SaveToSentItems"], True),
        (["Message", "SaveToSentItems"], False),
    ]
    assert bodies[0]["Message"]["body"] == {"contentType": "text", "content": f"Plain text of {kept}"}

    received = {m.subject: m for m in inbox}
    assert set(received) == {kept, unsaved}
    for subject, message in received.items():
        assert message.body is not None
        assert message.body.content_type == BodyType.Text
        assert message.body.content == f"Plain text of {subject}"
        assert message.from_ is not None and message.from_.email_address is not None
        assert message.from_.email_address.address == SUPPORT
        assert message.is_read is False
        assert message.is_draft is False
        assert [r.email_address.address for r in message.to_recipients or [] if r.email_address] == [SALES]

    assert [m.subject for m in sent] == [kept]
    copy = sent[0]
    assert copy.is_read is True
    assert copy.from_ is not None and copy.from_.email_address is not None
    assert copy.from_.email_address.address == SUPPORT
    assert copy.id != received[kept].id


# ---------------------------------------------------------------- 5. errors


def test_unknown_user_is_error_invalid_user(graph: RunningEmulator) -> None:
    async def work(client: GraphServiceClient) -> list[ODataError]:
        user = client.users.by_user_id(f"nobody@{DOMAIN}")
        errors = []
        with pytest.raises(ODataError) as listing:
            await user.messages.get()
        errors.append(listing.value)
        with pytest.raises(ODataError) as folder:
            await user.mail_folders.by_mail_folder_id("inbox").get()
        errors.append(folder.value)
        return errors

    for error in with_client(graph, work):
        assert error.response_status_code == 404
        assert error.error is not None
        assert error.error.code == "ErrorInvalidUser"
        assert error.error.message
