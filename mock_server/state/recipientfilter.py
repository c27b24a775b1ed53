"""Exchange's recipient filters (the OPATH subset of `New-ManagementScope -RecipientRestrictionFilter`).

`parse_recipient_filter(text, is_member)` compiles a filter such as
``MemberOfGroup -eq 'cctr_sec_group' -and -not(CustomAttribute1 -like 'em*')`` into a predicate
``(tenant, mailbox) -> bool``. Group membership is asked of the `is_member` callable the caller gives, so this
module knows nothing of policies.

Bounded by construction: the tokenizer is one left-to-right pass, parentheses and ``-not`` nest at most
`MAX_NESTING` deep (deeper is refused as a syntax error, never a RecursionError), ``-and``/``-or`` chains are
kept flat so evaluating them does not recurse per operand, and ``-like`` is a glob over ``*`` matched with
`str.find`, piece by piece, with no backtracking.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from m365_mock.state.errors import RuleError

if TYPE_CHECKING:
    from m365_mock.state.directory import Group, Mailbox, Tenant

Predicate = Callable[["Tenant", "Mailbox"], bool]

MAX_NESTING = 64  # fidelity: chosen (Exchange publishes no limit; parentheses and -not count alike)

FILTER_PROPERTIES = {f"customattribute{i}": f"CustomAttribute{i}" for i in range(1, 16)} | {
    "memberofgroup": "MemberOfGroup",
    "primarysmtpaddress": "PrimarySmtpAddress",
    "recipienttypedetails": "RecipientTypeDetails",
    "emailaddresses": "EmailAddresses",
    "displayname": "DisplayName",
    "alias": "Alias",
}
_COMPARISONS = ("-eq", "-ne", "-like", "-notlike")

_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<op>-(?:and|or|not|eq|ne|like|notlike)\b)"
    r"|'(?P<squote>(?:[^']|'')*)'|\"(?P<dquote>(?:[^\"]|\"\")*)\"|(?P<word>[A-Za-z][A-Za-z0-9]*))",
    re.IGNORECASE,
)


class RecipientFilterError(RuleError):
    """A recipient filter Exchange refuses; the message is Exchange's."""


class MembershipTest(Protocol):
    def __call__(self, tenant: Tenant, group: Group, mailbox: Mailbox, *, nested: bool) -> bool: ...


def syntax_error(text: str, position: int) -> RecipientFilterError:
    """Exchange's refusal of a filter it cannot parse; `position` is 1-based."""
    return RecipientFilterError(f'Invalid filter syntax. "{text}" at position {position}.')


# ---------------------------------------------------------------- values and matching


def _value(tenant: Tenant, mailbox: Mailbox, prop: str) -> list[str]:
    if prop.startswith("CustomAttribute"):
        return [mailbox.custom_attributes.get(int(prop[len("CustomAttribute") :]), "")]
    if prop == "PrimarySmtpAddress":
        return [mailbox.address]
    if prop == "EmailAddresses":
        return [f"smtp:{a}" for a in mailbox.addresses()] + mailbox.addresses()
    if prop == "RecipientTypeDetails":
        return [mailbox.recipient_type_details]
    if prop == "DisplayName":
        return [mailbox.display_name]
    if prop == "Alias":
        return [mailbox.address.split("@")[0]]
    return []


def like(pattern: str, value: str) -> bool:
    """`-like`: case-insensitive, ``*`` matches any run of characters (none included); nothing else is special.

    The pattern splits on ``*`` into pieces: the first must start the value, the last must end it, and the ones
    between are found in order, each leftmost after the previous, by `str.find`. Taking the leftmost place of
    each piece never loses a match, so no choice is ever revisited: one `find` per piece, over disjoint spans.
    """
    pieces = pattern.lower().split("*")
    text = value.lower()
    if len(pieces) == 1:
        return text == pieces[0]
    head, middle, tail = pieces[0], pieces[1:-1], pieces[-1]
    if len(head) + len(tail) > len(text) or not text.startswith(head) or not text.endswith(tail):
        return False
    position, stop = len(head), len(text) - len(tail)
    for piece in middle:
        if not piece:
            continue
        found = text.find(piece, position, stop)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def _group_key(value: str) -> str:
    """A group named by distinguished name (`CN=cctr_sec_group,OU=...`), address, name or id."""
    match = re.match(r"^CN=([^,]+),", value, re.IGNORECASE)
    return match.group(1) if match else value


# ---------------------------------------------------------------- tokens and grammar


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, 0-based position) of each token; quoted values come unescaped, as kind ``squote``."""
    tokens: list[tuple[str, str, int]] = []
    position, end = 0, len(text.rstrip())  # trailing whitespace ends the filter
    while position < end:
        match = _FILTER_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise syntax_error(text, position + 1)
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "squote":
            value = value.replace("''", "'")
        elif kind == "dquote":
            value, kind = value.replace('""', '"'), "squote"
        tokens.append((kind, value, match.start(kind) if kind != "squote" else match.start()))
        position = match.end()
    return tokens


def _any(parts: Sequence[Predicate]) -> Predicate:
    return parts[0] if len(parts) == 1 else (lambda t, m: any(p(t, m) for p in parts))


def _all(parts: Sequence[Predicate]) -> Predicate:
    return parts[0] if len(parts) == 1 else (lambda t, m: all(p(t, m) for p in parts))


class _FilterStream:
    def __init__(self, text: str, tokens: list[tuple[str, str, int]], is_member: MembershipTest) -> None:
        self.text, self.tokens, self.index = text, tokens, 0
        self.is_member = is_member
        self.depth = 0

    def done(self) -> bool:
        return self.index >= len(self.tokens)

    def fail(self) -> None:
        at = self.tokens[self.index][2] + 1 if not self.done() else len(self.text) + 1
        raise syntax_error(self.text, at)

    def peek(self, kind: str, value: str | None = None) -> bool:
        if self.done():
            return False
        k, v, _ = self.tokens[self.index]
        return k == kind and (value is None or v.lower() == value)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(kind, value):
            self.fail()
        self.index += 1
        return self.tokens[self.index - 1][1]

    def expression(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek("op", "-or"):
            self.take("op")
            parts.append(self.conjunction())
        return _any(parts)

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.peek("op", "-and"):
            self.take("op")
            parts.append(self.unary())
        return _all(parts)

    def enter(self) -> None:
        """One level deeper (a parenthesis or -not); past MAX_NESTING the filter is refused at that token."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise syntax_error(self.text, self.tokens[self.index][2] + 1)

    def unary(self) -> Predicate:
        if self.peek("op", "-not"):
            self.enter()
            self.take("op")
            inner = self.unary()
            self.depth -= 1
            return lambda t, m: not inner(t, m)
        if self.peek("lparen"):
            self.enter()
            self.take("lparen")
            inner = self.expression()
            self.take("rparen")
            self.depth -= 1
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        name = self.take("word")
        prop = FILTER_PROPERTIES.get(name.lower())
        if prop is None:
            raise RecipientFilterError(f"The property '{name}' can't be used in a recipient restriction filter.")
        if not self.peek("op") or self.tokens[self.index][1].lower() not in _COMPARISONS:
            self.fail()
        op = self.take("op").lower()
        value = self.take("squote") if self.peek("squote") else self.take("word")
        if prop == "MemberOfGroup":
            is_member = self.is_member

            def member(t: Tenant, m: Mailbox) -> bool:
                group = t.group(_group_key(value))
                return group is not None and is_member(t, group, m, nested=False)

            return member if op == "-eq" else (lambda t, m: not member(t, m))

        def test(t: Tenant, m: Mailbox) -> bool:
            values = _value(t, m, prop)
            if op in ("-like", "-notlike"):
                hit = any(like(value, v) for v in values)
            else:
                hit = any(v.lower() == value.lower() for v in values)
            return hit if op in ("-eq", "-like") else not hit

        return test


def parse_recipient_filter(text: str, is_member: MembershipTest) -> Predicate:
    """Compile a RecipientRestrictionFilter such as `MemberOfGroup -eq 'cctr_sec_group' -and -not(...)`.

    Supported: CustomAttribute1..15, PrimarySmtpAddress, EmailAddresses, RecipientTypeDetails, DisplayName,
    Alias, MemberOfGroup (direct members only, as Exchange documents: `is_member` is asked with
    ``nested=False``); -eq -ne -like -notlike; -and -or -not; parentheses. RecipientFilterError with the position
    of anything else, including nesting deeper than MAX_NESTING.
    """
    stream = _FilterStream(text, _tokens(text), is_member)
    predicate = stream.expression()
    if not stream.done():
        stream.fail()
    return predicate
