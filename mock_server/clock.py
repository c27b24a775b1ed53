"""The emulator's single source of "now": real time, or frozen and advanced by tests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def microseconds(moment: float | datetime) -> int:
    """An instant as whole microseconds since the epoch: the one form every stored and compared time has."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - EPOCH) // _ONE_MICROSECOND
    return round(moment * 1_000_000)


def from_microseconds(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class Clock:
    """Wall-clock time that can be frozen at an instant and moved forward without sleeping.

    Time is kept in whole microseconds, so `now()` and `now_datetime()` name exactly the same instant: a time
    stored as a datetime (a secret's start, a policy's) and compared with `now()` later compares equal when it
    was taken at that instant, frozen at a fraction of a second or not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen_at: int | None = None
        self._offset = 0

    def now_microseconds(self) -> int:
        frozen = self._frozen_at
        if frozen is not None:
            return frozen
        return time.time_ns() // 1000 + self._offset

    def now(self) -> float:
        """Seconds since the epoch, as the emulator sees them (whole microseconds)."""
        return self.now_microseconds() / 1_000_000

    def now_datetime(self) -> datetime:
        return from_microseconds(self.now_microseconds())

    def freeze(self, at: float | datetime | None = None) -> None:
        """Stop time at `at` (default: the current emulated instant), to the microsecond."""
        with self._lock:
            self._frozen_at = self.now_microseconds() if at is None else microseconds(at)

    def advance(self, seconds: float) -> None:
        """Move emulated time forward (or back, with a negative value), frozen or not."""
        step = round(seconds * 1_000_000)
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += step
            else:
                self._offset += step

    def resume(self) -> None:
        """Let time run again from the frozen instant."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time_ns() // 1000
                self._frozen_at = None

    def reset(self) -> None:
        """Back to real time: not frozen, no offset."""
        with self._lock:
            self._frozen_at, self._offset = None, 0

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
