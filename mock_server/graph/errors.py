"""Graph's error catalogue: `{"error": {"code", "message", "innerError"}}` with the real codes and texts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar


class GraphError(Exception):
    """A Graph error; subclasses fix status and code, the message is given or the class default."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BadRequest"
    default_message: ClassVar[str] = ""

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.message = message if message is not None else self.default_message
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self, *, request_id: str, client_request_id: str, now: datetime) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                },
            }
        }


class BadRequest(GraphError):
    pass


class SegmentNotFound(GraphError):
    """An unknown path segment under /v1.0: Graph answers 400, not 404."""

    def __init__(self, segment: str) -> None:
        super().__init__(f"Resource not found for the segment '{segment}'.")


class InvalidAuthenticationToken(GraphError):
    status, code = 401, "InvalidAuthenticationToken"
    challenge = (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        'client_id="00000003-0000-0000-c000-000000000000"'
    )

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": self.challenge})


class MethodNotAllowed(GraphError):
    status, code = 405, "Request_BadRequest"
    default_message = "Specified HTTP method is not allowed for the request target."


class RequestTooLarge(GraphError):
    status, code = 413, "RequestEntityTooLarge"
    default_message = "The request body is larger than the maximum the service accepts."


class InternalServerError(GraphError):
    status, code = 500, "InternalServerError"
    default_message = "An internal server error occurred in the emulator; the request log has the details."
