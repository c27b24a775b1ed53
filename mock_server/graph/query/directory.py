"""Query options on the directory's users (`GET /users`): $select, $filter, $top, $count and paging tokens.

Pure Python, no Flask. Directory objects are queried as Entra ID queries them, not as Exchange queries mail: `$top`
from 1 to 999, paging by `$skiptoken`, no `$skip`, and the *advanced query* operators (`ne`, `not`, `endsWith`)
only with the `ConsistencyLevel: eventual` header and `$count=true`. A user is given to a filter as the dict of
its properties (`user_json` of every property).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from m365_mock.graph.errors import (
    DirectoryBadRequest,
    ExpiredPageToken,
    ParseUriError,
    SelectParseFailed,
    UnsupportedQuery,
)
from m365_mock.graph.query.edm import STRING, Token, TokenCursor, lex

TOP_MAX = 999
DEFAULT_PAGE = 100
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
# Properties the emulator knows beyond the default set, returned only when $select names them.
EXTRA_PROPERTIES = ("mailNickname", "proxyAddresses", "userType")
PROPERTIES = {name.lower(): name for name in (*DEFAULT_PROPERTIES, *EXTRA_PROPERTIES)}
# What User.ReadBasic.All lets an app read: "display name, first and last name, email address" (and the id).
BASIC_PROPERTIES = frozenset({"id", "displayName", "givenName", "surname", "mail", "userPrincipalName"})
# String properties $filter takes; `id` only with equality and `in`.
FILTERABLE = {name.lower(): name for name in ("id", "displayName", "givenName", "surname", "mail", "userPrincipalName")}
ADVANCED_HINT = (
    "is not supported because the required parameters might be missing. Try adding $count=true query parameter "
    "and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
)
_TOKEN_PREFIX = b"m365-users:"

UserPredicate = Callable[[dict[str, Any]], bool]


def parse_select(text: str) -> list[str]:
    """$select on users: canonical property names (any case), in the order given, without repeats."""
    names: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        name = PROPERTIES.get(item.lower())
        if name is None:
            raise SelectParseFailed(item)
        names.append(name)
    return list(dict.fromkeys(names))


def parse_top(text: str) -> int:
    """$top on users: an integer from 1 to 999 (Entra's page size)."""
    stripped = text.strip()
    if not (stripped.lstrip("-").isdigit() and stripped.isascii()):
        raise DirectoryBadRequest(  # fidelity: chosen (ODataLib's text for a $top that is not a number)
            f"Invalid value '{text}' for $top query option found. "
            "The $top query option requires a non-negative integer value."
        )
    value = int(stripped)
    if not 1 <= value <= TOP_MAX:
        raise UnsupportedQuery(f"Invalid page size specified: '{value}'. Must be between 1 and {TOP_MAX} inclusive.")
    return value


def skip_token(offset: int) -> str:
    """The opaque `$skiptoken` of the page starting at `offset`."""
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + str(offset).encode()).decode().rstrip("=")


def parse_skip_token(text: str) -> int:
    """The offset a `$skiptoken` of `skip_token` stands for; Entra's expired-token error for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ExpiredPageToken() from None
    digits = raw[len(_TOKEN_PREFIX) :]
    if not raw.startswith(_TOKEN_PREFIX) or not digits.isdigit() or len(digits) > 9:
        raise ExpiredPageToken()
    return int(digits)


# ---------------------------------------------------------------- $filter


@dataclass(frozen=True)
class UserFilter:
    """A parsed $filter on users; `advanced` names the first operator that needs the advanced query parameters."""

    text: str
    matches: UserPredicate
    advanced: str | None


def parse_filter(text: str) -> UserFilter:
    """Parse a $filter on users: `eq`, `ne`, `in`, `startswith`, `endswith`, `not`, `and`, `or` and parentheses
    over the string properties in FILTERABLE, compared ignoring case as Entra compares them."""
    try:
        parser = _FilterParser(text)
        predicate = parser.parse()
    except ParseUriError as exc:
        raise DirectoryBadRequest(f"Invalid filter clause: {exc.message}") from None
    return UserFilter(text, predicate, parser.advanced)


def _fold(value: Any) -> str | None:
    return value.casefold() if isinstance(value, str) else None


class _FilterParser(TokenCursor):
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = lex(text)
        self.i = 0
        self.advanced: str | None = None
        self.depth = 0

    def parse(self) -> UserPredicate:
        if self.tok.kind == "end":
            raise ParseUriError.expression_expected(0, self.text)
        predicate = self.parse_or()
        if self.tok.kind != "end":
            raise ParseUriError.syntax(self.tok.pos, self.text)
        return predicate

    def keyword(self, word: str) -> bool:
        if self.tok.kind == "ident" and self.tok.text == word:
            self.advance()
            return True
        return False

    def needs_advanced(self, operator: str) -> None:
        self.advanced = self.advanced or operator

    def parse_or(self) -> UserPredicate:
        parts = [self.parse_and()]
        while self.keyword("or"):
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda user: any(p(user) for p in parts))

    def parse_and(self) -> UserPredicate:
        parts = [self.parse_unary()]
        while self.keyword("and"):
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else (lambda user: all(p(user) for p in parts))

    def parse_unary(self) -> UserPredicate:
        if self.keyword("not"):
            self.needs_advanced("not")
            inner = self.parse_unary()
            return lambda user: not inner(user)
        return self.parse_primary()

    def parse_primary(self) -> UserPredicate:
        tok = self.tok
        if tok.kind == "(":
            self.depth += 1
            if self.depth > 64:
                raise ParseUriError.too_deep()
            self.advance()
            inner = self.parse_or()
            self.expect(")")
            self.depth -= 1
            return inner
        if tok.kind != "ident":
            raise ParseUriError.expression_expected(tok.pos, self.text)
        self.advance()
        if self.tok.kind == "(":
            return self.parse_function(tok)
        return self.parse_comparison(tok)

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            if kind == ")":
                raise ParseUriError.close_paren_or_operator(self.tok.pos, self.text)
            raise ParseUriError.syntax(self.tok.pos, self.text)
        return self.advance()

    def property(self, tok: Token) -> str:
        if tok.kind != "ident" or self.tok.kind == "/":
            raise UnsupportedQuery(self.unsupported_property(tok.text))
        name = FILTERABLE.get(tok.text.lower())
        if name is None:
            raise UnsupportedQuery(self.unsupported_property(tok.text))
        return name

    @staticmethod
    def unsupported_property(name: str) -> str:
        return f"Unsupported or invalid query filter clause specified for property '{name}' of resource 'User'."

    def string(self, kind: str = "Equal") -> str | None:
        """A string literal (or `null`); ODataLib's type error for a literal of another type."""
        tok = self.advance()
        if tok.kind == "ident" and tok.text == "null":
            return None
        if tok.kind == "string" and tok.type == STRING:
            return str(tok.value)
        if tok.kind in ("number", "dto", "date") or (tok.kind == "ident" and tok.text in ("true", "false")):
            raise ParseUriError(
                "A binary operator with incompatible types was detected. Found operand types 'Edm.String' and "
                f"'{tok.type or 'Edm.Boolean'}' for operator kind '{kind}'."
            )
        raise ParseUriError.expression_expected(tok.pos, self.text)

    def parse_comparison(self, tok: Token) -> UserPredicate:
        name = self.property(tok)
        operator = self.tok.text if self.tok.kind == "ident" else ""
        if operator == "in":
            self.advance()
            self.expect("(")
            values = {self.string()}
            while self.tok.kind == ",":
                self.advance()
                values.add(self.string())
            self.expect(")")
            wanted = {_fold(v) for v in values}
            return lambda user: _fold(user.get(name)) in wanted
        if operator not in ("eq", "ne"):
            raise ParseUriError.syntax(self.tok.pos, self.text)
        self.advance()
        literal = _fold(self.string("NotEqual" if operator == "ne" else "Equal"))
        if operator == "ne":
            self.needs_advanced("ne")
            return lambda user: _fold(user.get(name)) != literal
        return lambda user: _fold(user.get(name)) == literal

    def parse_function(self, tok: Token) -> UserPredicate:
        function = tok.text.lower()
        if function not in ("startswith", "endswith"):
            raise ParseUriError(
                f"An unknown function with name '{tok.text}' was found. This may also be a function import or a key "
                "lookup on a navigation property, which is not allowed."
            )
        self.expect("(")
        name = self.property(self.advance())
        if name == "id":
            raise UnsupportedQuery(self.unsupported_property(name))
        self.expect(",")
        prefix = _fold(self.string()) or ""
        self.expect(")")
        if function == "endswith":
            self.needs_advanced("endsWith")

        def matches(user: dict[str, Any]) -> bool:
            value = _fold(user.get(name))
            if value is None:
                return False
            return value.endswith(prefix) if function == "endswith" else value.startswith(prefix)

        return matches
