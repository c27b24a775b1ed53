"""OData on the message routes, end to end: what a daemon's queries return, and Graph's 400s for bad ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from m365_mock.state.mailstore import recipient
from m365_mock.state.mailstore.attachments import file_attachment
from tests.helpers import error_of

SUPPORT = "support@contoso.onmicrosoft.com"
START = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def mailbox(deliver):
    deliver(
        SUPPORT,
        subject="Invoice 1001 overdue",
        received=START,
        categories=["Billing"],
        importance="high",
        sender_address="ap@fabrikam.example",
        is_read=True,
    )
    deliver(
        SUPPORT,
        subject="Re: password reset",
        received=START + timedelta(hours=1),
        sender_address="ann@example.org",
        has_attachments=True,
    )
    deliver(
        SUPPORT,
        subject="Printer jam",
        received=START + timedelta(hours=2),
        categories=["Hardware", "Urgent"],
        sender_address="bob@example.org",
        body_content="<p>The printer on floor 2 jams</p>",
    )
    deliver(
        SUPPORT,
        subject="Invoice 1002",
        received=START + timedelta(days=1),
        sender_address="ap@fabrikam.example",
        from_=recipient("ap@fabrikam.example", "Fabrikam AP"),
    )


def subjects(graph, query: str) -> list[str]:
    response = graph.get(f"/users/{SUPPORT}/messages?{query}")
    assert response.status_code == 200, response.get_json()
    return [m["subject"] for m in response.get_json()["value"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("$filter=categories/any(c:c eq 'Hardware')", ["Printer jam"]),
        ("$filter=startswith(subject,'Invoice')", ["Invoice 1002", "Invoice 1001 overdue"]),
        ("$filter=contains(subject,'PASSWORD')", ["Re: password reset"]),
        ("$filter=from/emailAddress/address eq 'AP@fabrikam.example'", ["Invoice 1002", "Invoice 1001 overdue"]),
        ("$filter=importance eq 'high'", ["Invoice 1001 overdue"]),
        ("$filter=hasAttachments eq true", ["Re: password reset"]),
        (
            "$filter=receivedDateTime ge 2026-04-01T08:30:00Z and receivedDateTime lt 2026-04-02",
            ["Printer jam", "Re: password reset"],
        ),
        ("$filter=isRead eq false and (importance eq 'high' or hasAttachments eq true)", ["Re: password reset"]),
        ("$filter=not(isRead eq false)", ["Invoice 1001 overdue"]),
        ("$filter=subject eq 'printer jam'", ["Printer jam"]),
        ("%24filter=subject%20eq%20%27Printer%20jam%27", ["Printer jam"]),
        ("$orderby=subject asc", ["Invoice 1001 overdue", "Invoice 1002", "Printer jam", "Re: password reset"]),
        ("$orderby=receivedDateTime", ["Invoice 1001 overdue", "Re: password reset", "Printer jam", "Invoice 1002"]),
        (
            "$filter=receivedDateTime ge 2026-01-01 and isRead eq false&$orderby=receivedDateTime desc",
            ["Invoice 1002", "Printer jam", "Re: password reset"],
        ),
        ('$search="printer"', ["Printer jam"]),
        ('$search="floor"', ["Printer jam"]),
        ('$search="invoice"', ["Invoice 1002", "Invoice 1001 overdue"]),
    ],
)
def test_queries(graph, mailbox, query, expected):
    assert subjects(graph, query) == expected


def test_count_with_filter_and_paging(graph, mailbox):
    body = graph.get(f"/users/{SUPPORT}/messages?$filter=startswith(subject,'Invoice')&$count=true&$top=1").get_json()
    assert body["@odata.count"] == 2 and len(body["value"]) == 1
    assert "%24filter=startswith%28subject%2C%27Invoice%27%29" in body["@odata.nextLink"]
    rest = graph.get(body["@odata.nextLink"]).get_json()
    assert [m["subject"] for m in rest["value"]] == ["Invoice 1001 overdue"]


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (
            "$filter=isRead eq false&$orderby=receivedDateTime desc",
            "InefficientFilter",
            "The restriction or sort order is too complex for this operation.",
        ),
        (
            '$search="x"&$filter=isRead eq false',
            "SearchWithFilter",
            "The query parameter '$filter' is not supported with '$search'.",
        ),
        (
            '$search="x"&$orderby=subject',
            "SearchWithOrderBy",
            "The query parameter '$orderBy' is not supported with '$search'.",
        ),
        (
            "$filter=endswith(subject,'x')",
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        ),
        (
            "$filter=colour eq 'red'",
            "RequestBroker--ParseUri",
            "Could not find a property named 'colour' on type 'microsoft.graph.message'.",
        ),
        (
            "$select=subject,colour",
            "RequestBroker--ParseUri",
            "Could not find a property named 'colour' on type 'microsoft.graph.message'.",
        ),
    ],
)
def test_bad_queries(graph, mailbox, query, code, message):
    assert error_of(graph.get(f"/users/{SUPPORT}/messages?{query}")) == (400, code, message)


@pytest.mark.parametrize(
    "query",
    [
        "$filter=isRead eq",
        "$filter=(((",
        "$filter=subject eq 'unterminated",
        "$top=abc",
        "$top=0",
        "$top=1001",
        "$skip=-1",
        "$orderby=subject sideways",
        "$filter=isRead eq 'yes'",
        "$filter=receivedDateTime ge 'soon'",
    ],
)
def test_malformed_queries_are_400_not_500(graph, mailbox, query):
    response = graph.get(f"/users/{SUPPORT}/messages?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in (
        "BadRequest",
        "RequestBroker--ParseUri",
        "ErrorInvalidUrlQueryFilter",
    )


def test_top_of_1000_is_accepted(graph, mailbox):
    assert len(subjects(graph, "$top=1000")) == 4


SKIP_LIMIT = (
    "The query specified in the URI is not valid. The limit of '2147483647' for Skip query has been exceeded. "
    "The value from the incoming request is '{}'."
)
MESSAGE_QUERIES = [
    "$filter=startswith(subject,'Invoice')",
    "$filter=isRead eq true",
    '$search="invoice"',
    "$orderby=subject",
    "$count=true",
    "",
]


@pytest.mark.parametrize("query", MESSAGE_QUERIES)
def test_skip_is_bounded_by_int32_on_message_lists(graph, mailbox, query):
    for base in (f"/users/{SUPPORT}/messages", f"/users/{SUPPORT}/mailFolders/inbox/messages"):
        last = graph.get(f"{base}?$skip=2147483647&$top=1000&{query}")
        assert last.status_code == 200, last.get_json()
        assert last.get_json()["value"] == [] and "@odata.nextLink" not in last.get_json()
        for skip in (2**31, 2**63 - 1):
            response = graph.get(f"{base}?$skip={skip}&{query}")
            assert error_of(response) == (400, "BadRequest", SKIP_LIMIT.format(skip))


@pytest.mark.parametrize("path", ["mailFolders", "mailFolders/inbox/childFolders"])
def test_skip_and_top_are_bounded_on_folder_lists(graph, mailbox, path):
    big = 2**63 - 1
    assert error_of(graph.get(f"/users/{SUPPORT}/{path}?$skip={big}&$top=5")) == (
        400,
        "BadRequest",
        SKIP_LIMIT.format(big),
    )
    assert error_of(graph.get(f"/users/{SUPPORT}/{path}?$top={big}")) == (
        400,
        "BadRequest",
        "The query specified in the URI is not valid. The limit of '1000' for Top query has been exceeded. "
        f"The value from the incoming request is '{big}'.",
    )


def _report(deliver, **fields):
    pdf = file_attachment("report.pdf", b"%PDF", "application/pdf", modified=datetime.now(UTC))
    return deliver(SUPPORT, subject="report", attachments=[pdf], has_attachments=True, **fields)


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ('"size>1"', True),
        ('"size:100"', False),  # a message is at least 512 bytes: headers, subject, body, attachments
        ('"size>=530"', True),
        ('"size<512"', False),
        ('"attachment:report"', True),
        ('"attachment:report.pdf"', True),
        ('"attachment:invoice"', False),
        ('"hasattachments:yes"', True),
        ('"hasattachments:no"', False),
    ],
)
def test_kql_size_and_attachment_searches_find_what_they_should(graph, deliver, search, found):
    message = _report(deliver)
    response = graph.get(f"/users/{SUPPORT}/messages?$search={search}")
    assert response.status_code == 200
    assert [m["id"] for m in response.get_json()["value"]] == ([message.id] if found else [])


def test_search_results_come_newest_sent_first_and_page_like_any_list(graph, deliver):
    made = [
        deliver(SUPPORT, subject=f"Printer {i}", received=START + timedelta(hours=i), sent=START - timedelta(hours=i))
        for i in range(5)
    ]
    deliver(SUPPORT, subject="Printer draft", received=START, sent=None)
    body = graph.get(f'/users/{SUPPORT}/messages?$search="printer"&$top=2&$count=true').get_json()
    assert body["@odata.count"] == 6
    assert [m["subject"] for m in body["value"]] == ["Printer 0", "Printer 1"]
    rest = graph.get(body["@odata.nextLink"]).get_json()
    assert [m["subject"] for m in rest["value"]] == ["Printer 2", "Printer 3"]
    last = graph.get(rest["@odata.nextLink"]).get_json()
    assert [m["subject"] for m in last["value"]] == ["Printer 4", "Printer draft"]  # unsent last
    assert "@odata.nextLink" not in last and len(made) == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("$orderby=receivedDateTime asc&$top=2", ["Invoice 1001 overdue", "Re: password reset"]),
        ("$orderby=receivedDateTime desc&$skip=1&$top=2", ["Printer jam", "Re: password reset"]),
        (
            "$filter=receivedDateTime ge 2026-04-01T09:00:00Z&$orderby=receivedDateTime asc",
            ["Re: password reset", "Printer jam", "Invoice 1002"],
        ),
        ("$filter=receivedDateTime gt 2026-04-01T09:00:00Z", ["Invoice 1002", "Printer jam"]),
        ("$filter=receivedDateTime eq 2026-04-01T09:00:00Z", ["Re: password reset"]),
        ("$filter=subject eq 'INVOICE 1002' and isRead eq false", ["Invoice 1002"]),
        ("$filter=subject eq 'invoice 1002' and isRead eq true", []),
        ("$filter=hasAttachments eq false and isRead eq false", ["Invoice 1002", "Printer jam"]),
        ("$filter=from/emailAddress/address eq 'nobody@example.org'", []),
        ("$orderby=subject desc&$top=2", ["Re: password reset", "Printer jam"]),
    ],
)
def test_queries_answered_from_indexes(graph, mailbox, query, expected):
    assert subjects(graph, query) == expected


def test_folder_lists_take_the_folder_only(graph, mailbox, deliver):
    deliver(SUPPORT, folder="archive", subject="Invoice 0999 archived", received=START - timedelta(days=3))
    assert subjects(graph, "$filter=startswith(subject,'Invoice')") == [
        "Invoice 1002",
        "Invoice 1001 overdue",
        "Invoice 0999 archived",
    ]
    for query in ("$orderby=receivedDateTime asc", '$search="invoice"', "$filter=receivedDateTime lt 2026-04-01"):
        response = graph.get(f"/users/{SUPPORT}/mailFolders/archive/messages?{query}")
        assert [m["subject"] for m in response.get_json()["value"]] == ["Invoice 0999 archived"], query
