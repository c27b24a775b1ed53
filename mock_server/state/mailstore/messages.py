"""A message of the mail store, its ids and the text helpers around it."""

from __future__ import annotations

import base64
import functools
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from m365_mock.ids import random_bytes
from m365_mock.state.mailstore.attachments import Attachment
from m365_mock.state.mailstore.itemids import exchange_id, id_bytes

_ID_PREFIX_MESSAGE = b"\x00\x03\x24\x00"
_ID_PREFIX_FOLDER = b"\x00\x01\x2e\x00"
_ID_PREFIX_IMMUTABLE = b"\x00\x09\x2e\x00"
_ID_PREFIX_CONVERSATION = b"\x00\x10\x00\x00"
_ID_LENGTH = 4 + 16 + 22

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _graph_id(prefix: bytes, owner: str) -> str:
    """A message, folder or conversation id of mailbox `owner`."""
    return exchange_id(prefix, owner, _ID_LENGTH - 20)


def is_wellformed_id(value: str) -> bool:
    """True when `value` could be an id this store issued (standard or url-safe base64 of the right shape)."""
    raw = id_bytes(value)
    return raw is not None and len(raw) == _ID_LENGTH and raw[:4] in (
        _ID_PREFIX_MESSAGE,
        _ID_PREFIX_FOLDER,
        _ID_PREFIX_IMMUTABLE,
    )


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
    attachments: list[Attachment] = field(default_factory=list)
    change_key: str = field(default_factory=new_change_key)
    _key: tuple[float, int] | None = field(default=None, repr=False)  # index_key() while in the indexes
    _sent_key: tuple[Any, ...] | None = field(default=None, repr=False)
    _change: int = field(default=0, repr=False)  # its latest change in its folder (changes.ChangeLog); 0 if none
    _entered: int = field(default=0, repr=False)  # the change that brought it into its folder

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
            "attachments": list(self.attachments),  # attachments are never changed in place
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


def detached_message(owner: str, now: datetime, fields: dict[str, Any]) -> Message:
    """A message outside every folder (the message of an item attachment), with ids of mailbox `owner`."""
    fields = dict(fields)
    return Message(
        id=_graph_id(_ID_PREFIX_MESSAGE, owner),
        immutable_id=_graph_id(_ID_PREFIX_IMMUTABLE, owner),
        seq=1,
        folder_id="",
        created=fields.pop("created", now),
        modified=fields.pop("modified", now),
        received=fields.pop("received", now),
        sent=fields.pop("sent", now),
        **fields,
    )
