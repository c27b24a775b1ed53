"""Dashboard sessions: the admin key traded once for an HttpOnly, SameSite=Strict cookie, and a CSRF token per
session that every change must carry (a form field or the `X-M365-CSRF` header).

The control API accepts the same session in place of the admin key header, so the dashboard makes its changes
through the control API's own routes and rules.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

COOKIE = "m365_ui"
CSRF_HEADER = "X-M365-CSRF"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/_m365/"
MAX_SESSIONS = 1000


class DashboardSessions:
    """The sessions this emulator has opened; a session is a random token, its CSRF token an HMAC of it."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._open: dict[str, None] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        """A new session token (the oldest session is closed beyond MAX_SESSIONS)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._open[token] = None
            while len(self._open) > MAX_SESSIONS:
                del self._open[next(iter(self._open))]
        return token

    def close(self, token: str) -> None:
        with self._lock:
            self._open.pop(token, None)

    def valid(self, token: str | None) -> bool:
        return bool(token) and token in self._open

    def csrf_token(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, token: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token(token), given or "")
