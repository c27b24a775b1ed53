"""Serving the app: granian (Rust HTTP server, WSGI threads, TLS) in one worker process holding the state.

Granian forks its worker from this process, so the app built here (with its loaded tenant world) is what the
worker serves. After the worker is up, a watcher in the parent waits until the emulator answers, then writes
`connection.json` / `connection.env` and prints the banner.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
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

from mock_server.identity.keys import atomic_write

READY_TIMEOUT_SECONDS = 30.0
# Open HTTP/2 connections (msgraph-sdk keeps one) would hold a graceful stop forever.
SHUTDOWN_GRACE_SECONDS = 2


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    use_tls: bool = True
    threads: int = 8
    state_dir: Path = field(default_factory=lambda: Path.home() / ".m365-mock")
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    advertised_host: str | None = None

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


def remove_connection_files(state_dir: Path) -> None:
    for name in ("connection.json", "connection.env"):
        (state_dir / name).unlink(missing_ok=True)


def whole_bodies(app: Callable) -> Callable:
    """Hand granian each response body as one chunk: no route streams, and granian sends (and releases the
    GIL) once per chunk of the iterator Flask returns (measured: +9-16 % requests/s on the token route)."""

    def wsgi(environ: dict, start_response: Callable) -> list[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return wsgi


def serve(app: Flask, options: ServeOptions, on_ready: Callable[[], None]) -> None:
    """Serve `app` until interrupted; `on_ready` runs (in the parent) once the first request succeeds."""
    from granian.constants import Interfaces, SSLProtocols
    from granian.log import LogLevels
    from granian.server import Server

    def wait_until_answering() -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if probe(options, timeout=0.5):
                on_ready()
                return
            time.sleep(0.02)
        print(
            f"m365-mock: the server did not answer at {options.base_url} within {READY_TIMEOUT_SECONDS:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    class EmulatorServer(Server):  # type: ignore[misc, valid-type]
        def startup(self, spawn_target, target_loader):  # type: ignore[no-untyped-def]
            super().startup(spawn_target, target_loader)
            threading.Thread(target=wait_until_answering, name="m365-ready", daemon=True).start()

    tls: dict[str, Any] = {}
    if options.use_tls:
        tls = {"ssl_cert": options.cert_file, "ssl_key": options.key_file, "ssl_protocol_min": SSLProtocols.tls12}
    server = EmulatorServer(
        "mock_server.app:create_app",
        address=options.host,
        port=options.port,
        interface=Interfaces.WSGI,
        workers=1,
        blocking_threads=options.threads,
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=SHUTDOWN_GRACE_SECONDS,
        **tls,
    )
    server.on_shutdown(lambda: remove_connection_files(options.state_dir))
    os.environ.setdefault("GRANIAN_PROCESS_NAME", "m365-mock")
    wsgi = whole_bodies(app)
    # Everything built so far (the tenant world, imported modules) lives as long as the server: keep the
    # garbage collector from walking it on every full collection in the worker.
    gc.freeze()
    server.serve(target_loader=lambda _target: wsgi)
