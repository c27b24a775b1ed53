"""Choosing a page of messages: from the smallest index that answers a condition, in the order asked, stopping as
soon as the page is full; the order found by walking an index or by a bounded heap, never by sorting them all."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from m365_mock.state.mailstore.indexes import VALUE_FIELDS, SortedIndex
from m365_mock.state.mailstore.messages import Message, _instant

if TYPE_CHECKING:
    from m365_mock.state.mailstore.store import Folder, MailboxStore


@dataclass
class Page:
    """One page of a listing; `total` only when the caller asked for a count."""

    items: list[Message]
    total: int | None
    has_more: bool


@dataclass(frozen=True)
class Selection:
    """Which messages a listing wants, in terms the store's indexes answer. Every condition given must hold.

    `after` / `before`: received at or after / before an instant (`inclusive` or strictly); `is_read`,
    `has_attachments`: that value; `equals`: (field of EQUALITY_FIELDS, text) pairs, the field's value must be
    the text ignoring case (as $filter compares strings); `among`: only these messages (found elsewhere, e.g. by
    a search); `predicate`: anything else, asked last and of the fewest messages.
    """

    after: tuple[datetime, bool] | None = None
    before: tuple[datetime, bool] | None = None
    is_read: bool | None = None
    has_attachments: bool | None = None
    equals: tuple[tuple[str, str], ...] = ()
    among: Collection[Message] | None = None
    predicate: Callable[[Message], bool] | None = None


# Orders a listing can ask for besides a key function of its own (ascending; ties in the default order).
NEWEST = "newest"  # receivedDateTime desc, then newest created: Graph's default
OLDEST = "oldest"  # receivedDateTime asc; messages received at the same instant newest created first
SENT = "sent"  # sentDateTime desc, unsent last; ties in the default order


@dataclass(frozen=True, slots=True)
class _Span:
    """Positions [start, stop) of a sorted index."""

    index: SortedIndex
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def _dense(want: int, scope: int, found: int) -> bool:
    """Whether `want` of `found` messages turn up sooner walking the scope's index (about want * scope / found
    steps) than choosing them among all found (about found steps, each dearer)."""
    return found > 0 and want * scope < 4 * found * found


def page(
    store: MailboxStore,
    folder: Folder | None,
    *,
    skip: int,
    top: int,
    count: bool,
    where: Selection,
    order: str | Callable[[Message], Any],
) -> Page:
    """The page `MailboxStore.list_messages` answers (see there); call it under the store's lock."""
    index = folder.all if folder else store.all
    source, answered = _source(store, folder, index, where)
    keep = _keeper(store, folder, where, answered)
    want = skip + top + 1  # one more than the page shows whether there is more
    if isinstance(source, _Span) and order in (NEWEST, OLDEST):
        walked, start, stop = source.index, source.start, source.stop
        if keep is None and order == NEWEST:
            items = walked.slice(start + skip, min(start + want, stop))
            return Page(items[:top], stop - start if count else None, len(items) > top)
        matches = walked.walk(start, stop, oldest_first=order == OLDEST)
        if keep is not None:
            matches = filter(keep, matches)
        if not count or keep is None:
            items = list(itertools.islice(matches, skip, want))
            return Page(items[:top], stop - start if count else None, len(items) > top)
        found = list(matches)
        return Page(found[skip : skip + top], len(found), len(found) > skip + top)
    if isinstance(source, _Span):
        walked, start, stop = source.index, source.start, source.stop
        candidates: Iterable[Message] = walked.walk(start, stop)
    elif order in (NEWEST, OLDEST) and not count and _dense(want, len(index), len(source)):
        # Many candidates: walk the folder's (or mailbox's) index and stop when the page is full.
        members = source if isinstance(source, set | frozenset) else set(source)
        walk = (m for m in index.walk(oldest_first=order == OLDEST) if m in members)
        items = list(itertools.islice(filter(keep, walk) if keep else walk, skip, want))
        return Page(items[:top], None, len(items) > top)
    else:
        candidates = source
    found = list(filter(keep, candidates) if keep else candidates)
    items = _first(found, want, order, index)
    return Page(items[skip : skip + top], len(found) if count else None, len(items) > skip + top)


def _source(
    store: MailboxStore, folder: Folder | None, index: SortedIndex, where: Selection
) -> tuple[_Span | Collection[Message], set[str]]:
    """Where the candidates come from (a span of a sorted index of the folder or mailbox, or a set of the
    whole mailbox's messages), and which conditions of `where` that source already answers."""
    best = _Span(index, 0, len(index))
    answered = {"scope"}
    if where.after is not None or where.before is not None:
        after = None if where.after is None else (_instant(where.after[0]), where.after[1])
        before = None if where.before is None else (_instant(where.before[0]), where.before[1])
        best, answered = _Span(index, *index.span(after, before)), {"scope", "received"}
    unread = folder.unread if folder else store.unread
    if where.is_read is False and len(unread) <= len(best):
        best, answered = _Span(unread, 0, len(unread)), {"scope", "is_read"}
    sets: list[tuple[Collection[Message], str]] = []
    if where.has_attachments is True:
        sets.append((store.attached, "has_attachments"))
    for position, (name, text) in enumerate(where.equals):
        holders = [store.values[name][value].messages for value in store.folded[name].get(text.casefold(), ())]
        sets.append((holders[0] if len(holders) == 1 else set().union(*holders), f"equals{position}"))
    if where.among is not None:
        sets.append((where.among, "among"))
    smallest = min(sets, key=lambda pair: len(pair[0]), default=None)
    if smallest is not None and len(smallest[0]) < len(best):
        return smallest[0], {smallest[1]}
    return best, answered


def _keeper(
    store: MailboxStore, folder: Folder | None, where: Selection, answered: set[str]
) -> Callable[[Message], bool] | None:
    """One test for the conditions of `where` (and the folder or mailbox) not `answered`; None if none."""
    tests: list[Callable[[Message], bool]] = []
    if "scope" not in answered:
        if folder is not None:
            folder_id = folder.id
            tests.append(lambda m: m.folder_id == folder_id)
        else:
            view = {f.id for f in store.folders.values() if f.in_mailbox_view}
            tests.append(lambda m: m.folder_id in view)
    if "received" not in answered:
        if where.after is not None:
            tests.append(_received_test(where.after, after=True))
        if where.before is not None:
            tests.append(_received_test(where.before, after=False))
    if where.is_read is not None and "is_read" not in answered:
        tests.append(_flag_test("is_read", where.is_read))
    if where.has_attachments is not None and "has_attachments" not in answered:
        tests.append(_flag_test("has_attachments", where.has_attachments))
    for position, (name, text) in enumerate(where.equals):
        if f"equals{position}" not in answered:
            tests.append(_equals_test(VALUE_FIELDS[name], text.casefold()))
    if where.among is not None and "among" not in answered:
        among = where.among if isinstance(where.among, set | frozenset) else set(where.among)
        tests.append(lambda m: m in among)
    if where.predicate is not None:
        tests.append(where.predicate)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda m: all(test(m) for test in tests)


def _first(found: list[Message], want: int, order: str | Callable[[Message], Any], index: SortedIndex) -> list[Message]:
    """The first `want` of `found` in `order`, without sorting them all when only a few are wanted."""
    if order in (NEWEST, OLDEST):
        if _dense(want, len(index), len(found)):
            members = set(found)
            walk = index.walk(oldest_first=order == OLDEST)
            return list(itertools.islice((m for m in walk if m in members), want))
        return heapq.nsmallest(want, found, key=_newest if order == NEWEST else _oldest)
    if order == SENT:
        return heapq.nsmallest(want, found, key=Message.sent_key)
    if isinstance(order, str):
        raise ValueError(f"no order {order!r}")
    key = order
    return heapq.nsmallest(want, found, key=lambda m: (key(m), _newest(m)))


def _newest(message: Message) -> tuple[float, int]:
    """The message's place in the default order (every message listed is in the indexes, so it has one)."""
    key = message._key
    assert key is not None
    return key


def _oldest(message: Message) -> tuple[float, int]:
    received, created = _newest(message)
    return -received, created


def _received_test(bound: tuple[datetime, bool], *, after: bool) -> Callable[[Message], bool]:
    """Received at or after (`after`) / at or before the bound's instant; strictly unless it is inclusive."""
    edge, inclusive = -_instant(bound[0]), bound[1]  # index keys hold the negated instant
    if after:
        return (lambda m: _newest(m)[0] <= edge) if inclusive else (lambda m: _newest(m)[0] < edge)
    return (lambda m: _newest(m)[0] >= edge) if inclusive else (lambda m: _newest(m)[0] > edge)


def _flag_test(name: str, wanted: bool) -> Callable[[Message], bool]:
    if name == "is_read":
        return lambda m: m.is_read is wanted
    return lambda m: m.has_attachments is wanted


def _equals_test(read: Callable[[Message], Any], folded: str) -> Callable[[Message], bool]:
    def test(message: Message) -> bool:
        value = read(message)
        return isinstance(value, str) and value.casefold() == folded

    return test
