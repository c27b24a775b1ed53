"""Throttling as Outlook and Entra apply it: per app and mailbox, windows that roll on the emulator's clock.

Limits (the defaults are the documented ones, each a setting):
- per app + mailbox: `mailbox_requests` requests per `mailbox_window` seconds, `upload_bytes` bytes of PATCH,
  POST and PUT bodies per `upload_window` seconds, and `mailbox_concurrency` requests at once (per app instead,
  across its mailboxes, with `concurrency_scope: app`);
- per app: `app_requests_per_second` Graph requests a second, across tenants;
- per app at the token endpoint: `token_requests` per `token_window` seconds.

A request is admitted whole or refused whole: a refused one counts against no window. Admitting takes one lock
for a few dictionary and deque operations; nothing here grows with the mail.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

CONCURRENCY_SCOPES = ("mailbox", "app")


@dataclass(frozen=True)
class ThrottlingSettings:
    """The limits; `enabled: false` turns every one of them off."""

    enabled: bool = True
    mailbox_requests: int = 10_000
    mailbox_window: int = 600
    upload_bytes: int = 150 * 2**20
    upload_window: int = 300
    mailbox_concurrency: int = 4
    concurrency_scope: str = "mailbox"
    app_requests_per_second: int = 2000
    token_requests: int = 200  # fidelity: chosen (Entra does not publish its token-endpoint limit)
    token_window: int = 60

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self, values: dict[str, Any]) -> ThrottlingSettings:
        return replace(self, **values)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


class Throttled(Exception):
    """A request over a limit: which limit (`kind`), and the whole seconds until it would be admitted."""

    def __init__(self, kind: str, retry_after: int, limit: str) -> None:
        super().__init__(limit)
        self.kind, self.retry_after, self.limit = kind, retry_after, limit


MAILBOX_REQUESTS, UPLOAD_BYTES, CONCURRENCY, APP_RATE, TOKEN_REQUESTS = (
    "requests",
    "upload",
    "concurrency",
    "app",
    "token",
)


class _Window:
    """Amounts with their instants in one rolling window: what is in it now, and when room comes."""

    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0

    def roll(self, now: float, length: float) -> None:
        entries = self.entries
        while entries and entries[0][0] <= now - length:
            self.total -= entries.popleft()[1]

    def wait_for(self, room: int, now: float, length: float, limit: int) -> int:
        """Whole seconds until `room` more fits under `limit` (at least 1)."""
        excess = self.total + room - limit
        for at, amount in self.entries:
            excess -= amount
            if excess <= 0:
                return max(1, math.ceil(at + length - now))
        return max(1, math.ceil(length))

    def add(self, now: float, amount: int) -> None:
        self.entries.append((now, amount))
        self.total += amount


class Throttle:
    """The counters of one emulator, keyed by (tenant, app, mailbox) and (app,), all under one lock."""

    def __init__(self, settings: Callable[[], ThrottlingSettings], clock: Callable[[], float]) -> None:
        self._settings = settings
        self._now = clock
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], _Window] = {}
        self._uploads: dict[tuple[str, str, str], _Window] = {}
        self._app_rate: dict[str, _Window] = {}
        self._tokens: dict[tuple[str, str], _Window] = {}
        self._in_flight: dict[tuple[str, ...], int] = {}

    def clear(self) -> None:
        with self._lock:
            for table in (self._requests, self._uploads, self._app_rate, self._tokens, self._in_flight):
                table.clear()

    def admit_mailbox_request(self, tenant: str, app: str, mailbox: str, upload: int = 0) -> Callable[[], None] | None:
        """Count one Graph request of `app` on `mailbox` (with `upload` body bytes), or raise Throttled.

        Returns what ends the request's concurrency slot (call it once, when the answer is made), or None when
        throttling is off.
        """
        limits = self._settings()
        if not limits.enabled:
            return None
        now = self._now()
        key = (tenant, app, mailbox)
        slot = (tenant, app) if limits.concurrency_scope == "app" else key
        with self._lock:
            if self._in_flight.get(slot, 0) >= limits.mailbox_concurrency:
                raise Throttled(CONCURRENCY, 1, f"{limits.mailbox_concurrency} concurrent requests")
            requests = self._requests.setdefault(key, _Window())
            requests.roll(now, limits.mailbox_window)
            if requests.total + 1 > limits.mailbox_requests:
                wait = requests.wait_for(1, now, limits.mailbox_window, limits.mailbox_requests)
                raise Throttled(
                    MAILBOX_REQUESTS, wait, f"{limits.mailbox_requests} requests per {limits.mailbox_window} s"
                )
            uploads = None
            if upload:
                uploads = self._uploads.setdefault(key, _Window())
                uploads.roll(now, limits.upload_window)
                if uploads.total + upload > limits.upload_bytes:
                    wait = uploads.wait_for(upload, now, limits.upload_window, limits.upload_bytes)
                    raise Throttled(UPLOAD_BYTES, wait, f"{limits.upload_bytes} bytes per {limits.upload_window} s")
            rate = self._app_rate.setdefault(app, _Window())
            rate.roll(now, 1.0)
            if rate.total + 1 > limits.app_requests_per_second:
                wait = rate.wait_for(1, now, 1.0, limits.app_requests_per_second)
                raise Throttled(APP_RATE, wait, f"{limits.app_requests_per_second} requests per second")
            requests.add(now, 1)
            if uploads is not None:
                uploads.add(now, upload)
            rate.add(now, 1)
            self._in_flight[slot] = self._in_flight.get(slot, 0) + 1

        def release() -> None:
            with self._lock:
                left = self._in_flight.get(slot, 1) - 1
                if left > 0:
                    self._in_flight[slot] = left
                else:
                    self._in_flight.pop(slot, None)

        return release

    def admit_token_request(self, tenant: str, app: str) -> None:
        """Count one token request of `app`, or raise Throttled."""
        limits = self._settings()
        if not limits.enabled:
            return
        now = self._now()
        with self._lock:
            window = self._tokens.setdefault((tenant, app), _Window())
            window.roll(now, limits.token_window)
            if window.total + 1 > limits.token_requests:
                wait = window.wait_for(1, now, limits.token_window, limits.token_requests)
                raise Throttled(
                    TOKEN_REQUESTS, wait, f"{limits.token_requests} token requests per {limits.token_window} s"
                )
            window.add(now, 1)

    def snapshot(self, tenant: str) -> list[dict[str, Any]]:
        """Each (app, mailbox) window of `tenant`: requests and upload bytes in the window, requests in flight,
        and when the oldest counted request leaves the window (the next reset)."""
        limits = self._settings()
        now = self._now()
        rows = []
        with self._lock:
            keys = sorted({k for k in (*self._requests, *self._uploads) if k[0] == tenant})
            for key in keys:
                requests = self._requests.get(key) or _Window()
                uploads = self._uploads.get(key) or _Window()
                requests.roll(now, limits.mailbox_window)
                uploads.roll(now, limits.upload_window)
                slot = (key[0], key[1]) if limits.concurrency_scope == "app" else key
                oldest = requests.entries[0][0] if requests.entries else None
                rows.append(
                    {
                        "app_id": key[1],
                        "mailbox": key[2],
                        "requests": requests.total,
                        "upload_bytes": uploads.total,
                        "in_flight": self._in_flight.get(slot, 0),
                        "next_reset": None if oldest is None else oldest + limits.mailbox_window,
                    }
                )
        return rows
