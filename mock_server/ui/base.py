"""The dashboard's blueprint and what every page shares: the session gate, login and logout, the assets, the
security headers, and `page()` to render a template.

Every page and asset needs a session; without one a page redirects to the login form and anything else is
refused with 401. A change made by a form posted to the dashboard carries the session's CSRF token; changes
made from a page's script go to the control API, which checks the same token in its header.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from m365_mock.ui.session import COOKIE, COOKIE_PATH, CSRF_FIELD, CSRF_HEADER
from m365_mock.web import current_emulator

UI_PREFIX = "/_m365/ui"
ui = Blueprint("ui", __name__, url_prefix=UI_PREFIX, template_folder="templates")

_PUBLIC = frozenset({"ui.login", "ui.login_submit"})
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
# Pages load only their own scripts, styles and images; a message's HTML body is framed from a sandboxed route
# with a CSP of its own (mailboxes.py).
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'{nonce}; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def session_token() -> str | None:
    """The request's dashboard session, when it holds a valid one."""
    token = request.cookies.get(COOKIE)
    return token if current_emulator().sessions.valid(token) else None


def csrf_token() -> str:
    token = session_token()
    return current_emulator().sessions.csrf_token(token) if token else ""


# The query parameters each page takes (`takes`); any other is refused with 400, never ignored.
_QUERY: dict[str, tuple[str, ...]] = {}

View = TypeVar("View", bound=Callable[..., Any])


def takes(*names: str) -> Callable[[View], View]:
    """Declare the query parameters a dashboard view takes (it takes none unless it says)."""

    def declare(view: View) -> View:
        _QUERY[f"{ui.name}.{view.__name__}"] = names
        return view

    return declare


def _refuse_unknown_query() -> None:
    known = _QUERY.get(request.endpoint or "", ())
    unknown = [name for name in request.args if name not in known]
    if unknown:
        takes_text = f"it takes {', '.join(known)}" if known else "it takes none"
        abort(400, f"{request.path} does not take the query parameter '{unknown[0]}'; {takes_text}.")


@ui.before_request
def require_session() -> BaseResponse | None:
    """No page or asset without a session; no change without the session's CSRF token; no query parameter the
    page does not take."""
    if request.endpoint in _PUBLIC:
        _refuse_unknown_query()
        return None
    token = session_token()
    if token is None:
        if request.method in _SAFE_METHODS and request.endpoint != "ui.asset":
            target = request.full_path.rstrip("?")
            return redirect(url_for("ui.login", next=target), 303)
        abort(401, "The dashboard needs a session: log in with the emulator's admin key.")
    if request.method not in _SAFE_METHODS:
        given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        if not current_emulator().sessions.csrf_valid(token, given):
            abort(403, "The change was refused: its CSRF token is missing or not this session's. Reload the page.")
    _refuse_unknown_query()
    return None


@ui.after_request
def secure_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY.format(nonce=""))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def page(template: str, **context: Any) -> str:
    """Render a dashboard page: its template with the session's CSRF token and the navigation."""
    return render_template(template, csrf=csrf_token(), nav=request.endpoint, **context)


# ---------------------------------------------------------------- login and logout


def _local_target(target: str | None) -> str:
    """`target` when it is a dashboard path on this origin, else the dashboard's home."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith(UI_PREFIX + "/"):
            return target
    return url_for("ui.home")


def _login_page(error: str | None, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(16)
    body = render_template("login.html", error=error, next=request.values.get("next", ""), nonce=nonce)
    response = Response(body, status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = PAGE_POLICY.format(nonce=f" 'nonce-{nonce}'")
    return response


@ui.get("/login")
@takes("next")
def login() -> Response:
    return _login_page(None)


@ui.post("/login")
def login_submit() -> BaseResponse:
    key = request.form.get("key", "")
    if not hmac.compare_digest(key.encode(), current_emulator().admin_key.encode()):
        return _login_page("That is not this emulator's admin key.", 401)
    response = redirect(_local_target(request.form.get("next")), 303)
    response.set_cookie(
        COOKIE,
        current_emulator().sessions.open(),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
    )
    return response


@ui.post("/logout")
def logout() -> BaseResponse:
    token = session_token()
    if token:
        current_emulator().sessions.close(token)
    response = redirect(url_for("ui.login"), 303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
    return response


@ui.get("/")
def home() -> BaseResponse:
    return redirect(url_for("ui.mailboxes"), 303)


# ---------------------------------------------------------------- assets


@ui.get("/static/<name>")
def asset(name: str) -> Response:
    """The dashboard's own scripts and styles, shipped in the package."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    kind = _ASSET_TYPES.get(suffix)
    if kind is None or "/" in name or name.startswith("."):
        abort(404)
    try:
        data = resources.files("m365_mock.ui").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        abort(404)
    response = Response(data, content_type=kind)
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


# ---------------------------------------------------------------- errors


def error_page(exc: HTTPException) -> Response:
    """A dashboard error as a page that says what went wrong (the app renders every /_m365/ui/ error here)."""
    body = render_template("error.html", status=exc.code or 500, title=exc.name, detail=exc.description or "")
    response = Response(body, exc.code or 500, content_type="text/html; charset=utf-8")
    secure_headers(response)
    return response


def quoted(value: str) -> str:
    """`value` for one path segment of a dashboard URL."""
    return quote(value, safe="@")
