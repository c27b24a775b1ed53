"""$filter: ODataLib's grammar and binding errors for the subset Exchange translates, and what a parsed filter
tells the mail store's indexes (`Narrowing`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from m365_mock.graph.errors import InefficientFilter, InvalidUrlQueryFilter, ParseUriError
from m365_mock.graph.query.edm import (
    BOOLEAN,
    DATE,
    DATETIMEOFFSET,
    ENUM_MEMBERS,
    FILTERABLE_PATHS,
    MAX_DEPTH,
    MESSAGE_TYPE,
    NULL,
    NUMERIC,
    RECIPIENT_COLLECTIONS,
    STRING,
    TokenCursor,
    as_datetime,
    is_collection,
    is_scalar,
    item_type,
    lex,
    resolve,
)
from m365_mock.graph.query.nodes import (
    And,
    Any_,
    Comparison,
    Getter,
    Literal,
    Node,
    Not,
    Or,
    Ref,
    StringFunction,
    truth,
)

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
        "endswith", "concat", "indexof", "length", "substring", "matchespattern", "tolower", "toupper", "trim",
        "date", "day", "fractionalseconds", "hour", "maxdatetime", "mindatetime", "minute", "month", "now",
        "second", "time", "totaloffsetminutes", "totalseconds", "year", "ceiling", "floor", "round", "cast",
        "isof", "hassubset", "hassubsequence",
    }
)  # fmt: skip


def _types_compatible(left: str, right: str) -> bool:
    if NULL in (left, right) or left == right:
        return True
    if left in NUMERIC and right in NUMERIC:
        return True
    if {left, right} <= {DATETIMEOFFSET, DATE}:
        return True
    return (left in ENUM_MEMBERS and right == STRING) or (right in ENUM_MEMBERS and left == STRING)


def _incompatible(kind: str, left: str, right: str) -> ParseUriError:
    return ParseUriError(
        "A binary operator with incompatible types was detected. "
        f"Found operand types '{left}' and '{right}' for operator kind '{kind}'."
    )


def _no_function(name: str) -> ParseUriError:
    return ParseUriError(
        f"An unknown function with name '{name}' was found. This may also be a function import "
        "or a key lookup on a navigation property, which is not allowed."
    )


class _FilterParser(TokenCursor):
    def __init__(self, text: str, allow_recipient_lambdas: bool) -> None:
        self.text = text
        self.tokens = lex(text)
        self.i = 0
        self.depth = 0
        self.scopes: dict[str, str] = {}
        self.properties: list[str] = []
        self.allow_recipient_lambdas = allow_recipient_lambdas

    # -- token helpers (tok and advance come from TokenCursor)

    def keyword(self, *words: str) -> str | None:
        token = self.tok
        if token.kind == "ident" and token.text.lower() in words:
            return token.text.lower()
        return None

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseUriError.too_deep()

    # -- grammar: or > and > comparison > not > primary (ODataLib's precedence)
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ParseUriError.expression_expected(self.tok.pos, self.text)
        node = self.parse_or()
        if self.tok.kind != "end":
            raise ParseUriError.syntax(self.tok.end, self.text)
        if node.type not in (BOOLEAN, NULL):
            raise ParseUriError("The $filter expression must evaluate to a single boolean value.")
        self.check_predicate(node)
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.keyword("or"):
            self.advance()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else self.logical(Or, "Or", parts)

    def parse_and(self) -> Node:
        parts = [self.parse_comparison()]
        while self.keyword("and"):
            self.advance()
            parts.append(self.parse_comparison())
        return parts[0] if len(parts) == 1 else self.logical(And, "And", parts)

    def logical(self, cls: type[And] | type[Or], kind: str, parts: list[Node]) -> Node:
        left_type = parts[0].type
        for right in parts[1:]:  # left-associative, as ODataLib binds it
            if left_type not in (BOOLEAN, NULL) or right.type not in (BOOLEAN, NULL):
                raise _incompatible(kind, left_type, right.type)
            left_type = BOOLEAN
        for part in parts:
            self.check_predicate(part)
        flat: list[Node] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, cls) else [part])
        return cls(flat)

    def check_predicate(self, node: Node) -> None:
        """A bare boolean property stands for ``prop eq true``: it must be filterable."""
        if isinstance(node, Ref) and node.var is None and node.path not in FILTERABLE_PATHS:
            raise InvalidUrlQueryFilter()  # fidelity: chosen

    def parse_comparison(self) -> Node:
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

    def comparison(self, op: str, left: Node, right: Node) -> Node:
        kind = _COMPARISON_KINDS[op]
        if is_collection(left.type) or is_collection(right.type):
            raise ParseUriError(
                f"The operand for a binary operator '{kind}' is not a single value. "
                "Binary operators require both operands to be single values."
            )
        if not _types_compatible(left.type, right.type):
            raise _incompatible(kind, left.type, right.type)
        if isinstance(left, Ref) and isinstance(right, Literal):
            ref, literal = left, right
        elif isinstance(left, Literal) and isinstance(right, Ref):
            ref, literal, op = right, left, _FLIPPED[op]
        else:
            raise InvalidUrlQueryFilter()  # fidelity: chosen (no property, two properties, nested comparisons)
        if not is_scalar(ref.type):
            raise InvalidUrlQueryFilter()  # fidelity: chosen (complex value such as `from eq null`)
        if ref.type in ENUM_MEMBERS and isinstance(literal.value, str):
            members = {m.casefold() for m in ENUM_MEMBERS[ref.type]}
            if literal.value.casefold() not in members:
                raise ParseUriError(f"The string '{literal.value}' is not a valid enumeration type constant.")
        if ref.var is None and ref.path not in FILTERABLE_PATHS:
            raise InvalidUrlQueryFilter()  # fidelity: chosen
        return Comparison(op, ref, literal)

    def parse_unary(self) -> Node:
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
                node = Not(node)
        return node

    def parse_primary(self) -> Node:
        token = self.tok
        if token.kind == "(":
            self.advance()
            self.enter()
            node = self.parse_or()
            if self.tok.kind != ")":
                raise ParseUriError.close_paren_or_operator(self.tok.pos, self.text)
            self.advance()
            self.depth -= 1
            return node
        if token.kind in ("string", "number", "dto", "date"):
            self.advance()
            return Literal(token.type, token.value)
        if token.kind == "ident":
            word = token.text.lower()
            if word in _LITERAL_WORDS:
                self.advance()
                return Literal(*_LITERAL_WORDS[word])
            if word in _KEYWORDS:
                raise ParseUriError.expression_expected(token.pos, self.text)
            if self.tokens[self.i + 1].kind == "(":
                return self.parse_function()
            return self.parse_path()
        raise ParseUriError.expression_expected(token.pos, self.text)

    def parse_arguments(self) -> list[Node]:
        self.advance()  # (
        self.enter()
        args: list[Node] = []
        if self.tok.kind == ")":
            self.advance()
        else:
            while True:
                args.append(self.parse_or())
                if self.tok.kind == ",":
                    self.advance()
                    continue
                if self.tok.kind != ")":
                    raise ParseUriError.close_paren_or_comma(self.tok.pos, self.text)
                self.advance()
                break
        self.depth -= 1
        return args

    def parse_function(self) -> Node:
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
            if not isinstance(ref, Ref) or not isinstance(literal, Literal):
                raise InvalidUrlQueryFilter()  # fidelity: chosen
            if ref.var is None and ref.path not in FILTERABLE_PATHS:
                raise InvalidUrlQueryFilter()  # fidelity: chosen
            return StringFunction(name, ref, literal)
        if name in _OTHER_CANONICAL_FUNCTIONS:
            # endswith: ErrorInvalidUrlQueryFilter observed (microsoft-graph-docs-contrib#7277); the rest is chosen.
            raise InvalidUrlQueryFilter()
        raise _no_function(name_token.text)

    def parse_path(self) -> Node:
        first = self.advance()
        segments = [first.text]
        while self.tok.kind == "/":
            slash = self.advance()
            if self.tok.kind != "ident":
                raise ParseUriError.syntax(slash.end, self.text)
            segment = self.advance()
            if self.tok.kind == "(":
                if segment.text.lower() in ("any", "all"):
                    return self.parse_lambda(segments, segment.text.lower())
                raise _no_function(segment.text)
            segments.append(segment.text)
        return self.reference(segments)

    def reference(self, segments: list[str]) -> Ref:
        head = segments[0]
        if head in self.scopes:
            path, type_name = resolve(segments[1:], self.scopes[head])
            return Ref(head, path, type_name)
        if head.lower() == "$it":
            segments = segments[1:]
            if not segments:
                return Ref(None, "", MESSAGE_TYPE)
        path, type_name = resolve(segments, MESSAGE_TYPE)
        self.properties.append(path)
        return Ref(None, path, type_name)

    def parse_lambda(self, segments: list[str], which: str) -> Node:
        collection = self.reference(segments)
        if not is_collection(collection.type):
            raise ParseUriError("Any/All may only be used following a collection.")
        self.advance()  # (
        self.enter()
        if self.tok.kind == ")":
            raise InvalidUrlQueryFilter()  # fidelity: chosen (`any()` without a predicate)
        var_token = self.advance()
        if var_token.kind != "ident" or var_token.text.lower() in _KEYWORDS | set(_LITERAL_WORDS):
            raise ParseUriError.syntax(var_token.end, self.text)
        if self.tok.kind != ":":
            raise ParseUriError.syntax(self.tok.end, self.text)
        self.advance()
        var = var_token.text
        if var in self.scopes:
            raise ParseUriError(f"The range variable '{var}' has already been declared.")
        self.scopes[var] = item_type(collection.type)
        body = self.parse_or()
        del self.scopes[var]
        if self.tok.kind != ")":
            raise ParseUriError.close_paren_or_operator(self.tok.pos, self.text)
        self.advance()
        self.depth -= 1
        if body.type not in (BOOLEAN, NULL):
            raise ParseUriError("The Any/All query expression must evaluate to a single boolean value.")
        self.check_predicate(body)
        if which == "all":
            raise InvalidUrlQueryFilter()  # fidelity: chosen
        if collection.var is None and collection.path not in FILTERABLE_PATHS:
            raise InvalidUrlQueryFilter()  # fidelity: chosen
        if collection.path in RECIPIENT_COLLECTIONS and not self.allow_recipient_lambdas:
            raise InvalidUrlQueryFilter()  # as observed in microsoft-graph-explorer-v4#3957
        return Any_(collection, var, body)


# --------------------------------------------------------------------------------------------- what indexes can use

Bound = tuple[datetime, bool]  # (instant, inclusive)
EQUALS_PATHS = frozenset({"subject", "from/emailAddress/address"})  # compared case-insensitively
FLAG_PATHS = frozenset({"isRead", "hasAttachments"})


@dataclass(frozen=True)
class Narrowing:
    """Conditions every message a filter matches meets, on properties the mail store indexes.

    Found in the filter's top-level `and`: ``receivedDateTime`` compared with a date or time (``after`` and
    ``before`` bound it), ``isRead`` / ``hasAttachments eq true|false`` (``flags``), and ``subject`` /
    ``from/emailAddress/address eq 'text'`` (``equals``, case-insensitive). ``exact`` is True when the filter
    says nothing else: a message meeting these conditions matches.
    """

    after: Bound | None = None
    before: Bound | None = None
    flags: dict[str, bool] = field(default_factory=dict)
    equals: tuple[tuple[str, str], ...] = ()
    exact: bool = False

    @property
    def empty(self) -> bool:
        return self.after is None and self.before is None and not self.flags and not self.equals


def _tighter(current: Bound | None, new: Bound, *, lower: bool) -> Bound:
    """The stricter of two bounds on the same side (at the same instant, the exclusive one)."""
    if current is None:
        return new
    if current[0] != new[0]:
        return new if (new[0] > current[0]) == lower else current
    return (new[0], new[1] and current[1])


def _narrowing(root: Node) -> Narrowing:
    after: Bound | None = None
    before: Bound | None = None
    flags: dict[str, bool] = {}
    equals: list[tuple[str, str]] = []
    exact = True
    for part in root.parts if isinstance(root, And) else [root]:
        if not isinstance(part, Comparison) or part.ref.var is not None or part.literal.value is None:
            exact = False
            continue
        path, op, value = part.ref.path, part.op, part.literal.value
        if path == "receivedDateTime" and op in ("eq", "ge", "gt", "le", "lt"):
            moment = as_datetime(value)
            if moment is None:  # pragma: no cover - the parser only lets dates and times through
                exact = False
                continue
            if op in ("eq", "ge", "gt"):
                after = _tighter(after, (moment, op != "gt"), lower=True)
            if op in ("eq", "le", "lt"):
                before = _tighter(before, (moment, op != "lt"), lower=False)
        elif path in FLAG_PATHS and op == "eq" and part.literal.type == BOOLEAN:
            if flags.get(path, value) != value:
                exact = False  # `isRead eq true and isRead eq false`: the filter itself then says no
            flags[path] = value
        elif path in EQUALS_PATHS and op == "eq" and isinstance(value, str):
            equals.append((path, value))
        else:
            exact = False
    return Narrowing(after, before, flags, tuple(equals), exact)


@dataclass(frozen=True)
class FilterExpr:
    """A parsed $filter.

    ``properties`` lists the canonical message paths in order of first appearance (a lambda counts as its
    collection). ``isread_only`` is False/True when the whole filter is exactly ``isRead eq false/true``
    (parentheses and ``false eq isRead`` allowed), else None. ``narrowing`` is what the store's indexes can use.
    """

    text: str
    properties: tuple[str, ...]
    isread_only: bool | None
    _root: Node = field(repr=False, compare=False)
    narrowing: Narrowing = field(default_factory=Narrowing, repr=False, compare=False)

    def matches(self, get: Getter) -> bool:
        """Whether the message behind ``get`` passes the filter (see ``query.nodes`` for the paths)."""
        return truth(self._root.eval(get, {}))


def parse_filter(text: str, *, allow_recipient_lambdas: bool = True) -> FilterExpr:
    """Parse a $filter value; raise an ODataQueryError subclass for anything Graph would refuse.

    ``allow_recipient_lambdas=False`` refuses ``toRecipients/any(...)`` (and cc/bcc/replyTo) with
    ErrorInvalidUrlQueryFilter, which is what Graph answered in 2025 (microsoft-graph-explorer-v4#3957).
    """
    parser = _FilterParser(text, allow_recipient_lambdas)
    root = parser.parse()
    isread_only = None
    if (
        isinstance(root, Comparison)
        and root.op == "eq"
        and root.ref.var is None
        and root.ref.path == "isRead"
        and root.literal.type == BOOLEAN
    ):
        isread_only = bool(root.literal.value)
    properties = tuple(dict.fromkeys(parser.properties))
    return FilterExpr(text, properties, isread_only, root, _narrowing(root))


def check_filter_orderby(flt: FilterExpr | None, orderby: Sequence[tuple[str, bool]]) -> None:
    """Raise InefficientFilter unless the $orderby properties lead the $filter, in the same order.

    The documented rule: every $orderby property must appear in $filter, in the same order, before any other.
    """
    if flt is None or not orderby:
        return
    wanted = list(dict.fromkeys(path for path, _ in orderby))
    if list(flt.properties[: len(wanted)]) != wanted:
        raise InefficientFilter()
