"""The message type as $filter, $orderby and $select see it (EDM types, properties, what each option allows),
and the literals and tokens of an expression, as ODataLib reads them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from m365_mock.graph.errors import ParseUriError

MAX_DEPTH = 64  # fidelity: chosen (ODataLib's own default is deeper; Graph's real limit is not published)

MESSAGE_TYPE = "microsoft.graph.message"
STRING, BOOLEAN, DATETIMEOFFSET, DATE = "Edm.String", "Edm.Boolean", "Edm.DateTimeOffset", "Edm.Date"
INT32, INT64, DECIMAL, DOUBLE, BINARY = "Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double", "Edm.Binary"
NULL = "null"
IMPORTANCE = "microsoft.graph.importance"
INFERENCE = "microsoft.graph.inferenceClassificationType"
FLAG_STATUS = "microsoft.graph.followupFlagStatus"
BODY_TYPE = "microsoft.graph.bodyType"
RECIPIENT = "microsoft.graph.recipient"
EMAIL_ADDRESS = "microsoft.graph.emailAddress"
ITEM_BODY = "microsoft.graph.itemBody"
FOLLOWUP_FLAG = "microsoft.graph.followupFlag"
DATETIME_TIMEZONE = "microsoft.graph.dateTimeTimeZone"
HEADER = "microsoft.graph.internetMessageHeader"

ENUM_MEMBERS: dict[str, tuple[str, ...]] = {
    IMPORTANCE: ("low", "normal", "high"),
    INFERENCE: ("focused", "other"),
    FLAG_STATUS: ("notFlagged", "complete", "flagged"),
    BODY_TYPE: ("text", "html"),
}
NUMERIC = frozenset({INT32, INT64, DECIMAL, DOUBLE})
_PRIMITIVES = frozenset({STRING, BOOLEAN, DATETIMEOFFSET, DATE, BINARY}) | NUMERIC


def _collection(item_type: str) -> str:
    return f"Collection({item_type})"


_STRUCTURE: dict[str, tuple[tuple[str, str], ...]] = {
    MESSAGE_TYPE: (
        ("id", STRING),
        ("categories", _collection(STRING)),
        ("changeKey", STRING),
        ("createdDateTime", DATETIMEOFFSET),
        ("lastModifiedDateTime", DATETIMEOFFSET),
        ("bccRecipients", _collection(RECIPIENT)),
        ("body", ITEM_BODY),
        ("bodyPreview", STRING),
        ("ccRecipients", _collection(RECIPIENT)),
        ("conversationId", STRING),
        ("conversationIndex", BINARY),
        ("flag", FOLLOWUP_FLAG),
        ("from", RECIPIENT),
        ("hasAttachments", BOOLEAN),
        ("importance", IMPORTANCE),
        ("inferenceClassification", INFERENCE),
        ("internetMessageHeaders", _collection(HEADER)),
        ("internetMessageId", STRING),
        ("isDeliveryReceiptRequested", BOOLEAN),
        ("isDraft", BOOLEAN),
        ("isRead", BOOLEAN),
        ("isReadReceiptRequested", BOOLEAN),
        ("parentFolderId", STRING),
        ("receivedDateTime", DATETIMEOFFSET),
        ("replyTo", _collection(RECIPIENT)),
        ("sender", RECIPIENT),
        ("sentDateTime", DATETIMEOFFSET),
        ("subject", STRING),
        ("toRecipients", _collection(RECIPIENT)),
        ("uniqueBody", ITEM_BODY),
        ("webLink", STRING),
        ("attachments", _collection("microsoft.graph.attachment")),
        ("extensions", _collection("microsoft.graph.extension")),
        ("multiValueExtendedProperties", _collection("microsoft.graph.multiValueLegacyExtendedProperty")),
        ("singleValueExtendedProperties", _collection("microsoft.graph.singleValueLegacyExtendedProperty")),
    ),
    RECIPIENT: (("emailAddress", EMAIL_ADDRESS),),
    EMAIL_ADDRESS: (("name", STRING), ("address", STRING)),
    ITEM_BODY: (("contentType", BODY_TYPE), ("content", STRING)),
    FOLLOWUP_FLAG: (
        ("flagStatus", FLAG_STATUS),
        ("startDateTime", DATETIME_TIMEZONE),
        ("dueDateTime", DATETIME_TIMEZONE),
        ("completedDateTime", DATETIME_TIMEZONE),
    ),
    DATETIME_TIMEZONE: (("dateTime", STRING), ("timeZone", STRING)),
    HEADER: (("name", STRING), ("value", STRING)),
}
_MEMBERS: dict[str, dict[str, tuple[str, str]]] = {
    type_name: {name.lower(): (name, member_type) for name, member_type in members}
    for type_name, members in _STRUCTURE.items()
}
NAVIGATION_PROPERTIES = frozenset(
    {"attachments", "extensions", "multiValueExtendedProperties", "singleValueExtendedProperties"}
)
SELECT_ONLY_PROPERTIES = frozenset({"internetMessageHeaders", "uniqueBody"})
DEFAULT_PROPERTIES: tuple[str, ...] = tuple(
    name
    for name, _ in _STRUCTURE[MESSAGE_TYPE]
    if name not in NAVIGATION_PROPERTIES and name not in SELECT_ONLY_PROPERTIES
)

# Paths $filter accepts; another known property parses but is refused as an invalid node.
FILTERABLE_PATHS = frozenset(
    {
        "id",
        "isRead",
        "isDraft",
        "hasAttachments",
        "importance",
        "subject",
        "receivedDateTime",
        "sentDateTime",
        "createdDateTime",
        "lastModifiedDateTime",
        "from/emailAddress/address",
        "from/emailAddress/name",
        "sender/emailAddress/address",
        "sender/emailAddress/name",
        "categories",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "flag/flagStatus",
        "inferenceClassification",
        "conversationId",
        "internetMessageId",
        "parentFolderId",
        "bodyPreview",
        "body/content",  # accepted by Graph (microsoft-graph-explorer-v4#3765), whatever it matches there
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
    }
)
RECIPIENT_COLLECTIONS = frozenset({"toRecipients", "ccRecipients", "bccRecipients", "replyTo"})
# Base64 ids compare exactly; every other string compares case-insensitively like Exchange.
CASE_SENSITIVE_PATHS = frozenset({"id", "conversationId", "parentFolderId"})  # fidelity: chosen


def is_collection(type_name: str) -> bool:
    return type_name.startswith("Collection(")


def item_type(type_name: str) -> str:
    return type_name[len("Collection(") : -1] if is_collection(type_name) else type_name


def is_scalar(type_name: str) -> bool:
    return type_name in _PRIMITIVES or type_name in ENUM_MEMBERS


@dataclass(frozen=True)
class PropertySpec:
    """One addressable message property: canonical path, OData type, and what the query options allow."""

    path: str
    type: str
    filterable: bool
    sortable: bool

    @property
    def is_collection(self) -> bool:
        return is_collection(self.type)


def _build_properties() -> dict[str, PropertySpec]:
    specs: dict[str, PropertySpec] = {}

    def walk(type_name: str, prefix: str) -> None:
        for name, member_type in _STRUCTURE[type_name]:
            path = prefix + name
            specs[path.lower()] = PropertySpec(path, member_type, path in FILTERABLE_PATHS, is_scalar(member_type))
            if member_type in _STRUCTURE:
                walk(member_type, path + "/")

    walk(MESSAGE_TYPE, "")
    return specs


MESSAGE_PROPERTIES: dict[str, PropertySpec] = _build_properties()


def resolve(
    segments: Sequence[str], root_type: str, prefix: Sequence[str] = (), *, through_collections: bool = False
) -> tuple[str, str]:
    """Walk ``segments`` from ``root_type``; return (canonical path, type) or raise ODataLib's binding error."""
    type_name = root_type
    canonical = list(prefix)
    for segment in segments:
        if is_collection(type_name) and not through_collections:
            raise ParseUriError(
                f"The parent value for a property access of a property '{segment}' is not a single value. "
                "Property access can only be applied to a single value."
            )
        owner = item_type(type_name)
        member = _MEMBERS.get(owner, {}).get(segment.lower())
        if member is None:
            raise ParseUriError(f"Could not find a property named '{segment}' on type '{owner}'.")
        name, type_name = member
        canonical.append(name)
    return "/".join(canonical), type_name


# --------------------------------------------------------------------------------------------- values


def as_datetime(value: Any) -> datetime | None:
    """A date or time value as an aware datetime (naive ones are UTC); None when it is not one."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return as_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


_INT64_RE = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*\Z")  # what .NET long.TryParse accepts


def parse_int64(text: str) -> int | None:
    if not _INT64_RE.match(text):
        return None
    value = int(text.strip())
    return value if -(2**63) <= value < 2**63 else None


# --------------------------------------------------------------------------------------------- lexer


@dataclass(slots=True)
class Token:
    kind: str  # ident, string, number, dto, date, ( ) , : / end; for $search: word, phrase, AND, OR, NOT
    text: str
    pos: int
    end: int
    value: Any = None
    type: str = ""


class TokenCursor:
    """A parser's place in a token list that ends with an `end` token: the current token and a step past it."""

    tokens: list[Token]
    i: int

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token


_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?(Z|z|[+-]\d{2}:\d{2})?)?", re.ASCII
)
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", re.ASCII)
_PUNCTUATION = "(),:/"


def _datetime_literal(match: re.Match[str]) -> tuple[str, Any]:
    raw = match.group(0)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        if hour is None:
            return DATE, date(int(year), int(month), int(day))
        tz = UTC
        if offset and offset not in "Zz":
            sign = -1 if offset[0] == "-" else 1
            delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
            if delta > timedelta(hours=14) or int(offset[4:6]) >= 60:
                raise ValueError(offset)
            tz = timezone(sign * delta)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tz)
        return DATETIMEOFFSET, value.astimezone(UTC)
    except ValueError:
        raise ParseUriError(
            f"The DateTimeOffset text '{raw}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' "
            "and each field value is within valid range."
        ) from None


def _number_literal(raw: str) -> tuple[str, Any]:
    if "." not in raw and "e" not in raw.lower():
        whole = int(raw)
        return (INT32 if -(2**31) <= whole < 2**31 else INT64), whole
    try:
        value = float(raw)
    except (ValueError, OverflowError):  # pragma: no cover - the regex only lets numbers through
        value = 0.0
    return (DOUBLE if "e" in raw.lower() else DECIMAL), value


def lex(text: str) -> list[Token]:
    """ODataLib-style tokens of a $filter or $orderby expression."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _PUNCTUATION:
            tokens.append(Token(c, c, i, i + 1))
            i += 1
        elif c == "'":
            chars: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise ParseUriError.unterminated(n, text)
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        chars.append("'")
                        j += 2
                        continue
                    break
                chars.append(text[j])
                j += 1
            tokens.append(Token("string", text[i : j + 1], i, j + 1, "".join(chars), STRING))
            i = j + 1
        elif "0" <= c <= "9" or (c == "-" and i + 1 < n and "0" <= text[i + 1] <= "9"):
            match = _DATE_RE.match(text, i) if c != "-" else None
            if match:
                type_name, value = _datetime_literal(match)
                kind = "date" if type_name == DATE else "dto"
            else:
                match = _NUMBER_RE.match(text, i)
                assert match is not None
                type_name, value = _number_literal(match.group(0))
                kind = "number"
            tokens.append(Token(kind, match.group(0), i, match.end(), value, type_name))
            i = match.end()
        elif c.isalpha() or c in "_$":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("ident", text[i:j], i, j))
            i = j
        else:
            raise ParseUriError.invalid_character(c, i, text)
    tokens.append(Token("end", "", n, n))
    return tokens
