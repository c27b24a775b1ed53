"""What every route shares about the request it answers: the emulator it belongs to, the request itself, its
origin and ids, the keys under which the request path leaves facts in the WSGI environ, and JSON answers.

Routes and the app factory both import from here, so neither imports the other.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request
from flask.globals import request_ctx
from werkzeug.wrappers import Request as WerkzeugRequest

from m365_mock.emulator import Emulator

# Graph, and the Outlook REST path of attachment upload URLs (`/api/v2.0/Users(...)/Messages(...)/...`).
GRAPH_PREFIXES = ("/v1.0", "/beta", "/api/v2.0")
CONTROL_PREFIX = "/_m365"
JSON_TYPE = "application/json; charset=utf-8"
GRAPH_JSON_TYPE = (
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
)


REQUEST_ID = "m365.request_id"
# An HTTPException the server front decided before the app ran (a stalled or oversized body, a URL or header
# block over the limit); the app raises it before any hook or route runs, so it is answered and logged as
# every other error is.
REFUSAL = "m365.refusal"
_ORIGIN = "m365.origin"
CLIENT_REQUEST_ID = "m365.client_request_id"
# What a Graph route learnt, for the request log: the verified token, the access decision, the error code.
TOKEN = "m365.token"
DECISION = "m365.decision"
ERROR_CODE = "m365.error_code"
# What a token request named: its client_id and (when it exists) its tenant, for its request-log record.
TOKEN_CLIENT = "m365.token_client"
TOKEN_TENANT = "m365.token_tenant"
# What gives back a request's throttling concurrency slot; the request envelope calls it when the answer is made.
THROTTLE_RELEASE = "m365.throttle_release"
# The request id of the $batch an inner request belongs to, for its request-log record.
BATCH_REQUEST_ID = "m365.batch_request_id"
# The fault rule acting on the request (faultpoint.py), and whether a gate has matched the request against them;
# FRONT is set by the server front, which carries out what a rule does to the connection.
FAULT = "m365.fault"
# A route whose answer goes on after its body (the dashboard's live log) leaves here an async function
# `follow(send, stopping)`: the server front sends the answer's head and body, then awaits it, on its event loop,
# holding no request thread. `send(bytes)` writes more of the body; `stopping` is set when the server stops.
# Served any other way (the test client), the answer ends with its body.
STREAM = "m365.stream"
FAULT_GATED = "m365.fault_gated"
FRONT = "m365.front"


def current_emulator() -> Emulator:
    return current_app.extensions["m365"]


def json_response(
    body: Any, status: int = 200, *, content_type: str = JSON_TYPE, headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, content_type=content_type, headers=headers)


def origin_of(http: WerkzeugRequest) -> str:
    """`https://host:port` of a request, as the client addressed it (no IRI decoding, no slash)."""
    environ = http.environ
    origin = environ.get(_ORIGIN)
    if origin is None:
        origin = environ[_ORIGIN] = f"{http.scheme}://{http.host}"
    return origin


def request_origin() -> str:
    """The origin of Flask's current request."""
    return origin_of(request)


def is_token_path(path: str) -> bool:
    """Whether `path` is a token endpoint (`/{tenant}/oauth2/v2.0/token` or v1's `/{tenant}/oauth2/token`)."""
    return path.endswith(("/oauth2/v2.0/token", "/oauth2/token"))


def is_graph_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in GRAPH_PREFIXES)


def current_request() -> WerkzeugRequest:
    """The request being answered, as the object itself (Flask's `request` is a proxy to it)."""
    return request_ctx.request


def request_ids() -> tuple[str, str]:
    """(request id, client request id) of the current request."""
    environ = request.environ
    return environ.get(REQUEST_ID, ""), environ.get(CLIENT_REQUEST_ID, "")
