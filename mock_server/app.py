"""The Flask app factory: one emulator (directory, clock, keys) behind the identity and Graph blueprints."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, current_app, request
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException

from m365_mock import faultpoint
from m365_mock.clock import Clock
from m365_mock.control import errors as control_errors
from m365_mock.control.routes import control
from m365_mock.emulator import Emulator
from m365_mock.graph import batch, compose, counts, delta, users  # noqa: F401  (their routes join the graph blueprint)
from m365_mock.graph import errors as graph_errors
from m365_mock.graph.attachments import outlook
from m365_mock.graph.routes import graph
from m365_mock.identity import errors as aad_errors
from m365_mock.identity.keys import SigningKey
from m365_mock.identity.routes import identity
from m365_mock.ids import new_uuid
from m365_mock.state.content import seed_mailboxes
from m365_mock.state.requestlog import KIND_GRAPH, KIND_OTHER, KIND_TOKEN, LogRecord
from m365_mock.state.tenantfile import LoadedWorld, load_demo_world
from m365_mock.ui.routes import UI_PREFIX, error_page, ui
from m365_mock.web import (
    BATCH_REQUEST_ID,
    CLIENT_REQUEST_ID,
    CONTROL_PREFIX,
    DECISION,
    ERROR_CODE,
    FAULT,
    GRAPH_JSON_TYPE,
    REFUSAL,
    REQUEST_ID,
    THROTTLE_RELEASE,
    TOKEN,
    TOKEN_CLIENT,
    TOKEN_TENANT,
    is_graph_path,
    is_token_path,
    json_response,
    request_ids,
)

log = logging.getLogger("m365_mock")

_KEY_SEGMENT = re.compile(r"/([A-Za-z]+)\('([^'/]*)'\)")
_EMPTY_SEGMENTS = re.compile(r"/{2,}")


class RequestEnvelope:
    """WSGI middleware around the Flask app, for what every request shares, done once for every route.

    Gives each request its `request-id` (and echoes `client-request-id`, or repeats the request id when the
    client sent none) as headers on every response, errors included; for routing, rewrites Graph's key syntax
    `/mailFolders('Inbox')` to `/mailFolders/Inbox` and drops the empty segments of Graph paths (`//`), as
    Graph's URI parser does; and writes the request-log record of every Graph request, success or error, from
    what the route left in the environ (the verified token, the access decision, the error code), and of every
    other request a fault rule acted on, whose answer `faultpoint.finish` completes.
    """

    def __init__(self, app: Callable, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if "//" in path:
            merged = _EMPTY_SEGMENTS.sub("/", path)
            if is_graph_path(merged):  # Graph's URI parser skips empty segments
                path = environ["PATH_INFO"] = merged
        graph = is_graph_path(path)
        logged = graph or (is_token_path(path) and environ.get("REQUEST_METHOD") == "POST")
        if graph and "('" in path:
            path = environ["PATH_INFO"] = _KEY_SEGMENT.sub(r"/\1/\2", path)
        request_id = new_uuid()
        client_request_id = environ.get("HTTP_CLIENT_REQUEST_ID") or request_id
        environ[REQUEST_ID], environ[CLIENT_REQUEST_ID] = request_id, client_request_id
        answered: list[str] = []
        retry_after: list[str] = []
        held: list[Any] = []

        def with_ids(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            headers.append(("request-id", request_id))
            headers.append(("client-request-id", client_request_id))
            answered.append(status)
            if status[:1] in ("4", "5"):
                retry_after.extend(value for name, value in headers if name.lower() == "retry-after")
            if FAULT in environ:
                held[:] = (status, headers, exc_info)
                return _no_write
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, with_ids)
        finally:
            release = environ.pop(THROTTLE_RELEASE, None)
            if release is not None:
                release()
        if logged or held:
            wait = int(retry_after[-1]) if retry_after and retry_after[-1].isdigit() else None
            self.emulator.log.append(log_record(self.emulator, environ, int(answered[-1][:3]), wait))
        if held:
            return faultpoint.finish(environ, (held[0], held[1], held[2]), body, start_response)
        return body


def _no_write(data: bytes) -> None:
    raise RuntimeError("the emulator does not support the WSGI write() callable")


class EmulatorFlask(Flask):
    """Flask, raising the server front's refusal (if any) before anything else looks at the request: a
    request the front could not read whole is answered for that, not for what a route's checks make of it.
    Then the fault rules about method and path (faultpoint.py) have their say, before any route."""

    def preprocess_request(self) -> Any:
        environ = request_ctx.request.environ
        refusal = environ.get(REFUSAL)
        if refusal is not None:
            raise refusal
        emulator = self.extensions["m365"]
        if emulator.faults.before_route:
            faultpoint.before_route(emulator, environ)
        return super().preprocess_request()


def create_app(
    world: LoadedWorld | None = None,
    *,
    signing_key: SigningKey | None = None,
    clock: Clock | None = None,
    admin_key: str | None = None,
) -> Flask:
    """Build the emulator app for `world` (default: the built-in demo tenant)."""
    world = world or load_demo_world()
    emulator = Emulator.build(world, signing_key=signing_key, clock=clock, admin_key=admin_key)
    seed_mailboxes(emulator.mail, world.mail, emulator.mail.now())
    emulator.mail.restore_outbound(world.outbound)
    app = EmulatorFlask("m365_mock")
    # Graph answers `//` in a path itself; werkzeug would redirect to the merged path with an HTML 308.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = world.settings.max_body_bytes
    app.extensions["m365"] = emulator
    app.register_blueprint(control)
    app.register_blueprint(graph)
    app.register_blueprint(outlook)
    app.register_blueprint(identity)
    app.register_blueprint(ui)

    app.wsgi_app = RequestEnvelope(app.wsgi_app, emulator)  # type: ignore[method-assign]
    app.url_map.update()  # the routing rules are compiled now, not by the first request

    @app.errorhandler(aad_errors.AadstsError)
    def render_aadsts(exc: aad_errors.AadstsError) -> Response:
        request.environ[ERROR_CODE] = f"AADSTS{exc.code}" if exc.code else exc.error
        body, status = aad_errors.render(
            exc,
            trace_id=request_ids()[0],
            correlation_id=request_ids()[1],
            now=emulator.clock.now_datetime(),
        )
        return json_response(
            body,
            status,
            headers={
                "x-ms-request-id": body["trace_id"],
                "Cache-Control": "no-store, no-cache",
                "Pragma": "no-cache",
                **exc.headers,
            },
        )

    @app.errorhandler(graph_errors.GraphError)
    def render_graph(exc: graph_errors.GraphError) -> Response:
        request.environ[ERROR_CODE] = exc.code
        body = exc.body(
            request_id=request_ids()[0],
            client_request_id=request_ids()[1],
            now=emulator.clock.now_datetime(),
        )
        return json_response(body, exc.status, content_type=GRAPH_JSON_TYPE, headers=exc.headers)

    @app.errorhandler(HTTPException)
    def render_http_error(exc: HTTPException) -> Response:
        """Routing and protocol errors (404, 405, 413, ...) in the format of the service the path belongs to."""
        path = request.path
        if is_graph_path(path):
            return render_graph(_graph_equivalent(exc, path))
        if path == UI_PREFIX or path.startswith(UI_PREFIX + "/"):
            return error_page(exc)
        if path.startswith(CONTROL_PREFIX + "/"):
            refusal = control_errors.for_http_status(exc.code or 400, exc.description or "")
            return json_response(refusal.body(), refusal.status)
        return render_aadsts(_aadsts_equivalent(exc, path))

    @app.errorhandler(Exception)
    def render_unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_graph_path(request.path):
            return render_graph(graph_errors.InternalServerError())
        if request.path.startswith(CONTROL_PREFIX + "/"):
            failure = control_errors.InternalError()
            return json_response(failure.body(), failure.status)
        body = {
            "error": "server_error",
            "error_description": "An internal error occurred in the emulator.",
            "error_codes": [],
            "correlation_id": request_ids()[1],
        }
        return json_response(body, 500)

    return app


_GRAPH_REFUSALS: dict[int, type[graph_errors.GraphError]] = {
    405: graph_errors.MethodNotAllowed,
    408: graph_errors.RequestTimeout,
    413: graph_errors.RequestTooLarge,
    414: graph_errors.RequestUriTooLong,
    431: graph_errors.RequestHeadersTooLarge,
}
_REFUSED_BEFORE_READING = (408, 414, 431)  # what the server front refuses, saying why in the description


def _graph_equivalent(exc: HTTPException, path: str) -> graph_errors.GraphError:
    refusal = _GRAPH_REFUSALS.get(exc.code or 0)
    if refusal is not None:
        return refusal(exc.description if exc.code in _REFUSED_BEFORE_READING else None)
    if exc.code == 404:
        return graph_errors.SegmentNotFound(_unknown_segment(path))
    return graph_errors.BadRequest(exc.description or "Bad request.")


def log_record(emulator: Emulator, environ: dict[str, Any], status: int, retry_after: int | None = None) -> LogRecord:
    """The request-log record of one request, from what its route left in the environ."""
    query = environ.get("QUERY_STRING")
    path = environ.get("PATH_INFO", "")
    fault = environ.get(FAULT)
    if not path.isascii():  # WSGI's latin-1 text of the UTF-8 bytes, shown as the client wrote it
        path = path.encode("latin-1").decode("utf-8", "replace")
    return LogRecord(
        at=emulator.clock.now(),
        request_id=environ.get(REQUEST_ID, ""),
        method=environ["REQUEST_METHOD"],
        path=path + (f"?{query}" if query else ""),
        status=faultpoint.log_status(fault, status),
        token=environ.get(TOKEN),
        access=environ.get(DECISION),
        error_code=None if fault is not None and fault.close == "before" else environ.get(ERROR_CODE),
        retry_after=retry_after,
        batch_request_id=environ.get(BATCH_REQUEST_ID),
        fault=fault,
        kind=KIND_GRAPH if is_graph_path(path) else KIND_TOKEN if is_token_path(path) else KIND_OTHER,
        client_id=environ.get(TOKEN_CLIENT),
        token_tenant=environ.get(TOKEN_TENANT),
        client_request_id=environ.get("HTTP_CLIENT_REQUEST_ID") or _query_client_request_id(query, path),
        user_agent=environ.get("HTTP_USER_AGENT"),
    )


def _query_client_request_id(query: str | None, path: str) -> str | None:
    """A token request's client-request-id sent as a query parameter, as msal-node sends it."""
    if not query or "client-request-id=" not in query or not is_token_path(path):
        return None
    values = parse_qs(query).get("client-request-id")
    return values[0] if values else None


_KNOWN_SEGMENTS = frozenset(
    {
        "users",
        "me",
        "mailfolders",
        "messages",
        "childfolders",
        "move",
        "copy",
        "sendmail",
        "send",
        "reply",
        "replyall",
        "forward",
        "createreply",
        "createreplyall",
        "createforward",
        "permanentdelete",
        "attachments",
        "createuploadsession",
        "$value",
    }
)


def _unknown_segment(path: str) -> str:
    """The first segment of a Graph path in a name position (users/{id}/mailFolders/{id}/...) Graph would not know."""
    segments = [s for s in path.split("/") if s][1:]
    for position, segment in enumerate(segments):
        if position % 2 == 0 and segment.lower() not in _KNOWN_SEGMENTS:
            return segment
    return segments[-1] if segments else path


def _aadsts_equivalent(exc: HTTPException, path: str) -> aad_errors.AadstsError:
    if exc.code == 405:
        allowed = ", ".join(sorted(m for m in (exc.valid_methods or []) if m != "HEAD")) or "GET"  # type: ignore[attr-defined]
        return aad_errors.MethodNotAccepted(allowed=allowed, method=request.method)
    if exc.code == 413:
        return aad_errors.RequestTooLarge(limit=current_app.config["MAX_CONTENT_LENGTH"])
    if exc.code in _REFUSED_BEFORE_READING:
        return aad_errors.RefusedRequest(status=exc.code, detail=exc.description or "")
    if exc.code == 404:
        return aad_errors.EndpointNotFound(path=path)
    return aad_errors.MalformedRequest(detail=exc.description or "The request could not be read.")
