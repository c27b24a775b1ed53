"""The control API's error catalogue: `{"error": {"code", "message"}}` (plus `details` where a body is refused for
several reasons at once), one class per code with its status and default message.

Routes raise these; one handler renders them. Refusals of the tenant world (`DirectoryError` and its kinds from
`state.errors`) become a control error by their type, in `from_state`. The OpenAPI document lists, for every
route, the codes of the classes that route declares.
"""

from __future__ import annotations

from typing import Any, ClassVar

from m365_mock.state.errors import AlreadyExists, DirectoryError, InUse, NotFound
from m365_mock.state.tenantfile import ConfigError, Problem
from m365_mock.state.tenantfile.problems import dotted

ADMIN_HEADER = "X-M365-Admin-Key"


class ControlError(Exception):
    """A control-API refusal; subclasses fix status and code, the message is given or the class default."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BadRequest"
    default_message: ClassVar[str] = ""

    def __init__(self, message: str | None = None, *, details: list[dict[str, str]] | None = None) -> None:
        self.message = message if message is not None else self.default_message
        self.details = details
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


# ---------------------------------------------------------------- 400: the request is wrong


class UnreadableBody(ControlError):
    """Not JSON, or JSON that is not an object (Graph's words, as the control API always answered)."""

    code = "BadRequest"
    default_message = (
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
        "JSON format."
    )


class EmptyBody(ControlError):
    code = "BadRequest"
    default_message = "Empty Payload. JSON content expected."


class MissingField(ControlError):
    code = "MissingField"

    def __init__(self, name: str) -> None:
        super().__init__(f"'{name}' is required.")


class InvalidField(ControlError):
    """A field of the wrong type or value, or a body the tenant-file schema refuses."""

    code = "InvalidField"


class UnknownQueryParameter(ControlError):
    """A query parameter the route does not take (a misspelt filter must not pass as no filter)."""

    code = "UnknownQueryParameter"


class UnknownField(ControlError):
    """A field the route does not know (PATCH bodies list what can change)."""

    code = "UnknownField"


class InvalidCount(ControlError):
    code = "InvalidCount"


class InvalidSeed(ControlError):
    code = "InvalidSeed"
    default_message = "'seed' must be a whole number."


class InvalidDate(ControlError):
    code = "InvalidDate"


class InvalidTenantFile(ControlError):
    """POST /import: the body is no tenant file; `details` names every wrong place."""

    code = "InvalidTenantFile"


class InvalidOperation(ControlError):
    """A change the directory or Exchange's rules refuse, in their words."""

    code = "InvalidOperation"


class InvalidMailbox(ControlError):
    code = "InvalidMailbox"


class InvalidGroup(ControlError):
    code = "InvalidGroup"


class InvalidMember(ControlError):
    code = "InvalidMember"
    default_message = "A group can't be a member of itself."


# ---------------------------------------------------------------- 401


class AdminKeyRequired(ControlError):
    status, code = 401, "AdminKeyRequired"
    default_message = (
        f"The control API needs the emulator's admin key in the {ADMIN_HEADER} header "
        "(printed at start-up and in connection.json)."
    )


class CsrfTokenInvalid(ControlError):
    status, code = 403, "CsrfTokenInvalid"
    default_message = (
        "A change made with a dashboard session needs the session's CSRF token in the X-M365-CSRF header "
        "(the dashboard's pages carry it); reload the page."
    )


# ---------------------------------------------------------------- 404: nothing by that name


class ObjectNotFound(ControlError):
    """An identity the rules cannot find (Exchange's "couldn't be found"), or no route at that path."""

    status, code = 404, "NotFound"


class TenantNotFound(ControlError):
    status, code = 404, "TenantNotFound"

    def __init__(self, key: str) -> None:
        super().__init__(f"This emulator has no tenant '{key}'.")


class ApplicationNotFound(ControlError):
    status, code = 404, "ApplicationNotFound"


class SecretNotFound(ControlError):
    status, code = 404, "SecretNotFound"


class CertificateNotFound(ControlError):
    status, code = 404, "CertificateNotFound"


class MailboxNotFound(ControlError):
    status, code = 404, "MailboxNotFound"


class FolderNotFound(ControlError):
    status, code = 404, "FolderNotFound"


class GroupNotFound(ControlError):
    status, code = 404, "GroupNotFound"


class RecipientNotFound(ControlError):
    status, code = 404, "RecipientNotFound"

    def __init__(self, key: str) -> None:
        super().__init__(
            f'Couldn\'t find object "{key}". Please make sure that it was spelled correctly '
            "or specify a different object."
        )


class MemberNotFound(ControlError):
    status, code = 404, "MemberNotFound"


class FaultNotFound(ControlError):
    status, code = 404, "FaultNotFound"


# ---------------------------------------------------------------- 405, 409, 413, 415


class MethodNotAllowed(ControlError):
    """A method the path has no route for (answered by the app's routing, in this shape)."""

    status, code = 405, "MethodNotAllowed"
    default_message = "The method is not allowed for the requested URL."


class ObjectExists(ControlError):
    """A name, address or id already taken, in the directory's or Exchange's words."""

    status, code = 409, "AlreadyExists"


class ObjectInUse(ControlError):
    """An object other rules still use, in Exchange's words."""

    status, code = 409, "InUse"


class ApplicationExists(ControlError):
    status, code = 409, "ApplicationExists"


class SecretExists(ControlError):
    status, code = 409, "SecretExists"


class CertificateExists(ControlError):
    status, code = 409, "CertificateExists"


class MailboxExists(ControlError):
    status, code = 409, "MailboxExists"


class MailboxInUse(ControlError):
    status, code = 409, "MailboxInUse"


class GroupExists(ControlError):
    status, code = 409, "GroupExists"


class GroupInUse(ControlError):
    status, code = 409, "GroupInUse"


class MemberAlreadyExists(ControlError):
    status, code = 409, "MemberAlreadyExists"


class PolicyExists(ControlError):
    status, code = 409, "PolicyExists"


class FaultExists(ControlError):
    status, code = 409, "FaultExists"


class ServicePrincipalInUse(ControlError):
    status, code = 409, "ServicePrincipalInUse"


class RequestTooLarge(ControlError):
    status, code = 413, "RequestTooLarge"
    default_message = "The request body is larger than the emulator's max_body_bytes setting."


class UnsupportedMediaType(ControlError):
    """A body that is not `application/json` (the code is Graph's, as the control API always answered)."""

    status, code = 415, "RequestBodyRead"

    def __init__(self, content_type: str) -> None:
        super().__init__(
            "A supported MIME type could not be found that matches the content type of the response. None of the "
            f"supported type(s) 'application/json' matches the content type '{content_type}'."
        )


class RequestTimeout(ControlError):
    status, code = 408, "RequestTimeout"


class RequestUriTooLong(ControlError):
    status, code = 414, "RequestUriTooLong"


class RequestHeadersTooLarge(ControlError):
    status, code = 431, "RequestHeaderFieldsTooLarge"


class InternalError(ControlError):
    status, code = 500, "InternalError"
    default_message = "An internal error occurred in the emulator; its log has the details."


def for_http_status(status: int, description: str) -> ControlError:
    """A routing or protocol error (an unknown path, a method, a body or request over a limit) as a control error."""
    if status == 404:
        return ObjectNotFound(description)
    if status == 405:
        return MethodNotAllowed(description)
    if status == 413:
        return RequestTooLarge(description)
    refused = {408: RequestTimeout, 414: RequestUriTooLong, 431: RequestHeadersTooLarge}.get(status)
    return refused(description) if refused is not None else ControlError(description)


# ---------------------------------------------------------------- from the tenant world


def from_state(exc: DirectoryError) -> ControlError:
    """A refusal of the directory or of Exchange's rules, by its kind; the message as the rules wrote it."""
    if isinstance(exc, NotFound):
        return ObjectNotFound(str(exc))
    if isinstance(exc, AlreadyExists):
        return ObjectExists(str(exc))
    if isinstance(exc, InUse):
        return ObjectInUse(str(exc))
    return InvalidOperation(str(exc))


def from_reader(exc: ConfigError, message: str) -> ControlError:
    """The tenant-file reader's refusal of one object: 400 InvalidField, unless the rules it ran refused by a kind
    of their own (no such identity, a name already taken)."""
    cause = exc.__cause__
    if isinstance(cause, NotFound | AlreadyExists | InUse):
        return type(from_state(cause))(message)
    return InvalidField(message)


def refused_body(kind: type[ControlError], problems: list[Problem]) -> ControlError:
    """A body refused for every wrong place at once: one line each in the message (Exchange's words as they are),
    one `{"code", "target", "message"}` each in `details`."""
    lines = [p.message if p.exact and len(p.path) <= 1 else p.render() for p in problems]
    details = [{"code": kind.code, "target": dotted(p.path), "message": p.message} for p in problems]
    return kind("\n".join(lines), details=details)


# Refusals every route may answer, added to each route's own list by the route registry.
EVERY_ROUTE: tuple[type[ControlError], ...] = (UnknownQueryParameter,)
WITH_ADMIN_KEY: tuple[type[ControlError], ...] = (AdminKeyRequired, CsrfTokenInvalid)
WITH_BODY: tuple[type[ControlError], ...] = (UnreadableBody, RequestTooLarge, UnsupportedMediaType)
WITH_PATH_PARAMETERS: tuple[type[ControlError], ...] = (ObjectNotFound,)
