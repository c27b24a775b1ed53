"""The request log: every Graph request with its app, mailbox, operation, status and access decision."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_server.identity.tokens import VerifiedToken
    from mock_server.state.access import Decision

DEFAULT_CAPACITY = 10_000


@dataclass(slots=True)
class LogRecord:
    """One Graph request. Kept as the facts the request had at hand; the texts are made when someone reads."""

    at: float
    request_id: str
    method: str
    path: str
    status: int
    token: VerifiedToken | None
    access: Decision | None
    error_code: str | None

    @property
    def tenant_id(self) -> str | None:
        return self.token.tenant.id if self.token else None

    @property
    def app_id(self) -> str | None:
        return self.token.app_id if self.token else None

    @property
    def mailbox(self) -> str | None:
        return self.access.mailbox if self.access else None

    @property
    def operation(self) -> str | None:
        return self.access.operation.label if self.access else None

    @property
    def outcome(self) -> str:
        """granted, denied, or error (no decision was reached)."""
        if self.access is None:
            return "error"
        return "granted" if self.access.allowed else "denied"

    @property
    def decision(self) -> str | None:
        return self.access.describe() if self.access else None

    def to_json(self) -> dict[str, Any]:
        """The record as the control API shows it: `time` in UTC ISO 8601 first, then the rest."""
        return {
            "time": datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "tenant_id": self.tenant_id,
            "app_id": self.app_id,
            "mailbox": self.mailbox,
            "operation": self.operation,
            "outcome": self.outcome,
            "decision": self.decision,
            "error_code": self.error_code,
        }


class RequestLog:
    """The newest records, oldest first; safe to append from many request threads."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._records: deque[LogRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def append(self, record: LogRecord) -> None:
        with self._lock:
            self._records.append(record)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def query(
        self,
        *,
        app: str | None = None,
        mailbox: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """Records matching every filter given (app id, mailbox address, outcome), oldest first."""
        with self._lock:
            records = list(self._records)
        if app:
            records = [r for r in records if (r.app_id or "").lower() == app.lower()]
        if mailbox:
            records = [r for r in records if (r.mailbox or "").lower() == mailbox.lower()]
        if outcome:
            records = [r for r in records if r.outcome == outcome.lower()]
        return records[-limit:] if limit else records
