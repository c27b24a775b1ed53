"""The folders and messages of one mailbox, under one lock, with every index changed in the same step."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from m365_mock.ids import new_uuid, random_bytes
from m365_mock.state.directory import Mailbox
from m365_mock.state.mailstore import listing
from m365_mock.state.mailstore.attachments import Attachment, counts_as_attachment, is_wellformed_attachment_id
from m365_mock.state.mailstore.changes import ChangeLog
from m365_mock.state.mailstore.indexes import EQUALITY_FIELDS, VALUE_FIELDS, SortedIndex, ValueEntry, _note_changed
from m365_mock.state.mailstore.listing import NEWEST, Page, Selection
from m365_mock.state.mailstore.messages import (
    _ID_PREFIX_CONVERSATION,
    _ID_PREFIX_FOLDER,
    _ID_PREFIX_IMMUTABLE,
    _ID_PREFIX_MESSAGE,
    Message,
    _graph_id,
    is_wellformed_id,
    new_change_key,
    normalise_id,
)

if TYPE_CHECKING:
    from m365_mock.state.mailstore.delivery import OutboundMail

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


class MailStoreError(LookupError):
    """Base for the store's refusals; graph/ maps each to Graph's error."""


class MalformedId(MailStoreError):
    pass


class ItemNotFound(MailStoreError):
    pass


class FolderExists(MailStoreError):
    pass


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
        # Per field, what a reader derives from all its distinct values (a search keeps them joined there). While
        # a reader keeps anything there, every value that appears afterwards is added to its "created" list.
        self.value_caches: dict[str, dict[str, Any]] = {name: {} for name in VALUE_FIELDS}
        self.changes = ChangeLog()  # what message delta reads; a new store starts a new log (new epoch)
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
        if fields.get("attachments"):
            fields["attachments"] = [a.copy_for(self.mailbox.id, now) for a in fields["attachments"]]
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
                    cache = self.value_caches[name]
                    if cache:
                        cache.setdefault("created", []).append(value)
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
        self.changes.entered(message)
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
        self.changes.entered_many(messages)
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
        self.changes.left(message, -(message._key or message.index_key())[0])
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

    def attachment(self, message: Message, key: str) -> Attachment:
        """One attachment of `message` by id; MalformedId or ItemNotFound otherwise."""
        if not is_wellformed_attachment_id(key):
            raise MalformedId(key)
        key = normalise_id(key)
        for attachment in message.attachments:
            if attachment.id == key:
                return attachment
        raise ItemNotFound(key)

    def add_attachment(self, key: str, attachment: Attachment) -> Attachment:
        """Attach to a message (a change of the message: new changeKey, hasAttachments true to the content)."""
        added = attachment.copy_for(self.mailbox.id, self._now())

        def attach(message: Message) -> None:
            message.attachments = [*message.attachments, added]
            message.has_attachments = counts_as_attachment(message.attachments)

        self.update_message(key, attach)
        return added

    def remove_attachment(self, key: str, attachment_id: str) -> None:
        with self.lock:
            message = self.message(key)
            gone = self.attachment(message, attachment_id)

            def detach(target: Message) -> None:
                target.attachments = [a for a in target.attachments if a is not gone]
                target.has_attachments = counts_as_attachment(target.attachments)

            self.update_message(key, detach)

    def move_message(self, key: str, destination: Folder, keep_id: bool = False) -> Message:
        """Move to `destination`; the message gets a new id unless `keep_id` (Prefer: IdType="ImmutableId")."""

        def move(message: Message) -> None:
            message.folder_id = destination.id
            if not keep_id:
                message.id = _graph_id(_ID_PREFIX_MESSAGE, self.mailbox.id)

        return self.update_message(key, move)

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
        with self.lock:
            return listing.page(self, folder, skip=skip, top=top, count=count, where=where or Selection(), order=order)

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.all), len(self.unread)
