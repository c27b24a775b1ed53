"""OData query options on message lists: parsing, Graph's errors, evaluation, ordering, and a fuzz."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from m365_mock.graph.errors import GraphError
from m365_mock.graph.kql import parse_search
from m365_mock.graph.query import (
    MESSAGE_PROPERTIES,
    FilterExpr,
    InefficientFilter,
    ODataQueryError,
    SearchWithFilter,
    SearchWithOrderBy,
    check_filter_orderby,
    check_search_combination,
    order,
    parse_filter,
    parse_orderby,
    parse_select,
    parse_skip,
    parse_top,
)

try:  # not a declared dev dependency: the stdlib fuzz below always runs, this one when it is there
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    given = None

PARSE_URI = "RequestBroker--ParseUri"
INVALID_NODES = "ErrorInvalidUrlQueryFilter"
INVALID_NODES_TEXT = "The query filter contains one or more invalid nodes."


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, tzinfo=UTC)


def recipient(name: str, address: str) -> dict[str, Any]:
    return {"emailAddress": {"name": name, "address": address}}


MESSAGES: list[dict[str, Any]] = [
    {
        "id": "AAMkA1",
        "subject": "Quarterly report",
        "isRead": False,
        "isDraft": False,
        "hasAttachments": True,
        "importance": "high",
        "receivedDateTime": at(1, 9),
        "sentDateTime": at(1, 8),
        "from": recipient("Adele Vance", "AdeleV@contoso.com"),
        "sender": recipient("Adele Vance", "AdeleV@contoso.com"),
        "toRecipients": [recipient("Bob Lee", "bob@fabrikam.com")],
        "ccRecipients": [recipient("Cara Diaz", "cara@contoso.com")],
        "bccRecipients": [],
        "categories": ["Red category", "Blue"],
        "flag": {"flagStatus": "flagged"},
        "inferenceClassification": "focused",
        "bodyPreview": "Numbers for Q1",
        "body": {"contentType": "html", "content": "<html><p>Numbers for&nbsp;<b>Q1</b> attached</p></html>"},
        "attachments": [{"name": "q1-figures.xlsx"}],
        "size": 20480,
    },
    {
        "id": "aamka2",
        "subject": "Lunch? Let's meet",
        "isRead": True,
        "isDraft": False,
        "hasAttachments": False,
        "importance": "normal",
        "receivedDateTime": at(2, 12),
        "sentDateTime": at(2, 11),
        "from": recipient("Bob Lee", "bob@fabrikam.com"),
        "toRecipients": [recipient("Adele Vance", "AdeleV@contoso.com")],
        "ccRecipients": [],
        "categories": [],
        "flag": {"flagStatus": "notFlagged"},
        "inferenceClassification": "other",
        "bodyPreview": "Pizza at noon",
        "body": {"contentType": "text", "content": "Pizza at noon, meet in the lobby"},
    },
    {
        "id": "AAMkA3",
        "subject": None,
        "isRead": False,
        "isDraft": True,
        "hasAttachments": False,
        "importance": "low",
        "receivedDateTime": at(3, 7),
        "sentDateTime": None,
        "from": None,
        "toRecipients": [recipient("Dan", "dan@contoso.com"), recipient("Bob Lee", "BOB@fabrikam.com")],
        "categories": ["blue"],
        "flag": {"flagStatus": "complete"},
        "inferenceClassification": "focused",
        "body": {"contentType": "text", "content": ""},
    },
]


def getter(message: dict[str, Any]):
    def get(path: str) -> Any:
        value: Any = message
        for segment in path.split("/"):
            value = value.get(segment) if isinstance(value, dict) else None
        return value

    return get


def ids(expr: FilterExpr | Any) -> list[str]:
    return [m["id"] for m in MESSAGES if expr.matches(getter(m))]


def where(text: str) -> list[str]:
    return ids(parse_filter(text))


def found(text: str) -> list[str]:
    return ids(parse_search(text))


def error(fn, text: str) -> ODataQueryError:
    with pytest.raises(ODataQueryError) as caught:
        fn(text)
    err = caught.value
    assert isinstance(err, GraphError)
    assert err.status == 400
    return err


# ------------------------------------------------------------------------------------------ $filter: operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("isRead eq false", ["AAMkA1", "AAMkA3"]),
        ("isRead ne false", ["aamka2"]),
        ("receivedDateTime gt 2024-03-02T12:00:00Z", ["AAMkA3"]),
        ("receivedDateTime ge 2024-03-02T12:00:00Z", ["aamka2", "AAMkA3"]),
        ("receivedDateTime lt 2024-03-02T12:00:00Z", ["AAMkA1"]),
        ("receivedDateTime le 2024-03-02T12:00:00Z", ["AAMkA1", "aamka2"]),
        ("subject eq 'quarterly REPORT'", ["AAMkA1"]),
        ("subject ne 'quarterly report'", ["aamka2", "AAMkA3"]),
        ("subject gt 'M'", ["AAMkA1"]),
        ("subject eq null", ["AAMkA3"]),
        ("subject ne null", ["AAMkA1", "aamka2"]),
        ("sentDateTime lt 2030-01-01", ["AAMkA1", "aamka2"]),
    ],
)
def test_each_comparison_operator(text, expected):
    assert where(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subject eq 'Lunch? Let''s meet'", ["aamka2"]),
        ("hasAttachments eq true", ["AAMkA1"]),
        ("isDraft eq FALSE", ["AAMkA1", "aamka2"]),
        ("receivedDateTime ge 2024-03-02", ["aamka2", "AAMkA3"]),
        ("receivedDateTime ge 2024-03-02T00:00:00Z", ["aamka2", "AAMkA3"]),
        ("receivedDateTime ge 2024-03-02T14:00:00+02:00", ["aamka2", "AAMkA3"]),
        ("receivedDateTime gt 2024-03-02T14:00:00+02:00", ["AAMkA3"]),
        ("receivedDateTime lt 2024-03-01T09:00:00.000001Z", ["AAMkA1"]),
        ("receivedDateTime le 2024-03-01T09:00:00.9999999Z", ["AAMkA1"]),
        ("receivedDateTime eq 2024-03-03T07:00Z", ["AAMkA3"]),
        ("receivedDateTime eq 2024-03-03T07:00:00", ["AAMkA3"]),
        ("2024-03-02 le receivedDateTime", ["aamka2", "AAMkA3"]),
        ("importance eq 'HIGH'", ["AAMkA1"]),
        ("inferenceClassification eq 'other'", ["aamka2"]),
        ("flag/flagStatus eq 'complete'", ["AAMkA3"]),
        ("from/emailAddress/address eq 'adelev@CONTOSO.com'", ["AAMkA1"]),
        ("from/emailAddress/name eq 'bob lee'", ["aamka2"]),
        ("sender/emailAddress/address eq 'AdeleV@contoso.com'", ["AAMkA1"]),
        ("bodyPreview eq 'pizza at noon'", ["aamka2"]),
        ("id eq 'AAMkA1'", ["AAMkA1"]),
        ("id eq 'aamka1'", []),
    ],
)
def test_each_literal_form(text, expected):
    assert where(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ReceivedDateTime ge 2024-03-02",
        "RECEIVEDDATETIME GE 2024-03-02",
        "receiveddatetime Ge 2024-03-02 AND ISREAD EQ false or IsRead Eq true and Subject eq 'x'",
    ],
)
def test_property_names_and_keywords_are_case_insensitive(text):
    flt = parse_filter(text)
    assert flt.properties[0] == "receivedDateTime"


def test_properties_are_canonical_in_order_of_first_appearance():
    flt = parse_filter(
        "From/EmailAddress/Address eq 'a@b.c' and receivedDateTime ge 2024-01-01 and "
        "(isRead eq false or FROM/emailaddress/ADDRESS eq 'x@y.z') and categories/any(c:c eq 'Red' and isDraft eq true)"
    )
    assert flt.properties == ("from/emailAddress/address", "receivedDateTime", "isRead", "categories", "isDraft")


def test_message_properties_table():
    spec = MESSAGE_PROPERTIES["from/emailaddress/address"]
    assert (spec.path, spec.type, spec.filterable, spec.sortable) == (
        "from/emailAddress/address",
        "Edm.String",
        True,
        True,
    )
    assert MESSAGE_PROPERTIES["categories"].is_collection
    assert not MESSAGE_PROPERTIES["categories"].sortable
    assert MESSAGE_PROPERTIES["receivedDatetime".lower()].type == "Edm.DateTimeOffset"
    assert MESSAGE_PROPERTIES["body"].type == "microsoft.graph.itemBody"
    assert not MESSAGE_PROPERTIES["weblink"].filterable


# ------------------------------------------------------------------------------------------ functions and lambdas


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("startswith(subject,'QUART')", ["AAMkA1"]),
        ("startsWith(from/emailAddress/address, 'adele')", ["AAMkA1"]),
        ("contains(subject,'MEET')", ["aamka2"]),
        ("contains(from/emailAddress/address,'@fabrikam.')", ["aamka2"]),
        ("contains(body/content,'lobby')", ["aamka2"]),
        ("not contains(subject,'report')", ["aamka2", "AAMkA3"]),
        ("contains(subject, null)", []),
    ],
)
def test_string_functions_compare_case_insensitively(text, expected):
    assert where(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("categories/any(c:c eq 'blue')", ["AAMkA1", "AAMkA3"]),
        ("categories/any(c: startswith(c,'red'))", ["AAMkA1"]),
        ("Categories/any(cat:cat eq 'Blue' and isDraft eq true)", ["AAMkA3"]),
        ("toRecipients/any(r:r/emailAddress/address eq 'bob@fabrikam.com')", ["AAMkA1", "AAMkA3"]),
        ("toRecipients/any(r: r/EmailAddress/Name eq 'dan')", ["AAMkA3"]),
        ("ccRecipients/any(r:r/emailAddress/address eq 'cara@contoso.com')", ["AAMkA1"]),
        ("bccRecipients/any(r:r/emailAddress/address eq 'cara@contoso.com')", []),
        ("toRecipients/any(r:contains(r/emailAddress/address,'contoso'))", ["aamka2", "AAMkA3"]),
        ("not categories/any(c:c eq 'blue')", ["aamka2"]),
    ],
)
def test_lambdas(text, expected):
    assert where(text) == expected


def test_recipient_lambdas_can_be_refused_like_graph_does():
    err = error(
        lambda t: parse_filter(t, allow_recipient_lambdas=False), "toRecipients/any(r:r/emailAddress/address eq 'a')"
    )
    assert (err.code, err.message) == (INVALID_NODES, INVALID_NODES_TEXT)
    assert parse_filter("categories/any(c:c eq 'x')", allow_recipient_lambdas=False).properties == ("categories",)


# ------------------------------------------------------------------------------------------ precedence


def test_and_binds_tighter_than_or():
    # isRead eq true or (hasAttachments eq true and importance eq 'low'): only the read one.
    assert where("isRead eq true or hasAttachments eq true and importance eq 'low'") == ["aamka2"]
    assert where("(isRead eq true or hasAttachments eq true) and importance eq 'low'") == []
    assert where("isRead eq false and hasAttachments eq false or importance eq 'normal'") == ["aamka2", "AAMkA3"]


def test_not_binds_tightest():
    assert where("not isRead") == ["AAMkA1", "AAMkA3"]
    assert where("not (isRead eq true)") == ["AAMkA1", "AAMkA3"]
    assert where("not not isRead") == ["aamka2"]
    assert where("not isRead and isDraft") == ["AAMkA3"]
    # `not isRead eq true` is `(not isRead) eq true`, a comparison without a property: refused.
    assert error(parse_filter, "not isRead eq true").code == INVALID_NODES
    err = error(parse_filter, "not subject eq 'x'")
    assert err.message == (
        "A unary operator with an incompatible type was detected. "
        "Found operand type 'Edm.String' for operator kind 'Not'."
    )


# ------------------------------------------------------------------------------------------ isread_only


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("isRead eq false", False),
        ("IsRead eq true", True),
        ("(isRead eq false)", False),
        ("false eq isRead", False),
        ("isRead eq false and hasAttachments eq true", None),
        ("isRead ne false", None),
        ("isRead eq null", None),
        ("not isRead", None),
        ("isRead", None),
        ("isDraft eq false", None),
    ],
)
def test_isread_only(text, expected):
    assert parse_filter(text).isread_only is expected


# ------------------------------------------------------------------------------------------ InefficientFilter


@pytest.mark.parametrize(
    ("flt", "orderby"),
    [
        ("receivedDateTime ge 2024-01-01 and isRead eq false", "receivedDateTime desc"),
        ("receivedDateTime ge 1900-01-01T00:00:00Z and from/emailAddress/address eq 'a@b.c'", "receivedDateTime"),
        ("hasAttachments eq true and receivedDateTime ge 2024-01-01", "hasAttachments,receivedDateTime desc"),
        ("isRead eq false", "isRead"),
        ("contains(subject,'x') and isRead eq false", "subject"),
        ("receivedDateTime ge 2024-01-01 or isRead eq false", "ReceivedDateTime DESC"),
    ],
)
def test_filter_orderby_valid_combinations(flt, orderby):
    check_filter_orderby(parse_filter(flt), parse_orderby(orderby))


@pytest.mark.parametrize(
    ("flt", "orderby"),
    [
        ("isRead eq false", "receivedDateTime desc"),  # not in $filter at all
        ("from/emailAddress/address eq 'a@b.c'", "receivedDateTime"),
        ("receivedDateTime ge 2024-01-01 and hasAttachments eq true", "hasAttachments,receivedDateTime"),  # order
        ("isRead eq false and receivedDateTime ge 2024-01-01", "receivedDateTime desc"),  # not first
        ("inferenceClassification eq 'focused'", "receivedDateTime desc"),
        ("contains(subject,'x')", "receivedDateTime desc"),
    ],
)
def test_filter_orderby_invalid_combinations(flt, orderby):
    with pytest.raises(InefficientFilter) as caught:
        check_filter_orderby(parse_filter(flt), parse_orderby(orderby))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "InefficientFilter",
        "The restriction or sort order is too complex for this operation.",
    )


def test_filter_orderby_without_one_of_them_is_fine():
    check_filter_orderby(None, parse_orderby("receivedDateTime desc"))
    check_filter_orderby(parse_filter("isRead eq false"), [])


# ------------------------------------------------------------------------------------------ $filter errors


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("foo eq 1", PARSE_URI, "Could not find a property named 'foo' on type 'microsoft.graph.message'."),
        ("isJunk ne true", PARSE_URI, "Could not find a property named 'isJunk' on type 'microsoft.graph.message'."),
        (
            "from/emailAddress/mail eq 'x'",
            PARSE_URI,
            "Could not find a property named 'mail' on type 'microsoft.graph.emailAddress'.",
        ),
        (
            "isRead eq 'yes'",
            PARSE_URI,
            "A binary operator with incompatible types was detected. "
            "Found operand types 'Edm.Boolean' and 'Edm.String' for operator kind 'Equal'.",
        ),
        (
            "receivedDateTime ge 'abc'",
            PARSE_URI,
            "A binary operator with incompatible types was detected. "
            "Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThanOrEqual'.",
        ),
        (
            "subject eq 5",
            PARSE_URI,
            "A binary operator with incompatible types was detected. "
            "Found operand types 'Edm.String' and 'Edm.Int32' for operator kind 'Equal'.",
        ),
        (
            "isRead eq 1",
            PARSE_URI,
            "A binary operator with incompatible types was detected. "
            "Found operand types 'Edm.Boolean' and 'Edm.Int32' for operator kind 'Equal'.",
        ),
        (
            "subject lt 2024-01-01",
            PARSE_URI,
            "A binary operator with incompatible types was detected. "
            "Found operand types 'Edm.String' and 'Edm.Date' for operator kind 'LessThan'.",
        ),
        (
            "subject and isRead",
            PARSE_URI,
            "A binary operator with incompatible types was detected. "
            "Found operand types 'Edm.String' and 'Edm.Boolean' for operator kind 'And'.",
        ),
        (
            "isRead eq true or subject",
            PARSE_URI,
            "A binary operator with incompatible types was detected. "
            "Found operand types 'Edm.Boolean' and 'Edm.String' for operator kind 'Or'.",
        ),
        ("importance eq 'urgent'", PARSE_URI, "The string 'urgent' is not a valid enumeration type constant."),
        ("subject", PARSE_URI, "The $filter expression must evaluate to a single boolean value."),
        (
            "categories eq 'Red'",
            PARSE_URI,
            "The operand for a binary operator 'Equal' is not a single value. "
            "Binary operators require both operands to be single values.",
        ),
        (
            "toRecipients/emailAddress/address eq 'a@b.c'",
            PARSE_URI,
            "The parent value for a property access of a property 'emailAddress' is not a single value. "
            "Property access can only be applied to a single value.",
        ),
        ("subject/any(s:s eq 'x')", PARSE_URI, "Any/All may only be used following a collection."),
        ("categories/any(c:c)", PARSE_URI, "The Any/All query expression must evaluate to a single boolean value."),
        (
            "categories/any(c:categories/any(c:c eq 'x'))",
            PARSE_URI,
            "The range variable 'c' has already been declared.",
        ),
        (
            "contains(subject)",
            PARSE_URI,
            "No function signature for the function with name 'contains' matches the specified arguments. "
            "The function signatures considered are: contains(Edm.String Nullable=true, Edm.String Nullable=true).",
        ),
        (
            "startswith(isRead,'t')",
            PARSE_URI,
            "No function signature for the function with name 'startswith' matches the specified arguments. "
            "The function signatures considered are: startswith(Edm.String Nullable=true, "
            "Edm.String Nullable=true).",
        ),
        (
            "frobnicate(subject)",
            PARSE_URI,
            "An unknown function with name 'frobnicate' was found. This may also be a function import or a key "
            "lookup on a navigation property, which is not allowed.",
        ),
        ("subject eq 'x", PARSE_URI, "There is an unterminated string literal at position 13 in 'subject eq 'x'."),
        ("isRead eq", PARSE_URI, "Expression expected at position 9 in 'isRead eq'."),
        ("", PARSE_URI, "Expression expected at position 0 in ''."),
        ("isRead eq false foo", PARSE_URI, "Syntax error at position 19 in 'isRead eq false foo'."),
        ("(isRead eq true", PARSE_URI, "')' or operator expected at position 15 in '(isRead eq true'."),
        ("contains(subject 'x')", PARSE_URI, "')' or ',' expected at position 17 in 'contains(subject 'x')'."),
        (
            'subject eq "x"',
            PARSE_URI,
            "Syntax error: character '\"' is not valid at position 11 in 'subject eq \"x\"'.",
        ),
        (
            "isRead == false",
            PARSE_URI,
            "Syntax error: character '=' is not valid at position 7 in 'isRead == false'.",
        ),
        (
            "receivedDateTime ge 2024-02-30T00:00:00Z",
            PARSE_URI,
            "The DateTimeOffset text '2024-02-30T00:00:00Z' should be in format "
            "'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range.",
        ),
        ("(" * 80 + "isRead" + ")" * 80, PARSE_URI, "Recursion depth exceeded allowed limit."),
        ("endswith(from/emailAddress/address,'gmail.com')", INVALID_NODES, INVALID_NODES_TEXT),
        ("tolower(subject) eq 'x'", INVALID_NODES, INVALID_NODES_TEXT),
        ("categories/all(c:c eq 'x')", INVALID_NODES, INVALID_NODES_TEXT),
        ("categories/any()", INVALID_NODES, INVALID_NODES_TEXT),
        ("webLink eq 'x'", INVALID_NODES, INVALID_NODES_TEXT),
        ("from eq null", INVALID_NODES, INVALID_NODES_TEXT),
        ("isRead eq isDraft", INVALID_NODES, INVALID_NODES_TEXT),
        ("1 eq 1", INVALID_NODES, INVALID_NODES_TEXT),
        ("importance has 'high'", INVALID_NODES, INVALID_NODES_TEXT),
        ("subject in ('a','b')", INVALID_NODES, INVALID_NODES_TEXT),
    ],
)
def test_filter_errors(text, code, message):
    err = error(parse_filter, text)
    assert (err.code, err.message) == (code, message)


# ------------------------------------------------------------------------------------------ $orderby, $select


def test_orderby():
    assert parse_orderby("receivedDateTime desc") == [("receivedDateTime", True)]
    assert parse_orderby("subject asc,receivedDateTime desc") == [("subject", False), ("receivedDateTime", True)]
    assert parse_orderby(" Subject ,  from/EmailAddress/Name DESC ") == [
        ("subject", False),
        ("from/emailAddress/name", True),
    ]
    assert parse_orderby("isRead") == [("isRead", False)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("receivedDateTime descending", "Syntax error at position 27 in 'receivedDateTime descending'."),
        ("receivedDateTime desc asc", "Syntax error at position 25 in 'receivedDateTime desc asc'."),
        ("subject,", "Expression expected at position 8 in 'subject,'."),
        ("", "Expression expected at position 0 in ''."),
        ("foo desc", "Could not find a property named 'foo' on type 'microsoft.graph.message'."),
        ("categories", "The $orderby expression must evaluate to a single value of primitive type."),
        ("from", "The $orderby expression must evaluate to a single value of primitive type."),
        ("subject;", "Syntax error: character ';' is not valid at position 7 in 'subject;'."),
    ],
)
def test_orderby_errors(text, message):
    err = error(parse_orderby, text)
    assert (err.code, err.message) == (PARSE_URI, message)


def test_select():
    assert parse_select("subject,from") == ["subject", "from"]
    assert parse_select(" Subject , ReceivedDateTime,subject, ID") == ["subject", "receivedDateTime", "id"]
    assert parse_select("from/emailAddress/address,body/content") == ["from", "body"]
    assert parse_select("internetMessageHeaders,uniqueBody,attachments") == [
        "internetMessageHeaders",
        "uniqueBody",
        "attachments",
    ]
    assert parse_select("") == []
    every = parse_select("*")
    assert "subject" in every and "internetMessageHeaders" not in every and "attachments" not in every


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("subject,foo", "Could not find a property named 'foo' on type 'microsoft.graph.message'."),
        ("from/emailAddress/mail", "Could not find a property named 'mail' on type 'microsoft.graph.emailAddress'."),
        ("subject,,from", "Syntax error at position 8 in 'subject,,from'."),
        ("subject;from", "Syntax error: character ';' is not valid at position 7 in 'subject;from'."),
        ("sub ject", "Syntax error at position 3 in 'sub ject'."),
    ],
)
def test_select_errors(text, message):
    err = error(parse_select, text)
    assert (err.code, err.message) == (PARSE_URI, message)


# ------------------------------------------------------------------------------------------ $top, $skip


def test_top_and_skip():
    assert parse_top("10") == 10
    assert parse_top(" 1000 ") == 1000
    assert parse_top("+1") == 1
    assert parse_skip("0") == 0
    assert parse_skip("250") == 250


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "Invalid value '' for $top query option found. "
            "The $top query option requires a non-negative integer value.",
        ),
        (
            "ten",
            "Invalid value 'ten' for $top query option found. "
            "The $top query option requires a non-negative integer value.",
        ),
        (
            "-1",
            "Invalid value '-1' for $top query option found. "
            "The $top query option requires a non-negative integer value.",
        ),
        (
            "1.5",
            "Invalid value '1.5' for $top query option found. "
            "The $top query option requires a non-negative integer value.",
        ),
        (
            "0",
            "Invalid value '0' for $top query option found. The $top query option requires a value between 1 and 1000.",
        ),
        (
            "1001",
            "The query specified in the URI is not valid. The limit of '1000' for Top query has been exceeded. "
            "The value from the incoming request is '1001'.",
        ),
    ],
)
def test_top_errors(text, message):
    err = error(parse_top, text)
    assert (err.code, err.message) == ("BadRequest", message)


@pytest.mark.parametrize("text", ["", "-5", "x", "1e3", "9" * 30])
def test_skip_errors(text):
    err = error(parse_skip, text)
    assert err.code == "BadRequest"
    assert err.message == (
        f"Invalid value '{text}' for $skip query option found. "
        "The $skip query option requires a non-negative integer value."
    )


@pytest.mark.parametrize("value", [2**31, 2**63 - 1])
def test_skip_beyond_int32_is_refused_with_the_limit(value):
    assert parse_skip("2147483647") == 2**31 - 1
    err = error(parse_skip, str(value))
    assert (err.status, err.code) == (400, "BadRequest")
    assert err.message == (
        "The query specified in the URI is not valid. The limit of '2147483647' for Skip query has been "
        f"exceeded. The value from the incoming request is '{value}'."
    )


# ------------------------------------------------------------------------------------------ $search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"quarterly"', ["AAMkA1"]),
        ("quarterly", ["AAMkA1"]),
        ('"QUARTERLY report"', ["AAMkA1"]),  # AND between terms
        ('"quarterly pizza"', []),
        ('"quarterly OR pizza"', ["AAMkA1", "aamka2"]),
        ("quarterly OR pizza", ["AAMkA1", "aamka2"]),
        ('"quart"', ["AAMkA1"]),  # word prefix
        ('"arterly"', []),  # not inside a word
        ('"numbers for q1"', ["AAMkA1"]),  # the body, tags and &nbsp; removed
        ('"\\"for Q1\\""', ["AAMkA1"]),  # a phrase inside the KQL
        ('"\\"Q1 for\\""', []),
        ('"adele"', ["AAMkA1"]),  # from name
        ('"fabrikam.com"', ["aamka2"]),  # from address
        ('"lobby NOT pizza"', []),
        ('"NOT lobby"', ["AAMkA1", "AAMkA3"]),
        ("NOT lobby", ["AAMkA1", "AAMkA3"]),
        ('"(quarterly OR lunch) AND pizza"', ["aamka2"]),
        ('"subject:lunch"', ["aamka2"]),
        ('"subject:\\"let\'s meet\\""', ["aamka2"]),
        ('"subject:pizza"', []),
        ('"body:lobby"', ["aamka2"]),
        ('"from:adelev@contoso.com"', ["AAMkA1"]),
        ('"to:bob@fabrikam.com"', ["AAMkA1", "AAMkA3"]),
        ('"cc:cara"', ["AAMkA1"]),
        ('"bcc:cara"', []),
        ('"recipients:adele"', ["aamka2"]),
        ('"participants:dan"', ["AAMkA3"]),
        ('"hasAttachments:true"', ["AAMkA1"]),
        ('"hasattachment:no"', ["aamka2", "AAMkA3"]),
        ('"importance:low"', ["AAMkA3"]),
        ('"kind:email"', ["AAMkA1", "aamka2", "AAMkA3"]),
        ('"kind:meetings"', []),
        ('"attachment:q1"', ["AAMkA1"]),
        ('"received:2024-03-02"', ["aamka2"]),
        ('"received:3/2/2024"', ["aamka2"]),
        ('"received>=2024-03-02"', ["aamka2", "AAMkA3"]),
        ('"received>2024-03-02"', ["AAMkA3"]),
        ('"received<2024-03-02"', ["AAMkA1"]),
        ('"received<=2024-03-02"', ["AAMkA1", "aamka2"]),
        ('"sent:2024-03-01"', ["AAMkA1"]),
        ('"size>10000"', ["AAMkA1"]),
        ('"isRead:false"', []),  # not a KQL property: searched as text
        ('"received:soon"', []),
        ('""', ["AAMkA1", "aamka2", "AAMkA3"]),
        ('"quarterly" "report"', ["AAMkA1"]),
        ('"quarterly" OR "lunch"', ["AAMkA1", "aamka2"]),
    ],
)
def test_search(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "from:noreply.ap@notification.ap.org",
            "Syntax error: character ':' is not valid at position 4 in 'from:noreply.ap@notification.ap.org'.",
        ),
        ("Backup Config 0", "Syntax error: character '0' is not valid at position 14 in 'Backup Config 0'."),
        ("_", "Syntax error: character '_' is not valid at position 0 in '_'."),
        ('"abc', "There is an unterminated string literal at position 4 in '\"abc'."),
        ("kit )", "Syntax error at position 5 in 'kit )'."),
        ("kit ( A", "')' or operator expected at position 7 in 'kit ( A'."),
        ("", "Expression expected at position 0 in ''."),
        ("a AND", "Expression expected at position 5 in 'a AND'."),
        ('"a\\nb"', "An unrecognized escape sequence '\\n' was found at position 2 in '\"a\\nb\"'."),
    ],
)
def test_search_errors(text, message):
    err = error(parse_search, text)
    assert (err.code, err.message) == (PARSE_URI, message)


def test_search_cannot_be_combined():
    check_search_combination(has_search=True, has_filter=False, has_orderby=False)
    check_search_combination(has_search=False, has_filter=True, has_orderby=True)
    with pytest.raises(SearchWithFilter) as caught:
        check_search_combination(has_search=True, has_filter=True, has_orderby=True)
    assert (caught.value.code, caught.value.message) == (
        "SearchWithFilter",
        "The query parameter '$filter' is not supported with '$search'.",
    )
    with pytest.raises(SearchWithOrderBy) as caught:
        check_search_combination(has_search=True, has_filter=False, has_orderby=True)
    assert (caught.value.code, caught.value.message) == (
        "SearchWithOrderBy",
        "The query parameter '$orderBy' is not supported with '$search'.",
    )


def test_search_asks_each_path_once():
    calls: list[str] = []
    get = getter(MESSAGES[0])

    def counting(path: str) -> Any:
        calls.append(path)
        return get(path)

    assert parse_search('"report OR numbers OR nothing OR adele"').matches(counting)
    assert len(calls) == len(set(calls))


# ------------------------------------------------------------------------------------------ ordering


def test_order_nulls_first_ascending_and_last_descending():
    by_subject = order(MESSAGES, parse_orderby("subject"), getter)
    assert [m["id"] for m in by_subject] == ["AAMkA3", "aamka2", "AAMkA1"]
    by_subject_desc = order(MESSAGES, parse_orderby("subject desc"), getter)
    assert [m["id"] for m in by_subject_desc] == ["AAMkA1", "aamka2", "AAMkA3"]
    by_sent = order(MESSAGES, parse_orderby("sentDateTime desc"), getter)
    assert [m["id"] for m in by_sent] == ["aamka2", "AAMkA1", "AAMkA3"]


def test_order_by_several_keys_is_stable():
    rows = [
        {"id": str(i), "isRead": i % 2 == 0, "receivedDateTime": at(1) + timedelta(hours=i // 3), "subject": "same"}
        for i in range(9)
    ]
    result = [m["id"] for m in order(rows, parse_orderby("isRead,receivedDateTime desc"), getter)]
    assert result == ["7", "3", "5", "1", "6", "8", "4", "0", "2"]  # ties keep their input order
    stable = [m["id"] for m in order(rows, parse_orderby("subject"), getter)]
    assert stable == [str(i) for i in range(9)]


def test_order_compares_strings_case_insensitively():
    rows = [{"id": "1", "subject": "beta"}, {"id": "2", "subject": "Alpha"}, {"id": "3", "subject": "alpha"}]
    assert [m["id"] for m in order(rows, [("subject", False)], getter)] == ["2", "3", "1"]


# ------------------------------------------------------------------------------------------ fuzz

FRAGMENTS = [
    "isRead", "subject", "receivedDateTime", "from/emailAddress/address", "categories", "toRecipients", "body/content",
    "importance", "flag/flagStatus", "id", "foo", "$it", "/", "/any(", "/all(", "c:", "c", "r/emailAddress/address",
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "has", "in", "add", "(", ")", ",", ":", "'x'", "'it''s'",
    "'", "''", "true", "false", "null", "2024-01-01", "2024-01-01T00:00:00Z", "2024-13-45", "2024-01-01T25:00Z",
    "2024-01-01T00:00:00+15:00", "5", "-3", "1.5", "1e400", "99999999999999999999999", "startswith(", "contains(",
    "endswith(", "tolower(", "asc", "desc", "AND", "OR", "NOT", '"', '"x"', "\\", "*", "é", "\x00", "&", ";", "=",
    "subject:", "received>=", "size<", "hasAttachments:true", " ", "  ",
]  # fmt: skip

WEIRD_MESSAGES: list[dict[str, Any]] = [
    *MESSAGES,
    {},
    {
        "subject": 5,
        "isRead": "yes",
        "receivedDateTime": "not a date",
        "sentDateTime": datetime(2024, 1, 1),
        "categories": "Red",
        "toRecipients": [None, 3, {"emailAddress": "x"}, {"emailAddress": {"address": 7}}],
        "from": {"emailAddress": None},
        "body": "plain",
        "importance": 3,
        "hasAttachments": None,
        "attachments": [None, {"name": None}],
        "size": "big",
    },
]


def exercise(text: str) -> None:
    """Every parser either parses ``text`` or raises ODataQueryError; parsed results evaluate without error."""
    for parse in (parse_filter, parse_search, parse_orderby, parse_select, parse_top, parse_skip):
        try:
            parsed = parse(text)
        except ODataQueryError as err:
            assert err.status == 400 and err.code and err.message
            continue
        if isinstance(parsed, FilterExpr):
            check_filter_orderby(parsed, [])
            for message in WEIRD_MESSAGES:
                assert parsed.matches(getter(message)) in (True, False)
        elif parse is parse_search:
            for message in WEIRD_MESSAGES:
                assert parsed.matches(getter(message)) in (True, False)
        elif parse is parse_orderby:
            order(WEIRD_MESSAGES, parsed, getter)


def test_fuzz_token_soup():
    rng = random.Random(20240301)
    for _ in range(1500):
        pieces = rng.choices(FRAGMENTS, k=rng.randint(0, 14))
        exercise(rng.choice(["", " "]).join(pieces))


def test_fuzz_random_characters():
    rng = random.Random(7)
    alphabet = "abcdeiqrsRAND ()',:/\"\\-+.0123456789*=<>$_éß\t\n\u00a0\u2028\U0001f600"
    for _ in range(1500):
        exercise("".join(rng.choices(alphabet, k=rng.randint(0, 30))))


PROPERTIES = [
    "isRead", "isDraft", "hasAttachments", "subject", "bodyPreview", "body/content", "importance", "flag/flagStatus",
    "from/emailAddress/address", "sender/emailAddress/name", "receivedDateTime", "sentDateTime", "id", "webLink",
    "inferenceClassification", "categories", "from",
]  # fmt: skip
LITERALS = [
    "true", "false", "null", "'x'", "'High'", "'normal'", "'flagged'", "'a''b'", "2024-03-02", "2024-03-02T10:00:00Z",
    "3", "-1", "2.5",
]  # fmt: skip


def random_filter(rng: random.Random, depth: int = 0) -> str:
    """A mostly well-formed filter: comparisons, functions, lambdas, and/or/not, with type mismatches mixed in."""
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        return f"{random_filter(rng, depth + 1)} {rng.choice(['and', 'or', 'AND'])} {random_filter(rng, depth + 1)}"
    if depth < 3 and roll < 0.4:
        return f"{rng.choice(['not ', 'not', '('])}({random_filter(rng, depth + 1)})".replace("((", "(", 1)
    if roll < 0.5:
        prop = rng.choice(["subject", "body/content", "from/emailAddress/address", "importance", "isRead"])
        return f"{rng.choice(['startswith', 'contains', 'endswith'])}({prop},{rng.choice(LITERALS)})"
    if roll < 0.6:
        coll = rng.choice(["categories", "toRecipients", "ccRecipients", "subject"])
        var = rng.choice(["c", "r"])
        inner = rng.choice([f"{var} eq 'x'", f"{var}/emailAddress/address eq 'bob@fabrikam.com'", "isRead eq true"])
        return f"{coll}/{rng.choice(['any', 'all'])}({var}:{inner})"
    left, right = rng.choice(PROPERTIES), rng.choice(LITERALS)
    if rng.random() < 0.2:
        left, right = right, left
    return f"{left} {rng.choice(['eq', 'ne', 'gt', 'ge', 'lt', 'le'])} {right}"


def mutate(rng: random.Random, text: str) -> str:
    if not text or rng.random() < 0.6:
        return text
    i = rng.randrange(len(text))
    return rng.choice([text[:i] + text[i + 1 :], text[:i] + rng.choice(FRAGMENTS) + text[i:], text[:i]])


def test_fuzz_grammar():
    rng = random.Random(11)
    parsed = 0
    for _ in range(1500):
        text = mutate(rng, random_filter(rng))
        exercise(text)
        exercise(f'"{text}"')
        try:
            parse_filter(text)
            parsed += 1
        except ODataQueryError:
            pass
    assert parsed > 100  # the generator does reach evaluation


def test_deep_nesting_is_refused_not_crashed():
    for text in ["(" * 5000, "not " * 5000 + "isRead", "categories/any(c:" * 500, '"' + "(" * 5000 + 'x"']:
        exercise(text)
    assert parse_filter("isRead eq false and " * 2000 + "isRead eq false").matches(getter(MESSAGES[0]))


if given is not None:

    @settings(max_examples=300, deadline=None)
    @given(st.text())
    def test_hypothesis_any_text(text):
        exercise(text)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(FRAGMENTS), max_size=14).map(" ".join))
    def test_hypothesis_token_soup(text):
        exercise(text)
