"""Typed errors: AuthError for the token endpoint (AADSTS codes), GraphError for Microsoft Graph."""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests

_TRACE_SUFFIX = re.compile(r"\s*(?:\r?\n)?\s*Trace ID:.*\Z", re.S)


class ConfigError(ValueError):
    """The client is not configured well enough to run (missing tenant, credential, unreadable file...)."""


class ClientError(Exception):
    """Base of AuthError and GraphError: something the service (or the network) refused."""

    status: int

    @property
    def code_text(self) -> str:
        """The short code a log line or `error: <code>: <message>` shows."""
        return type(self).__name__


class AuthError(ClientError):
    """The token endpoint refused: `error` (OAuth), `codes` (AADSTS numbers), `description` (Entra's text)."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        codes: list[int] | None = None,
        correlation_id: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        self.status, self.error, self.description = status, error, description
        self.codes = list(codes or [])
        self.correlation_id, self.trace_id = correlation_id, trace_id
        super().__init__(f"{error}: {self.message}")

    @property
    def code(self) -> int | None:
        """The first AADSTS code (e.g. 7000215), or None."""
        return self.codes[0] if self.codes else None

    @property
    def message(self) -> str:
        """The description without Entra's `Trace ID: … Correlation ID: … Timestamp: …` tail."""
        return _TRACE_SUFFIX.sub("", self.description).strip()

    @property
    def code_text(self) -> str:
        return self.error

    @classmethod
    def from_response(cls, response: requests.Response) -> AuthError:
        """Entra's JSON error body, or a generic error for anything else (e.g. an HTML 404 page)."""
        body = _json(response)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            codes = [c for c in body.get("error_codes") or [] if isinstance(c, int)]
            return cls(
                response.status_code,
                body["error"],
                str(body.get("error_description") or body["error"]),
                codes,
                body.get("correlation_id"),
                body.get("trace_id"),
            )
        return cls(response.status_code, "http_error", _text_summary(response))


class GraphError(ClientError):
    """Graph refused: HTTP `status`, Graph `code` (e.g. ErrorAccessDenied), `message`, and the request ids."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.request_id, self.client_request_id, self.retry_after = request_id, client_request_id, retry_after
        super().__init__(f"{status} {code}: {message}")

    @property
    def code_text(self) -> str:
        return self.code

    @classmethod
    def from_response(cls, response: requests.Response) -> GraphError:
        """`{"error": {"code", "message", "innerError"}}`; ids from the headers, else from innerError."""
        body = _json(response)
        error = body.get("error") if isinstance(body, dict) else None
        inner: dict[str, Any] = {}
        if isinstance(error, dict):
            code = str(error.get("code") or "UnknownError")
            message = str(error.get("message") or "")
            found = error.get("innerError") or error.get("innererror")
            inner = found if isinstance(found, dict) else {}
        else:
            code = "".join((response.reason or "").title().split()) or f"Http{response.status_code}"
            message = _text_summary(response)
        return cls(
            response.status_code,
            code,
            message,
            response.headers.get("request-id") or inner.get("request-id"),
            response.headers.get("client-request-id") or inner.get("client-request-id"),
            parse_retry_after(response.headers.get("Retry-After")),
        )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a number (`2.128`) or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _text_summary(response: requests.Response, limit: int = 200) -> str:
    text = " ".join((response.text or "").split())
    if not text:
        return f"HTTP {response.status_code} {response.reason or ''}".strip()
    return text[:limit] + ("…" if len(text) > limit else "")
