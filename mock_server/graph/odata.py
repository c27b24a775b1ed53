"""OData query options on message lists: $select, $orderby, $filter, $search, $top and $skip.

Pure Python, no Flask. It parses the subset that real mail clients send to ``GET /users/{u}/messages`` and
``/mailFolders/{id}/messages``, raises Graph's error codes (texts from ODataLib's resource strings where the
real service passes them through), and evaluates filters and searches against one message through a getter.

The getter, ``get(canonical_path)``, is supplied by the caller and returns the message's value as Graph JSON
shows it, except that DateTimeOffset properties come back as timezone-aware ``datetime`` (UTC). It must return
``None`` for a value that is missing. Paths asked for:

* ``$filter``: the canonical path of every message property the filter names, e.g. ``"isRead"``,
  ``"subject"``, ``"receivedDateTime"``, ``"from/emailAddress/address"``, ``"flag/flagStatus"``,
  ``"body/content"``; for a lambda the collection itself: ``"categories"`` (list of str) or
  ``"toRecipients"`` / ``"ccRecipients"`` / ``"bccRecipients"`` / ``"replyTo"`` (lists of recipient dicts).
* ``$search``: ``"subject"``, ``"body/content"`` (HTML is reduced to text), ``"from/emailAddress/name"``,
  ``"from/emailAddress/address"``, the recipient lists above, ``"hasAttachments"``, ``"importance"``,
  ``"receivedDateTime"``, ``"sentDateTime"``, and only when the query uses them ``"attachments"`` (list of
  dicts with ``"name"``) and ``"size"`` (int); ``None`` for those simply matches nothing.
* ``order()``: the canonical ``$orderby`` paths.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

from m365_mock.graph.errors import GraphError

Getter = Callable[[str], Any]
T = TypeVar("T")

MAX_DEPTH = 64  # fidelity: chosen (ODataLib's own default is deeper; Graph's real limit is not published)
TOP_MAX = 1000
SKIP_MAX = 2**31 - 1  # Exchange pages with Int32 offsets; ODataLib itself reads $skip as Int64


# --------------------------------------------------------------------------------------------- errors


class ODataQueryError(GraphError):
    """Base of every query-option error: 400 with code BadRequest unless a subclass names another code."""

    status = 400
    code = "BadRequest"


class ParseUriError(ODataQueryError):
    """Exchange's request broker refusing a query it cannot parse or bind; the texts are ODataLib's."""

    code = "RequestBroker--ParseUri"


class InvalidUrlQueryFilter(ODataQueryError):
    """A $filter that parses but that Exchange cannot translate (endswith, unsupported nodes)."""

    code = "ErrorInvalidUrlQueryFilter"
    default_message = "The query filter contains one or more invalid nodes."


class InefficientFilter(ODataQueryError):
    """$orderby properties not leading the $filter in the same order."""

    code = "InefficientFilter"
    default_message = "The restriction or sort order is too complex for this operation."


class SearchWithFilter(ODataQueryError):
    code = "SearchWithFilter"
    default_message = "The query parameter '$filter' is not supported with '$search'."


class SearchWithOrderBy(ODataQueryError):
    code = "SearchWithOrderBy"
    default_message = "The query parameter '$orderBy' is not supported with '$search'."


class InvalidQueryOptionValue(ODataQueryError):
    """A $top or $skip that is not an integer in range."""


def _syntax_error(pos: int, text: str) -> ParseUriError:
    return ParseUriError(f"Syntax error at position {pos} in '{text}'.")


def _invalid_character(char: str, pos: int, text: str) -> ParseUriError:
    return ParseUriError(f"Syntax error: character '{char}' is not valid at position {pos} in '{text}'.")


def _expression_expected(pos: int, text: str) -> ParseUriError:
    return ParseUriError(f"Expression expected at position {pos} in '{text}'.")


def _close_paren_or_operator(pos: int, text: str) -> ParseUriError:
    return ParseUriError(f"')' or operator expected at position {pos} in '{text}'.")


def _close_paren_or_comma(pos: int, text: str) -> ParseUriError:
    return ParseUriError(f"')' or ',' expected at position {pos} in '{text}'.")


def _unterminated(pos: int, text: str) -> ParseUriError:
    return ParseUriError(f"There is an unterminated string literal at position {pos} in '{text}'.")


def _too_deep() -> ParseUriError:
    return ParseUriError("Recursion depth exceeded allowed limit.")


# --------------------------------------------------------------------------------------------- model

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
_NUMERIC = frozenset({INT32, INT64, DECIMAL, DOUBLE})
_PRIMITIVES = frozenset({STRING, BOOLEAN, DATETIMEOFFSET, DATE, BINARY}) | _NUMERIC


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
_RECIPIENT_COLLECTIONS = frozenset({"toRecipients", "ccRecipients", "bccRecipients", "replyTo"})
# Base64 ids compare exactly; every other string compares case-insensitively like Exchange.
_CASE_SENSITIVE_PATHS = frozenset({"id", "conversationId", "parentFolderId"})  # fidelity: chosen


def _is_collection(type_name: str) -> bool:
    return type_name.startswith("Collection(")


def _item_type(type_name: str) -> str:
    return type_name[len("Collection(") : -1] if _is_collection(type_name) else type_name


def _is_scalar(type_name: str) -> bool:
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
        return _is_collection(self.type)


def _build_properties() -> dict[str, PropertySpec]:
    specs: dict[str, PropertySpec] = {}

    def walk(type_name: str, prefix: str) -> None:
        for name, member_type in _STRUCTURE[type_name]:
            path = prefix + name
            specs[path.lower()] = PropertySpec(path, member_type, path in FILTERABLE_PATHS, _is_scalar(member_type))
            if member_type in _STRUCTURE:
                walk(member_type, path + "/")

    walk(MESSAGE_TYPE, "")
    return specs


MESSAGE_PROPERTIES: dict[str, PropertySpec] = _build_properties()


def _resolve(
    segments: Sequence[str], root_type: str, prefix: Sequence[str] = (), *, through_collections: bool = False
) -> tuple[str, str]:
    """Walk ``segments`` from ``root_type``; return (canonical path, type) or raise ODataLib's binding error."""
    type_name = root_type
    canonical = list(prefix)
    for segment in segments:
        if _is_collection(type_name) and not through_collections:
            raise ParseUriError(
                f"The parent value for a property access of a property '{segment}' is not a single value. "
                "Property access can only be applied to a single value."
            )
        owner = _item_type(type_name)
        member = _MEMBERS.get(owner, {}).get(segment.lower())
        if member is None:
            raise ParseUriError(f"Could not find a property named '{segment}' on type '{owner}'.")
        name, type_name = member
        canonical.append(name)
    return "/".join(canonical), type_name


# --------------------------------------------------------------------------------------------- lexer


@dataclass(slots=True)
class _Token:
    kind: str  # ident, string, number, dto, date, ( ) , : / end
    text: str
    pos: int
    end: int
    value: Any = None
    type: str = ""


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
        value = int(raw)
        return (INT32 if -(2**31) <= value < 2**31 else INT64), value
    try:
        value = float(raw)
    except (ValueError, OverflowError):  # pragma: no cover - the regex only lets numbers through
        value = 0.0
    return (DOUBLE if "e" in raw.lower() else DECIMAL), value


def _lex(text: str) -> list[_Token]:
    """ODataLib-style tokens of a $filter or $orderby expression."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _PUNCTUATION:
            tokens.append(_Token(c, c, i, i + 1))
            i += 1
        elif c == "'":
            chars: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise _unterminated(n, text)
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        chars.append("'")
                        j += 2
                        continue
                    break
                chars.append(text[j])
                j += 1
            tokens.append(_Token("string", text[i : j + 1], i, j + 1, "".join(chars), STRING))
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
            tokens.append(_Token(kind, match.group(0), i, match.end(), value, type_name))
            i = match.end()
        elif c.isalpha() or c in "_$":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(_Token("ident", text[i:j], i, j))
            i = j
        else:
            raise _invalid_character(c, i, text)
    tokens.append(_Token("end", "", n, n))
    return tokens


# --------------------------------------------------------------------------------------------- filter nodes


def _truth(value: Any) -> bool:
    return value is True


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _as_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _normalize(value: Any, type_name: str, case_sensitive: bool) -> Any:
    """Bring a value into the comparable form of ``type_name``; None when it is not of that type."""
    if type_name == STRING:
        if not isinstance(value, str):
            return None
        return value if case_sensitive else value.casefold()
    if type_name in ENUM_MEMBERS:
        return value.casefold() if isinstance(value, str) else None
    if type_name == BOOLEAN:
        return value if isinstance(value, bool) else None
    if type_name in (DATETIMEOFFSET, DATE):
        return _as_datetime(value)
    if type_name in _NUMERIC:
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return None


def _compare(op: str, value: Any, literal: Any, type_name: str, case_sensitive: bool) -> bool:
    if value is None or literal is None:
        both_null = value is None and literal is None
        return both_null if op == "eq" else (not both_null if op == "ne" else False)
    left, right = _normalize(value, type_name, case_sensitive), _normalize(literal, type_name, case_sensitive)
    if left is None or right is None:
        return op == "ne"
    try:
        if op == "eq":
            return bool(left == right)
        if op == "ne":
            return bool(left != right)
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


class _Node:
    type: str = BOOLEAN

    def eval(self, get: Getter, env: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class _Literal(_Node):
    def __init__(self, type_name: str, value: Any) -> None:
        self.type, self.value = type_name, value

    def eval(self, get: Getter, env: dict[str, Any]) -> Any:
        return self.value


class _Ref(_Node):
    """A property: of the message (var None) or of a lambda's range variable."""

    def __init__(self, var: str | None, path: str, type_name: str) -> None:
        self.var, self.path, self.type = var, path, type_name
        self.segments = [s for s in path.split("/") if s] if var is not None else []

    def eval(self, get: Getter, env: dict[str, Any]) -> Any:
        if self.var is None:
            return get(self.path)
        value = env.get(self.var)
        for segment in self.segments:
            value = value.get(segment) if isinstance(value, dict) else None
        return value


class _Comparison(_Node):
    def __init__(self, op: str, ref: _Ref, literal: _Literal) -> None:
        self.op, self.ref, self.literal = op, ref, literal
        self.case_sensitive = ref.var is None and ref.path in _CASE_SENSITIVE_PATHS

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return _compare(self.op, self.ref.eval(get, env), self.literal.value, self.ref.type, self.case_sensitive)


class _And(_Node):
    def __init__(self, parts: list[_Node]) -> None:
        self.parts = parts

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return all(_truth(part.eval(get, env)) for part in self.parts)


class _Or(_Node):
    def __init__(self, parts: list[_Node]) -> None:
        self.parts = parts

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return any(_truth(part.eval(get, env)) for part in self.parts)


class _Not(_Node):
    def __init__(self, operand: _Node) -> None:
        self.operand = operand

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        return not _truth(self.operand.eval(get, env))


class _StringFunction(_Node):
    def __init__(self, name: str, ref: _Ref, literal: _Literal) -> None:
        self.name, self.ref, self.literal = name, ref, literal

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        value, needle = self.ref.eval(get, env), self.literal.value
        if not isinstance(value, str) or not isinstance(needle, str):
            return False
        value, needle = value.casefold(), needle.casefold()
        return value.startswith(needle) if self.name == "startswith" else needle in value


class _Any(_Node):
    def __init__(self, collection: _Ref, var: str, body: _Node) -> None:
        self.collection, self.var, self.body = collection, var, body

    def eval(self, get: Getter, env: dict[str, Any]) -> bool:
        items = self.collection.eval(get, env)
        if not isinstance(items, list | tuple):
            return False
        return any(_truth(self.body.eval(get, {**env, self.var: item})) for item in items)


# --------------------------------------------------------------------------------------------- filter parser

_COMPARISON_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_UNSUPPORTED_OPERATORS = frozenset({"has", "in", "add", "sub", "mul", "div", "divby", "mod"})
_KEYWORDS = frozenset({"and", "or", "not", *_COMPARISON_KINDS}) | _UNSUPPORTED_OPERATORS
_LITERAL_WORDS = {"true": (BOOLEAN, True), "false": (BOOLEAN, False), "null": (NULL, None)}
_STRING_FUNCTIONS = frozenset({"startswith", "contains"})
# OData's canonical functions that Exchange does not translate: refused as invalid nodes, like endswith.
_OTHER_CANONICAL_FUNCTIONS = frozenset(
    {
        "endswith",
        "concat",
        "indexof",
        "length",
        "substring",
        "matchespattern",
        "tolower",
        "toupper",
        "trim",
        "date",
        "day",
        "fractionalseconds",
        "hour",
        "maxdatetime",
        "mindatetime",
        "minute",
        "month",
        "now",
        "second",
        "time",
        "totaloffsetminutes",
        "totalseconds",
        "year",
        "ceiling",
        "floor",
        "round",
        "cast",
        "isof",
        "hassubset",
        "hassubsequence",
    }
)


def _types_compatible(left: str, right: str) -> bool:
    if NULL in (left, right) or left == right:
        return True
    if left in _NUMERIC and right in _NUMERIC:
        return True
    if {left, right} <= {DATETIMEOFFSET, DATE}:
        return True
    return (left in ENUM_MEMBERS and right == STRING) or (right in ENUM_MEMBERS and left == STRING)


class _FilterParser:
    def __init__(self, text: str, allow_recipient_lambdas: bool) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.i = 0
        self.depth = 0
        self.scopes: dict[str, str] = {}
        self.properties: list[str] = []
        self.allow_recipient_lambdas = allow_recipient_lambdas

    # -- token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.tok
        if token.kind == "ident" and token.text.lower() in words:
            return token.text.lower()
        return None

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _too_deep()

    # -- grammar: or > and > comparison > not > primary (ODataLib's precedence)
    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise _expression_expected(self.tok.pos, self.text)
        node = self.parse_or()
        if self.tok.kind != "end":
            raise _syntax_error(self.tok.end, self.text)
        if node.type not in (BOOLEAN, NULL):
            raise ParseUriError("The $filter expression must evaluate to a single boolean value.")
        self.check_predicate(node)
        return node

    def parse_or(self) -> _Node:
        parts = [self.parse_and()]
        while self.keyword("or"):
            self.advance()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else self.logical(_Or, "Or", parts)

    def parse_and(self) -> _Node:
        parts = [self.parse_comparison()]
        while self.keyword("and"):
            self.advance()
            parts.append(self.parse_comparison())
        return parts[0] if len(parts) == 1 else self.logical(_And, "And", parts)

    def logical(self, cls: type[_And] | type[_Or], kind: str, parts: list[_Node]) -> _Node:
        left_type = parts[0].type
        for right in parts[1:]:  # left-associative, as ODataLib binds it
            if left_type not in (BOOLEAN, NULL) or right.type not in (BOOLEAN, NULL):
                raise ParseUriError(
                    "A binary operator with incompatible types was detected. "
                    f"Found operand types '{left_type}' and '{right.type}' for operator kind '{kind}'."
                )
            left_type = BOOLEAN
        for part in parts:
            self.check_predicate(part)
        flat: list[_Node] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, cls) else [part])
        return cls(flat)

    def check_predicate(self, node: _Node) -> None:
        """A bare boolean property stands for ``prop eq true``: it must be filterable."""
        if isinstance(node, _Ref) and node.var is None and node.path not in FILTERABLE_PATHS:
            raise InvalidUrlQueryFilter()  # fidelity: chosen

    def parse_comparison(self) -> _Node:
        left = self.parse_unary()
        while True:
            if self.keyword(*_UNSUPPORTED_OPERATORS):
                raise InvalidUrlQueryFilter()  # fidelity: chosen (has, in, arithmetic)
            op = self.keyword(*_COMPARISON_KINDS)
            if op is None:
                return left
            self.advance()
            right = self.parse_unary()
            left = self.comparison(op, left, right)

    def comparison(self, op: str, left: _Node, right: _Node) -> _Node:
        kind = _COMPARISON_KINDS[op]
        if _is_collection(left.type) or _is_collection(right.type):
            raise ParseUriError(
                f"The operand for a binary operator '{kind}' is not a single value. "
                "Binary operators require both operands to be single values."
            )
        if not _types_compatible(left.type, right.type):
            raise ParseUriError(
                "A binary operator with incompatible types was detected. "
                f"Found operand types '{left.type}' and '{right.type}' for operator kind '{kind}'."
            )
        if isinstance(left, _Ref) and isinstance(right, _Literal):
            ref, literal = left, right
        elif isinstance(left, _Literal) and isinstance(right, _Ref):
            ref, literal, op = right, left, _FLIPPED[op]
        else:
            raise InvalidUrlQueryFilter()  # fidelity: chosen (no property, two properties, nested comparisons)
        if not _is_scalar(ref.type):
            raise InvalidUrlQueryFilter()  # fidelity: chosen (complex value such as `from eq null`)
        if ref.type in ENUM_MEMBERS and isinstance(literal.value, str):
            members = {m.casefold() for m in ENUM_MEMBERS[ref.type]}
            if literal.value.casefold() not in members:
                raise ParseUriError(f"The string '{literal.value}' is not a valid enumeration type constant.")
        if ref.var is None and ref.path not in FILTERABLE_PATHS:
            raise InvalidUrlQueryFilter()  # fidelity: chosen
        return _Comparison(op, ref, literal)

    def parse_unary(self) -> _Node:
        nots = 0
        while self.keyword("not"):
            self.advance()
            nots += 1
            self.enter()
        node = self.parse_primary()
        if nots:
            if node.type not in (BOOLEAN, NULL):
                raise ParseUriError(
                    "A unary operator with an incompatible type was detected. "
                    f"Found operand type '{node.type}' for operator kind 'Not'."
                )
            self.check_predicate(node)
            self.depth -= nots
            if nots % 2:
                node = _Not(node)
        return node

    def parse_primary(self) -> _Node:
        token = self.tok
        if token.kind == "(":
            self.advance()
            self.enter()
            node = self.parse_or()
            if self.tok.kind != ")":
                raise _close_paren_or_operator(self.tok.pos, self.text)
            self.advance()
            self.depth -= 1
            return node
        if token.kind in ("string", "number", "dto", "date"):
            self.advance()
            return _Literal(token.type, token.value)
        if token.kind == "ident":
            word = token.text.lower()
            if word in _LITERAL_WORDS:
                self.advance()
                return _Literal(*_LITERAL_WORDS[word])
            if word in _KEYWORDS:
                raise _expression_expected(token.pos, self.text)
            if self.tokens[self.i + 1].kind == "(":
                return self.parse_function()
            return self.parse_path()
        raise _expression_expected(token.pos, self.text)

    def parse_arguments(self) -> list[_Node]:
        self.advance()  # (
        self.enter()
        args: list[_Node] = []
        if self.tok.kind == ")":
            self.advance()
        else:
            while True:
                args.append(self.parse_or())
                if self.tok.kind == ",":
                    self.advance()
                    continue
                if self.tok.kind != ")":
                    raise _close_paren_or_comma(self.tok.pos, self.text)
                self.advance()
                break
        self.depth -= 1
        return args

    def parse_function(self) -> _Node:
        name_token = self.advance()
        name = name_token.text.lower()
        args = self.parse_arguments()
        if name in _STRING_FUNCTIONS:
            ok = len(args) == 2 and all(arg.type in (STRING, NULL) for arg in args)
            if not ok:
                raise ParseUriError(
                    f"No function signature for the function with name '{name}' matches the specified arguments. "
                    f"The function signatures considered are: {name}(Edm.String Nullable=true, "
                    "Edm.String Nullable=true)."
                )
            ref, literal = args
            if not isinstance(ref, _Ref) or not isinstance(literal, _Literal):
                raise InvalidUrlQueryFilter()  # fidelity: chosen
            if ref.var is None and ref.path not in FILTERABLE_PATHS:
                raise InvalidUrlQueryFilter()  # fidelity: chosen
            return _StringFunction(name, ref, literal)
        if name in _OTHER_CANONICAL_FUNCTIONS:
            # endswith: ErrorInvalidUrlQueryFilter observed (microsoft-graph-docs-contrib#7277); the rest is chosen.
            raise InvalidUrlQueryFilter()
        raise ParseUriError(
            f"An unknown function with name '{name_token.text}' was found. This may also be a function import "
            "or a key lookup on a navigation property, which is not allowed."
        )

    def parse_path(self) -> _Node:
        first = self.advance()
        segments = [first.text]
        while self.tok.kind == "/":
            slash = self.advance()
            if self.tok.kind != "ident":
                raise _syntax_error(slash.end, self.text)
            segment = self.advance()
            if self.tok.kind == "(":
                if segment.text.lower() in ("any", "all"):
                    return self.parse_lambda(segments, segment.text.lower())
                raise ParseUriError(
                    f"An unknown function with name '{segment.text}' was found. This may also be a function "
                    "import or a key lookup on a navigation property, which is not allowed."
                )
            segments.append(segment.text)
        return self.reference(segments)

    def reference(self, segments: list[str]) -> _Ref:
        head = segments[0]
        if head in self.scopes:
            path, type_name = _resolve(segments[1:], self.scopes[head])
            return _Ref(head, path, type_name)
        if head.lower() == "$it":
            segments = segments[1:]
            if not segments:
                return _Ref(None, "", MESSAGE_TYPE)
        path, type_name = _resolve(segments, MESSAGE_TYPE)
        self.properties.append(path)
        return _Ref(None, path, type_name)

    def parse_lambda(self, segments: list[str], which: str) -> _Node:
        collection = self.reference(segments)
        if not _is_collection(collection.type):
            raise ParseUriError("Any/All may only be used following a collection.")
        self.advance()  # (
        self.enter()
        if self.tok.kind == ")":
            raise InvalidUrlQueryFilter()  # fidelity: chosen (`any()` without a predicate)
        var_token = self.advance()
        if var_token.kind != "ident" or var_token.text.lower() in _KEYWORDS | set(_LITERAL_WORDS):
            raise _syntax_error(var_token.end, self.text)
        if self.tok.kind != ":":
            raise _syntax_error(self.tok.end, self.text)
        self.advance()
        var = var_token.text
        if var in self.scopes:
            raise ParseUriError(f"The range variable '{var}' has already been declared.")
        self.scopes[var] = _item_type(collection.type)
        body = self.parse_or()
        del self.scopes[var]
        if self.tok.kind != ")":
            raise _close_paren_or_operator(self.tok.pos, self.text)
        self.advance()
        self.depth -= 1
        if body.type not in (BOOLEAN, NULL):
            raise ParseUriError("The Any/All query expression must evaluate to a single boolean value.")
        self.check_predicate(body)
        if which == "all":
            raise InvalidUrlQueryFilter()  # fidelity: chosen
        if collection.var is None and collection.path not in FILTERABLE_PATHS:
            raise InvalidUrlQueryFilter()  # fidelity: chosen
        if collection.path in _RECIPIENT_COLLECTIONS and not self.allow_recipient_lambdas:
            raise InvalidUrlQueryFilter()  # as observed in microsoft-graph-explorer-v4#3957
        return _Any(collection, var, body)


@dataclass(frozen=True)
class FilterExpr:
    """A parsed $filter.

    ``properties`` lists the canonical message paths in order of first appearance (a lambda counts as its
    collection). ``isread_only`` is False/True when the whole filter is exactly ``isRead eq false/true``
    (parentheses and ``false eq isRead`` allowed), else None.
    """

    text: str
    properties: tuple[str, ...]
    isread_only: bool | None
    _root: _Node = field(repr=False, compare=False)

    def matches(self, get: Getter) -> bool:
        """Whether the message behind ``get`` passes the filter (see the module docstring for the paths)."""
        return _truth(self._root.eval(get, {}))


def parse_filter(text: str, *, allow_recipient_lambdas: bool = True) -> FilterExpr:
    """Parse a $filter value; raise an ODataQueryError subclass for anything Graph would refuse.

    ``allow_recipient_lambdas=False`` refuses ``toRecipients/any(...)`` (and cc/bcc/replyTo) with
    ErrorInvalidUrlQueryFilter, which is what Graph answered in 2025 (microsoft-graph-explorer-v4#3957).
    """
    parser = _FilterParser(text, allow_recipient_lambdas)
    root = parser.parse()
    isread_only = None
    if (
        isinstance(root, _Comparison)
        and root.op == "eq"
        and root.ref.var is None
        and root.ref.path == "isRead"
        and root.literal.type == BOOLEAN
    ):
        isread_only = bool(root.literal.value)
    return FilterExpr(text, tuple(dict.fromkeys(parser.properties)), isread_only, root)


def check_filter_orderby(flt: FilterExpr | None, orderby: Sequence[tuple[str, bool]]) -> None:
    """Raise InefficientFilter unless the $orderby properties lead the $filter, in the same order.

    The documented rule: every $orderby property must appear in $filter, in the same order, before any other.
    """
    if flt is None or not orderby:
        return
    wanted = list(dict.fromkeys(path for path, _ in orderby))
    if list(flt.properties[: len(wanted)]) != wanted:
        raise InefficientFilter()


# --------------------------------------------------------------------------------------------- $orderby, $select


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """Parse a $orderby value into [(canonical path, descending)]; the direction defaults to ascending."""
    tokens = _lex(text)
    i = 0
    if tokens[0].kind == "end":
        raise _expression_expected(tokens[0].pos, text)
    result: list[tuple[str, bool]] = []
    while True:
        token = tokens[i]
        if token.kind == "end":
            raise _expression_expected(token.pos, text)
        if token.kind != "ident":
            raise _syntax_error(token.end, text)  # fidelity: chosen (only property paths are sortable here)
        segments = [token.text]
        i += 1
        while tokens[i].kind == "/":
            if tokens[i + 1].kind != "ident":
                raise _syntax_error(tokens[i].end, text)
            segments.append(tokens[i + 1].text)
            i += 2
        if tokens[i].kind == "(":
            raise _syntax_error(tokens[i].end, text)  # fidelity: chosen (functions in $orderby)
        path, type_name = _resolve(segments, MESSAGE_TYPE)
        if not _is_scalar(type_name):
            raise ParseUriError("The $orderby expression must evaluate to a single value of primitive type.")
        descending = False
        if tokens[i].kind == "ident" and tokens[i].text.lower() in ("asc", "desc"):
            descending = tokens[i].text.lower() == "desc"
            i += 1
        result.append((path, descending))
        if tokens[i].kind == ",":
            i += 1
            continue
        if tokens[i].kind != "end":
            raise _syntax_error(tokens[i].end, text)
        return result


_SELECT_ITEM_CHARS = re.compile(r"[^\w/$*]")


def parse_select(text: str) -> list[str]:
    """Parse a $select value into canonical top-level property names (``id`` is not added here).

    ``*`` stands for the default property set; a sub-path such as ``from/emailAddress`` selects its top-level
    property; an empty value gives an empty list (no projection).
    """
    if not text.strip():
        return []
    names: list[str] = []
    offset = 0
    for raw in text.split(","):
        start = offset + len(raw) - len(raw.lstrip())
        item = raw.strip()
        offset += len(raw) + 1
        if not item:
            raise _syntax_error(start, text)
        bad = _SELECT_ITEM_CHARS.search(item)
        if bad:
            if bad.group(0).isspace():
                raise _syntax_error(start + bad.start(), text)
            raise _invalid_character(bad.group(0), start + bad.start(), text)
        if item == "*":
            names.extend(DEFAULT_PROPERTIES)
            continue
        segments = item.split("/")
        if any(not s or "*" in s or s[0].isdigit() for s in segments):
            raise _syntax_error(start + len(item), text)
        # fidelity: chosen (sub-paths, even through collections, select their top-level property)
        path, _ = _resolve(segments, MESSAGE_TYPE, through_collections=True)
        names.append(path.split("/")[0])
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------- $top, $skip

_INT64_RE = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*\Z")  # what .NET long.TryParse accepts


def _parse_int64(text: str) -> int | None:
    if not _INT64_RE.match(text):
        return None
    value = int(text.strip())
    return value if -(2**63) <= value < 2**63 else None


def parse_top(text: str) -> int:
    """Parse $top: an integer from 1 to 1000."""
    value = _parse_int64(text)
    if value is None or value < 0:
        # Observed on /users/{id}/messages (dcblogdev/laravel-microsoft-graph#90).
        raise InvalidQueryOptionValue(
            f"Invalid value '{text}' for $top query option found. "
            "The $top query option requires a non-negative integer value."
        )
    if value == 0:
        raise InvalidQueryOptionValue(  # fidelity: chosen
            f"Invalid value '{text}' for $top query option found. "
            f"The $top query option requires a value between 1 and {TOP_MAX}."
        )
    if value > TOP_MAX:
        raise InvalidQueryOptionValue(  # fidelity: chosen (wording as Graph's chats API words its limit)
            f"The query specified in the URI is not valid. The limit of '{TOP_MAX}' for Top query has been "
            f"exceeded. The value from the incoming request is '{value}'."
        )
    return value


def parse_skip(text: str) -> int:
    """Parse $skip: a non-negative integer no larger than Int32's maximum (Exchange's paging offset)."""
    value = _parse_int64(text)
    if value is None or value < 0:
        raise InvalidQueryOptionValue(  # ODataLib's text; the code follows the observed $top error
            f"Invalid value '{text}' for $skip query option found. "
            "The $skip query option requires a non-negative integer value."
        )
    if value > SKIP_MAX:
        raise InvalidQueryOptionValue(  # fidelity: chosen (Web API OData's MaxSkip text, as for $top)
            f"The query specified in the URI is not valid. The limit of '{SKIP_MAX}' for Skip query has been "
            f"exceeded. The value from the incoming request is '{value}'."
        )
    return value


def check_search_combination(*, has_search: bool, has_filter: bool, has_orderby: bool) -> None:
    """$search cannot be combined with $filter or $orderby (SearchWithFilter is reported first)."""
    if has_search and has_filter:
        raise SearchWithFilter()
    if has_search and has_orderby:
        raise SearchWithOrderBy()


# --------------------------------------------------------------------------------------------- $search

_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_LETTER_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"})


def _plain(text: Any, *, markup: bool = False) -> str:
    if not isinstance(text, str):
        return ""
    if markup and "<" in text:
        text = html.unescape(_TAG_RE.sub(" ", text))
    return _SPACE_RE.sub(" ", text).casefold()


def _text_match(term: str, haystacks: Iterable[str]) -> bool:
    """Case-insensitive match of ``term`` at the start of a word (Exchange's prefix matching)."""
    needle = _SPACE_RE.sub(" ", term.strip()).casefold().rstrip("*").strip()
    if not needle:
        return True
    word_start = needle[0].isalnum()
    for hay in haystacks:
        start = hay.find(needle)
        while start >= 0:
            if not word_start or start == 0 or not hay[start - 1].isalnum():
                return True
            start = hay.find(needle, start + 1)
    return False


def _recipient_texts(get: Getter, paths: Iterable[str]) -> list[str]:
    texts: list[str] = []
    for path in paths:
        recipients = get(path)
        if not isinstance(recipients, list | tuple):
            continue
        for recipient in recipients:
            address = recipient.get("emailAddress") if isinstance(recipient, dict) else None
            if isinstance(address, dict):
                texts += [_plain(address.get("name")), _plain(address.get("address"))]
    return texts


def _from_texts(get: Getter) -> list[str]:
    return [_plain(get("from/emailAddress/name")), _plain(get("from/emailAddress/address"))]


def _attachment_texts(get: Getter) -> list[str]:
    attachments = get("attachments")
    if not isinstance(attachments, list | tuple):
        return []
    return [_plain(a.get("name")) for a in attachments if isinstance(a, dict)]


_TO, _CC, _BCC = ("toRecipients",), ("ccRecipients",), ("bccRecipients",)
_KQL_TEXT: dict[str, Callable[[Getter], list[str]]] = {
    "subject": lambda get: [_plain(get("subject"))],
    "body": lambda get: [_plain(get("body/content"), markup=True)],
    "from": _from_texts,
    "to": lambda get: _recipient_texts(get, _TO),
    "cc": lambda get: _recipient_texts(get, _CC),
    "bcc": lambda get: _recipient_texts(get, _BCC),
    "recipients": lambda get: _recipient_texts(get, _TO + _CC + _BCC),
    "participants": lambda get: _from_texts(get) + _recipient_texts(get, _TO + _CC + _BCC),
    "attachment": _attachment_texts,
}
_KQL_OTHER = ("hasattachment", "hasattachments", "importance", "kind", "received", "sent", "size")
_KQL_PROPERTIES = frozenset(_KQL_TEXT) | frozenset(_KQL_OTHER)
_KQL_WORD_RE = re.compile(r"([A-Za-z]+)(:|>=|<=|<>|=|>|<)(.*)\Z", re.S)
_US_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})\Z", re.ASCII)
_ISO_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})\Z", re.ASCII)
_TRUE_WORDS, _FALSE_WORDS = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})
_KIND_EMAIL = frozenset({"email", "emails", "mail", "message", "messages"})


def _default_texts(get: Getter) -> list[str]:
    return [*_KQL_TEXT["subject"](get), *_KQL_TEXT["body"](get), *_from_texts(get)]


def _kql_date(value: str) -> tuple[datetime, bool] | None:
    """(instant, is_whole_day) for a KQL date value; None when it is not one."""
    for pattern, order in ((_ISO_DATE_RE, (0, 1, 2)), (_US_DATE_RE, (2, 0, 1))):
        match = pattern.match(value)
        if match:
            parts = match.groups()
            try:
                day = date(int(parts[order[0]]), int(parts[order[1]]), int(parts[order[2]]))
            except ValueError:
                return None
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    if "T" in value or "t" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC), False
    return None


def _date_match(op: str, value: str, actual: Any) -> bool:
    parsed = _kql_date(value)
    moment = _as_datetime(actual)
    if parsed is None or moment is None:
        return False
    start, whole_day = parsed
    end = start + timedelta(days=1) if whole_day else start
    within = start <= moment < end if whole_day else moment == start
    if op in (":", "="):
        return within
    if op == "<>":
        return not within
    if op == ">":
        return moment >= end if whole_day else moment > start
    if op == ">=":
        return moment >= start
    if op == "<":
        return moment < start
    return moment < end if whole_day else moment <= start  # <=


class _SearchNode:
    def eval(self, get: Getter) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class _SearchAll(_SearchNode):
    def eval(self, get: Getter) -> bool:
        return True


class _SearchTerm(_SearchNode):
    def __init__(self, text: str) -> None:
        self.text = text

    def eval(self, get: Getter) -> bool:
        return _text_match(self.text, _default_texts(get))


class _SearchRestriction(_SearchNode):
    def __init__(self, prop: str, op: str, value: str) -> None:
        self.prop, self.op, self.value = prop, op, value

    def eval(self, get: Getter) -> bool:
        prop, op, value = self.prop, self.op, self.value.strip()
        if prop in _KQL_TEXT:
            return op in (":", "=") and _text_match(value, _KQL_TEXT[prop](get))
        if prop in ("received", "sent"):
            return _date_match(op, value, get(f"{prop}DateTime"))
        if prop == "size":
            size, wanted = get("size"), _parse_int64(value)
            if not isinstance(size, int) or isinstance(size, bool) or wanted is None:
                return False
            operator = {":": "eq", "=": "eq", "<>": "ne", ">": "gt", ">=": "ge", "<": "lt"}.get(op, "le")
            return _compare(operator, size, wanted, INT64, True)
        if op not in (":", "="):
            return False
        word = value.casefold()
        if prop in ("hasattachment", "hasattachments"):
            actual = get("hasAttachments")
            return (word in _TRUE_WORDS and actual is True) or (word in _FALSE_WORDS and actual is False)
        if prop == "importance":
            importance = get("importance")
            return isinstance(importance, str) and importance.casefold() == word
        return word in _KIND_EMAIL  # kind


class _SearchAnd(_SearchNode):
    def __init__(self, parts: list[_SearchNode]) -> None:
        self.parts = parts

    def eval(self, get: Getter) -> bool:
        return all(part.eval(get) for part in self.parts)


class _SearchOr(_SearchNode):
    def __init__(self, parts: list[_SearchNode]) -> None:
        self.parts = parts

    def eval(self, get: Getter) -> bool:
        return any(part.eval(get) for part in self.parts)


class _SearchNot(_SearchNode):
    def __init__(self, operand: _SearchNode) -> None:
        self.operand = operand

    def eval(self, get: Getter) -> bool:
        return not self.operand.eval(get)


def _combine(cls: type[_SearchAnd] | type[_SearchOr], parts: list[_SearchNode]) -> _SearchNode:
    return parts[0] if len(parts) == 1 else cls(parts)


class _KqlParser:
    """Exchange's KQL inside a quoted $search phrase: lenient, it never raises."""

    def __init__(self, text: str) -> None:
        self.tokens = self.lex(text)
        self.i = 0
        self.depth = 0

    @staticmethod
    def lex(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
            elif c in "()":
                tokens.append((c, c))
                i += 1
            elif c == '"':
                j = text.find('"', i + 1)
                j = n if j < 0 else j
                tokens.append(("phrase", text[i + 1 : j]))
                i = j + 1
            else:
                j = i
                while j < n and not text[j].isspace() and text[j] not in '()"':
                    j += 1
                word = text[i:j]
                tokens.append((word, word) if word in ("AND", "OR", "NOT") else ("word", word))
                i = j
        return tokens

    def peek(self) -> str:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else "end"

    def parse(self) -> _SearchNode:
        parts: list[_SearchNode] = []
        while self.peek() != "end":
            if self.peek() == ")":
                self.i += 1
                continue
            node = self.parse_or()
            if node is not None:
                parts.append(node)
        return _combine(_SearchAnd, parts) if parts else _SearchAll()

    def parse_or(self) -> _SearchNode | None:
        parts = [p for p in [self.parse_and()] if p is not None]
        while self.peek() == "OR":
            self.i += 1
            part = self.parse_and()
            if part is not None:
                parts.append(part)
        return _combine(_SearchOr, parts) if parts else None

    def parse_and(self) -> _SearchNode | None:
        parts: list[_SearchNode] = []
        while self.peek() not in ("end", ")", "OR"):
            if self.peek() == "AND":
                self.i += 1
                continue
            part = self.parse_not()
            if part is not None:
                parts.append(part)
        return _combine(_SearchAnd, parts) if parts else None

    def parse_not(self) -> _SearchNode | None:
        nots = 0
        while self.peek() == "NOT":
            self.i += 1
            nots += 1
        node = self.parse_primary() if self.peek() not in ("end", ")", "OR", "AND") else None
        if node is not None and nots % 2:
            node = _SearchNot(node)
        return node

    def parse_primary(self) -> _SearchNode | None:
        kind, text = self.tokens[self.i]
        self.i += 1
        if kind == "(":
            if self.depth >= MAX_DEPTH:
                return None
            self.depth += 1
            node = self.parse_or()
            if self.peek() == ")":
                self.i += 1
            self.depth -= 1
            return node
        if kind == "phrase":
            return _SearchTerm(text)
        match = _KQL_WORD_RE.match(text)
        if match and match.group(1).lower() in _KQL_PROPERTIES:
            prop, op, value = match.group(1).lower(), match.group(2), match.group(3)
            if not value and self.peek() == "phrase":
                value = self.tokens[self.i][1]
                self.i += 1
            if value:
                return _SearchRestriction(prop, op, value)
        # fidelity: chosen (an unknown property such as isRead:false is searched as plain text, like KQL does)
        return _SearchTerm(text)


def _search_lex(text: str) -> list[_Token]:
    """ODataLib's $search lexer: words of letters, "phrases" with \\" and \\\\ escapes, AND/OR/NOT, parens."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(_Token(c, c, i, i + 1))
            i += 1
        elif c == '"':
            chars: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise _unterminated(n, text)
                ch = text[j]
                if ch == "\\":
                    if j + 1 >= n:
                        raise _unterminated(n, text)
                    if text[j + 1] not in '"\\':
                        raise ParseUriError(
                            f"An unrecognized escape sequence '\\{text[j + 1]}' was found at position {j} in '{text}'."
                        )
                    chars.append(text[j + 1])
                    j += 2
                    continue
                if ch == '"':
                    break
                chars.append(ch)
                j += 1
            tokens.append(_Token("phrase", text[i : j + 1], i, j + 1, "".join(chars)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            word = text[i:j]
            for k, ch in enumerate(word):
                if unicodedata.category(ch) not in _LETTER_CATEGORIES:
                    raise _invalid_character(ch, i + k, text)
            kind = word if word in ("AND", "OR", "NOT") else "word"
            tokens.append(_Token(kind, word, i, j, word))
            i = j
    tokens.append(_Token("end", "", n, n))
    return tokens


class _SearchParser:
    """ODataLib's $search grammar; each quoted phrase is then read as KQL by Exchange."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _search_lex(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def parse(self) -> _SearchNode:
        if self.tok.kind == "end":
            raise _expression_expected(self.tok.pos, self.text)
        node = self.parse_or()
        if self.tok.kind != "end":
            raise _syntax_error(self.tok.end, self.text)
        return node

    def parse_or(self) -> _SearchNode:
        parts = [self.parse_and()]
        while self.tok.kind == "OR":
            self.advance()
            parts.append(self.parse_and())
        return _combine(_SearchOr, parts)

    def parse_and(self) -> _SearchNode:
        parts = [self.parse_not()]
        while True:
            if self.tok.kind == "AND":
                self.advance()
            elif self.tok.kind not in ("word", "phrase", "(", "NOT"):
                break
            parts.append(self.parse_not())
        return _combine(_SearchAnd, parts)

    def parse_not(self) -> _SearchNode:
        nots = 0
        while self.tok.kind == "NOT":
            self.advance()
            nots += 1
        node = self.parse_primary()
        return _SearchNot(node) if nots % 2 else node

    def parse_primary(self) -> _SearchNode:
        token = self.tok
        if token.kind == "(":
            self.advance()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _too_deep()
            node = self.parse_or()
            if self.tok.kind != ")":
                raise _close_paren_or_operator(self.tok.pos, self.text)
            self.advance()
            self.depth -= 1
            return node
        if token.kind == "word":
            self.advance()
            return _SearchTerm(token.value)
        if token.kind == "phrase":
            self.advance()
            return _KqlParser(token.value).parse()
        raise _expression_expected(token.pos, self.text)


class SearchExpr:
    """A parsed $search: terms match subject, body or from (word-prefix, case-insensitive), AND by default."""

    def __init__(self, text: str, root: _SearchNode) -> None:
        self.text = text
        self._root = root

    def __repr__(self) -> str:
        return f"SearchExpr({self.text!r})"

    def matches(self, get: Getter) -> bool:
        """Whether the message behind ``get`` matches (see the module docstring for the paths)."""
        cache: dict[str, Any] = {}

        def cached(path: str) -> Any:
            if path not in cache:
                cache[path] = get(path)
            return cache[path]

        return self._root.eval(cached)


def parse_search(text: str) -> SearchExpr:
    """Parse a $search value, quoted (``"hello world"``, read as KQL) or bare (ODataLib's word grammar)."""
    return SearchExpr(text, _SearchParser(text).parse())


# --------------------------------------------------------------------------------------------- ordering


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key under which None sorts first, strings case-insensitively and datetimes by instant."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, 0, int(value))
    if isinstance(value, int | float):
        return (1, 1, value)
    if isinstance(value, datetime | date):
        moment = _as_datetime(value)
        return (1, 2, moment.timestamp() if moment else 0.0)
    if isinstance(value, str):
        return (1, 3, value.casefold(), value)
    return (1, 9, repr(value))


def order(items: Iterable[T], orderby: Sequence[tuple[str, bool]], get_for: Callable[[T], Getter]) -> list[T]:
    """Sort ``items`` stably by $orderby: nulls first when ascending, last when descending (the reverse)."""
    pairs = [(item, get_for(item)) for item in items]
    for path, descending in reversed(orderby):
        pairs.sort(key=lambda pair: sort_key(pair[1](path)), reverse=descending)
    return [item for item, _ in pairs]
