"""JSON batching: `POST /v1.0/$batch` with up to 20 requests, run one by one through the app itself.

Each inner request becomes a WSGI environ of its own and goes through the app's WSGI entry (the request
envelope, routing, the token and access checks, the error handlers, the request log), exactly as if the client
had sent it alone; nothing here answers an inner request itself, except that one whose dependency failed is not
run and gets 424. The outer request's `Authorization` (and `client-request-id`) apply unless the inner request
carries its own; each inner request's log record names the batch's request id.

The batch is read as OData's JSON batch reader reads it (property names in any case, unknown or repeated names
refused) with Graph's rules on top: at most 20 requests, unique ids, relative URLs, `headers` with a
`Content-Type` when there is a `body`, and `dependsOn` naming only requests before it (so no cycle can form).
Requests run in the order given; Graph may run up to four at once and answer in any order (docs/fidelity.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Response, current_app
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest

from m365_mock.graph import body, errors
from m365_mock.graph.routes import graph, graph_json, verify_bearer
from m365_mock.web import (
    BATCH_REQUEST_ID,
    CLIENT_REQUEST_ID,
    REQUEST_ID,
    TOKEN,
    current_emulator,
    current_request,
    origin_of,
    request_ids,
)

MAX_REQUESTS = 20
_PROPERTIES = {
    "ID": "id",
    "METHOD": "method",
    "URL": "url",
    "HEADERS": "headers",
    "BODY": "body",
    "DEPENDSON": "dependsOn",
}
_REQUIRED = ("ID", "METHOD", "URL")
# Headers of an inner answer that belong to the whole exchange, not to the inner request.
_DROPPED_HEADERS = frozenset({"content-length", "request-id", "client-request-id", "connection", "transfer-encoding"})
# Headers of an inner request that describe the connection: the batch's own stand for them.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class _Object(dict):
    """A JSON object that remembers the names that appeared in it more than once (json's hook keeps the last)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


@dataclass
class InnerRequest:
    """One request of the batch, checked and ready to run."""

    id: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes | None
    depends_on: list[str] = field(default_factory=list)


def _bad(message: str) -> errors.BadRequest:
    return errors.BadRequest(message)


# ---------------------------------------------------------------- reading the batch


def read_batch(payload: Any) -> list[InnerRequest]:
    """The batch's requests, checked; 400 BadRequest (the whole batch refused) for anything malformed."""
    if not isinstance(payload, dict):
        raise errors.UnreadableJson()
    top = {name.lower(): value for name, value in payload.items()}
    unknown = [name for name in payload if name.lower() != "requests"]
    if "requests" not in top:
        raise _bad("Json batch format requires top level property name 'requests' or 'response' but it is missing.")
    if unknown:  # fidelity: chosen (OData's reader stops at the array; a second top-level property is refused)
        raise _bad(f"Unknown property name '{unknown[0]}' for a JSON batch; only 'requests' is allowed.")
    items = top["requests"]
    if not isinstance(items, list):
        raise _bad("The 'requests' property of a JSON batch must be an array.")
    if len(items) > MAX_REQUESTS:  # fidelity: chosen (ODataLib's text for its MaxPartsPerBatch quota)
        raise _bad(
            "The current batch message contains too many parts. A maximum number of "
            f"'{MAX_REQUESTS}' query operations and change sets are allowed in a batch message."
        )
    seen: dict[str, str] = {}
    requests = []
    for item in items:
        inner = _read_request(item, seen)
        seen[inner.id.lower()] = inner.id
        requests.append(inner)
    return requests


def _read_request(item: Any, seen: dict[str, str]) -> InnerRequest:
    if not isinstance(item, dict):
        raise _bad("Each entry of 'requests' must be a JSON object.")
    pairs = item.pairs if isinstance(item, _Object) else list(item.items())
    props: dict[str, Any] = {}
    for name, value in pairs:
        key = name.upper()  # OData's reader matches property names ignoring case
        if key in props:
            raise _bad(f"Duplicate property name '{key}' for request in batch.")
        if key not in _PROPERTIES:
            raise _bad(f"Unknown property name '{key}' for message in batch.")
        props[key] = value
    for key in _REQUIRED:
        if props.get(key) is None or props[key] == "":
            raise _bad(f"Request property [{key}] is required but is missing.")
        if not isinstance(props[key], str):
            raise _bad(f"The '{_PROPERTIES[key]}' of a request in a batch must be a string.")
    request_id, method, url = props["ID"], props["METHOD"].upper(), props["URL"]
    if request_id.lower() in seen:  # Graph: ids are not case-sensitive and must be unique
        raise _bad(
            f"The content ID '{request_id}' was found more than once in the same change set or same batch request. "
            "Content IDs have to be unique across all operations of a change set for OData V4.0 and have to be "
            "unique across all operations in the whole batch request for OData V4.01."
        )
    headers = _read_headers(request_id, props.get("HEADERS"))
    content = _read_body(request_id, props["BODY"], headers) if props.get("BODY") is not None else None
    path, query = _relative(request_id, url)
    return InnerRequest(request_id, method, path, query, headers, content, _depends_on(request_id, props, seen))


def _read_headers(request_id: str, value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise _bad(f"The 'headers' of request '{request_id}' must be a JSON object.")
    pairs = value.pairs if isinstance(value, _Object) else list(value.items())
    headers: list[tuple[str, str]] = []
    names: set[str] = set()
    for name, raw in pairs:
        if name in names:  # as OData's reader compares them: exactly
            raise _bad(f"Duplicate header name '{name}' for request in batch.")
        names.add(name)
        if isinstance(raw, dict | list) or raw is None:
            raise _bad(f"The header '{name}' of request '{request_id}' must be a string.")
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        if not name or any(c in name for c in ":\r\n") or any(c in text for c in "\r\n"):
            raise _bad(f"The header '{name}' of request '{request_id}' is not a valid HTTP header.")
        if name.lower() not in _TRANSPORT_HEADERS:
            headers.append((name, text))
    return headers


def _content_type(headers: list[tuple[str, str]]) -> str | None:
    return next((value for name, value in headers if name.lower() == "content-type"), None)


def _read_body(request_id: str, value: Any, headers: list[tuple[str, str]]) -> bytes:
    """The inner request's body bytes: JSON as JSON, a string as text for `text/*`, else as base64 (OData 4.01)."""
    content_type = _content_type(headers)
    if content_type is None:
        raise _bad(f"Request '{request_id}' has a body but no Content-Type header.")  # fidelity: chosen
    if not isinstance(value, str):
        try:
            return json.dumps(value, separators=(",", ":")).encode("utf-8")
        except RecursionError:
            raise errors.UnreadableJson() from None
    if content_type.split(";")[0].strip().lower().startswith("text/"):
        return value.encode("utf-8")
    try:
        text = "".join(value.split()).replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(
            f"The body of request '{request_id}' is not base64, as a body of type '{content_type}' must be."
        ) from None


def _relative(request_id: str, url: str) -> tuple[str, str]:
    """`/v1.0/<url>`'s path and query string; absolute URLs and a nested `$batch` refused."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith("//"):
        raise _bad(
            f"The url '{url}' of request '{request_id}' is absolute; a batch takes URLs relative to the version."
        )
    path = "/" + parts.path.lstrip("/")
    if unquote(path).strip("/").lower() == "$batch":
        raise _bad(f"Request '{request_id}' is a $batch request; batches cannot be nested.")  # fidelity: chosen
    return "/v1.0" + path, parts.query


def _depends_on(request_id: str, props: dict[str, Any], seen: dict[str, str]) -> list[str]:
    value = props.get("DEPENDSON")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"The 'dependsOn' of request '{request_id}' must be an array of request ids.")
    for dependency in value:
        if dependency.lower() not in seen:  # unknown, itself, or later in the batch: no cycle can form
            raise _bad(  # fidelity: the first words are Graph's, the rest the emulator's
                f"Invalid dependency for request Id '{request_id}': '{dependency}' is not the id of a request before "
                "it in the batch."
            )
    return [seen[d.lower()] for d in value]


# ---------------------------------------------------------------- running it


def _environ(inner: InnerRequest, outer: WerkzeugRequest) -> dict[str, Any]:
    """The WSGI environ of an inner request: on the outer request's origin, with its credentials unless the inner
    request brings its own, and the batch's request id for the request log."""
    headers = Headers(inner.headers)
    if "Authorization" not in headers and "Authorization" in outer.headers:
        headers["Authorization"] = outer.headers["Authorization"]
    if "client-request-id" not in headers:
        headers["client-request-id"] = outer.environ.get(CLIENT_REQUEST_ID, "")
    builder = EnvironBuilder(
        path=inner.path,
        base_url=origin_of(outer),
        query_string=inner.query,
        method=inner.method,
        headers=headers,
        data=inner.body,
        environ_base={"REMOTE_ADDR": outer.remote_addr or ""},
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    environ[BATCH_REQUEST_ID] = outer.environ[REQUEST_ID]
    return environ


def _run(environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """The app's answer to one environ, through its WSGI entry (the request envelope and everything behind it)."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer[:] = [int(status[:3]), headers]
        return lambda data: None

    result = current_app.wsgi_app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer[0], answer[1], content


def inner_answer(inner: InnerRequest, status: int, headers: list[tuple[str, str]], content: bytes) -> dict[str, Any]:
    """An inner answer as the batch shows it: JSON bodies as JSON, text as a string, anything else as base64."""
    dropped = _DROPPED_HEADERS if content else _DROPPED_HEADERS | {"content-type"}  # Flask types empty answers too
    kept = {name: value for name, value in headers if name.lower() not in dropped}
    entry: dict[str, Any] = {"id": inner.id, "status": status, "headers": kept}
    if content:
        mimetype = (_content_type(headers) or "").split(";")[0].strip().lower()
        if mimetype == "application/json" or mimetype.endswith("+json"):
            entry["body"] = json.loads(content)
        elif mimetype.startswith("text/"):
            entry["body"] = content.decode("utf-8", "replace")
        else:
            entry["body"] = base64.b64encode(content).decode("ascii")
    return entry


def _failed_dependency(inner: InnerRequest, dependency: str) -> dict[str, Any]:
    failure = errors.FailedDependency(dependency)
    request_id, client_request_id = request_ids()
    content = failure.body(
        request_id=request_id, client_request_id=client_request_id, now=current_emulator().clock.now_datetime()
    )
    return {"id": inner.id, "status": failure.status, "headers": {"Content-Type": "application/json"}, "body": content}


@graph.post("/$batch")
def run_batch() -> Response:
    """Check the token and the batch, then run each request through the app in order; 200 with every answer."""
    outer = current_request()
    outer.environ[TOKEN] = verify_bearer(current_emulator(), outer)
    if BATCH_REQUEST_ID in outer.environ:  # however its url was spelt, a batch inside a batch is not run
        raise _bad("A $batch request cannot be sent inside a batch.")
    body.json_body()  # Graph's errors for an empty, non-JSON or unreadable payload
    payload = json.loads(outer.get_data(cache=True), object_pairs_hook=_Object)
    statuses: dict[str, int] = {}
    responses = []
    for inner in read_batch(payload):
        failed = next((d for d in inner.depends_on if statuses[d] >= 400), None)
        if failed is not None:
            entry = _failed_dependency(inner, failed)
        else:
            entry = inner_answer(inner, *_run(_environ(inner, outer)))
        statuses[inner.id] = entry["status"]
        responses.append(entry)
    return graph_json({"responses": responses})
