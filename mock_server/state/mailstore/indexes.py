"""The indexes a mailbox keeps: messages sorted in Graph's default order, the distinct values of subjects, bodies
and senders with the messages holding each, and when long-lived mail leaves the garbage collector's walk."""

from __future__ import annotations

import bisect
import gc
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from m365_mock.state.mailstore.messages import Message

_INF = float("inf")


def address_part(recipient: Any, part: str) -> Any:
    """`recipient["emailAddress"][part]`, or None where the recipient has no such part."""
    email = recipient.get("emailAddress") if isinstance(recipient, dict) else None
    return email.get(part) if isinstance(email, dict) else None


# The text fields kept as value indexes, and how each is read from a message (as Graph JSON shows it).
VALUE_FIELDS: dict[str, Callable[[Message], Any]] = {
    "subject": lambda m: m.subject,
    "body": lambda m: m.body_content,
    "from_name": lambda m: address_part(m.from_, "name"),
    "from_address": lambda m: address_part(m.from_, "address"),
}


EQUALITY_FIELDS = ("subject", "from_address")  # value indexes also kept by case-folded value


class ValueEntry:
    """One distinct value of an indexed text field: the messages holding it (one, or a set of many), and
    `derived`, a slot for what readers compute from the value once (a search keeps its normalized text there)."""

    __slots__ = ("_many", "_one", "derived")

    def __init__(self) -> None:
        self._one: Message | None = None
        self._many: set[Message] | None = None
        self.derived: Any = None

    @property
    def messages(self) -> Collection[Message]:
        if self._many is not None:
            return self._many
        return () if self._one is None else (self._one,)

    def add(self, message: Message) -> None:
        if self._many is not None:
            self._many.add(message)
        elif self._one is None:
            self._one = message
        elif self._one is not message:
            self._many, self._one = {self._one, message}, None

    def discard(self, message: Message) -> bool:
        """Forget `message`; True when no message holds the value any more."""
        if self._many is not None:
            self._many.discard(message)
            return not self._many
        if self._one is message:
            self._one = None
        return self._one is None


class SortedIndex:
    """Messages kept in Graph's default order; page slices and lengths without scanning."""

    def __init__(self) -> None:
        self._keys: list[tuple[float, int]] = []
        self._by_key: dict[tuple[float, int], Message] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, message: Message) -> None:
        key = message._key or message.index_key()
        bisect.insort(self._keys, key)
        self._by_key[key] = message

    def extend(self, messages: Iterable[Message]) -> None:
        """Add many at once: one sort (linear for keys mostly in order) instead of an insertion each."""
        keys, by_key = self._keys, self._by_key
        for message in messages:
            key = message._key or message.index_key()
            by_key[key] = message
            keys.append(key)
        keys.sort()

    def discard(self, message: Message) -> None:
        key = message._key or message.index_key()
        if self._by_key.pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]

    def position_after(self, key: tuple[float, int]) -> int:
        """The position of the first message sorted after `key` (which need not be in the index any more)."""
        return bisect.bisect_right(self._keys, key)

    def slice(self, start: int, stop: int) -> list[Message]:
        return [self._by_key[k] for k in self._keys[start:stop]]

    def span(self, after: tuple[float, bool] | None, before: tuple[float, bool] | None) -> tuple[int, int]:
        """Positions [start, stop) of the messages received within the bounds ((instant, inclusive) or None)."""
        keys, start, stop = self._keys, 0, len(self._keys)
        if before is not None:  # newest first: the upper bound of time is where the span starts
            moment, inclusive = before
            start = bisect.bisect_left(keys, (-moment,)) if inclusive else bisect.bisect_right(keys, (-moment, _INF))
        if after is not None:
            moment, inclusive = after
            stop = bisect.bisect_right(keys, (-moment, _INF)) if inclusive else bisect.bisect_left(keys, (-moment,))
        return start, max(start, stop)

    def walk(self, start: int = 0, stop: int | None = None, *, oldest_first: bool = False) -> Iterator[Message]:
        """The messages at positions [start, stop): newest first, or oldest received first (messages received at
        the same instant then still newest created first, as a stable sort by receivedDateTime leaves them).

        Walk under the store's lock: the index must not change meanwhile.
        """
        keys, by_key = self._keys, self._by_key
        stop = len(keys) if stop is None else min(stop, len(keys))
        if not oldest_first:
            for position in range(start, stop):
                yield by_key[keys[position]]
            return
        end = stop
        while end > start:
            first = max(start, bisect.bisect_left(keys, (keys[end - 1][0],), start, end))
            for position in range(first, end):
                yield by_key[keys[position]]
            end = first

    def __iter__(self) -> Iterator[Message]:
        for key in list(self._keys):
            message = self._by_key.get(key)
            if message is not None:
                yield message


# A full garbage collection walks every container object that is not frozen: 100,000 messages made ~700,000
# of them and pauses of 130-420 ms. Mail lives as long as the world, so once this many messages were added or
# changed the store moves everything alive into the permanent generation (gc.freeze): a full collection then
# walks only what came after (measured on 2 shared cores at 100,000 messages while mail is delivered: 5,000
# let a pause reach 10 ms, 2,000 keeps them under 2 ms). Frozen objects are still freed when nothing refers to
# them; only cyclic garbage alive at that moment stays.
FREEZE_EVERY = 2_000
_changed_since_freeze = 0


def _note_changed(count: int) -> None:
    """Count messages added or changed; freeze what is alive when enough were."""
    global _changed_since_freeze
    _changed_since_freeze += count
    if _changed_since_freeze >= FREEZE_EVERY:
        _changed_since_freeze = 0
        gc.freeze()
