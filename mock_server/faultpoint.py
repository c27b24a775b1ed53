"""Where the request path meets the fault rules (state/faults): matched once per request, and acted on.

A request is matched against the rules about method, path and the token endpoint before any route runs
(`before_route`, from the app's request preprocessing), and against the rules about its app, mailbox or
operation where its identity is decided (`at_gate`: the mailbox gate, the directory gate, the token endpoint),
once, and only if no rule has acted on it yet. The rule that acts is left in the environ (`FAULT`); a rule that
answers instead of the route raises its error there, in the format of the path's service, so the app's error
handlers render it like any other.

On the way out the request envelope holds the answer of a request a rule acted on and hands it to `finish`:
`Retry-After` added, the body cut for `invalid_json`. Behind the server front, the front then does what the rule
does to the connection (faultwire.py); without it (a bare WSGI server, Flask's test client) `finish` does what
WSGI can: the latency slept, the body cut or trickled, `ConnectionAbortedError` for a connection closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from m365_mock.faultwire import bodiless, truncated_length
from m365_mock.graph import errors as graph_errors
from m365_mock.identity import errors as aad_errors
from m365_mock.state.faults import Facts, FaultRule
from m365_mock.state.faults.rules import token_operation
from m365_mock.web import BATCH_REQUEST_ID, CONTROL_PREFIX, FAULT, FAULT_GATED, FRONT, is_graph_path

if TYPE_CHECKING:
    from m365_mock.emulator import Emulator
    from m365_mock.identity.tokens import VerifiedToken
    from m365_mock.state.directory import Mailbox, Tenant


class FaultGraphError(graph_errors.GraphError):
    """A rule's answer on a Graph path: its status, code and message, and the innerError its kind calls for."""

    def __init__(self, status: int, code: str, message: str, inner_error: str) -> None:
        super().__init__(message)
        self.status = status  # type: ignore[misc]
        self.code = code  # type: ignore[misc]
        self.inner_error = inner_error

    def body(self, *, request_id: str, client_request_id: str, now: datetime) -> dict[str, Any]:
        if self.inner_error == "standard":
            return super().body(request_id=request_id, client_request_id=client_request_id, now=now)
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_error == "throttle":  # Graph's 429, as the emulator's own throttling answers it
            error["innerError"] = graph_errors.throttle_inner_error(request_id, now)
        return {"error": error}


class FaultAadstsError(aad_errors.AadstsError):
    """A rule's answer on a token endpoint path, in Entra's AADSTS shape."""

    template = "{text}"

    def __init__(self, status: int, error: str, description: str, number: int) -> None:
        self.status = status  # type: ignore[misc]
        self.error = error  # type: ignore[misc]
        self.code = number  # type: ignore[misc]
        super().__init__(text=description)


def _path_text(path: str) -> str:
    """The WSGI path as the client wrote it (WSGI carries the UTF-8 bytes as latin-1 text)."""
    return path if path.isascii() else path.encode("latin-1").decode("utf-8", "replace")


def before_route(emulator: Emulator, environ: dict[str, Any]) -> None:
    """Match the request against the rules about method, path and the token endpoint (never the control API)."""
    rules = emulator.faults.before_route
    path = environ.get("PATH_INFO", "")
    if not rules or path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
        return
    facts = Facts(
        method=environ["REQUEST_METHOD"],
        path=_path_text(path),
        graph=is_graph_path(path),
        operation=token_operation(path),
        in_batch=BATCH_REQUEST_ID in environ,
    )
    rule = emulator.faults.match(rules, facts)
    if rule is not None:
        _act(environ, rule, facts)


def at_gate(
    emulator: Emulator,
    environ: dict[str, Any],
    *,
    tenant: Tenant | None,
    app_id: str,
    operation: str,
    user: str | None = None,
    address: str | None = None,
) -> None:
    """Match the request, once, against the rules about its app, mailbox or operation, where its identity is
    decided; `user` is the mailbox as the URL names it, `address` the mailbox it resolved to (if any)."""
    if environ.get(FAULT_GATED) or FAULT in environ:
        return
    environ[FAULT_GATED] = True
    rules = emulator.faults.at_gate
    if not rules:
        return
    path = environ.get("PATH_INFO", "")
    facts = Facts(
        method=environ["REQUEST_METHOD"],
        path=_path_text(path),
        graph=is_graph_path(path),
        operation=operation,
        app_id=app_id,
        tenant=tenant,
        user=user,
        address=address,
        in_batch=BATCH_REQUEST_ID in environ,
    )
    rule = emulator.faults.match(rules, facts)
    if rule is not None:
        _act(environ, rule, facts)


def at_mailbox_gate(
    emulator: Emulator,
    environ: dict[str, Any],
    token: VerifiedToken,
    operation: str,
    user: str,
    mailbox: Mailbox | None,
) -> None:
    """`at_gate` for a request on the mailbox `user` names (`mailbox`: what it resolved to, if anything)."""
    address = mailbox.address if mailbox is not None else None
    at_gate(
        emulator, environ, tenant=token.tenant, app_id=token.app_id, operation=operation, user=user, address=address
    )


def _act(environ: dict[str, Any], rule: FaultRule, facts: Facts) -> None:
    environ[FAULT] = rule
    if rule.refuses:
        raise refusal(rule, facts)


def refusal(rule: FaultRule, facts: Facts) -> Exception:
    """The error a rule answers with, in the format of the request's service."""
    if facts.graph:
        if rule.preset == "invalid-user":
            return graph_errors.InvalidUser(facts.user or "")
        return FaultGraphError(*rule.graph_error())
    return FaultAadstsError(*rule.entra_error())


# ---------------------------------------------------------------- the answer


def log_status(rule: FaultRule | None, status: int) -> int:
    """The status the request log keeps: 0 for a connection closed without an answer."""
    return 0 if rule is not None and rule.close is not None else status


def finish(
    environ: dict[str, Any],
    held: tuple[str, list[tuple[str, str]], Any],
    body: Iterable[bytes],
    start_response: Callable[..., Any],
) -> Iterable[bytes]:
    """The answer of a request a rule acted on, as the rule has it; `start_response` is called here."""
    rule: FaultRule = environ[FAULT]
    status, headers, exc_info = held
    retry_after = rule.retry_after_seconds if rule.refuses and rule.close is None else None
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    behind_front = FRONT in environ
    spoil = rule.invalid_json and not bodiless(int(status[:3]), environ["REQUEST_METHOD"])
    if not spoil and (behind_front or not rule.on_the_wire):
        start_response(status, headers, exc_info)
        return body
    data = _joined(body)
    if spoil:
        data = data[: len(data) // 2] if len(data) > 1 else b"{"
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(data)))]
    if behind_front:
        start_response(status, headers, exc_info)
        return [data]
    return _without_front(rule, status, headers, exc_info, data, start_response)


def _joined(body: Iterable[bytes]) -> bytes:
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _without_front(
    rule: FaultRule,
    status: str,
    headers: list[tuple[str, str]],
    exc_info: Any,
    data: bytes,
    start_response: Callable[..., Any],
) -> Iterable[bytes]:
    """What WSGI alone can do of a rule's action on the connection (the thread waits where the front would not)."""
    if rule.latency is not None:
        time.sleep(rule.latency)
    if rule.close is not None:
        raise ConnectionAbortedError(f"fault rule '{rule.id}': the connection was closed without an answer")
    if rule.truncate is not None and data:
        data = data[: truncated_length(rule.truncate, len(data))]
    start_response(status, headers, exc_info)
    if rule.trickle is not None:
        return _trickled(data, *rule.trickle)
    return [data]


def _trickled(data: bytes, chunk: int, interval: float) -> Iterator[bytes]:
    for start in range(0, len(data), chunk):
        if start:
            time.sleep(interval)
        yield data[start : start + chunk]
