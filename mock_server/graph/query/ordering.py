"""$orderby: parsing, the order values sort in, a full stable sort, and keys for choosing only the first page."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from m365_mock.graph.errors import ParseUriError
from m365_mock.graph.query.edm import MESSAGE_TYPE, as_datetime, is_scalar, lex, resolve
from m365_mock.graph.query.nodes import Getter

T = TypeVar("T")


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """Parse a $orderby value into [(canonical path, descending)]; the direction defaults to ascending."""
    tokens = lex(text)
    i = 0
    if tokens[0].kind == "end":
        raise ParseUriError.expression_expected(tokens[0].pos, text)
    result: list[tuple[str, bool]] = []
    while True:
        token = tokens[i]
        if token.kind == "end":
            raise ParseUriError.expression_expected(token.pos, text)
        if token.kind != "ident":
            raise ParseUriError.syntax(token.end, text)  # fidelity: chosen (only property paths are sortable here)
        segments = [token.text]
        i += 1
        while tokens[i].kind == "/":
            if tokens[i + 1].kind != "ident":
                raise ParseUriError.syntax(tokens[i].end, text)
            segments.append(tokens[i + 1].text)
            i += 2
        if tokens[i].kind == "(":
            raise ParseUriError.syntax(tokens[i].end, text)  # fidelity: chosen (functions in $orderby)
        path, type_name = resolve(segments, MESSAGE_TYPE)
        if not is_scalar(type_name):
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
            raise ParseUriError.syntax(tokens[i].end, text)
        return result


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key under which None sorts first, strings case-insensitively and datetimes by instant."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, 0, int(value))
    if isinstance(value, int | float):
        return (1, 1, value)
    if isinstance(value, datetime | date):
        moment = as_datetime(value)
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


class Descending:
    """A sort key that sorts in reverse: equal keys stay equal, so ties fall through to the next key."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: Descending) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and bool(self.key == other.key)

    __hash__ = None  # type: ignore[assignment]


def order_key(orderby: Sequence[tuple[str, bool]], read: Callable[[T, str], Any]) -> Callable[[T], tuple[Any, ...]]:
    """One key for the whole $orderby: ascending order under it is `order`'s order, except for ties (which the
    caller breaks by the items' own order). ``read(item, path)`` is the value as the getter would give it."""
    if len(orderby) == 1:
        path, descending = orderby[0]
        if descending:
            return lambda item: (Descending(sort_key(read(item, path))),)
        return lambda item: (sort_key(read(item, path)),)
    return lambda item: tuple(
        Descending(sort_key(read(item, path))) if descending else sort_key(read(item, path))
        for path, descending in orderby
    )
