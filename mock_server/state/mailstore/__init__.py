"""Folders and messages of every mailbox, delivery of sent mail, and the indexes that keep listing cheap.

Each mailbox has its own lock; no operation holds two mailbox locks at once, so delivery to many mailboxes
cannot deadlock. Every index is changed under that lock, in the same step as the message.

What a listing costs does not grow with the mailbox where the indexes answer it: every folder and the mailbox
as a whole keep their messages sorted by received time (Graph's default order) and their unread messages
likewise, so a first page, an unread page, a page in either direction of receivedDateTime and a received-time
range are slices; the mailbox keeps the messages with attachments, and for subjects, bodies and senders the
distinct values with the messages that hold each (`ValueEntry`), so an equality filter or a search word is
answered per distinct value, not per message.

Rooms: ``messages`` (a message, its ids, text helpers), ``indexes`` (sorted indexes, value entries, freezing
long-lived mail), ``listing`` (choosing a page), ``store`` (one mailbox) and ``delivery`` (every mailbox, sending).
"""

from m365_mock.state.mailstore.attachments import Attachment
from m365_mock.state.mailstore.delivery import MailStore, OutboundMail, SendResult, resolve_recipient
from m365_mock.state.mailstore.indexes import EQUALITY_FIELDS, VALUE_FIELDS, SortedIndex, ValueEntry
from m365_mock.state.mailstore.listing import NEWEST, OLDEST, SENT, Page, Selection
from m365_mock.state.mailstore.messages import (
    Message,
    detached_message,
    is_wellformed_id,
    new_change_key,
    normalise_id,
    preview_of,
    recipient,
    text_of,
)
from m365_mock.state.mailstore.store import (
    WELL_KNOWN_FOLDERS,
    Folder,
    FolderExists,
    ItemNotFound,
    MailboxStore,
    MailJournal,
    MailStoreError,
    MalformedId,
)

__all__ = [
    "EQUALITY_FIELDS",
    "NEWEST",
    "OLDEST",
    "SENT",
    "VALUE_FIELDS",
    "WELL_KNOWN_FOLDERS",
    "Attachment",
    "Folder",
    "FolderExists",
    "ItemNotFound",
    "MailJournal",
    "MailStore",
    "MailStoreError",
    "MailboxStore",
    "MalformedId",
    "Message",
    "OutboundMail",
    "Page",
    "Selection",
    "SendResult",
    "SortedIndex",
    "ValueEntry",
    "detached_message",
    "is_wellformed_id",
    "new_change_key",
    "normalise_id",
    "preview_of",
    "recipient",
    "resolve_recipient",
    "text_of",
]
