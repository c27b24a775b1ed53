"""Graph JSON for messages and folders, shaped as v1.0 returns them; message values as queries read them."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from m365_mock.clock import iso_z
from m365_mock.state.mailstore import Folder, MailboxStore, Message, text_of
from m365_mock.state.mailstore.attachments import estimated_size
from m365_mock.state.mailstore.indexes import address_part
from m365_mock.state.mailstore.messages import _clone

# Every property of a message in the order Graph writes them; the last two only with $select.
MESSAGE_PROPERTIES = (
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
    "uniqueBody",
)
SELECT_ONLY = frozenset({"internetMessageHeaders", "uniqueBody"})
CONTENT_PROPERTIES = frozenset({"body", "bodyPreview", "uniqueBody"})
FOLDER_PROPERTIES = (
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
)


def _body(message: Message, as_text: bool) -> dict[str, str]:
    if as_text and message.body_type == "html":
        return {"contentType": "text", "content": text_of(message.body_content, "html").strip()}
    return {"contentType": message.body_type, "content": message.body_content}


def message_value(message: Message, name: str, *, message_id: str, as_text: bool = False) -> Any:
    """One property of a message as Graph JSON shows it."""
    match name:
        case "id":
            return message_id
        case "createdDateTime":
            return iso_z(message.created)
        case "lastModifiedDateTime":
            return iso_z(message.modified)
        case "changeKey":
            return message.change_key
        case "categories":
            return list(message.categories)
        case "receivedDateTime":
            return iso_z(message.received)
        case "sentDateTime":
            return iso_z(message.sent) if message.sent else None
        case "hasAttachments":
            return message.has_attachments
        case "internetMessageId":
            return message.internet_message_id or None
        case "subject":
            return message.subject
        case "bodyPreview":
            return message.body_preview
        case "importance":
            return message.importance
        case "parentFolderId":
            return message.folder_id
        case "conversationId":
            return message.conversation_id or None
        case "conversationIndex":
            return message.conversation_index or None
        case "isDeliveryReceiptRequested":
            return message.is_delivery_receipt_requested
        case "isReadReceiptRequested":
            return message.is_read_receipt_requested
        case "isRead":
            return message.is_read
        case "isDraft":
            return message.is_draft
        case "webLink":
            return (
                f"https://outlook.office365.com/owa/?ItemID={quote(message_id, safe='')}"
                "&exvsurl=1&viewmodel=ReadMessageItem"
            )
        case "inferenceClassification":
            return message.inference_classification
        case "body" | "uniqueBody":
            return _body(message, as_text)
        case "sender":
            return message.sender
        case "from":
            return message.from_
        case "toRecipients":
            return message.to
        case "ccRecipients":
            return message.cc
        case "bccRecipients":
            return message.bcc
        case "replyTo":
            return message.reply_to
        case "flag":
            return message.flag
        case "internetMessageHeaders":
            return message.internet_message_headers
    raise KeyError(name)


def message_json(
    message: Message,
    *,
    select: Iterable[str] | None = None,
    as_text: bool = False,
    content_visible: bool = True,
    immutable_ids: bool = False,
    context: str | None = None,
) -> dict[str, Any]:
    """The message as Graph returns it; `content_visible` False hides body fields (Mail.ReadBasic)."""
    message_id = message.immutable_id if immutable_ids else message.id
    wanted = set(select) if select else None
    out: dict[str, Any] = {}
    if context:
        out["@odata.context"] = context
    out["@odata.etag"] = f'W/"{message.change_key}"'
    out["id"] = message_id
    for name in MESSAGE_PROPERTIES:
        if wanted is None and name in SELECT_ONLY:
            continue
        if wanted is not None and name not in wanted:
            continue
        if not content_visible and name in CONTENT_PROPERTIES:
            continue
        value = message_value(message, name, message_id=message_id, as_text=as_text)
        out[name] = _clone(value)
    return out


class RenderedCache:
    """JSON text of recently listed messages, for every mailbox together, least recently used out first.

    Daemons read the same first pages again and again; a mailbox read through once must not keep a rendering
    of every message. An entry names the message's version (its changeKey), so a change makes it unreachable
    and it ages out. Bounded by the characters held (`max_chars`).
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0
        self._items: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[Any, ...], render: Callable[[], str]) -> str:
        # A hit takes no lock: the dictionary's own operations are atomic, and a recency update lost to a
        # concurrent eviction only ages an entry that is going anyway.
        text = self._items.get(key)
        if text is not None:
            try:  # noqa: SIM105 - the hit path: suppress() would cost a context manager per message
                self._items.move_to_end(key)
            except KeyError:
                pass
            return text
        text = render()
        with self._lock:
            if key not in self._items:
                self._items[key] = text
                self.chars += len(text)
                while self.chars > self.max_chars and self._items:
                    self.chars -= len(self._items.popitem(last=False)[1])
        return text

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.chars = 0


RENDERED = RenderedCache(max_chars=16 * 2**20)  # about 7,000 messages of 2.3 KB


def message_fragment(
    message: Message,
    *,
    select: list[str] | None = None,
    as_text: bool = False,
    content_visible: bool = True,
    immutable_ids: bool = False,
) -> str:
    """`message_json` as JSON text, kept in `RENDERED` while it is read often: list pages join these."""
    # The message object itself is in the key: a world imported or restored with the same ids and change keys
    # has new objects, so it can never be served a rendering of the world before.
    key = (
        message,
        message.id,
        message.change_key,
        tuple(select) if select else None,
        as_text,
        content_visible,
        immutable_ids,
    )
    return RENDERED.get(
        key,
        lambda: json.dumps(
            message_json(
                message, select=select, as_text=as_text, content_visible=content_visible, immutable_ids=immutable_ids
            ),
            separators=(",", ":"),
        ),
    )


def folder_json(folder: Folder, store: MailboxStore, *, context: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if context:
        out["@odata.context"] = context
    out.update(
        {
            "id": folder.id,
            "displayName": folder.display_name,
            "parentFolderId": folder.parent_id or store.root.id,
            "childFolderCount": len(folder.children),
            "unreadItemCount": folder.unread_count,
            "totalItemCount": folder.total_count,
            "isHidden": folder.is_hidden,
        }
    )
    return out


# ---------------------------------------------------------------- values as $filter, $orderby and $search read them

_DATETIME_PATHS = frozenset({"receivedDateTime", "sentDateTime", "createdDateTime", "lastModifiedDateTime"})


def getter(message: Message) -> Callable[[str], Any]:
    """Property values for $filter/$orderby/$search, as Graph JSON with DateTimeOffsets as datetimes."""

    def get(path: str) -> Any:
        if path in _DATETIME_PATHS:
            return {
                "receivedDateTime": message.received,
                "sentDateTime": message.sent,
                "createdDateTime": message.created,
                "lastModifiedDateTime": message.modified,
            }[path]
        head, *rest = path.split("/")
        if head == "attachments":
            return [{"name": a.name, "contentType": a.content_type} for a in message.attachments]
        if head == "size":
            return estimated_size(message)
        try:
            value = message_value(message, head, message_id=message.id)
        except KeyError:
            return None
        for part in rest:
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return get


# The same values as `getter`, read straight from the message, for the paths sorted on most.
_READERS: dict[str, Callable[[Message], Any]] = {
    "receivedDateTime": lambda m: m.received,
    "sentDateTime": lambda m: m.sent,
    "createdDateTime": lambda m: m.created,
    "lastModifiedDateTime": lambda m: m.modified,
    "subject": lambda m: m.subject,
    "isRead": lambda m: m.is_read,
    "hasAttachments": lambda m: m.has_attachments,
    "importance": lambda m: m.importance,
    "from/emailAddress/address": lambda m: address_part(m.from_, "address"),
    "from/emailAddress/name": lambda m: address_part(m.from_, "name"),
}


def read(message: Message, path: str) -> Any:
    """``getter(message)(path)``, quicker for the common paths."""
    reader = _READERS.get(path)
    return reader(message) if reader is not None else getter(message)(path)
