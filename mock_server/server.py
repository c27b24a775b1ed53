"""Serving the app: granian (Rust HTTP server, TLS) in one worker process holding the state.

granian serves through its RSGI interface on uvloop, with `m365_mock.front.Front` in front of the WSGI app:
the event loop reads each request's body, then one of `threads` Python threads runs the app (see front.py
for why not granian's WSGI interface). Granian forks its worker from this process, so the app built here
(with its loaded tenant world) is what the worker serves; the worker exits when this process dies. After the
worker is up, a watcher in the parent waits until the emulator answers, then runs `on_ready` (the banner and
the connection files).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import http.client
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from m365_mock.front import DEFAULT_BODY_TIMEOUT, STREAMS_END_SIGNAL, Front
from m365_mock.identity.keys import atomic_write

READY_TIMEOUT_SECONDS = 30.0
# Open HTTP/2 connections (msgraph-sdk keeps one) would hold a graceful stop forever.
SHUTDOWN_GRACE_SECONDS = 2
# With --persist the worker writes what changed since the last write before it stops: give that time.
PERSISTING_SHUTDOWN_GRACE_SECONDS = 60
# What granian buffers of a request's line and headers (HTTP/1) or header list (HTTP/2): room for a header
# block over the front's limit (front.MAX_HEADER_BYTES) to reach the front, which answers it with a 431.
REQUEST_HEAD_BYTES = 2 * 1024 * 1024
PARENT_POLL_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    use_tls: bool = True
    threads: int = 8
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    state_dir: Path = field(default_factory=lambda: Path.home() / ".m365-mock")
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    advertised_host: str | None = None
    shutdown_grace: int = SHUTDOWN_GRACE_SECONDS

    @property
    def scheme(self) -> str:
        return "https" if self.use_tls else "http"

    @property
    def base_url(self) -> str:
        host = self.advertised_host or ("127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """Raise OSError (with the system's reason) when `host:port` cannot be bound, before granian tries."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1)


def probe(options: ServeOptions, timeout: float = 1.0) -> bool:
    """True when the emulator answers its health check at `options.base_url`."""
    connect_host = "127.0.0.1" if options.host in ("0.0.0.0", "") else ("::1" if options.host == "::" else options.host)
    try:
        if options.use_tls:
            context = (
                ssl.create_default_context(cafile=str(options.ca_file))
                if options.ca_file
                else ssl._create_unverified_context()
            )
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                connect_host, options.port, timeout=timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(connect_host, options.port, timeout=timeout)
        try:
            conn.request("GET", "/_m365/health")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def write_connection_files(state_dir: Path, facts: dict[str, Any]) -> None:
    """`connection.json` (everything) and `connection.env` (KEY=value for the first tenant and app)."""
    atomic_write(state_dir / "connection.json", json.dumps(facts, indent=2) + "\n", 0o600)
    atomic_write(state_dir / "connection.env", "".join(f"{k}={v}\n" for k, v in env_lines(facts).items()), 0o600)


def env_lines(facts: dict[str, Any]) -> dict[str, str]:
    tenant = facts["tenants"][0] if facts["tenants"] else {}
    app = next((a for a in facts["apps"] if a.get("client_secret")), facts["apps"][0] if facts["apps"] else {})
    values = {
        "M365_MOCK_BASE_URL": facts["base_url"],
        "M365_MOCK_GRAPH_URL": facts["graph_url"],
        "M365_MOCK_CA_FILE": facts.get("ca_file") or "",
        "M365_MOCK_TENANT_ID": tenant.get("id", ""),
        "M365_MOCK_TENANT_DOMAIN": (tenant.get("domains") or [""])[0],
        "M365_MOCK_AUTHORITY": tenant.get("authority", ""),
        "M365_MOCK_CLIENT_ID": app.get("app_id", ""),
        "M365_MOCK_CLIENT_SECRET": app.get("client_secret") or "",
    }
    if facts.get("admin_key"):
        values["M365_MOCK_ADMIN_KEY"] = facts["admin_key"]
    return values


def remove_connection_files(state_dir: Path, pid: int | None = None) -> None:
    """Remove the connection files; with `pid`, only when connection.json names that process."""
    if pid is not None:
        try:
            named = json.loads((state_dir / "connection.json").read_text()).get("pid")
        except (OSError, ValueError, AttributeError):
            return
        if named != pid:
            return
    for name in ("connection.json", "connection.env"):
        (state_dir / name).unlink(missing_ok=True)


class ServeError(RuntimeError):
    """The server ran but could not be announced (its connection files could not be written)."""


def exit_with_parent(parent_pid: int) -> None:
    """In granian's worker: exit as soon as `parent_pid` (the serving process) is gone.

    A worker outliving its parent (after `kill -9` of the pid in connection.json) would keep serving the old
    world and hold the port. On Linux the kernel kills the worker with its parent (PR_SET_PDEATHSIG); a
    thread watching `getppid()` does the same elsewhere, and covers a parent that died before this ran.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="m365-parent-watch", daemon=True).start()


def serve(
    app: Flask,
    options: ServeOptions,
    on_ready: Callable[[], None],
    *,
    worker_started: Callable[[], None] | None = None,
    worker_stopping: Callable[[], None] | None = None,
) -> None:
    """Serve `app` until interrupted; `on_ready` runs (in the parent) once the first request succeeds.

    `worker_started` and `worker_stopping` run in the process that holds the world (granian's worker), before
    it serves and after its request threads have finished (e.g. to keep the world on disk).

    When `on_ready` fails with OSError (connection files that cannot be written), the server stops and
    ServeError says why: an emulator nobody can find is not left running.
    """
    from granian.constants import Interfaces, Loops, SSLProtocols
    from granian.http import HTTP1Settings, HTTP2Settings
    from granian.log import LogLevels
    from granian.server import Server

    failure: list[str] = []

    def wait_until_answering(server: Any) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if probe(options, timeout=0.5):
                try:
                    on_ready()
                except OSError as exc:
                    failure.append(f"the emulator answered but could not be announced: {exc}")
                    server.signal_handler_interrupt()
                return
            time.sleep(0.02)
        print(
            f"m365-mock: the server did not answer at {options.base_url} within {READY_TIMEOUT_SECONDS:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    class EmulatorServer(Server):  # type: ignore[misc, valid-type]
        def startup(self, spawn_target, target_loader):
            super().startup(spawn_target, target_loader)
            threading.Thread(target=wait_until_answering, args=(self,), name="m365-ready", daemon=True).start()

        def _stop_workers(self):
            for worker in self.wrks:  # streamed answers (live logs) end first, so the graceful stop is prompt
                with contextlib.suppress(OSError, TypeError, AttributeError):
                    os.kill(worker.inner.pid, STREAMS_END_SIGNAL)
            super()._stop_workers()

    tls: dict[str, Any] = {}
    if options.use_tls:
        tls = {"ssl_cert": options.cert_file, "ssl_key": options.key_file, "ssl_protocol_min": SSLProtocols.tls12}
    server = EmulatorServer(
        "m365_mock.app:create_app",
        address=options.host,
        port=options.port,
        interface=Interfaces.RSGI,
        loop=Loops.uvloop if _has_uvloop() else Loops.auto,
        workers=1,
        http1_settings=HTTP1Settings(max_buffer_size=REQUEST_HEAD_BYTES),
        http2_settings=HTTP2Settings(max_headers_size=REQUEST_HEAD_BYTES),
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=options.shutdown_grace,
        **tls,
    )
    pid = os.getpid()
    # Only this process's files: a start that failed must not remove those of an emulator already running.
    server.on_shutdown(lambda: remove_connection_files(options.state_dir, pid))
    os.environ.setdefault("GRANIAN_PROCESS_NAME", "m365-mock")
    front = Front(
        app,
        threads=options.threads,
        max_body=lambda: app.config.get("MAX_CONTENT_LENGTH"),
        body_timeout=options.body_timeout,
    )
    front.on_start.append(lambda: exit_with_parent(pid))
    if worker_started is not None:
        front.on_start.append(worker_started)
    if worker_stopping is not None:
        front.on_stop.append(worker_stopping)
    # Everything built so far (the tenant world, imported modules) lives as long as the server: keep the
    # garbage collector from walking it on every full collection in the worker.
    gc.freeze()
    server.serve(target_loader=lambda _target: front)
    if failure:
        raise ServeError(failure[0])


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
