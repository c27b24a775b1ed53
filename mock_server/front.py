"""The server front: granian's RSGI interface in front of the WSGI app.

granian's own WSGI interface gives a request a Python thread before its body has arrived, so a client that
sends headers and then stalls holds one of the `--threads`; a few of them and every request waits. Here the
event loop reads the whole body first (with an idle timeout between chunks and a size cap), and only then
does a request take one of a fixed pool of threads to run the WSGI app. What the front refuses (a stalled or
oversized body, a URL or header block over the limit) it does not answer itself: it puts the werkzeug
exception in `environ[REFUSAL]` and calls the app, which answers it in the path's own error format and logs
it like every other error.

The environ is the one granian's WSGI interface builds (src/wsgi/callbacks.rs, granian/wsgi.py; the few
differences RSGI imposes are in docs/fidelity.md); `tests/test_front.py` compares what the app sees with
werkzeug's test client.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import (
    HTTPException,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    RequestURITooLarge,
)

from m365_mock import faultwire
from m365_mock.web import FAULT, FRONT, REFUSAL, STREAM

log = logging.getLogger("m365_mock.front")

DEFAULT_BODY_TIMEOUT = 10.0
# What the serving process sends the worker just before it stops it (server.py): streamed answers end at once, so
# an open live log does not hold the worker's graceful stop until its kill timeout.
STREAMS_END_SIGNAL = signal.SIGUSR1
# Past the app's body limit the front keeps reading (and dropping) the body up to this many bytes, so that the
# client finishes sending and reads the 413; beyond it the connection is closed after the answer.
DRAIN_CAP = 64 * 1024 * 1024
# The request target (the decoded path and the query string) and the header block (names, values and
# separators) the front accepts; over them the answer is 414 / 431. See docs/fidelity.md for why these sizes.
MAX_URL_BYTES = 16 * 1024
# When the worker stops, how long each request thread may take to finish the request it holds.
STOP_GRACE_SECONDS = 1.0
MAX_HEADER_BYTES = 64 * 1024

_PROTOCOLS = {"1": "HTTP/1", "1.1": "HTTP/1.1", "2": "HTTP/2", "3": "HTTP/3"}
_STATIC_ENVIRON = {
    "GATEWAY_INTERFACE": "CGI/1.1",
    "SCRIPT_NAME": "",
    "SERVER_SOFTWARE": "Granian",
    "wsgi.errors": sys.stderr,
    "wsgi.input_terminated": True,
    "wsgi.multiprocess": False,
    "wsgi.multithread": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}
_HEADER_KEYS: dict[str, str] = {}

Result = tuple[int, list[tuple[str, str]], bytes]


def _header_key(name: str) -> str:
    key = _HEADER_KEYS.get(name)
    if key is None:
        key = "HTTP_" + name.upper().replace("-", "_")
        if len(_HEADER_KEYS) < 512:
            _HEADER_KEYS[name] = key
    return key


def _split_address(address: str) -> tuple[str, str]:
    """("ip", "port") of granian's "ip:port" / "[ip6]:port" text."""
    host, _, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def build_environ(scope: Any, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ granian's WSGI interface builds for this RSGI `scope`, reading from `body`."""
    environ = _environ(scope, scope.path, scope.query_string)[0]
    environ["wsgi.input"] = io.BytesIO(body)
    return environ


def _environ(scope: Any, path: str, query: str) -> tuple[dict[str, Any], int]:
    """(the environ without wsgi.input, the size of the header block: names, values and separators).

    RSGI gives the path percent-decoded as UTF-8 text; WSGI wants the latin-1 text of the decoded bytes.
    (RSGI decodes lossily: the bytes of a %-escape that is not UTF-8 arrive as U+FFFD, which is also what
    werkzeug makes of them when it routes, so the app routes them the same.)
    """
    server_host, server_port = _split_address(scope.server)
    environ = {
        **_STATIC_ENVIRON,
        "SERVER_PROTOCOL": _PROTOCOLS.get(scope.http_version, "HTTP/1"),
        "SERVER_NAME": server_host,
        "SERVER_PORT": server_port,
        "REMOTE_ADDR": _split_address(scope.client)[0],
        "REQUEST_METHOD": scope.method,
        "PATH_INFO": path if path.isascii() else path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query if query.isascii() else query.encode("utf-8").decode("latin-1"),
        "wsgi.url_scheme": scope.scheme,
    }
    cookies: list[str] = []
    size = 0
    for name, value in scope.headers.items():
        size += len(name) + len(value) + 4
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = value
        elif name == "cookie":
            cookies.append(value)
        else:
            key = _header_key(name)
            previous = environ.get(key)
            environ[key] = value if previous is None else f"{previous},{value}"
    if cookies:
        environ["HTTP_COOKIE"] = ";".join(cookies)
    if "HTTP_HOST" not in environ:
        environ["HTTP_HOST"] = scope.authority or ""
    return environ, size


def _url_size(path: str, query: str) -> int:
    size = len(path) if path.isascii() else len(path.encode("utf-8"))
    return size + (len(query) + 1 if query else 0)


def _content_length(environ: dict[str, Any]) -> int | None:
    text = environ.get("CONTENT_LENGTH")
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


class Front:
    """An RSGI application running the WSGI app `wsgi_app` on `threads` threads, bodies read beforehand.

    `max_body` gives the app's body limit (called per request; None for no limit below the drain cap).
    """

    def __init__(
        self,
        wsgi_app: Callable,
        *,
        threads: int,
        max_body: Callable[[], int | None] = lambda: None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        drain_cap: int = DRAIN_CAP,
        max_url_bytes: int = MAX_URL_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = wsgi_app
        self.threads = threads
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.drain_cap = drain_cap
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.on_start: list[Callable[[], None]] = []
        self.on_stop: list[Callable[[], None]] = []
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pool_pid: int | None = None
        self._pool_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ RSGI

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called by granian in the worker process before it serves."""
        self._loop = loop
        self._stopping = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals: streams end at stop
            loop.add_signal_handler(STREAMS_END_SIGNAL, self._stopping.set)
        for hook in self.on_start:
            hook()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called by granian when the worker stops: streamed answers end, the threads finish their request and
        end, then `on_stop`."""
        if self._stopping is not None:
            self._stopping.set()
        if self._pool_pid == os.getpid():
            self._pool_pid = None
            for _ in range(self.threads):
                self._jobs.put(None)
            for worker in self._workers:
                worker.join(STOP_GRACE_SECONDS)
        for hook in self.on_stop:
            hook()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        path, query = scope.path, scope.query_string
        environ, header_bytes = _environ(scope, path, query)
        refusal: HTTPException | None = None
        if _url_size(path, query) > self.max_url_bytes:
            refusal = RequestURITooLarge(
                f"The request URL is longer than the emulator's limit of {self.max_url_bytes} bytes."
            )
        elif header_bytes > self.max_header_bytes:
            refusal = RequestHeaderFieldsTooLarge(
                f"The request's headers are larger than the emulator's limit of {self.max_header_bytes} bytes."
            )
        http1 = environ["SERVER_PROTOCOL"] in ("HTTP/1.1", "HTTP/1")
        limit = 0 if refusal else self.max_body()
        body, complete, body_refusal = await self._read_body(environ, http1, protocol, limit)
        if body is None:  # the client went away
            return
        environ["wsgi.input"] = io.BytesIO(body)
        environ[FRONT] = True
        refusal = refusal or body_refusal
        if refusal is not None:
            environ[REFUSAL] = refusal
        loop = self._loop or asyncio.get_running_loop()
        future = loop.create_future()
        self._submit(loop, future, environ)
        status, headers, data = await future
        if not complete and http1:
            headers = [*headers, ("Connection", "close")]
        follow = environ.get(STREAM)
        if follow is not None:
            await self._stream(protocol, status, headers, data, follow)
            return
        fault = environ.get(FAULT)
        if fault is not None and fault.on_the_wire:
            await faultwire.deliver(fault, scope, protocol, status, headers, data)
            return
        with contextlib.suppress(RuntimeError):  # granian's ProtocolClosed: the client has gone
            protocol.response_bytes(status, headers, data)

    async def _stream(
        self, protocol: Any, status: int, headers: list[tuple[str, str]], data: bytes, follow: Callable
    ) -> None:
        """Send the answer's head and body, then what `follow` sends, until it returns or the client goes."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        try:
            transport = protocol.response_stream(status, headers)
            await transport.send_bytes(data)
        except RuntimeError:  # granian's ProtocolClosed: the client has gone
            return
        following = asyncio.ensure_future(follow(transport.send_bytes, self._stopping))
        gone = asyncio.ensure_future(protocol.client_disconnect())
        await asyncio.wait((following, gone), return_when=asyncio.FIRST_COMPLETED)
        for task in (following, gone):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await following
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await gone

    async def _read_body(
        self, environ: dict[str, Any], http1: bool, protocol: Any, limit: int | None
    ) -> tuple[bytes | None, bool, HTTPException | None]:
        """(body, read to its end, refusal): at most `limit` bytes kept; (None, ...) when the client left."""
        declared = _content_length(environ)
        if declared == 0 or (declared is None and http1 and "HTTP_TRANSFER_ENCODING" not in environ):
            return b"", True, None  # HTTP/1 without Content-Length or Transfer-Encoding: no body
        cap = self.drain_cap if limit is None else max(limit, self.drain_cap)
        if limit is None:  # an app without a limit: the drain cap is the limit
            limit = cap
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        timeout = self.body_timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                async for chunk in protocol:
                    size += len(chunk)
                    if size <= limit:
                        chunks.append(chunk)
                    elif size > cap:
                        return b"", False, _too_large(limit)
                    if declared is not None and size >= declared:
                        break
                    deadline.reschedule(loop.time() + timeout)
        except TimeoutError:
            return b"", False, RequestTimeout(f"The request body did not arrive within {timeout:g} s of its last part.")
        except Exception:  # the connection closed under the read: nobody to answer
            return None, False, None
        if size > limit:
            return b"", True, _too_large(limit)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0], True, None

    # ------------------------------------------------------------------ the thread pool

    def _submit(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future, environ: dict) -> None:
        if self._pool_pid != os.getpid():
            self._start_pool()
        self._jobs.put((loop, future, environ))

    def _start_pool(self) -> None:
        """Start the threads in the process that serves (granian forks its worker after the app is built)."""
        with self._pool_lock:
            if self._pool_pid == os.getpid():
                return
            self._jobs = queue.SimpleQueue()
            self._workers = [
                threading.Thread(target=self._work, name=f"m365-request-{number + 1}", daemon=True)
                for number in range(self.threads)
            ]
            for worker in self._workers:
                worker.start()
            self._pool_pid = os.getpid()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, future, environ = job
            try:
                result = self.call_app(environ)
            except BaseException:  # as granian's WSGI: an empty 500, the error logged
                log.exception("the app failed on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
                result = (500, [], b"")
            try:
                loop.call_soon_threadsafe(_resolve, future, result)
            except RuntimeError:  # the loop has closed: the server is stopping
                return

    def call_app(self, environ: dict) -> Result:
        """Run the WSGI app on `environ`: (status, headers, the whole body)."""
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = (status, headers)
            return _no_write

        body: Iterable[bytes] = self.app(environ, start_response)
        try:
            data = body[0] if isinstance(body, list) and len(body) == 1 else b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        status, headers = started
        return int(status[:3]), headers, data


def _too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"The request body is larger than the emulator's limit of {limit} bytes.")


def _resolve(future: asyncio.Future, result: Result) -> None:
    if not future.done():
        future.set_result(result)


def _no_write(data: bytes) -> None:
    raise RuntimeError("the emulator's front does not support the WSGI write() callable")
