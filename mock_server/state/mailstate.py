"""A mailbox's mail as plain data and back, exactly: folders with their ids, messages with every property, ids,
sequence numbers and change keys, attachments, read state; and the outbound log.

The same records serve the tenant file's `mail` entries (export and import) and the persisted world, so a world
written out and read back is the world it was: `export -> import -> export` gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from m365_mock.clock import iso_exact
from m365_mock.state.directory import Mailbox
from m365_mock.state.mailstore import (
    WELL_KNOWN_FOLDERS,
    Folder,
    MailboxStore,
    Message,
    OutboundMail,
    is_wellformed_id,
    new_change_key,
)
from m365_mock.state.mailstore.attachments import (
    FILE,
    ITEM,
    Attachment,
    is_wellformed_attachment_id,
    new_attachment_id,
)
from m365_mock.state.mailstore.itemids import id_bytes

_RECIPIENTS = {"type": "array", "items": {"type": "object"}}
_TIME = {"type": "string", "description": "UTC, ISO 8601: 2026-05-01T08:00:00Z (a fraction when there is one)"}

MAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The mailbox's mail exactly as an export wrote it (folders, messages, ids, read state).",
    "required": ["folders", "messages", "next_seq"],
    "additionalProperties": False,
    "properties": {
        "next_seq": {"type": "integer", "minimum": 1},
        "folders": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "display_name", "parent"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "display_name": {"type": "string"},
                    "parent": {"type": ["string", "null"]},
                    "well_known": {"enum": list(WELL_KNOWN_FOLDERS)},
                    "hidden": {"type": "boolean"},
                },
            },
        },
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "immutable_id", "folder", "seq", "created", "modified", "received"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "immutable_id": {"type": "string"},
                    "folder": {"type": "string"},
                    "seq": {"type": "integer", "minimum": 1},
                    "created": _TIME,
                    "modified": _TIME,
                    "received": _TIME,
                    "sent": {"oneOf": [_TIME, {"type": "null"}]},
                    "subject": {"type": "string"},
                    "body": {
                        "type": "object",
                        "required": ["content_type", "content"],
                        "additionalProperties": False,
                        "properties": {"content_type": {"enum": ["text", "html"]}, "content": {"type": "string"}},
                    },
                    "sender": {"type": ["object", "null"]},
                    "from": {"type": ["object", "null"]},
                    "to": _RECIPIENTS,
                    "cc": _RECIPIENTS,
                    "bcc": _RECIPIENTS,
                    "reply_to": _RECIPIENTS,
                    "read": {"type": "boolean"},
                    "draft": {"type": "boolean"},
                    "importance": {"enum": ["low", "normal", "high"]},
                    "inference_classification": {"enum": ["focused", "other"]},
                    "flag": {"type": "object"},
                    "categories": {"type": "array", "items": {"type": "string"}},
                    "internet_message_id": {"type": "string"},
                    "conversation_id": {"type": "string"},
                    "conversation_index": {"type": "string"},
                    "internet_message_headers": {"type": "array", "items": {"type": "object"}},
                    "delivery_receipt_requested": {"type": "boolean"},
                    "read_receipt_requested": {"type": "boolean"},
                    "has_attachments": {"type": "boolean"},
                    "attachments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {
                                "id": {"type": "string"},
                                "kind": {"enum": ["file", "item", "reference"], "description": "default: file"},
                                "name": {"type": "string"},
                                "content_type": {"type": ["string", "null"]},
                                "modified": _TIME,
                                "content_bytes": {"type": "string", "description": "base64 (a file's content)"},
                                "is_inline": {"type": "boolean"},
                                "content_id": {"type": ["string", "null"]},
                                "content_location": {"type": ["string", "null"]},
                                "item": {"type": "object", "description": "the attached message (an item)"},
                            },
                        },
                    },
                    "change_key": {"type": "string"},
                },
            },
        },
    },
}

OUTBOUND_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Mail sent to addresses outside every tenant (the mail catcher), oldest first.",
    "items": {
        "type": "object",
        "required": ["sent", "sender", "recipients"],
        "additionalProperties": False,
        "properties": {
            "sent": _TIME,
            "sender": {"type": "string"},
            "recipients": {"type": "array", "items": {"type": "string"}},
            "subject": {"type": "string"},
            "body": MAIL_SCHEMA["properties"]["messages"]["items"]["properties"]["body"],
            "internet_message_id": {"type": "string"},
            "to": _RECIPIENTS,
            "cc": _RECIPIENTS,
            "bcc": _RECIPIENTS,
            "attachments": {
                "type": "array",
                "description": "what it carried (the bytes are not kept)",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "content_type": {"type": ["string", "null"]},
                        "size": {"type": "integer", "minimum": 0},
                        "sha256": {"type": ["string", "null"], "description": "of a file's bytes, in hex"},
                    },
                },
            },
        },
    },
}


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a bulk load makes many objects (none of them garbage): collections
    triggered by allocation would walk every object made so far, again and again (3x the time at 100k)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class MailStateError(ValueError):
    """Stored mail that cannot be put back; the message starts with the place (`messages[3].folder`)."""


exact_time = iso_exact


def parse_time(value: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        if isinstance(value, str):
            raise MailStateError(f"{where}: {value!r} is not an ISO 8601 time") from None
        raise MailStateError(f"{where}: expected a UTC time such as 2026-05-01T08:00:00Z") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    except OverflowError:
        raise MailStateError(f"{where}: {value!r} lies outside the times the emulator can keep") from None


# ---------------------------------------------------------------- out


def folder_record(folder: Folder) -> dict[str, Any]:
    record: dict[str, Any] = {"id": folder.id, "display_name": folder.display_name, "parent": folder.parent_id}
    if folder.well_known:
        record["well_known"] = folder.well_known
    if folder.is_hidden:
        record["hidden"] = True
    return record


_OPTIONAL: tuple[tuple[str, Any], ...] = (
    ("cc", []),
    ("bcc", []),
    ("reply_to", []),
    ("read", False),
    ("draft", False),
    ("importance", "normal"),
    ("inference_classification", "focused"),
    ("flag", {"flagStatus": "notFlagged"}),
    ("categories", []),
    ("internet_message_headers", []),
    ("delivery_receipt_requested", False),
    ("read_receipt_requested", False),
    ("has_attachments", False),
    ("attachments", []),
)


def message_record(message: Message) -> dict[str, Any]:
    """Every property of a stored message, in a fixed order; properties at their default are left out."""
    record = {
        "id": message.id,
        "immutable_id": message.immutable_id,
        "folder": message.folder_id,
        "seq": message.seq,
        "created": exact_time(message.created),
        "modified": exact_time(message.modified),
        "received": exact_time(message.received),
        "sent": exact_time(message.sent) if message.sent else None,
        "subject": message.subject,
        "body": {"content_type": message.body_type, "content": message.body_content},
        "sender": message.sender,
        "from": message.from_,
        "to": message.to,
        "cc": message.cc,
        "bcc": message.bcc,
        "reply_to": message.reply_to,
        "read": message.is_read,
        "draft": message.is_draft,
        "importance": message.importance,
        "inference_classification": message.inference_classification,
        "flag": message.flag,
        "categories": message.categories,
        "internet_message_id": message.internet_message_id,
        "conversation_id": message.conversation_id,
        "conversation_index": message.conversation_index,
        "internet_message_headers": message.internet_message_headers,
        "delivery_receipt_requested": message.is_delivery_receipt_requested,
        "read_receipt_requested": message.is_read_receipt_requested,
        "has_attachments": message.has_attachments,
        "attachments": [_attachment_record(a) for a in message.attachments],
        "change_key": message.change_key,
    }
    for key, default in _OPTIONAL:
        if record[key] == default:
            del record[key]
    return record


def _attachment_record(attachment: Attachment) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": attachment.id,
        "kind": attachment.kind,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "modified": exact_time(attachment.modified),
        "is_inline": attachment.is_inline,
        "content_id": attachment.content_id,
        "content_location": attachment.content_location,
    }
    if attachment.kind == FILE:
        record["content_bytes"] = base64.b64encode(attachment.content).decode("ascii")
    if attachment.item is not None:
        record["item"] = message_record(attachment.item)
    return record


def dump_mail(store: MailboxStore) -> dict[str, Any]:
    """The mailbox's whole mail: folders parents first, messages in the order they were made."""
    with store.lock:
        folders = [folder_record(f) for f in store.folders.values()]
        messages = [message_record(m) for m in sorted(store.immutable.values(), key=lambda m: m.seq)]
        return {"next_seq": store.next_seq, "folders": folders, "messages": messages}


def outbound_record(mail: OutboundMail) -> dict[str, Any]:
    return {
        "sent": exact_time(mail.sent),
        "sender": mail.sender,
        "recipients": mail.recipients,
        "subject": mail.subject,
        "body": {"content_type": mail.body_type, "content": mail.body_content},
        "internet_message_id": mail.internet_message_id,
        "to": mail.to,
        "cc": mail.cc,
        "bcc": mail.bcc,
        **({"attachments": mail.attachments} if mail.attachments else {}),
    }


# ---------------------------------------------------------------- back in


def folder_from_record(record: dict[str, Any], where: str) -> Folder:
    folder_id = record.get("id")
    if not isinstance(folder_id, str) or not is_wellformed_id(folder_id):
        raise MailStateError(f"{where}.id: {folder_id!r} is not a folder id this emulator issued")
    parent = record.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise MailStateError(f"{where}.parent: expected a folder id or null")
    well_known = record.get("well_known")
    if well_known is not None and well_known not in WELL_KNOWN_FOLDERS:
        raise MailStateError(f"{where}.well_known: {well_known!r} is not a well-known folder name")
    return Folder(
        id=folder_id,
        display_name=str(record.get("display_name", "")),
        parent_id=parent,
        well_known=well_known,
        is_hidden=bool(record.get("hidden", False)),
    )


class _Shared(dict):
    """Equal values read from records, kept once: 100,000 restored messages quoting a few dozen senders and
    bodies hold a few dozen objects, not 100,000 copies (recipients are replaced, never changed in place)."""

    def recipient(self, value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            return None
        email = value.get("emailAddress") or {}
        address = email.get("address")
        name = email.get("name", address)
        key = (name, address)
        shared = self.get(key)
        if shared is None:
            shared = self[key] = {"emailAddress": {"name": name, "address": address}}
        return shared

    def recipients(self, values: Any) -> list[dict[str, Any]]:
        return [r for r in (self.recipient(v) for v in values or ()) if r is not None]

    def text(self, value: str) -> str:
        return self.setdefault(value, value)


def message_from_record(
    record: dict[str, Any], where: str, shared: _Shared | None = None, *, trusted: bool = False
) -> Message:
    """The message a record describes; `trusted` records (this emulator's own world file) skip the id checks."""
    shared = shared if shared is not None else _Shared()
    for key in () if trusted else ("id", "immutable_id"):
        value = record.get(key)
        if not isinstance(value, str) or not is_wellformed_id(value):
            raise MailStateError(f"{where}.{key}: {value!r} is not a message id this emulator issued")
    seq = record.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise MailStateError(f"{where}.seq: expected a whole number from 1")
    body = record.get("body") or {"content_type": "html", "content": ""}
    sent = record.get("sent")
    get = record.get
    headers = get("internet_message_headers")
    attachments = get("attachments")
    message = Message(
        id=record["id"],
        immutable_id=record["immutable_id"],
        seq=seq,
        folder_id=str(get("folder")),
        created=parse_time(get("created"), f"{where}.created"),
        modified=parse_time(get("modified"), f"{where}.modified"),
        received=parse_time(get("received"), f"{where}.received"),
        sent=parse_time(sent, f"{where}.sent") if sent is not None else None,
        subject=shared.text(get("subject", "")),
        body_type=body["content_type"],
        body_content=shared.text(body["content"]),
        sender=shared.recipient(get("sender")),
        from_=shared.recipient(get("from")),
        to=shared.recipients(get("to")),
        cc=shared.recipients(get("cc")),
        bcc=shared.recipients(get("bcc")),
        reply_to=shared.recipients(get("reply_to")),
        is_read=get("read", False),
        is_draft=get("draft", False),
        importance=get("importance", "normal"),
        inference_classification=get("inference_classification", "focused"),
        flag=_flag(get("flag")),
        categories=get("categories", []),
        internet_message_id=get("internet_message_id", ""),
        conversation_id=get("conversation_id", ""),
        conversation_index=get("conversation_index", ""),
        internet_message_headers=[{"name": h.get("name", ""), "value": h.get("value", "")} for h in headers]
        if headers
        else [],
        is_delivery_receipt_requested=get("delivery_receipt_requested", False),
        is_read_receipt_requested=get("read_receipt_requested", False),
        has_attachments=get("has_attachments", False),
        change_key=get("change_key") or new_change_key(),
    )
    if attachments:
        message.attachments = [
            _attachment_from_record(a, f"{where}.attachments[{i}]", message, shared) for i, a in enumerate(attachments)
        ]
    return message


_NOT_FLAGGED: dict[str, Any] = {"flagStatus": "notFlagged"}  # flags are replaced, never changed in place


def _flag(value: Any) -> dict[str, Any]:
    if value is None:
        return _NOT_FLAGGED
    value = value if isinstance(value, dict) else {}
    flag: dict[str, Any] = {"flagStatus": value.get("flagStatus", "notFlagged")}
    for key in ("startDateTime", "dueDateTime", "completedDateTime"):
        moment = value.get(key)
        if isinstance(moment, dict):
            flag[key] = {"dateTime": moment.get("dateTime"), "timeZone": moment.get("timeZone", "UTC")}
    return flag


def _attachment_from_record(record: dict[str, Any], where: str, message: Message, shared: _Shared) -> Attachment:
    """An attachment as a record describes it; one without an id (written by hand) gets a new one."""
    kind = record.get("kind", FILE)
    try:
        content = base64.b64decode(record.get("content_bytes", ""), validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise MailStateError(f"{where}.content_bytes: not base64") from None
    attachment_id = record.get("id")
    if attachment_id is not None and not is_wellformed_attachment_id(str(attachment_id)):
        raise MailStateError(f"{where}.id: {attachment_id!r} is not an attachment id this emulator issued")
    item_record = record.get("item")
    if kind == ITEM and not isinstance(item_record, dict):
        raise MailStateError(f"{where}.item: an item attachment needs the attached message")
    modified = record.get("modified")
    return Attachment(
        id=attachment_id or new_attachment_id(_owner_of(message.id)),
        kind=kind,
        name=record.get("name", "attachment"),
        content_type=record.get("content_type", "application/octet-stream" if kind == FILE else None),
        modified=parse_time(modified, f"{where}.modified") if modified is not None else message.modified,
        is_inline=bool(record.get("is_inline", False)),
        content_id=record.get("content_id"),
        content_location=record.get("content_location"),
        content=content if kind == FILE else b"",
        item=message_from_record(item_record, f"{where}.item", shared, trusted=True)
        if kind == ITEM and isinstance(item_record, dict)
        else None,
    )


def _owner_of(message_id: str) -> str:
    """The mailbox GUID an issued id carries (bytes 4 to 20 of it)."""
    raw = id_bytes(message_id) or b""
    return str(uuid.UUID(bytes=raw[4:20] if len(raw) >= 20 else bytes(16)))


def restore_mail(
    mailbox: Mailbox, clock: Callable[[], datetime], data: dict[str, Any], where: str, *, trusted: bool = False
) -> MailboxStore:
    """A store holding exactly the mail `data` describes (as `dump_mail` wrote it); MailStateError otherwise.

    `trusted`: the data comes from this emulator's own world file, so message ids are not checked again.
    """
    with paused_gc():
        return _restore_mail(mailbox, clock, data, where, trusted)


def _restore_mail(
    mailbox: Mailbox, clock: Callable[[], datetime], data: dict[str, Any], where: str, trusted: bool
) -> MailboxStore:
    folders = [folder_from_record(f, f"{where}.folders[{i}]") for i, f in enumerate(data.get("folders", []))]
    known: set[str] = set()
    for i, folder in enumerate(folders):
        if folder.id in known:
            raise MailStateError(f"{where}.folders[{i}].id: {folder.id} appears twice")
        if folder.parent_id is not None and folder.parent_id not in known:
            raise MailStateError(f"{where}.folders[{i}].parent: no folder {folder.parent_id} before this one")
        known.add(folder.id)
    missing = set(WELL_KNOWN_FOLDERS) - {f.well_known for f in folders if f.well_known}
    if missing:
        raise MailStateError(f"{where}.folders: the well-known folders {sorted(missing)} are missing")
    next_seq = data.get("next_seq", 1)
    store = MailboxStore(mailbox, clock, folders=folders, next_seq=next_seq)
    seen: set[str] = set()
    messages = []
    shared = _Shared()
    for i, record in enumerate(data.get("messages", [])):
        place = f"{where}.messages[{i}]"
        message = message_from_record(record, place, shared, trusted=trusted)
        if message.folder_id not in known:
            raise MailStateError(f"{place}.folder: no folder {message.folder_id} in this mailbox")
        if message.id in seen or message.immutable_id in seen:
            raise MailStateError(f"{place}: its id or immutable id is another message's")
        if message.seq >= store.next_seq:
            raise MailStateError(f"{place}.seq: {message.seq} is not below next_seq {store.next_seq}")
        seen.add(message.id)
        seen.add(message.immutable_id)
        messages.append(message)
    store.restore_messages(messages)
    return store


def outbound_from_record(record: dict[str, Any], where: str) -> OutboundMail:
    body = record.get("body") or {"content_type": "html", "content": ""}
    return OutboundMail(
        sent=parse_time(record.get("sent"), f"{where}.sent"),
        sender=record.get("sender", ""),
        recipients=list(record.get("recipients", [])),
        subject=record.get("subject", ""),
        body_type=body["content_type"],
        body_content=body["content"],
        internet_message_id=record.get("internet_message_id", ""),
        to=_Shared().recipients(record.get("to")),
        cc=_Shared().recipients(record.get("cc")),
        bcc=_Shared().recipients(record.get("bcc")),
        attachments=[
            {
                "name": a["name"],
                "content_type": a.get("content_type"),
                "size": a.get("size", 0),
                "sha256": a.get("sha256"),
            }
            for a in record.get("attachments") or []
        ],
    )
