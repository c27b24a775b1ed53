"""Folders and messages of every mailbox, delivery of sent mail, and the indexes that keep listing cheap.

Each mailbox has its own lock; no operation holds two mailbox locks at once, so delivery to many mailboxes
cannot deadlock. Every index is changed under that lock, in the same step as the message.

What a listing costs does not grow with the mailbox where the indexes answer it: every folder and the mailbox
as a whole keep their messages sorted by received time (Graph's default order) and their unread messages
likewise, so a first page, an unread page, a page in either direction of receivedDateTime and a received-time
range are slices; the mailbox keeps the messages with attachments, and for subjects, bodies and senders the
distinct values with the messages that hold each (`ValueEntry`), so an equality filter or a search word is
answered per distinct value, not per message.
"""

from __future__ import annotations

import base64
import bisect
import functools
import gc
import heapq
import html
import itertools
import re
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from m365_mock.ids import new_uuid, random_bytes
from m365_mock.state.directory import Mailbox, Tenant

# Well-known folders: name -> (display name, parent well-known name or None for the root's parent, listed).
WELL_KNOWN_FOLDERS: dict[str, tuple[str, str | None]] = {
    "msgfolderroot": ("Top of Information Store", None),
    "archive": ("Archive", "msgfolderroot"),
    "conversationhistory": ("Conversation History", "msgfolderroot"),
    "deleteditems": ("Deleted Items", "msgfolderroot"),
    "drafts": ("Drafts", "msgfolderroot"),
    "inbox": ("Inbox", "msgfolderroot"),
    "junkemail": ("Junk Email", "msgfolderroot"),
    "outbox": ("Outbox", "msgfolderroot"),
    "sentitems": ("Sent Items", "msgfolderroot"),
    "syncissues": ("Sync Issues", "msgfolderroot"),
    "conflicts": ("Conflicts", "syncissues"),
    "localfailures": ("Local Failures", "syncissues"),
    "serverfailures": ("Server Failures", "syncissues"),
    # Outside the visible tree: reachable by name, never listed under the root.
    "scheduled": ("Scheduled", None),
    "searchfolders": ("Finder", None),
    "recoverableitemsdeletions": ("Deletions", None),
}
_ID_PREFIX_MESSAGE = b"\x00\x03\x24\x00"
_ID_PREFIX_FOLDER = b"\x00\x01\x2e\x00"
_ID_PREFIX_IMMUTABLE = b"\x00\x09\x2e\x00"
_ID_PREFIX_CONVERSATION = b"\x00\x10\x00\x00"
_ID_LENGTH = 4 + 16 + 22
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


class MailStoreError(LookupError):
    """Base for the store's refusals; graph/ maps each to Graph's error."""


class MalformedId(MailStoreError):
    pass


class ItemNotFound(MailStoreError):
    pass


class FolderExists(MailStoreError):
    pass


def _graph_id(prefix: bytes, owner: str) -> str:
    """An id shaped like Exchange's: base64url of a fixed prefix, the owning mailbox's GUID and random bytes."""
    raw = prefix + uuid.UUID(owner).bytes + random_bytes(22)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def is_wellformed_id(value: str) -> bool:
    """True when `value` could be an id this store issued (standard or url-safe base64 of the right shape)."""
    if not 40 <= len(value) <= 200:
        return False
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except ValueError:
        return False
    return len(raw) == _ID_LENGTH and raw[:4] in (_ID_PREFIX_MESSAGE, _ID_PREFIX_FOLDER, _ID_PREFIX_IMMUTABLE)


def normalise_id(value: str) -> str:
    """Ids compare in url-safe form; clients sometimes send the standard-base64 spelling."""
    return value.replace("+", "-").replace("/", "_")


def new_change_key() -> str:
    return base64.b64encode(b"\x09\x00\x00\x00\x16\x00\x00\x00" + random_bytes(18)).decode("ascii")


def text_of(content: str, content_type: str) -> str:
    """The plain text of a body: HTML tags dropped and entities decoded."""
    if content_type == "html":
        content = html.unescape(_TAG.sub(" ", content))
    return content


def preview_of(content: str, content_type: str) -> str:
    return _SPACE.sub(" ", text_of(content, content_type)).strip()[:255]


# Previews are made when a message is rendered or filtered on; mail often repeats its bodies, and a preview kept
# on every message read would stay as long as the message.
_shared_preview = functools.lru_cache(maxsize=4096)(preview_of)


def recipient(address: str, name: str | None = None) -> dict[str, Any]:
    return {"emailAddress": {"name": name if name is not None else address, "address": address}}


@dataclass(slots=True, eq=False)
class Message:
    """One message in one folder. `id` changes when the message moves; `immutable_id` never does.

    Messages compare and hash by identity: the store's indexes keep them in sets.
    """

    id: str
    immutable_id: str
    seq: int
    folder_id: str
    created: datetime
    modified: datetime
    received: datetime
    sent: datetime | None
    subject: str = ""
    body_type: str = "html"
    body_content: str = ""
    sender: dict[str, Any] | None = None
    from_: dict[str, Any] | None = None
    to: list[dict[str, Any]] = field(default_factory=list)
    cc: list[dict[str, Any]] = field(default_factory=list)
    bcc: list[dict[str, Any]] = field(default_factory=list)
    reply_to: list[dict[str, Any]] = field(default_factory=list)
    is_read: bool = False
    is_draft: bool = False
    importance: str = "normal"
    inference_classification: str = "focused"
    flag: dict[str, Any] = field(default_factory=lambda: {"flagStatus": "notFlagged"})
    categories: list[str] = field(default_factory=list)
    internet_message_id: str = ""
    conversation_id: str = ""
    conversation_index: str = ""
    internet_message_headers: list[dict[str, str]] = field(default_factory=list)
    is_delivery_receipt_requested: bool = False
    is_read_receipt_requested: bool = False
    has_attachments: bool = False
    attachments: list[dict[str, Any]] = field(default_factory=list)
    change_key: str = field(default_factory=new_change_key)
    _key: tuple[float, int] | None = field(default=None, repr=False)  # index_key() while in the indexes
    _sent_key: tuple[Any, ...] | None = field(default=None, repr=False)

    @property
    def body_preview(self) -> str:
        return _shared_preview(self.body_content, self.body_type)

    def set_body(self, content: str, content_type: str) -> None:
        self.body_content, self.body_type = content, content_type

    def index_key(self) -> tuple[float, int]:
        """Sorts ascending in Graph's default order: newest received first, then newest created."""
        return (-_instant(self.received), -self.seq)

    def sent_key(self) -> tuple[Any, ...]:
        """Sorts ascending by sentDateTime, newest first and unsent last, then in the default order."""
        if self._sent_key is None:
            key = self._key or self.index_key()
            self._sent_key = (1, 0.0, *key) if self.sent is None else (0, -_instant(self.sent), *key)
        return self._sent_key

    def copy_fields(self) -> dict[str, Any]:
        """The content of this message, for building a copy or a delivered message."""
        return {
            "subject": self.subject,
            "body_type": self.body_type,
            "body_content": self.body_content,
            "sender": _clone(self.sender),
            "from_": _clone(self.from_),
            "to": _clone(self.to),
            "cc": _clone(self.cc),
            "bcc": _clone(self.bcc),
            "reply_to": _clone(self.reply_to),
            "is_read": self.is_read,
            "is_draft": self.is_draft,
            "importance": self.importance,
            "inference_classification": self.inference_classification,
            "flag": _clone(self.flag),
            "categories": list(self.categories),
            "internet_message_id": self.internet_message_id,
            "conversation_id": self.conversation_id,
            "conversation_index": self.conversation_index,
            "internet_message_headers": _clone(self.internet_message_headers),
            "is_delivery_receipt_requested": self.is_delivery_receipt_requested,
            "is_read_receipt_requested": self.is_read_receipt_requested,
            "has_attachments": self.has_attachments,
            "attachments": _clone(self.attachments),
            "sent": self.sent,
            "received": self.received,
        }


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _instant(moment: datetime) -> float:
    """Seconds since the epoch; a time without a zone is UTC (as $filter reads it)."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _address_part(recipient: Any, part: str) -> Any:
    email = recipient.get("emailAddress") if isinstance(recipient, dict) else None
    return email.get(part) if isinstance(email, dict) else None


# The text fields kept as value indexes, and how each is read from a message (as Graph JSON shows it).
VALUE_FIELDS: dict[str, Callable[[Message], Any]] = {
    "subject": lambda m: m.subject,
    "body": lambda m: m.body_content,
    "from_name": lambda m: _address_part(m.from_, "name"),
    "from_address": lambda m: _address_part(m.from_, "address"),
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


@dataclass
class Folder:
    id: str
    display_name: str
    parent_id: str | None
    well_known: str | None = None
    is_hidden: bool = False
    in_mailbox_view: bool = True
    children: list[str] = field(default_factory=list)
    all: SortedIndex = field(default_factory=SortedIndex)
    unread: SortedIndex = field(default_factory=SortedIndex)

    @property
    def total_count(self) -> int:
        return len(self.all)

    @property
    def unread_count(self) -> int:
        return len(self.unread)


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
_INF = float("inf")
# A full garbage collection walks every container object that is not frozen: 100,000 messages made ~700,000
# of them and pauses of 130-420 ms. Mail lives as long as the world, so once this many messages were added or
# changed the store moves everything alive into the permanent generation (gc.freeze): a full collection then
# walks only what came after (measured on 2 shared cores at 100,000 messages while mail is delivered: 5,000
# let a pause reach 10 ms, 2,000 keeps them under 2 ms). Frozen objects are still freed when nothing refers to
# them; only cyclic garbage alive at that moment stays.
FREEZE_EVERY = 2_000
_changed_since_freeze = 0


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


def _note_changed(count: int) -> None:
    """Count messages added or changed; freeze what is alive when enough were."""
    global _changed_since_freeze
    _changed_since_freeze += count
    if _changed_since_freeze >= FREEZE_EVERY:
        _changed_since_freeze = 0
        gc.freeze()


class MailJournal(Protocol):
    """Told of every change to the mail, as it happens (what `persistence` keeps on disk)."""

    def message_changed(self, key: tuple[str, str], message: Message) -> None: ...

    def folder_changed(self, key: tuple[str, str], folder: Folder) -> None: ...

    def mailbox_dropped(self, key: tuple[str, str]) -> None: ...

    def outbound_added(self, mail: OutboundMail) -> None: ...

    def everything_changed(self) -> None: ...


class MailboxStore:
    """The folders and messages of one mailbox, guarded by one lock.

    `folders` (parents first) restores a stored tree; without it the well-known folders are made with new ids.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        clock: Callable[[], datetime],
        journal: MailJournal | None = None,
        *,
        folders: Iterable[Folder] | None = None,
        next_seq: int = 1,
    ) -> None:
        self.mailbox = mailbox
        self.key = mailbox.store_key
        self.lock = threading.RLock()
        self.journal = journal
        self._now = clock
        self.next_seq = next_seq
        self.folders: dict[str, Folder] = {}
        self.well_known: dict[str, Folder] = {}
        self.messages: dict[str, Message] = {}
        self.immutable: dict[str, Message] = {}
        self.all = SortedIndex()
        self.unread = SortedIndex()
        self.attached: set[Message] = set()
        self.values: dict[str, dict[str, ValueEntry]] = {name: {} for name in VALUE_FIELDS}
        self.folded: dict[str, dict[str, list[str]]] = {name: {} for name in EQUALITY_FIELDS}
        if folders is not None:
            for folder in folders:
                self._attach(folder)
                if folder.well_known:
                    self.well_known[folder.well_known] = folder
            return
        for name, (display, parent) in WELL_KNOWN_FOLDERS.items():
            parent_id = self.well_known[parent].id if parent else None
            folder = Folder(_graph_id(_ID_PREFIX_FOLDER, mailbox.id), display, parent_id, well_known=name)
            self._attach(folder)
            self.well_known[name] = folder

    @property
    def root(self) -> Folder:
        return self.well_known["msgfolderroot"]

    def _attach(self, folder: Folder) -> None:
        """Link a folder into the tree; only the root's subtree shows in mailbox-wide listings."""
        self.folders[folder.id] = folder
        if folder.parent_id is not None:
            parent = self.folders[folder.parent_id]
            parent.children.append(folder.id)
            folder.in_mailbox_view = parent.in_mailbox_view
        else:
            folder.in_mailbox_view = folder.well_known == "msgfolderroot"
        if self.journal is not None:
            self.journal.folder_changed(self.key, folder)

    # ------------------------------------------------------------ folders

    def folder(self, key: str) -> Folder:
        """A folder by id or well-known name (any case); MalformedId or ItemNotFound otherwise."""
        well_known = self.well_known.get(key.lower())
        if well_known is not None:
            return well_known
        if not is_wellformed_id(key):
            raise MalformedId(key)
        folder = self.folders.get(normalise_id(key))
        if folder is None:
            raise ItemNotFound(key)
        return folder

    def child_folders(self, parent: Folder, include_hidden: bool = False) -> list[Folder]:
        with self.lock:
            children = [self.folders[c] for c in parent.children]
        return [f for f in children if include_hidden or not f.is_hidden]

    def create_folder(self, parent: Folder, display_name: str, is_hidden: bool = False) -> Folder:
        with self.lock:
            if any(self.folders[c].display_name.lower() == display_name.lower() for c in parent.children):
                raise FolderExists(display_name)
            folder = Folder(_graph_id(_ID_PREFIX_FOLDER, self.mailbox.id), display_name, parent.id, is_hidden=is_hidden)
            self._attach(folder)
            return folder

    def folder_by_name(self, parent: Folder, display_name: str) -> Folder | None:
        with self.lock:
            for child in parent.children:
                if self.folders[child].display_name.lower() == display_name.lower():
                    return self.folders[child]
        return None

    # ------------------------------------------------------------ messages

    def message(self, key: str) -> Message:
        """A message by its current id or its immutable id."""
        if not is_wellformed_id(key):
            raise MalformedId(key)
        key = normalise_id(key)
        message = self.messages.get(key) or self.immutable.get(key)
        if message is None:
            raise ItemNotFound(key)
        return message

    def add_message(self, folder: Folder, **fields: Any) -> Message:
        """Store a new message in `folder`; times default to now."""
        with self.lock:
            message = self._new_message(folder, fields, self._now())
            self._index(message)
        _note_changed(1)
        return message

    def add_messages(self, folder: Folder, batch: Iterable[dict[str, Any]]) -> list[Message]:
        """Store many new messages in `folder` at once (each dict as `add_message`'s fields)."""
        with self.lock:
            now = self._now()
            messages = [self._new_message(folder, fields, now) for fields in batch]
            self._index_many(messages)
        _note_changed(len(messages))
        return messages

    def _new_message(self, folder: Folder, fields: dict[str, Any], now: datetime) -> Message:
        fields.setdefault("received", now)
        if not fields.get("internet_message_id"):
            domain = self.mailbox.address.split("@", 1)[1]
            fields["internet_message_id"] = f"<{new_uuid().replace('-', '').upper()}@{domain}>"
        if not fields.get("conversation_id"):
            fields["conversation_id"] = _graph_id(_ID_PREFIX_CONVERSATION, self.mailbox.id)
        if not fields.get("conversation_index"):
            fields["conversation_index"] = base64.b64encode(random_bytes(22)).decode("ascii")
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return Message(
            id=_graph_id(_ID_PREFIX_MESSAGE, self.mailbox.id),
            immutable_id=_graph_id(_ID_PREFIX_IMMUTABLE, self.mailbox.id),
            seq=seq,
            folder_id=folder.id,
            created=fields.pop("created", now),
            modified=fields.pop("modified", now),
            sent=fields.pop("sent", None),
            **fields,
        )

    def _index_values(self, message: Message) -> None:
        message._key, message._sent_key = message.index_key(), None
        if message.has_attachments is True:
            self.attached.add(message)
        for name, read in VALUE_FIELDS.items():
            value = read(message)
            if isinstance(value, str):
                entries = self.values[name]
                entry = entries.get(value)
                if entry is None:
                    entry = entries[value] = ValueEntry()
                    if name in self.folded:
                        self.folded[name].setdefault(value.casefold(), []).append(value)
                entry.add(message)

    def _unindex_values(self, message: Message) -> None:
        self.attached.discard(message)
        for name, read in VALUE_FIELDS.items():
            value = read(message)
            if isinstance(value, str):
                entries = self.values[name]
                entry = entries.get(value)
                if entry is not None and entry.discard(message):
                    del entries[value]
                    if name in self.folded:
                        spellings = self.folded[name][value.casefold()]
                        spellings.remove(value)
                        if not spellings:
                            del self.folded[name][value.casefold()]

    def _index(self, message: Message) -> None:
        folder = self.folders[message.folder_id]
        self.messages[message.id] = message
        self.immutable[message.immutable_id] = message
        self._index_values(message)
        folder.all.add(message)
        if not message.is_read:
            folder.unread.add(message)
        if folder.in_mailbox_view:
            self.all.add(message)
            if not message.is_read:
                self.unread.add(message)
        if self.journal is not None:
            self.journal.message_changed(self.key, message)

    def _index_many(self, messages: list[Message]) -> None:
        """`_index` for a batch, each index sorted once (bulk loads: generated, restored or imported mail)."""
        by_folder: dict[str, list[Message]] = {}
        for message in messages:
            self.messages[message.id] = message
            self.immutable[message.immutable_id] = message
            self._index_values(message)
            by_folder.setdefault(message.folder_id, []).append(message)
        in_view: list[Message] = []
        for folder_id, batch in by_folder.items():
            folder = self.folders[folder_id]
            folder.all.extend(batch)
            folder.unread.extend(m for m in batch if not m.is_read)
            if folder.in_mailbox_view:
                in_view.extend(batch)
        self.all.extend(in_view)
        self.unread.extend(m for m in in_view if not m.is_read)
        if self.journal is not None:
            for message in messages:
                self.journal.message_changed(self.key, message)

    def restore_messages(self, messages: list[Message]) -> None:
        """Put back messages exactly as they were stored (ids, sequence numbers, change keys)."""
        with self.lock:
            self._index_many(messages)
        _note_changed(len(messages))

    def _unindex(self, message: Message) -> None:
        folder = self.folders[message.folder_id]
        self.messages.pop(message.id, None)
        self.immutable.pop(message.immutable_id, None)
        for index in (folder.all, self.all, folder.unread, self.unread):
            index.discard(message)
        self._unindex_values(message)
        message._key = None

    def update_message(self, key: str, changes: Callable[[Message], None]) -> Message:
        """Apply `changes` to a message atomically, keeping indexes and counts true."""
        with self.lock:
            message = self.message(key)
            self._unindex(message)
            try:
                changes(message)
            finally:
                message.modified = self._now()
                message.change_key = new_change_key()
                self._index(message)
        _note_changed(1)
        return message

    def move_message(self, key: str, destination: Folder, keep_id: bool = False) -> Message:
        """Move to `destination`; the message gets a new id unless `keep_id` (Prefer: IdType="ImmutableId")."""
        with self.lock:
            message = self.message(key)
            self._unindex(message)
            message.folder_id = destination.id
            if not keep_id:
                message.id = _graph_id(_ID_PREFIX_MESSAGE, self.mailbox.id)
            message.modified = self._now()
            message.change_key = new_change_key()
            self._index(message)
        _note_changed(1)
        return message

    def copy_message(self, key: str, destination: Folder) -> Message:
        with self.lock:
            source = self.message(key)
            fields = source.copy_fields()
            return self.add_message(destination, **fields)

    def delete_message(self, key: str) -> None:
        """Graph's DELETE: into Deleted Items, or out of sight if it is already there."""
        with self.lock:
            message = self.message(key)
            deleted = self.well_known["deleteditems"]
            target = self.well_known["recoverableitemsdeletions"] if message.folder_id == deleted.id else deleted
            self.move_message(key, target)

    def list_messages(
        self,
        folder: Folder | None,
        *,
        skip: int,
        top: int,
        count: bool = False,
        where: Selection | None = None,
        order: str | Callable[[Message], Any] = NEWEST,
    ) -> Page:
        """A page of the messages of `folder` (or of the whole mailbox) that `where` selects, in `order`: NEWEST
        (the default), OLDEST, SENT, or a key function (ascending; ties in the default order).

        The messages are taken from the smallest index that answers a condition of `where` (a received-time
        span, the unread messages, the messages with attachments, a value index), so the cost follows what
        matches, not the mailbox; a page in NEWEST or OLDEST order stops as soon as it is full.
        """
        where = where or Selection()
        with self.lock:
            index = folder.all if folder else self.all
            source, answered = self._source(folder, index, where)
            keep = self._keeper(folder, where, answered)
            want = skip + top + 1  # one more than the page shows whether there is more
            if isinstance(source, _Span) and order in (NEWEST, OLDEST):
                walked, start, stop = source.index, source.start, source.stop
                if keep is None and order == NEWEST:
                    items = walked.slice(start + skip, min(start + want, stop))
                    return Page(items[:top], stop - start if count else None, len(items) > top)
                matches = walked.walk(start, stop, oldest_first=order == OLDEST)
                if keep is not None:
                    matches = filter(keep, matches)
                if not count:
                    items = list(itertools.islice(matches, skip, want))
                    return Page(items[:top], None, len(items) > top)
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
            items = self._first(found, want, order, index)
            return Page(items[skip : skip + top], len(found) if count else None, len(items) > skip + top)

    def _source(
        self, folder: Folder | None, index: SortedIndex, where: Selection
    ) -> tuple[_Span | Collection[Message], set[str]]:
        """Where the candidates come from (a span of a sorted index of the folder or mailbox, or a set of the
        whole mailbox's messages), and which conditions of `where` that source already answers."""
        best = _Span(index, 0, len(index))
        answered = {"scope"}
        if where.after is not None or where.before is not None:
            after = None if where.after is None else (_instant(where.after[0]), where.after[1])
            before = None if where.before is None else (_instant(where.before[0]), where.before[1])
            best, answered = _Span(index, *index.span(after, before)), {"scope", "received"}
        unread = folder.unread if folder else self.unread
        if where.is_read is False and len(unread) <= len(best):
            best, answered = _Span(unread, 0, len(unread)), {"scope", "is_read"}
        sets: list[tuple[Collection[Message], str]] = []
        if where.has_attachments is True:
            sets.append((self.attached, "has_attachments"))
        for position, (name, text) in enumerate(where.equals):
            holders = [self.values[name][value].messages for value in self.folded[name].get(text.casefold(), ())]
            sets.append((holders[0] if len(holders) == 1 else set().union(*holders), f"equals{position}"))
        if where.among is not None:
            sets.append((where.among, "among"))
        smallest = min(sets, key=lambda pair: len(pair[0]), default=None)
        if smallest is not None and len(smallest[0]) < len(best):
            return smallest[0], {smallest[1]}
        return best, answered

    def _keeper(self, folder: Folder | None, where: Selection, answered: set[str]) -> Callable[[Message], bool] | None:
        """One test for the conditions of `where` (and the folder or mailbox) not `answered`; None if none."""
        tests: list[Callable[[Message], bool]] = []
        if "scope" not in answered:
            if folder is not None:
                folder_id = folder.id
                tests.append(lambda m: m.folder_id == folder_id)
            else:
                view = {f.id for f in self.folders.values() if f.in_mailbox_view}
                tests.append(lambda m: m.folder_id in view)
        if "received" not in answered:
            if where.after is not None:
                low, inclusive = -_instant(where.after[0]), where.after[1]
                tests.append((lambda m: m._key[0] <= low) if inclusive else (lambda m: m._key[0] < low))
            if where.before is not None:
                high, inclusive = -_instant(where.before[0]), where.before[1]
                tests.append((lambda m: m._key[0] >= high) if inclusive else (lambda m: m._key[0] > high))
        if where.is_read is not None and "is_read" not in answered:
            tests.append(lambda m, wanted=where.is_read: m.is_read is wanted)
        if where.has_attachments is not None and "has_attachments" not in answered:
            tests.append(lambda m, wanted=where.has_attachments: m.has_attachments is wanted)
        for position, (name, text) in enumerate(where.equals):
            if f"equals{position}" not in answered:
                read, folded = VALUE_FIELDS[name], text.casefold()
                tests.append(lambda m, r=read, f=folded: isinstance(value := r(m), str) and value.casefold() == f)
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

    @staticmethod
    def _first(
        found: list[Message], want: int, order: str | Callable[[Message], Any], index: SortedIndex
    ) -> list[Message]:
        """The first `want` of `found` in `order`, without sorting them all when only a few are wanted."""
        if order in (NEWEST, OLDEST):
            if _dense(want, len(index), len(found)):
                members = set(found)
                walk = index.walk(oldest_first=order == OLDEST)
                return list(itertools.islice((m for m in walk if m in members), want))
            if order == NEWEST:
                return heapq.nsmallest(want, found, key=lambda m: m._key)
            return heapq.nsmallest(want, found, key=lambda m: (-m._key[0], m._key[1]))
        if order == SENT:
            return heapq.nsmallest(want, found, key=Message.sent_key)
        key = order
        return heapq.nsmallest(want, found, key=lambda m: (key(m), m._key))

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.all), len(self.unread)


@dataclass
class OutboundMail:
    """A message sent to recipients outside every tenant of the emulator (the mail catcher)."""

    sent: datetime
    sender: str
    recipients: list[str]
    subject: str
    body_type: str
    body_content: str
    internet_message_id: str
    to: list[dict[str, Any]]
    cc: list[dict[str, Any]]
    bcc: list[dict[str, Any]]


@dataclass
class SendResult:
    internet_message_id: str
    delivered_to: list[str]
    external: list[str]
    sent_copy: Message | None


class MailStore:
    """The mail of every mailbox of the emulator, and the outbound log."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._now = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], MailboxStore] = {}
        self._outbound: list[OutboundMail] = []
        self.journal: MailJournal | None = None

    def now(self) -> datetime:
        return self._now()

    def reset(self) -> None:
        """Drop every mailbox's mail and the outbound log."""
        with self._lock:
            self._stores.clear()
            self._outbound.clear()
            if self.journal is not None:
                self.journal.everything_changed()

    def forget(self, mailbox: Mailbox) -> None:
        with self._lock:
            self._stores.pop(mailbox.store_key, None)
            if self.journal is not None:
                self.journal.mailbox_dropped(mailbox.store_key)

    def existing(self, mailbox: Mailbox) -> MailboxStore | None:
        """The mailbox's store if it has one (nothing is made)."""
        return self._stores.get(mailbox.store_key)

    def stores(self) -> list[MailboxStore]:
        with self._lock:
            return list(self._stores.values())

    def adopt(self, store: MailboxStore) -> None:
        """Take a store rebuilt from stored state in place of the mailbox's current one."""
        store.journal, store._now = self.journal, self._now
        with self._lock:
            self._stores[store.key] = store

    def restore_outbound(self, records: Iterable[OutboundMail]) -> None:
        with self._lock:
            for caught in records:
                self._outbound.append(caught)
                if self.journal is not None:
                    self.journal.outbound_added(caught)

    def store(self, mailbox: Mailbox) -> MailboxStore:
        """The mailbox's store, created with its well-known folders on first use.

        Stores are filed per tenant and mailbox id: two tenants never share mail, whatever ids they use.
        """
        key = mailbox.store_key
        if not key[0]:
            raise ValueError(f"mailbox {mailbox.address} belongs to no tenant")
        store = self._stores.get(key)
        if store is None:
            with self._lock:
                store = self._stores.get(key)
                if store is None:
                    store = self._stores[key] = MailboxStore(mailbox, self._now, self.journal)
        return store

    def outbound(self) -> list[OutboundMail]:
        with self._lock:
            return list(self._outbound)

    def send(self, tenant: Tenant, sender: Mailbox, fields: dict[str, Any], save_to_sent: bool) -> SendResult:
        """Submit a message from `sender`: a copy in Sent Items, one in each internal recipient's Inbox.

        Recipients are matched to mailboxes by address or alias ignoring case; a mail-enabled group expands to
        its members (nested groups too). Other addresses go to the outbound log. Each mailbox receives one copy
        however often it is addressed. Access policies do not apply: they limit API access, not mail flow.
        """
        now = self._now()
        domain = sender.address.split("@", 1)[1]
        internet_message_id = f"<{new_uuid().replace('-', '').upper()}@{domain}>"
        conversation_id = _graph_id(_ID_PREFIX_MESSAGE, sender.id)
        sender_recipient = recipient(sender.address, sender.display_name)
        content = {
            **fields,
            "sender": sender_recipient,
            "from_": _clone(sender_recipient),
            "internet_message_id": internet_message_id,
            "conversation_id": conversation_id,
            "conversation_index": base64.b64encode(random_bytes(22)).decode("ascii"),
            "sent": now,
            "received": now,
            "is_draft": False,
        }
        targets: dict[str, Mailbox] = {}
        external: list[str] = []
        for entry in [*content.get("to", []), *content.get("cc", []), *content.get("bcc", [])]:
            address = entry["emailAddress"]["address"]
            members = resolve_recipient(tenant, address)
            if members is None and address.lower() not in (e.lower() for e in external):
                external.append(address)
            for member in members or []:
                targets.setdefault(member.id, member)
        sent_copy = None
        if save_to_sent:
            sender_store = self.store(sender)
            sent_copy = sender_store.add_message(
                sender_store.well_known["sentitems"], **_clone_fields(content), is_read=True
            )
        for mailbox in targets.values():
            store = self.store(mailbox)
            delivered = _clone_fields(content)
            delivered["bcc"] = []
            store.add_message(store.well_known["inbox"], **delivered, is_read=False)
        if external:
            caught = OutboundMail(
                sent=now,
                sender=sender.address,
                recipients=external,
                subject=content.get("subject", ""),
                body_type=content.get("body_type", "html"),
                body_content=content.get("body_content", ""),
                internet_message_id=internet_message_id,
                to=_clone(content.get("to", [])),
                cc=_clone(content.get("cc", [])),
                bcc=_clone(content.get("bcc", [])),
            )
            with self._lock:
                self._outbound.append(caught)
                if self.journal is not None:
                    self.journal.outbound_added(caught)
        return SendResult(internet_message_id, [m.address for m in targets.values()], external, sent_copy)


def _clone_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: _clone(v) for k, v in fields.items()}


def resolve_recipient(tenant: Tenant, address: str) -> list[Mailbox] | None:
    """The tenant's mailboxes an address delivers to (a group expands to its members), or None if external."""
    mailbox = tenant.mailbox(address)
    if mailbox is not None:
        return [mailbox]
    group = tenant.group(address) if "@" in address else None
    if group is None or group.address.lower() != address.strip().lower():
        return None
    members = tenant.group_members(group, nested=True)
    return [box for box in tenant.mailboxes.values() if box.id in members]
