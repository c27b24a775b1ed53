"""What the Mailboxes page shows of mail, read from the mail store as Graph reads it: folder trees with their
counts, rows of a message list, a message with its headers, raw MIME and attachments, and which attachments are
raster images that may be shown as thumbnails.

Everything here is plain data for a template (Jinja escapes it); nothing is marked safe.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from typing import Any

from m365_mock.state.mailstore import Folder, MailboxStore, Message, text_of
from m365_mock.state.mailstore.attachments import FILE, ITEM, Attachment
from m365_mock.state.mailstore.mime import message_mime

PAGE_SIZE = 50
RAW_SHOWN = 512 * 1024  # bytes of raw MIME shown on the page; the whole message is a download
THUMBNAIL_LIMIT = 10 * 2**20  # bigger images are listed without a thumbnail

# Raster images a browser shows as an <img>: the declared type must be one of these AND the bytes must start
# with that format's signature (an SVG, or HTML calling itself image/png, is never served as an image).
_RASTER_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\"<>:*?|]')


@dataclass(frozen=True)
class FolderNode:
    """One folder of a mailbox's tree, with the counts Graph's mailFolder reports."""

    id: str
    name: str
    total: int
    unread: int
    hidden: bool
    children: list[FolderNode]


def folder_tree(store: MailboxStore) -> tuple[FolderNode, list[FolderNode]]:
    """The mailbox's tree from its root (hidden folders included), and the folders outside it (Deletions,
    Scheduled, ...) that hold mail no listing of the mailbox shows."""
    with store.lock:
        root = _node(store, store.root)
        outside = [
            _node(store, folder)
            for folder in store.folders.values()
            if folder.parent_id is None and folder is not store.root
        ]
    return root, outside


def _node(store: MailboxStore, folder: Folder) -> FolderNode:
    children = [_node(store, store.folders[child]) for child in folder.children]
    return FolderNode(
        folder.id, folder.display_name, folder.total_count, folder.unread_count, folder.is_hidden, children
    )


def address_text(entry: dict[str, Any] | None) -> str:
    """`Name <address>` (or whichever of them there is) of a Graph recipient."""
    email = (entry or {}).get("emailAddress") or {}
    name, address = email.get("name") or "", email.get("address") or ""
    if name and address and name != address:
        return f"{name} <{address}>"
    return name or address


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class MessageRow:
    id: str
    subject: str
    sender: str
    received: str
    preview: str
    is_read: bool
    has_attachments: bool
    importance: str


def message_rows(store: MailboxStore, messages: list[Message]) -> list[MessageRow]:
    """The rows of a message list, read under the mailbox's lock."""
    with store.lock:
        return [
            MessageRow(
                m.id,
                m.subject,
                address_text(m.from_ or m.sender),
                when(m.received),
                m.body_preview[:140],
                m.is_read,
                m.has_attachments,
                m.importance,
            )
            for m in messages
        ]


@dataclass(frozen=True)
class AttachmentInfo:
    id: str
    name: str
    kind: str
    content_type: str
    size: int
    inline: bool
    downloadable: bool
    thumbnail: bool


@dataclass
class MessageView:
    """One message as the message view shows it; `raw` is at most RAW_SHOWN bytes of its MIME."""

    id: str
    folder_id: str
    subject: str
    sender: str
    from_: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    received: str
    sent: str
    is_read: bool
    is_draft: bool
    importance: str
    internet_message_id: str
    body_type: str
    body: str
    text: str
    headers: list[tuple[str, str]]
    raw: str
    raw_size: int
    attachments: list[AttachmentInfo] = field(default_factory=list)

    @property
    def raw_truncated(self) -> bool:
        return self.raw_size > RAW_SHOWN


def raw_mime(store: MailboxStore, message: Message) -> bytes:
    """The message as RFC 5322, exactly as Graph's `$value` writes it (Bcc for drafts and Sent Items only)."""
    with store.lock:
        return message_mime(message, include_bcc=message.is_draft or message.folder_id == _sent_id(store))


def _sent_id(store: MailboxStore) -> str:
    return store.well_known["sentitems"].id


def message_view(store: MailboxStore, message: Message) -> MessageView:
    with store.lock:
        raw = raw_mime(store, message)
        view = MessageView(
            id=message.id,
            folder_id=message.folder_id,
            subject=message.subject,
            sender=address_text(message.sender),
            from_=address_text(message.from_),
            to=[address_text(r) for r in message.to],
            cc=[address_text(r) for r in message.cc],
            bcc=[address_text(r) for r in message.bcc],
            reply_to=[address_text(r) for r in message.reply_to],
            received=when(message.received),
            sent=when(message.sent),
            is_read=message.is_read,
            is_draft=message.is_draft,
            importance=message.importance,
            internet_message_id=message.internet_message_id,
            body_type=message.body_type,
            body=message.body_content,
            text=text_of(message.body_content, message.body_type).strip(),
            headers=mime_headers(raw),
            raw=raw[:RAW_SHOWN].decode("utf-8", "replace"),
            raw_size=len(raw),
            attachments=[attachment_info(a) for a in message.attachments],
        )
    return view


def mime_headers(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of RFC 5322 bytes in order, unfolded, encoded words decoded."""
    head = BytesHeaderParser().parsebytes(raw)
    return [(name, _decoded(value)) for name, value in head.items()]


def _decoded(value: Any) -> str:
    text = str(value)
    with contextlib.suppress(LookupError, ValueError, UnicodeError):
        text = str(make_header(decode_header(text)))
    return re.sub(r"\r?\n[ \t]*", " ", text)


def attachment_info(attachment: Attachment) -> AttachmentInfo:
    return AttachmentInfo(
        id=attachment.id,
        name=attachment.name,
        kind=attachment.kind,
        content_type=attachment.content_type or "",
        size=attachment.size,
        inline=attachment.is_inline,
        downloadable=attachment.kind == FILE or (attachment.kind == ITEM and attachment.item is not None),
        thumbnail=raster_type(attachment) is not None,
    )


def raster_type(attachment: Attachment) -> str | None:
    """The raster image type of a file attachment whose declared type and bytes agree (png, jpeg, gif, webp)."""
    if attachment.kind != FILE or len(attachment.content) > THUMBNAIL_LIMIT:
        return None
    declared = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    signatures = _RASTER_SIGNATURES.get(declared)
    if signatures is None:
        return None
    content = bytes(attachment.content[:16])
    if not content.startswith(signatures):
        return None
    if declared == "image/webp" and content[8:12] != b"WEBP":
        return None
    return declared


def download(attachment: Attachment, store: MailboxStore) -> tuple[bytes, str, str]:
    """An attachment's bytes, media type and file name for a download (an item attachment as its .eml)."""
    if attachment.kind == ITEM and attachment.item is not None:
        with store.lock:
            data = message_mime(attachment.item)
        name = attachment.name if attachment.name.lower().endswith(".eml") else f"{attachment.name}.eml"
        return data, "message/rfc822", download_name(name)
    declared = (attachment.content_type or "").strip()
    media_type = declared if _MEDIA_TYPE.match(declared) else "application/octet-stream"
    return attachment.content, media_type, download_name(attachment.name)


def download_name(name: str) -> str:
    """A file name fit for Content-Disposition and any file system: no path separators, quotes, control or
    reserved characters."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip(" .")
    return cleaned[:200] or "attachment"
