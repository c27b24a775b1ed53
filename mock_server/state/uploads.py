"""Attachment upload sessions: a large file sent in ordered chunks to a pre-authenticated URL.

A session is bound to the app, tenant and mailbox that made it and to one message; its URL carries a random
session id and an HMAC of it, so it can neither be guessed nor moved to another session. Chunks are written
into one buffer the size of the file: what a session holds is the attachment being built, not its chunks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from m365_mock.state.mailstore.attachments import Attachment

SESSION_LIFETIME = timedelta(hours=2)  # fidelity: chosen (each chunk moves the expiry on, as Graph's does)


class UploadRefused(Exception):
    """A chunk the session cannot take; `kind` names why (graph/ maps it to Graph's error)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(eq=False)
class UploadSession:
    """One upload in progress. `attachment` describes the file; its bytes arrive into `buffer`."""

    id: str
    tenant_id: str
    app_id: str
    roles: tuple[str, ...]
    mailbox_id: str
    message_id: str  # the message's immutable id
    attachment: Attachment
    size: int
    expires: datetime
    buffer: bytearray = field(repr=False, default_factory=bytearray)
    received: int = 0
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def write(self, start: int, end: int, total: int, chunk: bytes, now: datetime) -> bool:
        """Take the bytes `start`..`end` (inclusive) of `total`; True when the file is complete.

        Chunks must come in order, each starting where the last ended, inside the size the session declared.
        """
        if total != self.size:
            raise UploadRefused("size", f"The Content-Range total {total} is not the session's size {self.size}.")
        if end < start or end >= total:
            raise UploadRefused("range", f"The Content-Range bytes {start}-{end}/{total} is not a valid range.")
        if len(chunk) != end - start + 1:
            raise UploadRefused(
                "length",
                f"The body has {len(chunk)} bytes; the Content-Range bytes {start}-{end} names {end - start + 1}.",
            )
        if start != self.received:
            kind = "overlap" if start < self.received else "gap"
            raise UploadRefused(
                kind, f"The chunk starts at byte {start}; the upload expects byte {self.received} next."
            )
        if not self.buffer:
            self.buffer = bytearray(self.size)
        memoryview(self.buffer)[start : end + 1] = chunk
        self.received = end + 1
        self.expires = now + SESSION_LIFETIME
        return self.received == self.size


class UploadSessions:
    """Every open upload session of the emulator, by id."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._sessions: dict[str, UploadSession] = {}
        self._lock = threading.Lock()

    def open(
        self,
        *,
        tenant_id: str,
        app_id: str,
        roles: tuple[str, ...],
        mailbox_id: str,
        message_id: str,
        attachment: Attachment,
        size: int,
        now: datetime,
    ) -> UploadSession:
        session = UploadSession(
            id=secrets.token_urlsafe(24),
            tenant_id=tenant_id,
            app_id=app_id,
            roles=roles,
            mailbox_id=mailbox_id,
            message_id=message_id,
            attachment=attachment,
            size=size,
            expires=now + SESSION_LIFETIME,
        )
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.expires <= now]:
                del self._sessions[key]
            self._sessions[session.id] = session
        return session

    def auth_token(self, session: UploadSession) -> str:
        """The URL's `authtoken`: an HMAC of the session id, so only the URL the emulator gave opens it."""
        return hmac.new(self._secret, session.id.encode(), hashlib.sha256).hexdigest()

    def find(self, session_id: str, auth_token: str, now: datetime) -> UploadSession | None:
        """The live session the URL names, if its token is the one issued for it."""
        expected = hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, auth_token):
            return None
        session = self._sessions.get(session_id)
        if session is None or session.expires <= now:
            return None
        return session

    def close(self, session: UploadSession) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def __len__(self) -> int:
        return len(self._sessions)
