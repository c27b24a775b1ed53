"""Attachments of a message: files (bytes), items (an attached message) and references."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from m365_mock.state.mailstore.itemids import exchange_id, id_bytes

if TYPE_CHECKING:
    from m365_mock.state.mailstore.messages import Message

_ID_PREFIX_ATTACHMENT = b"\x00\x05\x12\x00"
_ATTACHMENT_ID_LENGTH = 4 + 16 + 26

FILE, ITEM, REFERENCE = "file", "item", "reference"
KINDS = (FILE, ITEM, REFERENCE)
ODATA_TYPES = {
    FILE: "#microsoft.graph.fileAttachment",
    ITEM: "#microsoft.graph.itemAttachment",
    REFERENCE: "#microsoft.graph.referenceAttachment",
}

DIRECT_LIMIT = 3 * 2**20  # POST .../attachments: "under 3 MB"
SESSION_MINIMUM = 2 * 2**20  # createUploadSession below this: ErrorAttachmentSizeShouldNotBeLessThanMinimumSize
SESSION_MAXIMUM = 150 * 2**20


def new_attachment_id(owner: str) -> str:
    """An attachment id of mailbox `owner`."""
    return exchange_id(_ID_PREFIX_ATTACHMENT, owner, _ATTACHMENT_ID_LENGTH - 20)


def is_wellformed_attachment_id(value: str) -> bool:
    raw = id_bytes(value)
    return raw is not None and len(raw) == _ATTACHMENT_ID_LENGTH and raw[:4] == _ID_PREFIX_ATTACHMENT


@dataclass(slots=True, eq=False)
class Attachment:
    """One attachment. `content` holds a file's bytes (shared, never changed, between the copies a delivery
    makes); `item` the attached message of an item attachment (a message outside every folder)."""

    id: str
    kind: str
    name: str
    content_type: str | None
    modified: datetime
    is_inline: bool = False
    content_id: str | None = None
    content_location: str | None = None
    content: bytes = b""
    item: Message | None = None

    @property
    def size(self) -> int:
        """Bytes of the content: the file, the attached message's estimated size, nothing for a reference."""
        if self.kind == FILE:
            return len(self.content)
        if self.kind == ITEM and self.item is not None:
            return estimated_size(self.item)
        return 0

    def copy_for(self, owner: str, modified: datetime | None = None) -> Attachment:
        """The same attachment under a new id of mailbox `owner` (a copy of its message gets its own ids)."""
        return replace(self, id=new_attachment_id(owner), modified=modified or self.modified)


def file_attachment(
    name: str,
    content: bytes,
    content_type: str = "application/octet-stream",
    *,
    modified: datetime,
    is_inline: bool = False,
    content_id: str | None = None,
) -> Attachment:
    """A file attachment not yet on a message (the store gives it its id when it is attached)."""
    return Attachment(
        id="",
        kind=FILE,
        name=name,
        content_type=content_type,
        modified=modified,
        is_inline=is_inline,
        content_id=content_id,
        content=content,
    )


def counts_as_attachment(attachments: list[Attachment]) -> bool:
    """Graph's `hasAttachments`: true when any attachment is not inline."""
    return any(not a.is_inline for a in attachments)


def estimated_size(message: Message) -> int:
    """An estimate of a message's size in bytes (headers, body, attachments), as KQL `size:` compares it."""
    return (
        512
        + len(message.subject.encode())
        + len(message.body_content.encode())
        + sum(a.size for a in message.attachments)
    )
