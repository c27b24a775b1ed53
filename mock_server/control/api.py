"""The control API's blueprint and its route registry.

Every control route is declared once, with `route(...)`: its method, path, summary, request body and query
schemas, its answers and the refusals it may give. The declaration registers the view on the blueprint and is
what the OpenAPI document (openapi.py) is written from, so the two cannot drift apart. Every route but the public
ones (health, the OpenAPI document) needs the admin key; a Graph token is never accepted here.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from m365_mock.control import errors
from m365_mock.graph import errors as graph_errors
from m365_mock.state.errors import DirectoryError
from m365_mock.ui.session import COOKIE, CSRF_HEADER
from m365_mock.web import current_emulator, json_response

control = Blueprint("control", __name__, url_prefix="/_m365")
ADMIN_HEADER = errors.ADMIN_HEADER
_PARAMETER = re.compile(r"{(\w+)}")

# A refusal as the document lists it: a control error class, or a Graph error class (the message route reads
# Graph message properties, with Graph's refusals). Both carry `status` and `code`.
Refusal = type[errors.ControlError] | type[graph_errors.GraphError]


@dataclass(frozen=True)
class Query:
    """A query parameter: its name, JSON Schema and meaning."""

    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Operation:
    """One control route as declared: what the blueprint registers and the OpenAPI document describes."""

    method: str
    path: str  # under /_m365, with {name} for path parameters
    endpoint: str
    summary: str
    description: str
    tag: str
    answers: dict[int, dict[str, Any] | None]  # status -> JSON Schema of the body; None: no body
    body: dict[str, Any] | None
    body_required: bool
    query: tuple[Query, ...]
    refusals: tuple[Refusal, ...]
    public: bool

    @property
    def parameters(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    def all_refusals(self) -> list[Refusal]:
        """The route's own refusals and those that come with its shape (key, body, path parameters), once each."""
        found: list[Refusal] = [*self.refusals, *errors.EVERY_ROUTE]
        if not self.public:
            found += errors.WITH_ADMIN_KEY
        if self.body is not None:
            found += errors.WITH_BODY
        if self.parameters:
            found += errors.WITH_PATH_PARAMETERS
        if "tenant" in self.parameters:
            found.append(errors.TenantNotFound)
        return list(dict.fromkeys(found))


OPERATIONS: list[Operation] = []


def route(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    answers: dict[int, dict[str, Any] | None],
    body: dict[str, Any] | None = None,
    body_required: bool = False,
    query: tuple[Query, ...] = (),
    refusals: tuple[Refusal, ...] = (),
    public: bool = False,
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Declare a control route and register its view (path parameters are passed by their names)."""

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        operation = Operation(
            method=method,
            path=path,
            endpoint=view.__name__,
            summary=summary,
            description=_described(view),
            tag=tag,
            answers=answers,
            body=body,
            body_required=body_required,
            query=query,
            refusals=refusals,
            public=public,
        )
        if any(o.endpoint == operation.endpoint for o in OPERATIONS):
            raise ValueError(f"two control routes named {operation.endpoint}")
        OPERATIONS.append(operation)
        control.add_url_rule(_PARAMETER.sub(r"<\1>", path), endpoint=view.__name__, view_func=view, methods=[method])
        return view

    return register


def _described(view: Callable[..., Any]) -> str:
    text = (view.__doc__ or "").strip()
    return re.sub(r"\n\s*", "\n", text) if text else ""


def public_endpoints() -> frozenset[str]:
    """The endpoints served without the admin key."""
    return _public(len(OPERATIONS))


@functools.cache
def _public(_routes: int) -> frozenset[str]:
    return frozenset(f"{control.name}.{o.endpoint}" for o in OPERATIONS if o.public)


@functools.cache
def _query_names(_routes: int) -> dict[str, tuple[str, ...]]:
    return {f"{control.name}.{o.endpoint}": tuple(q.name for q in o.query) for o in OPERATIONS}


# ---------------------------------------------------------------- the admin key, and refusals rendered


@control.before_request
def require_admin_key_and_known_query() -> None:
    """Every control request: the admin key (public routes aside), then no query parameter the route does not
    take, so a misspelt filter (`/log?mailbx=...`) is refused rather than ignored."""
    if request.endpoint not in public_endpoints():
        _require_key_or_session()
    known = _query_names(len(OPERATIONS)).get(request.endpoint or "", ())
    unknown = [name for name in request.args if name not in known]
    if unknown:
        takes = f"it takes {', '.join(known)}" if known else "it takes none"
        raise errors.UnknownQueryParameter(
            f"{request.method} {request.path} does not take the query parameter '{unknown[0]}'; {takes}."
        )


def _require_key_or_session() -> None:
    """The admin key in its header; or a dashboard session, whose changes carry the session's CSRF token."""
    emulator = current_emulator()
    given = request.headers.get(ADMIN_HEADER)
    if given is None:
        session = request.cookies.get(COOKIE)
        if emulator.sessions.valid(session):
            if request.method not in ("GET", "HEAD") and not emulator.sessions.csrf_valid(
                session or "", request.headers.get(CSRF_HEADER)
            ):
                raise errors.CsrfTokenInvalid()
            return
        given = ""
    if not hmac.compare_digest(given.encode(), emulator.admin_key.encode()):
        raise errors.AdminKeyRequired()


@control.errorhandler(errors.ControlError)
def render_control_error(exc: errors.ControlError) -> Response:
    return json_response(exc.body(), exc.status)


@control.errorhandler(DirectoryError)
def render_state_error(exc: DirectoryError) -> Response:
    """Refusals of the directory and of Exchange's rules, by their kind, in Exchange's words."""
    return render_control_error(errors.from_state(exc))


@control.errorhandler(graph_errors.GraphError)
def render_message_error(exc: graph_errors.GraphError) -> Response:
    """A message delivered through the control API is read as Graph reads one; its refusals are Graph's."""
    return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status)
