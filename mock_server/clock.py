"""The emulator's single source of "now": real time, or frozen and advanced by tests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock time that can be frozen at an instant and moved forward without sleeping."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen_at: float | None = None
        self._offset = 0.0

    def now(self) -> float:
        """Seconds since the epoch, as the emulator sees them."""
        frozen = self._frozen_at
        if frozen is not None:
            return frozen
        return time.time() + self._offset

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def freeze(self, at: float | datetime | None = None) -> None:
        """Stop time at `at` (default: the current emulated instant)."""
        if isinstance(at, datetime):
            at = at.timestamp()
        with self._lock:
            self._frozen_at = self.now() if at is None else float(at)

    def advance(self, seconds: float) -> None:
        """Move emulated time forward (or back, with a negative value), frozen or not."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds

    def resume(self) -> None:
        """Let time run again from the frozen instant."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None

    def reset(self) -> None:
        """Back to real time: not frozen, no offset."""
        with self._lock:
            self._frozen_at, self._offset = None, 0.0

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


def iso_z(moment: datetime) -> str:
    """A UTC instant as Graph writes it: `2024-05-01T10:20:30Z` (the year always in four digits)."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def iso_exact(moment: datetime) -> str:
    """A UTC instant to the microsecond, as briefly as it allows: `...T08:00:00Z`, `...T08:00:00.25Z`."""
    whole = iso_z(moment)
    micro = moment.microsecond
    return whole if not micro else f"{whole[:-1]}.{micro:06d}".rstrip("0") + "Z"
