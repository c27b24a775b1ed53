"""`$count` of message lists (`.../messages/$count`, `.../mailFolders/{id}/messages/$count`): the list's number as
text/plain, with the list's $filter and $search, the list's errors, and unknown segments refused as Graph does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import DENIED, RAOP, SALES, error_of

SUPPORT = "support@contoso.onmicrosoft.com"
START = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def mailbox(deliver):
    """Five inbox messages (two unread invoices, one read), one in Archive, one in Deleted Items."""
    deliver(SUPPORT, subject="Invoice 1001", received=START, is_read=True)
    deliver(SUPPORT, subject="Invoice 1002", received=START + timedelta(hours=1))
    deliver(SUPPORT, subject="Invoice 1003", received=START + timedelta(hours=2))
    deliver(SUPPORT, subject="Printer jam", received=START + timedelta(hours=3), body_content="<p>floor 2</p>")
    deliver(SUPPORT, subject="Password reset", received=START + timedelta(hours=4))
    deliver(SUPPORT, "archive", subject="Invoice 0999", received=START - timedelta(days=30), is_read=True)
    deliver(SUPPORT, "deleteditems", subject="Spam", received=START - timedelta(days=1))


def count(graph, path: str) -> int:
    response = graph.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "text/plain"
    text = response.get_data(as_text=True)
    assert text.isdigit(), text
    return int(text)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 7),
        ("?$filter=isRead eq false", 5),
        ("?$filter=startswith(subject,'Invoice')", 4),
        ("?$filter=startswith(subject,'Invoice') and isRead eq false", 2),
        ("?$filter=receivedDateTime ge 2026-04-01T09:00:00Z", 4),
        ('?$search="invoice"', 4),
        ('?$search="floor"', 1),
        ("?$filter=subject eq 'nothing like it'", 0),
        # OData: $top, $skip, $orderby and $select do not change a count
        ("?$top=1&$skip=2&$select=subject&$orderby=receivedDateTime desc", 7),
    ],
)
def test_mailbox_count_applies_the_lists_filter_and_search(graph, mailbox, query, expected):
    assert count(graph, f"/users/{SUPPORT}/messages/$count{query}") == expected
    if "$search" not in query and "$orderby" not in query:
        listed = graph.get(f"/users/{SUPPORT}/messages?$count=true&{query.lstrip('?')}").get_json()
        assert listed["@odata.count"] == expected


@pytest.mark.parametrize(
    ("folder", "query", "expected"),
    [
        ("inbox", "", 5),
        ("Inbox", "?$filter=isRead eq false", 4),
        ("inbox", "?$filter=startswith(subject,'Invoice')", 3),
        ("archive", "", 1),
        ("deleteditems", "", 1),
        ("drafts", "", 0),
        ("inbox", '?$search="password"', 1),
    ],
)
def test_folder_count(graph, mailbox, folder, query, expected):
    assert count(graph, f"/users/{SUPPORT}/mailFolders/{folder}/messages/$count{query}") == expected


def test_folder_count_by_id_and_key_syntax(graph, mailbox):
    inbox_id = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()["id"]
    assert count(graph, f"/users/{SUPPORT}/mailFolders/{inbox_id}/messages/$count") == 5
    assert count(graph, f"/users/{SUPPORT}/mailFolders('Inbox')/messages/$count") == 5


def test_count_follows_changes(graph, mailbox, deliver):
    path = f"/users/{SUPPORT}/mailFolders/inbox/messages/$count?$filter=isRead eq false"
    assert count(graph, path) == 4
    message = deliver(SUPPORT, subject="New")
    assert count(graph, path) == 5
    assert graph.patch(f"/users/{SUPPORT}/messages/{message.id}", json={"isRead": True}).status_code == 200
    assert count(graph, path) == 4


@pytest.mark.parametrize(
    ("query", "status", "code", "message"),
    [
        (
            '?$search="invoice"&$filter=isRead eq false',
            400,
            "SearchWithFilter",
            "The query parameter '$filter' is not supported with '$search'.",
        ),
        (
            "?$filter=isRead eq false&$orderby=subject",
            400,
            "InefficientFilter",
            "The restriction or sort order is too complex for this operation.",
        ),
        (
            "?$filter=endswith(subject,'x')",
            400,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        ),
        (
            "?$top=0",
            400,
            "BadRequest",
            "Invalid value '0' for $top query option found. The $top query option requires a value between 1 and 1000.",
        ),
    ],
)
def test_count_refuses_what_the_list_refuses(graph, mailbox, query, status, code, message):
    assert error_of(graph.get(f"/users/{SUPPORT}/messages/$count{query}")) == (status, code, message)
    assert error_of(graph.get(f"/users/{SUPPORT}/messages{query}")) == (status, code, message)


def test_count_needs_a_read_permission(graph_as, mailbox):
    assert error_of(graph_as("Mail.Send").get(f"/users/{SUPPORT}/messages/$count")) == (
        403,
        "ErrorAccessDenied",
        DENIED,
    )
    assert count(graph_as("Mail.ReadBasic.All"), f"/users/{SUPPORT}/messages/$count") == 7


def test_search_needs_more_than_read_basic_as_on_the_list(graph_as, mailbox):
    reader = graph_as("Mail.ReadBasic.All")
    assert error_of(reader.get(f'/users/{SUPPORT}/messages/$count?$search="invoice"')) == (
        403,
        "ErrorAccessDenied",
        DENIED,
    )


def test_count_is_denied_by_an_access_policy(graph, admin, demo_app, mailbox):
    admin.policy(demo_app.app_id, "cctr_sec_group@contoso.onmicrosoft.com")
    assert count(graph, f"/users/{SUPPORT}/messages/$count") == 7
    assert error_of(graph.get(f"/users/{SALES}/messages/$count")) == (403, "ErrorAccessDenied", RAOP)
    log = admin.api.log(mailbox=SALES)
    assert log[-1]["path"] == f"/v1.0/users/{SALES}/messages/$count" and log[-1]["outcome"] == "denied"


def test_unknown_mailbox_folder_and_token(graph, client, mailbox):
    assert error_of(graph.get("/users/nobody@contoso.onmicrosoft.com/messages/$count")) == (
        404,
        "ErrorInvalidUser",
        "The requested user 'nobody@contoso.onmicrosoft.com' is invalid.",
    )
    assert error_of(graph.get(f"/users/{SUPPORT}/mailFolders/AAMkAGI2/messages/$count"))[1] == "ErrorInvalidIdMalformed"
    missing = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()["id"][:-4] + "AAAA"
    assert error_of(graph.get(f"/users/{SUPPORT}/mailFolders/{missing}/messages/$count"))[1] == "ErrorItemNotFound"
    anonymous = client.get(f"/v1.0/users/{SUPPORT}/messages/$count", base_url="https://graph.emu.test")
    assert error_of(anonymous) == (401, "InvalidAuthenticationToken", "Access token is empty.")


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "POST", "PUT"])
def test_count_takes_get_only(graph, mailbox, method):
    response = graph.request(method, f"/users/{SUPPORT}/messages/$count", json={"isRead": True})
    assert error_of(response) == (
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
    assert count(graph, f"/users/{SUPPORT}/messages/$count?$filter=isRead eq false") == 5  # nothing changed


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("/messages/{id}/bogus", "bogus"),
        ("/mailFolders/inbox/messages/{id}/bogus", "bogus"),
        ("/mailFolders/inbox/bogus", "bogus"),
        ("/mailFolders/inbox/messages/$count/bogus", "bogus"),
        ("/messages/$count/bogus", "bogus"),
        ("/bogus", "bogus"),
    ],
)
def test_unknown_segments_are_graphs_segment_error_not_a_malformed_id(graph, mailbox, deliver, path, segment):
    message = deliver(SUPPORT, subject="Target")
    response = graph.get(f"/users/{SUPPORT}" + path.format(id=message.id))
    assert error_of(response) == (400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def test_count_is_no_longer_read_as_a_message_id(graph, mailbox):
    response = graph.get(f"/users/{SUPPORT}/messages/$count")
    assert response.status_code == 200 and response.get_data(as_text=True) == "7"
    assert error_of(graph.get(f"/users/{SUPPORT}/messages/$counts")) == (
        400,
        "ErrorInvalidIdMalformed",
        "Id is malformed.",
    )


def test_an_unknown_query_parameter_on_a_count_is_refused(graph):
    response = graph.get("/users/support@contoso.onmicrosoft.com/messages/$count?$fitler=isRead eq false")
    status, code, message = error_of(response)
    assert (status, code) == (400, "BadRequest") and "'$fitler' is not supported here" in message
