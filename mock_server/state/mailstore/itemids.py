"""Ids shaped like Exchange's: base64url of a fixed 4-byte prefix (the kind of item), the owning mailbox's GUID
and random bytes. Messages, folders, conversations and attachments all take theirs from here."""

from __future__ import annotations

import base64
import binascii
import uuid

from m365_mock.ids import random_bytes


def exchange_id(prefix: bytes, owner: str, random_length: int) -> str:
    """A new id of mailbox `owner` (a GUID) for the kind `prefix` names."""
    raw = prefix + uuid.UUID(owner).bytes + random_bytes(random_length)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def id_bytes(value: str) -> bytes | None:
    """The bytes an id holds (standard or url-safe base64, padding optional), or None if it holds none."""
    if not 40 <= len(value) <= 200:
        return None
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
