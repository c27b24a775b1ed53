"""The request log: every Graph request with its app, mailbox, operation, status and access decision."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_CAPACITY = 10_000


@dataclass(slots=True)
class LogRecord:
    at: float
    request_id: str
    method: str
    path: str
    status: int
    tenant_id: str | None
    app_id: str | None
    mailbox: str | None
    operation: str | None
    outcome: str  # granted, denied, or error (no decision was reached)
    decision: str | None
    error_code: str | None

    def to_json(self) -> dict[str, Any]:
        """The record as the control API shows it: `time` in UTC ISO 8601 first, then the rest."""
        fields = asdict(self)
        moment = datetime.fromtimestamp(fields.pop("at"), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"time": moment, **fields}


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
