"""The request log: every Graph request with its app, mailbox, operation, status and access decision, every
token request with its app and answer, and every other request a fault rule acted on (with the rule).

Each record gets a sequence number as it is appended, so a reader can ask for what came after the last record
it saw (`since`), and a watcher (`watch`) is told, from the appending thread, that records have come.

Bounded twice: by records (`capacity`) and by an estimate of the memory they hold (`max_bytes`), the oldest
going first. A record keeps at most `MAX_PATH_CHARS` of its path (and of its method); the rest is replaced by
a marker saying how much was cut, so a flood of 64 KB URLs cannot grow the log past its bound.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m365_mock.identity.tokens import VerifiedToken
    from m365_mock.state.access import Decision
    from m365_mock.state.faults import FaultRule

DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
MAX_PATH_CHARS = 2048
MAX_METHOD_CHARS = 32
# The record object, its slots, its time and status, and its place in the deque; strings are added per record.
_RECORD_OVERHEAD = 256
_STR_OVERHEAD = 49  # sys.getsizeof("") of an ASCII string


def truncated(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ASCII marker of how many were dropped (ASCII keeps 1 byte/char)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more characters]"


KIND_GRAPH, KIND_TOKEN, KIND_OTHER = "graph", "token", "other"
KINDS = (KIND_GRAPH, KIND_TOKEN, KIND_OTHER)
OUTCOMES = ("granted", "denied", "error", "issued", "refused")


@dataclass(slots=True)
class LogRecord:
    """One request. Kept as the facts the request had at hand; the texts are made when someone reads."""

    at: float
    request_id: str
    method: str
    path: str
    status: int
    token: VerifiedToken | None
    access: Decision | None
    error_code: str | None
    batch_request_id: str | None = None  # the $batch this request came in, if any
    retry_after: int | None = None  # the answer's Retry-After (seconds), when it had one
    fault: FaultRule | None = None  # the fault rule that acted on it (status 0: its connection closed unanswered)
    kind: str = KIND_GRAPH
    client_id: str | None = None  # a token request's client_id (a Graph request's app is its token's)
    token_tenant: str | None = None  # the tenant a token request was made to, when it exists
    client_request_id: str | None = None  # as the client sent it; None when it sent none
    user_agent: str | None = None
    seq: int = field(default=0, compare=False)  # set by the log as the record is appended
    size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.path = truncated(self.path, MAX_PATH_CHARS)
        self.method = truncated(self.method, MAX_METHOD_CHARS)
        self.size = self._estimate()

    def _estimate(self) -> int:
        """Bytes this record holds on its own: its strings (the path may be long) and the record itself.

        The token and the decision are shared with every request that had them (the verifier remembers tokens,
        the access decision is remembered per tenant version), so neither is counted here.
        """
        size = _RECORD_OVERHEAD + _STR_OVERHEAD * 3 + len(self.path) + len(self.method) + len(self.request_id)
        for text in (self.error_code, self.batch_request_id, self.client_id, self.client_request_id, self.user_agent):
            size += (_STR_OVERHEAD + len(text)) if text else 0
        return size

    @property
    def tenant_id(self) -> str | None:
        return self.token.tenant.id if self.token else self.token_tenant

    @property
    def app_id(self) -> str | None:
        return self.token.app_id if self.token else self.client_id

    @property
    def mailbox(self) -> str | None:
        """The mailbox the decision was about; None without a decision or for one about the directory."""
        return (self.access.mailbox or None) if self.access else None

    @property
    def operation(self) -> str | None:
        return self.access.operation.label if self.access else None

    @property
    def outcome(self) -> str:
        """granted, denied, or error (no decision was reached); for a token request, issued or refused."""
        if self.kind == KIND_TOKEN:
            return "issued" if self.status == 200 else "refused"
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
            "seq": self.seq,
            "kind": self.kind,
            "request_id": self.request_id,
            "client_request_id": self.client_request_id,
            "user_agent": self.user_agent,
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
            "batch_request_id": self.batch_request_id,
            "retry_after": self.retry_after,
            "fault": self.fault.id if self.fault else None,
            "fault_action": self.fault.action if self.fault else None,
        }


class RequestLog:
    """The newest records, oldest first; safe to append from many request threads.

    At most `capacity` records and, by their estimated size, at most `max_bytes`; appending evicts the oldest
    records until both hold (the newest record is always kept, even alone over `max_bytes`).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if capacity < 1 or max_bytes < 1:
            raise ValueError("the request log needs room for at least one record")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._records: deque[LogRecord] = deque()
        self._bytes = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._watchers: tuple[Callable[[], None], ...] = ()

    @property
    def estimated_bytes(self) -> int:
        """The estimated memory the kept records hold."""
        with self._lock:
            return self._bytes

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest record appended (0 before the first)."""
        return self._seq

    def append(self, record: LogRecord) -> None:
        with self._lock:
            self._seq += 1
            record.seq = self._seq
            records = self._records
            records.append(record)
            self._bytes += record.size
            while len(records) > 1 and (len(records) > self.capacity or self._bytes > self.max_bytes):
                self._bytes -= records.popleft().size
        for watcher in self._watchers:
            watcher()

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call `watcher` (from the appending thread, so it must be quick) after every append; returns the
        function that stops it."""
        with self._lock:
            self._watchers = (*self._watchers, watcher)

        def stop() -> None:
            with self._lock:
                self._watchers = tuple(w for w in self._watchers if w is not watcher)

        return stop

    def since(self, seq: int, limit: int | None = None) -> list[LogRecord]:
        """The records appended after sequence number `seq` that are still kept, oldest first (at most the newest
        `limit` of them)."""
        with self._lock:
            records = self._records
            newer = records[-1].seq - seq if records else 0  # the kept records' numbers run without a gap
            if limit:
                newer = min(newer, limit)
            taken = list(islice(reversed(records), max(0, newer)))
        taken.reverse()
        return taken

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._bytes = 0

    def query(
        self,
        *,
        app: str | None = None,
        mailbox: str | None = None,
        outcome: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """Records matching every filter given (app id, mailbox address, outcome, kind), oldest first."""
        with self._lock:
            records = list(self._records)
        if app:
            records = [r for r in records if (r.app_id or "").lower() == app.lower()]
        if mailbox:
            records = [r for r in records if (r.mailbox or "").lower() == mailbox.lower()]
        if outcome:
            records = [r for r in records if r.outcome == outcome.lower()]
        if kind:
            records = [r for r in records if r.kind == kind.lower()]
        return records[-limit:] if limit else records
