"""The dashboard's live log: every Graph and token request as it happens, with its app, mailbox, operation,
status and access decision, streamed to the page as server-sent events.

The events route answers through the app like every other request: it sends the newest matching records, and
leaves the server front a `follow` function (web.STREAM) that the front awaits on its event loop, holding no
request thread. The streams of one loop share one LiveFeed: one watcher on the request log, woken at most once
per BATCH_SECONDS however many requests come, and each record serialized once for all of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

from flask import Response, abort, request, url_for

from m365_mock.emulator import Emulator
from m365_mock.state.requestlog import KINDS, LogRecord
from m365_mock.ui.base import page, takes, ui
from m365_mock.web import STREAM, current_emulator

SHOW = ("all", "denied", "errors")
BACKLOG = 200  # the newest matching records an opened page starts with
BATCH_SECONDS = 0.1
KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 1000


@dataclass(frozen=True)
class LogFilter:
    """Which records a live log shows: all, denied or errors (status 400 and up), of a kind, app and mailbox."""

    show: str = "all"
    kind: str = "all"
    app: str = ""
    mailbox: str = ""

    def matches(self, record: LogRecord) -> bool:
        if self.show == "denied" and record.outcome != "denied":
            return False
        if self.show == "errors" and not (record.status >= 400 or record.status == 0):
            return False
        if self.kind != "all" and record.kind != self.kind:
            return False
        if self.app and (record.app_id or "").lower() != self.app:
            return False
        return not self.mailbox or (record.mailbox or "").lower() == self.mailbox

    def query(self) -> dict[str, str]:
        """The filter as query parameters (those that are not their default)."""
        return {name: value for name, value in vars(self).items() if value and value != "all"}


FILTERS = ("show", "kind", "app", "mailbox")


def read_filter() -> LogFilter:
    """The filter the query asks for; a value outside its choices is refused with 400, never ignored."""
    show = request.args.get("show", "all")
    kind = request.args.get("kind", "all")
    if show not in SHOW:
        abort(400, f"'show' must be one of {', '.join(SHOW)}.")
    if kind != "all" and kind not in KINDS:
        abort(400, f"'kind' must be all or one of {', '.join(KINDS)}.")
    app = request.args.get("app", "").strip().lower()
    mailbox = request.args.get("mailbox", "").strip().lower()
    return LogFilter(show, kind, app, mailbox)


def _app_names(emulator: Emulator) -> dict[str, str]:
    return {app.app_id.lower(): app.display_name for t in emulator.directory.tenants for app in t.applications.values()}


def event_json(record: LogRecord, names: dict[str, str]) -> dict[str, Any]:
    """A record as the page shows it: the control API's record, with the app's name and the decision's reason."""
    shown = record.to_json()
    shown["app_name"] = names.get((record.app_id or "").lower())
    shown["reason"] = record.access.reason if record.access else None
    shown["roles"] = list(record.token.roles) if record.token else None
    return shown


def events(records: Iterable[LogRecord], names: dict[str, str]) -> bytes:
    """Server-sent events, one `record` event per record, its id the record's number in the log."""
    lines = [
        f"id: {r.seq}\nevent: record\ndata: {json.dumps(event_json(r, names), separators=(',', ':'))}\n\n"
        for r in records
    ]
    return "".join(lines).encode()


@ui.get("/log")
@takes(*FILTERS)
def live_log() -> str:
    emulator = current_emulator()
    log_filter = read_filter()
    apps = sorted(
        ((app.display_name, app.app_id) for t in emulator.directory.tenants for app in t.applications.values()),
        key=lambda pair: pair[0].lower(),
    )
    mailboxes = sorted(m.address for t in emulator.directory.tenants for m in t.mailboxes.values())
    return page(
        "live_log.html",
        filter=log_filter,
        apps=apps,
        mailboxes=mailboxes,
        kinds=KINDS,
        events_url=url_for("ui.live_log_events") + (f"?{urlencode(query)}" if (query := log_filter.query()) else ""),
    )


@ui.get("/log/events")
@takes(*FILTERS)
def live_log_events() -> Response:
    """The newest matching records, then each new one as it is logged (server-sent events). A reconnecting
    EventSource sends Last-Event-ID and gets what it missed."""
    emulator = current_emulator()
    log_filter = read_filter()
    last_seen = request.headers.get("Last-Event-ID", "0").strip() or "0"
    if not (last_seen.isascii() and last_seen.isdigit()):
        abort(400, "Last-Event-ID must be the number of a record in the log.")
    after = int(last_seen)
    if after > emulator.log.last_seq:  # an id from an earlier run of the emulator
        after = 0
    records = emulator.log.since(after)
    seen = records[-1].seq if records else after
    names = _app_names(emulator)
    backlog = [r for r in records if log_filter.matches(r)][-BACKLOG:]
    body = f"retry: {RECONNECT_MILLISECONDS}\n\n".encode() + events(backlog, names)
    request.environ[STREAM] = partial(follow, emulator, log_filter, seen)
    return Response(body, content_type="text/event-stream; charset=utf-8", headers={"Cache-Control": "no-store"})


class LiveFeed:
    """The request log, as one event loop's live logs follow it: one watcher on the log, each new record
    serialized once, then handed to every subscriber whose filter it matches.

    A subscriber that falls more than MAX_WAITING batches behind is dropped; its EventSource reconnects with
    Last-Event-ID and gets what it missed from the log.
    """

    MAX_WAITING = 100

    def __init__(self, emulator: Emulator, loop: asyncio.AbstractEventLoop) -> None:
        self.emulator = emulator
        self.loop = loop
        self.subscribers: dict[asyncio.Queue[bytes | None], _Subscriber] = {}
        self.seen = emulator.log.last_seq
        self._woken = asyncio.Event()
        self._waking = False
        self._stop_watching: Callable[[], None] | None = None
        self._pump: asyncio.Task[None] | None = None

    def _wake(self) -> None:  # on the appending thread: at most one call into the loop until it has run
        if not self._waking:
            self._waking = True
            self.loop.call_soon_threadsafe(self._woken.set)

    def subscribe(self, log_filter: LogFilter, seen: int) -> asyncio.Queue[bytes | None]:
        """A queue of event chunks for the records after number `seen` that match (None: dropped, reconnect)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self.MAX_WAITING)
        if self._pump is None:
            self.seen = seen
            self._stop_watching = self.emulator.log.watch(self._wake)
            self._pump = asyncio.ensure_future(self._run())
        elif seen < self.seen:  # what the feed has handed out since this stream's answer was made
            missed = [r for r in self.emulator.log.since(seen) if r.seq <= self.seen and log_filter.matches(r)]
            if missed:
                queue.put_nowait(events(missed, _app_names(self.emulator)))
            seen = self.seen
        self.subscribers[queue] = _Subscriber(log_filter, seen)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.subscribers.pop(queue, None)
        if not self.subscribers and self._pump is not None:
            self._pump.cancel()
            self._pump = None
            if self._stop_watching is not None:
                self._stop_watching()
                self._stop_watching = None
            _FEEDS.pop((id(self.emulator), id(self.loop)), None)

    async def _run(self) -> None:
        while True:
            await self._woken.wait()
            await asyncio.sleep(BATCH_SECONDS)
            self._waking = False
            self._woken.clear()
            records = self.emulator.log.since(self.seen)
            if not records:
                continue
            self.seen = records[-1].seq
            names = _app_names(self.emulator)
            shown = [(r, events((r,), names)) for r in records]
            for queue, subscriber in list(self.subscribers.items()):
                chunk = b"".join(data for r, data in shown if r.seq > subscriber.seen and subscriber.filter.matches(r))
                subscriber.seen = self.seen
                if not chunk:
                    continue
                if queue.full():  # too far behind: dropped, to come back with Last-Event-ID
                    self.subscribers.pop(queue, None)
                    queue.get_nowait()
                    queue.put_nowait(None)
                else:
                    queue.put_nowait(chunk)


@dataclass
class _Subscriber:
    filter: LogFilter
    seen: int


_FEEDS: dict[tuple[int, int], LiveFeed] = {}


def live_feed(emulator: Emulator) -> LiveFeed:
    """The running loop's feed of `emulator`'s log (made on first use)."""
    loop = asyncio.get_running_loop()
    key = (id(emulator), id(loop))
    feed = _FEEDS.get(key)
    if feed is None or feed.emulator is not emulator or feed.loop is not loop:
        feed = _FEEDS[key] = LiveFeed(emulator, loop)
    return feed


async def follow(
    emulator: Emulator,
    log_filter: LogFilter,
    seen: int,
    send: Callable[[bytes], Awaitable[None]],
    stopping: asyncio.Event,
) -> None:
    """Send each record logged after number `seen` that matches, until the server stops, the stream falls too
    far behind, or the front cancels this because the client went."""
    feed = live_feed(emulator)
    queue = feed.subscribe(log_filter, seen)
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        while not stopping.is_set():
            taking = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                (taking, stopped), timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if taking not in done:
                taking.cancel()
                if not stopping.is_set():
                    await send(b": keep-alive\n\n")
                continue
            chunk = taking.result()
            if chunk is None:
                return
            await send(chunk)
    finally:
        stopped.cancel()
        feed.unsubscribe(queue)
