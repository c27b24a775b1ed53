"""python-o365 (O365) against a served emulator: the credentials flow on shared mailboxes.

O365 hard-codes login.microsoftonline.com as its authority and graph.microsoft.com as its Graph host, so it is
pointed at the emulator the documented way: a `MSGraphProtocol` subclass with `_protocol_url`, a `Connection`
subclass whose `msal_client` uses the emulator authority with `instance_discovery=False`, a `MemoryTokenBackend`,
and `REQUESTS_CA_BUNDLE` (set by `trust`) for TLS on both the MSAL and the Graph side.

This module starts its own emulator on a tenant file like the demo tenant but without its sample mail, so the
mailboxes hold only what these tests put there. Each test keeps to its own mailbox or to counts it measures
itself: the inbox of support@, the whole of billing@, sendMail from support@ to sales@, and triage in sales@.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msal
import pytest
import requests
from O365 import Account, MSGraphProtocol
from O365.connection import Connection
from O365.mailbox import Folder, MailBox
from O365.message import Message
from O365.utils.token import MemoryTokenBackend

from m365_mock.tools.process import RunningEmulator
from tests.compat.conftest import empty_contoso, seed

pytestmark = pytest.mark.compat

DOMAIN = "contoso.onmicrosoft.com"
SUPPORT = f"support@{DOMAIN}"
SALES = f"sales@{DOMAIN}"
BILLING = f"billing@{DOMAIN}"
INEFFICIENT = "The restriction or sort order is too complex for this operation."


# ---------------------------------------------------------------- the emulator and an O365 account on it


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """This module's own emulator with empty mailboxes that no other test writes to."""
    with empty_contoso(tmp_path_factory.mktemp("o365-emulator")) as running:
        yield running


def emulator_account(running: RunningEmulator) -> Account:
    """An O365 Account whose token (MSAL) and Graph traffic both go to `running`."""
    base_url = running.base_url

    class EmulatorProtocol(MSGraphProtocol):
        _protocol_url = f"{base_url}/"

    class EmulatorConnection(Connection):
        @property
        def msal_client(self) -> msal.ConfidentialClientApplication:
            if self._msal_client is None:
                self._msal_client = msal.ConfidentialClientApplication(
                    self.auth[0],
                    client_credential=self.auth[1],
                    authority=f"{base_url}/{self.tenant_id}",
                    instance_discovery=False,
                    token_cache=self.token_backend,
                )
            return self._msal_client

    class EmulatorAccount(Account):
        connection_constructor = EmulatorConnection

    return EmulatorAccount(
        (running.app["app_id"], running.app["client_secret"]),
        auth_flow_type="credentials",
        tenant_id=running.tenant["id"],
        protocol=EmulatorProtocol(),
        token_backend=MemoryTokenBackend(),
        requests_delay=0,  # O365 waits 200 ms between requests by default
    )


@pytest.fixture
def account(emu: RunningEmulator, trust: Callable[[RunningEmulator], Path]) -> Account:
    trust(emu)
    account = emulator_account(emu)
    assert account.authenticate() is True
    assert account.is_authenticated
    return account


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[requests.PreparedRequest]:
    """Every request `requests` sends (MSAL's and O365's), through a pass-through spy."""
    seen: list[requests.PreparedRequest] = []
    real = requests.Session.send

    def spy(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        seen.append(request)
        return real(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", spy)
    return seen


def incoming(subject: str, received: str, *, is_read: bool = False) -> dict[str, Any]:
    sender = f"{subject.split()[-1].lower()}@fabrikam.example"
    return {
        "subject": subject,
        "from": {"emailAddress": {"address": sender, "name": f"Customer {subject.split()[-1]}"}},
        "body": {"contentType": "text", "content": f"Body of {subject}"},
        "receivedDateTime": received,
        "isRead": is_read,
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------- 6. newest messages of a shared inbox


def test_inbox_newest_five(emu: RunningEmulator, account: Account, wire: list[requests.PreparedRequest]) -> None:
    seeded = [(f"o365-inbox {letter}", f"2024-03-{day:02d}T10:15:00Z") for day, letter in enumerate("ABCDEFGH", 1)]
    for subject, received in seeded[::2] + seeded[1::2]:  # delivery order differs from date order
        seed(emu, SUPPORT, {**incoming(subject, received), "folder": "inbox"})

    mailbox = account.mailbox(resource=SUPPORT)
    messages: list[Message] = list(mailbox.inbox_folder().get_messages(limit=5, order_by="receivedDateTime desc"))

    newest = seeded[::-1][:5]
    assert [m.subject for m in messages] == [subject for subject, _ in newest]
    for message, (subject, received) in zip(messages, newest, strict=True):
        assert message.object_id
        assert message.received == at(received)
        assert message.sender.address == f"{subject.split()[-1].lower()}@fabrikam.example"
        assert message.is_read is False
        assert message.body == f"Body of {subject}"
        assert message.body_type == "text"
        assert [r.address for r in message.to] == [SUPPORT]

    listing = [r for r in wire if r.method == "GET" and "/messages" in (r.url or "")]
    assert len(listing) == 1
    assert listing[0].url is not None
    assert listing[0].url.startswith(f"{emu.base_url}/v1.0/users/{SUPPORT}/mailFolders/Inbox/messages?")
    assert "%24top=5" in listing[0].url and "%24orderby=receivedDateTime+desc" in listing[0].url


# ---------------------------------------------------------------- 7. a query: filter + select, with and without order


BILLING_MAIL = [  # subject, received, isRead
    ("o365-query A", "2019-06-01T08:00:00Z", False),
    ("o365-query B", "2024-04-01T08:00:00Z", True),
    ("o365-query C", "2024-04-02T08:00:00Z", False),
    ("o365-query D", "2024-04-03T08:00:00Z", True),
    ("o365-query E", "2024-04-04T08:00:00Z", False),
    ("o365-query F", "2024-04-05T08:00:00Z", False),
]


@pytest.fixture(scope="module")
def billing_mail(emu: RunningEmulator) -> list[str]:
    """BILLING_MAIL delivered to billing@ once; only the query tests read that mailbox, and none changes it."""
    return [
        seed(emu, BILLING, {**incoming(subject, received, is_read=is_read), "folder": "inbox"})[0]
        for subject, received, is_read in BILLING_MAIL
    ]


@pytest.fixture
def billing(billing_mail: list[str], account: Account) -> MailBox:
    return account.mailbox(resource=BILLING)


def test_query_unread_with_select(billing: MailBox, wire: list[requests.PreparedRequest]) -> None:
    q = billing.q()
    query = q.equals("isRead", False) & q.select("subject", "from")
    messages: list[Message] = list(billing.get_messages(limit=20, query=query))

    unread = {subject for subject, _, is_read in BILLING_MAIL if not is_read}
    assert {m.subject for m in messages} == unread
    for message in messages:
        assert message.sender.address == f"{message.subject.split()[-1].lower()}@fabrikam.example"
        # $select=subject,from: the rest is absent, so O365 keeps its defaults.
        assert message.is_read is None
        assert message.body == ""
        assert message.received is None
        assert list(message.to) == []

    url = wire[-1].url or ""
    assert url.startswith(f"{billing.build_url('/messages')}?")
    assert "%24filter=isRead+eq+false" in url and "%24select=subject%2Cfrom" in url
    assert "orderby" not in url


def test_query_ordered_after_leading_receiveddatetime(billing: MailBox) -> None:
    """The accepted form: receivedDateTime leads the filter, so it may be the order."""
    q = billing.q()
    since = datetime(2020, 1, 1, tzinfo=UTC)
    query = q.greater_equal("receivedDateTime", since) & q.equals("isRead", False) & q.select("subject", "from")
    messages = list(billing.get_messages(limit=20, query=query, order_by="receivedDateTime desc"))
    assert [m.subject for m in messages] == ["o365-query F", "o365-query E", "o365-query C"]


@pytest.mark.parametrize("ordering", ["order_by_argument", "orderby_in_query"])
def test_query_unread_ordered_by_date_is_inefficient(billing: MailBox, ordering: str) -> None:
    """Real Graph answers isRead-filter + receivedDateTime-order with 400 InefficientFilter; O365 raises HTTPError."""
    q = billing.q()
    query = q.equals("isRead", False) & q.select("subject", "from")
    if ordering == "order_by_argument":
        call = lambda: billing.get_messages(limit=20, query=query, order_by="receivedDateTime desc")  # noqa: E731
    else:
        query = query & q.orderby(("receivedDateTime", False))
        call = lambda: billing.get_messages(limit=20, query=query)  # noqa: E731

    with pytest.raises(requests.HTTPError) as caught:
        call()

    response = caught.value.response
    assert response is not None
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InefficientFilter"
    assert response.json()["error"]["message"] == INEFFICIENT
    assert "%24orderby=receivedDateTime+desc" in (response.request.url or "")
    # O365 re-raises with the Graph error message appended to requests' own text.
    assert str(caught.value).startswith("400 Client Error")
    assert str(caught.value).endswith(f"| Error Message: {INEFFICIENT}")


# ---------------------------------------------------------------- 8. sending with new_message()


def test_new_message_send_arrives(emu: RunningEmulator, account: Account, wire: list[requests.PreparedRequest]) -> None:
    subject = "o365-send quote request"
    support = account.mailbox(resource=SUPPORT)
    message = support.new_message()
    message.to.add(SALES)
    message.subject = subject
    message.body = "<p>Hello from <b>O365</b></p>"
    assert message.send() is True

    posted = [r for r in wire if r.method == "POST" and (r.url or "").endswith("/sendMail")]
    assert [r.url for r in posted] == [f"{emu.base_url}/v1.0/users/{SUPPORT}/sendMail"]
    sent_body = json.loads(posted[0].body or b"{}")
    assert list(sent_body) == ["message"]  # lower-case key, no saveToSentItems (defaults to true)
    assert sent_body["message"]["body"] == {"contentType": "HTML", "content": "<p>Hello from <b>O365</b></p>"}

    sales = account.mailbox(resource=SALES)
    arrived = [m for m in sales.inbox_folder().get_messages(limit=50) if m.subject == subject]
    assert len(arrived) == 1
    received = arrived[0]
    assert received.sender.address == SUPPORT
    assert [r.address for r in received.to] == [SALES]
    assert received.is_read is False
    assert received.body_type == "html"  # Graph emits the enum in lower case
    assert "<p>Hello from <b>O365</b></p>" in received.body
    assert received.received is not None

    copies = [m for m in support.sent_folder().get_messages(limit=50) if m.subject == subject]
    assert len(copies) == 1
    assert copies[0].is_read is True
    assert copies[0].object_id != received.object_id


# ---------------------------------------------------------------- 9. mark read, move to a new folder, counts


def test_mark_read_and_move_to_new_folder(emu: RunningEmulator, account: Account) -> None:
    subjects = ["o365-triage refund", "o365-triage invoice"]
    for n, subject in enumerate(subjects):
        seed(emu, SALES, {**incoming(subject, f"2024-05-0{n + 1}T12:00:00Z"), "folder": "inbox"})

    sales = account.mailbox(resource=SALES)
    inbox = sales.inbox_folder()
    assert inbox.refresh_folder() is True
    total_before, unread_before, children_before = (
        inbox.total_items_count,
        inbox.unread_items_count,
        inbox.child_folders_count,
    )
    assert total_before >= 2 and unread_before >= 2

    processed: Folder | None = inbox.create_child_folder("Processed")
    assert processed is not None
    assert processed.name == "Processed"
    assert processed.folder_id and processed.folder_id != "Inbox"
    assert (processed.total_items_count, processed.unread_items_count) == (0, 0)

    target = next(m for m in inbox.get_messages(limit=50) if m.subject == subjects[0])
    assert target.is_read is False
    old_id = target.object_id
    assert target.mark_as_read() is True
    assert target.is_read is True
    assert target.move(processed) is True
    assert target.folder_id == processed.folder_id
    assert target.object_id and target.object_id != old_id  # Graph gives a moved message a new id

    assert processed.refresh_folder() is True
    assert (processed.total_items_count, processed.unread_items_count) == (1, 0)
    assert inbox.refresh_folder() is True
    assert inbox.total_items_count == total_before - 1
    assert inbox.unread_items_count == unread_before - 1
    assert inbox.child_folders_count == children_before + 1

    moved = list(processed.get_messages(limit=10))
    assert [(m.subject, m.is_read, m.object_id) for m in moved] == [(subjects[0], True, target.object_id)]
    assert [f.name for f in inbox.get_folders()] == ["Processed"]
    remaining = {m.subject for m in inbox.get_messages(limit=50)}
    assert subjects[1] in remaining and subjects[0] not in remaining

    with pytest.raises(requests.HTTPError) as gone:
        sales.get_message(object_id=old_id)
    assert gone.value.response is not None
    assert gone.value.response.status_code == 404
    assert gone.value.response.json()["error"]["code"] == "ErrorItemNotFound"


# ---------------------------------------------------------------- 10. attachments and replies


def test_download_an_attachment_and_reply_in_thread(
    emu: RunningEmulator, account: Account, wire: list[requests.PreparedRequest], tmp_path: Path
) -> None:
    subject = "o365-reply broken printer"
    photo = bytes(range(256)) * 30
    seed(
        emu,
        BILLING,
        {
            **incoming(subject, "2024-06-01T08:00:00Z"),
            "ccRecipients": [{"emailAddress": {"address": SALES}}],
            "attachments": [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "printer.jpg",
                    "contentType": "image/jpeg",
                    "contentBytes": base64.b64encode(photo).decode(),
                }
            ],
            "folder": "inbox",
        },
    )
    billing = account.mailbox(resource=BILLING)
    [message] = [m for m in billing.inbox_folder().get_messages(limit=50) if m.subject == subject]
    assert message.has_attachments is True
    assert message.attachments.download_attachments() is True
    [attachment] = list(message.attachments)
    assert attachment.name == "printer.jpg"
    assert attachment.save(location=tmp_path) is True
    assert (tmp_path / "printer.jpg").read_bytes() == photo

    answer = message.reply()  # createReplyAll by default
    answer.body = "A technician is on the way."
    assert answer.send() is True
    created = [r for r in wire if r.method == "POST" and (r.url or "").endswith("/createReplyAll")]
    assert len(created) == 1
    sales = account.mailbox(resource=SALES)
    [arrived] = [m for m in sales.inbox_folder().get_messages(limit=50) if m.subject == f"RE: {subject}"]
    assert arrived.conversation_id == message.conversation_id
    assert "A technician is on the way." in arrived.body
