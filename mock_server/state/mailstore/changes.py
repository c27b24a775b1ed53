"""What changed in each folder of one mailbox, in the order it happened: what Graph's message delta reads.

Every change to a message (stored, updated, moved in) takes the next number of the mailbox's change sequence
and files the message under the folder it is in, at that number; a folder keeps its entries in that order, so
"what changed in this folder after n" is a bisection and then a walk over those changes only, whatever the size
of the folder. An entry goes stale when its message changes again or leaves (`Message._change` names the one
entry of a message that counts); stale entries are dropped once they outnumber the live ones.

A message that leaves a folder (moved elsewhere, deleted) leaves a `Departure` there: the ids the folder knew
it by, for delta's `@removed` entries. When it comes back, its departure notes when and under which id, and
its next departure from the folder links to that one: a round tells a departure only when the message is gone
at the round's end and the client could know it at the round's start. A folder keeps at most `history`
departures; older ones are dropped and its `floor` rises to the newest dropped, so a delta token from before
the floor can no longer be answered.

`epoch` names one log: a store made anew (a reset, an import, a restart's restore) has another, and the tokens
of the store before must resync. The store calls `left` and `entered` under its lock from `_unindex`/`_index`
(an update is a leave and an entry in the same folder with the same id, which leaves no departure).
"""

from __future__ import annotations

import bisect
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from m365_mock.state.mailstore.indexes import SortedIndex
from m365_mock.state.mailstore.messages import Message

HISTORY = 10_000  # departures kept per folder
_COMPACT_AT = 64  # stale entries tolerated in a folder whatever its size


@dataclass(slots=True, eq=False)
class Departure:
    """A message leaving a folder: when (the change number), the ids the folder showed it under, and when it was
    received (for delta's received-time filter). `entered` is the change at which it had come into the folder,
    `previous` its departure from the folder before that (if kept), `returned` the change at which it came back
    (0 while it has not), under the id `returned_id`."""

    seq: int
    message: Message
    message_id: str
    immutable_id: str
    received: float
    entered: int
    previous: Departure | None = None
    returned: int = 0
    returned_id: str = ""

    def shown_id(self, immutable_ids: bool) -> str:
        return self.immutable_id if immutable_ids else self.message_id

    def came_back_as_before(self, immutable_ids: bool) -> bool:
        """The message came back under the id this departure showed (an immutable id always)."""
        return self.returned > 0 and (immutable_ids or self.returned_id == self.message_id)

    def tells(self, since: int, until: int, immutable_ids: bool) -> bool:
        """Whether a round over the changes (`since`, `until`] tells this departure: the message is gone under
        this id at `until`, and was in the folder under it at `since` (else the client never saw it there)."""
        if self.came_back_as_before(immutable_ids) and self.returned <= until:
            return False
        stay = self
        while stay.entered > since:  # this stay began within the round: as a return under the same id?
            before = stay.previous
            if before is None or before.returned != stay.entered or not before.came_back_as_before(immutable_ids):
                return False
            if before.seq <= since:
                return False  # gone at `since`
            stay = before
        return True


@dataclass(slots=True, eq=False)
class FolderChanges:
    """One folder's entries (change number, message) in change order, its departures likewise, and the latest
    kept departure of each message that left (to note its return and link the next)."""

    seqs: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    stale: int = 0
    gone_seqs: list[int] = field(default_factory=list)
    gone: list[Departure] = field(default_factory=list)
    latest_gone: dict[Message, Departure] = field(default_factory=dict)
    floor: int = 0

    def compact(self) -> None:
        keep = [(s, m) for s, m in zip(self.seqs, self.messages, strict=True) if m._change == s]
        self.seqs = [s for s, _ in keep]
        self.messages = [m for _, m in keep]
        self.stale = 0


@dataclass(frozen=True, slots=True)
class Change:
    """One item of a delta page: a message as it is now (`departure` None), or a message that left."""

    message: Message | None = None
    departure: Departure | None = None


class ChangeLog:
    """The change sequence of one mailbox and, per folder, its entries and departures."""

    def __init__(self, history: int = HISTORY) -> None:
        self.epoch = secrets.token_hex(8)
        self.seq = 0
        self.history = history
        self.folders: dict[str, FolderChanges] = {}

    def folder(self, folder_id: str) -> FolderChanges:
        changes = self.folders.get(folder_id)
        if changes is None:
            changes = self.folders[folder_id] = FolderChanges()
        return changes

    def entered(self, message: Message) -> None:
        """`message` is now (again) in its folder: a new entry there, at the next change number."""
        changes = self.folder(message.folder_id)
        gone = changes.gone
        just_left = bool(gone) and gone[-1].seq == self.seq and gone[-1].message is message
        self.seq += 1
        if just_left and gone[-1].message_id == message.id:
            undone = gone.pop()  # it left in the change before, and is back under the same id: an update
            changes.gone_seqs.pop()
            if undone.previous is None:
                del changes.latest_gone[message]
            else:
                changes.latest_gone[message] = undone.previous
        else:
            message._entered = self.seq
            departure = changes.latest_gone.get(message)
            if departure is not None and not departure.returned:
                departure.returned, departure.returned_id = self.seq, message.id
        message._change = self.seq
        changes.seqs.append(self.seq)
        changes.messages.append(message)

    def entered_many(self, messages: Iterable[Message]) -> None:
        """`entered` for new messages in bulk (generated, restored or imported mail)."""
        for message in messages:
            changes = self.folder(message.folder_id)
            self.seq += 1
            message._entered = message._change = self.seq
            changes.seqs.append(self.seq)
            changes.messages.append(message)

    def left(self, message: Message, received: float) -> None:
        """`message` is leaving its folder (for good, or to come back changed in the same step)."""
        changes = self.folder(message.folder_id)
        self.seq += 1
        departure = Departure(
            self.seq,
            message,
            message.id,
            message.immutable_id,
            received,
            message._entered,
            previous=changes.latest_gone.get(message),
        )
        changes.gone_seqs.append(self.seq)
        changes.gone.append(departure)
        changes.latest_gone[message] = departure
        message._change = 0
        changes.stale += 1
        if changes.stale > _COMPACT_AT and changes.stale * 2 > len(changes.seqs):
            changes.compact()
        if len(changes.gone) > self.history:
            dropped = len(changes.gone) - max(1, self.history // 2)
            changes.floor = changes.gone_seqs[dropped - 1]
            for old in changes.gone[:dropped]:
                old.previous = None  # a kept departure holds at most one dropped one
                if changes.latest_gone.get(old.message) is old:
                    del changes.latest_gone[old.message]
            del changes.gone[:dropped], changes.gone_seqs[:dropped]

    def floor(self, folder_id: str) -> int:
        """Changes after this number can be told for the folder; before it, departures may be forgotten."""
        changes = self.folders.get(folder_id)
        return changes.floor if changes is not None else 0


def _received(message: Message) -> float:
    key = message._key or message.index_key()
    return -key[0]


def _within(instant: float, received_after: tuple[float, bool] | None) -> bool:
    if received_after is None:
        return True
    bound, inclusive = received_after
    return instant >= bound if inclusive else instant > bound


def initial_page(
    index: SortedIndex,
    *,
    until: int,
    after: tuple[float, int] | None,
    size: int,
    received_after: tuple[float, bool] | None = None,
) -> tuple[list[Message], tuple[float, int] | None]:
    """A page of the first round: the folder's messages newest received first, from past the key `after`.

    A message changed after `until` (the round's last change) is passed over: the next round tells it. Answers
    the page and the key to continue after, or None when the round has nothing further.
    """
    start = 0 if after is None else index.position_after(after)
    stop = len(index) if received_after is None else index.span(received_after, None)[1]
    page: list[Message] = []
    position = start
    for message in index.walk(start, stop):
        position += 1
        if message._change > until:
            continue
        page.append(message)
        if len(page) == size:
            break
    if position < stop and page:
        last = page[-1]
        return page, last._key or last.index_key()
    return page, None


def changes_page(
    log: ChangeLog,
    folder_id: str,
    *,
    since: int,
    until: int,
    after: int,
    size: int,
    change_type: str | None = None,
    received_after: tuple[float, bool] | None = None,
    immutable_ids: bool = False,
) -> tuple[list[Change], int | None]:
    """A page of a later round: what changed in the folder in (`since`, `until`], from past the change `after`,
    in the order it happened. Answers the page and the change to continue after, or None at the round's end.

    A message appears once, as it is now, at its latest change; one that changed again after `until` waits for
    the next round. A departure is told when the message is gone at `until` and was there at `since`
    (`Departure.tells`). `change_type` keeps `created` (came into the folder after `since`), `updated` (was there
    before) or `deleted` (departures) only.
    """
    changes = log.folders.get(folder_id)
    if changes is None:
        return [], None
    seqs, messages, gone_seqs, gone = changes.seqs, changes.messages, changes.gone_seqs, changes.gone
    i, j = bisect.bisect_right(seqs, after), bisect.bisect_right(gone_seqs, after)
    live_end, gone_end = bisect.bisect_right(seqs, until), bisect.bisect_right(gone_seqs, until)
    page: list[Change] = []
    while (i < live_end or j < gone_end) and len(page) < size:
        if j >= gone_end or (i < live_end and seqs[i] < gone_seqs[j]):
            seq, message = seqs[i], messages[i]
            i += 1
            if message._change != seq or not _within(_received(message), received_after):
                continue
            if change_type is not None:
                created = message._entered > since
                if change_type != ("created" if created else "updated"):
                    continue
            page.append(Change(message=message))
        else:
            departure = gone[j]
            j += 1
            if change_type not in (None, "deleted") or not _within(departure.received, received_after):
                continue
            if not departure.tells(since, until, immutable_ids):
                continue
            page.append(Change(departure=departure))
    if i < live_end or j < gone_end:
        last = max(seqs[i - 1] if i else 0, gone_seqs[j - 1] if j else 0)
        return page, max(last, after)
    return page, None
