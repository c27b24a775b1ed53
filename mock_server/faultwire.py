"""What a fault rule does to the connection, carried out by the server front (front.py) on its event loop.

The app has answered (or refused) by then and its thread is free: latency is a sleep on the loop, a trickled
body is sent a chunk at a time, a truncated one stops short of the Content-Length its head promised (one cut
before its first byte, or with no body at all, has its head sent and then its connection shut). A
connection closed without an answer needs the connection itself, which RSGI does not hand out: the front finds
the socket whose addresses are the request's among the process's descriptors and shuts it down, before
granian writes a byte. Over HTTP/2 that closes every stream of the connection, as a dropped connection does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m365_mock.state.faults import FaultRule

log = logging.getLogger("m365_mock.front")

# A file that cannot be read: granian sends the answer's head, then the body fails and the connection is closed.
_UNREADABLE = str(Path(__file__).resolve().parent)
_DESCRIPTORS = ("/proc/self/fd", "/dev/fd")
_HEAD_FLUSH = 0.05  # seconds


def bodiless(status: int, method: str) -> bool:
    """Whether an answer has no body to cut, trickle or spoil (HTTP: 1xx, 204, 304, and any answer to HEAD)."""
    return status < 200 or status in (204, 304) or method.upper() == "HEAD"


def truncated_length(limit: int, size: int) -> int:
    """How much of a `size`-byte body a truncated answer carries: at most `limit`, and always less than all."""
    return max(0, min(limit, size - 1))


async def deliver(
    rule: FaultRule, scope: Any, protocol: Any, status: int, headers: list[tuple[str, str]], data: bytes
) -> None:
    """Send the answer (status, headers, data) as `rule` has it: late, slowly, cut short, or not at all (an answer
    without a body is sent as it is, but for the latency and a close)."""
    if rule.latency is not None:
        await asyncio.sleep(rule.latency)
    whole = bodiless(status, scope.method)
    with contextlib.suppress(RuntimeError):  # granian's ProtocolClosed: the client has gone
        if rule.close is not None:
            if not close_connection(scope):
                log.warning("fault rule %s: the connection's socket was not found; its answer's head is sent", rule.id)
                protocol.response_file(status, _without_length(headers), _UNREADABLE)
                return
            protocol.response_empty(status, headers)
        elif whole:
            protocol.response_bytes(status, headers, data)
        elif rule.truncate is not None:
            await _truncated(protocol, scope, status, headers, data, truncated_length(rule.truncate, len(data)))
        elif rule.trickle is not None:
            await _trickled(protocol, status, headers, data, *rule.trickle)
        else:
            protocol.response_bytes(status, headers, data)


async def _truncated(
    protocol: Any, scope: Any, status: int, headers: list[tuple[str, str]], data: bytes, sent: int
) -> None:
    transport = protocol.response_stream(status, headers if data else _without_length(headers))
    if sent:
        await transport.send_bytes(data[:sent])
        return
    await asyncio.sleep(_HEAD_FLUSH)  # the head leaves once the body waits: let it go before the cut
    if not close_connection(scope):
        log.warning("truncated answer: the connection's socket was not found; the answer ends at its head")


async def _trickled(
    protocol: Any, status: int, headers: list[tuple[str, str]], data: bytes, chunk: int, interval: float
) -> None:
    transport = protocol.response_stream(status, headers)
    for start in range(0, len(data), chunk):
        if start:
            await asyncio.sleep(interval)
        await transport.send_bytes(data[start : start + chunk])


def _without_length(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() != "content-length"]


def _address(text: str) -> tuple[str, int] | None:
    """(host, port) of granian's "ip:port" / "[ip6]:port" text."""
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def close_connection(scope: Any) -> bool:
    """Shut down the TCP connection `scope` came in on, without a byte more; False when it cannot be found.

    The connection is the socket whose peer is the request's client and whose port is the server's (the server's
    host may be the address it listens on, 0.0.0.0)."""
    peer, local = _address(scope.client), _address(scope.server)
    if peer is None or local is None:
        return False
    folder = next((f for f in _DESCRIPTORS if os.path.isdir(f)), None)
    if folder is None:
        return False
    for name in os.listdir(folder):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except (ValueError, OSError):
            continue
        with sock:
            try:
                if sock.type != socket.SOCK_STREAM:
                    continue
                theirs, ours = sock.getpeername(), sock.getsockname()
            except OSError:
                continue
            if _same(theirs, peer) and isinstance(ours, tuple) and ours[1] == local[1]:
                sock.shutdown(socket.SHUT_RDWR)
                return True
    return False


def _same(address: Any, wanted: tuple[str, int]) -> bool:
    """Whether a socket address is (host, port), an IPv4 address also matching its IPv6-mapped form."""
    if not isinstance(address, tuple) or address[1] != wanted[1]:
        return False
    host = address[0].removeprefix("::ffff:")
    return host == wanted[0].removeprefix("::ffff:")
