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


class RequestTimeout(GraphError):
    status, code = 408, "RequestTimeout"
    default_message = "The request body was not received in time."


class RequestUriTooLong(GraphError):
    status, code = 414, "RequestUriTooLong"
    default_message = "The request URL is longer than the service accepts."


class RequestHeadersTooLarge(GraphError):
    status, code = 431, "RequestHeaderFieldsTooLarge"
    default_message = "The request's headers are larger than the service accepts."


class InternalServerError(GraphError):
    status, code = 500, "InternalServerError"
    default_message = "An internal server error occurred in the emulator; the request log has the details."


class MeNotDelegated(GraphError):
    default_message = "/me request is only valid with delegated authentication flow."


class InvalidUser(GraphError):
    status, code = 404, "ErrorInvalidUser"

    def __init__(self, user: str) -> None:
        super().__init__(f"The requested user '{user}' is invalid.")


class ItemNotFound(GraphError):
    status, code = 404, "ErrorItemNotFound"
    default_message = "The specified object was not found in the store."


class InvalidIdMalformed(GraphError):
    status, code = 400, "ErrorInvalidIdMalformed"
    default_message = "Id is malformed."


class AccessDenied(GraphError):
    status, code = 403, "ErrorAccessDenied"
    default_message = "Access is denied. Check credentials and try again."


class UnreadableJson(GraphError):
    default_message = (
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
        "JSON format."
    )


class EmptyPayload(GraphError):
    default_message = "Empty Payload. JSON content expected."


class RequestBodyRead(GraphError):
    code = "RequestBodyRead"


class UnsupportedMediaType(GraphError):
    status, code = 415, "RequestBodyRead"
    default_message = (
        "A supported MIME type could not be found that matches the content type of the response. None of the "
        "supported type(s) 'application/json' matches the content type '{content_type}'."
    )

    def __init__(self, content_type: str) -> None:
        super().__init__(self.default_message.format(content_type=content_type))


class InvalidParameter(GraphError):
    code = "ErrorInvalidParameter"


class InvalidRecipients(GraphError):
    code = "ErrorInvalidRecipients"
    default_message = "At least one recipient is not valid."


class TooManyRecipients(GraphError):
    code = "ErrorTooManyRecipients"  # fidelity: chosen
    default_message = "The message has more than 500 recipients; the limit is 500 across to, cc and bcc."


class SendAsDenied(GraphError):
    status, code = 403, "ErrorSendAsDenied"
    default_message = (
        "The user account which was used to submit this request does not have the right to send mail on behalf "
        "of the specified sending account."
    )


class InvalidPropertyUpdateSentMessage(GraphError):
    code = "ErrorInvalidPropertyUpdateSentMessage"
    default_message = "Update operation is invalid for property of a sent message."


class ReadOnlyProperty(GraphError):
    code = "ErrorInvalidPropertyRequest"  # fidelity: chosen

    def __init__(self, name: str) -> None:
        super().__init__(f"The property '{name}' is read-only and can't be updated.")


class FolderExists(GraphError):
    status, code = 409, "ErrorFolderExists"
    default_message = "A folder with the specified name already exists."


class InvalidInternetMessageHeader(GraphError):
    code = "InvalidInternetMessageHeader"  # fidelity: chosen

    def __init__(self, name: str) -> None:
        super().__init__(f"The internet message header name '{name}' should start with 'x-' or 'X-'.")


# ---------------------------------------------------------------- query options ($filter, $orderby, $search, ...)


class ODataQueryError(GraphError):
    """Base of every query-option error: 400 with code BadRequest unless a subclass names another code."""

    status, code = 400, "BadRequest"


class ParseUriError(ODataQueryError):
    """Exchange's request broker refusing a query it cannot parse or bind; the texts are ODataLib's."""

    code = "RequestBroker--ParseUri"

    @classmethod
    def syntax(cls, pos: int, text: str) -> ParseUriError:
        return cls(f"Syntax error at position {pos} in '{text}'.")

    @classmethod
    def invalid_character(cls, char: str, pos: int, text: str) -> ParseUriError:
        return cls(f"Syntax error: character '{char}' is not valid at position {pos} in '{text}'.")

    @classmethod
    def expression_expected(cls, pos: int, text: str) -> ParseUriError:
        return cls(f"Expression expected at position {pos} in '{text}'.")

    @classmethod
    def close_paren_or_operator(cls, pos: int, text: str) -> ParseUriError:
        return cls(f"')' or operator expected at position {pos} in '{text}'.")

    @classmethod
    def close_paren_or_comma(cls, pos: int, text: str) -> ParseUriError:
        return cls(f"')' or ',' expected at position {pos} in '{text}'.")

    @classmethod
    def unterminated(cls, pos: int, text: str) -> ParseUriError:
        return cls(f"There is an unterminated string literal at position {pos} in '{text}'.")

    @classmethod
    def too_deep(cls) -> ParseUriError:
        return cls("Recursion depth exceeded allowed limit.")


class InvalidUrlQueryFilter(ODataQueryError):
    """A $filter that parses but that Exchange cannot translate (endswith, unsupported nodes)."""

    code = "ErrorInvalidUrlQueryFilter"
    default_message = "The query filter contains one or more invalid nodes."


class InefficientFilter(ODataQueryError):
    """$orderby properties not leading the $filter in the same order."""

    code = "InefficientFilter"
    default_message = "The restriction or sort order is too complex for this operation."


class SearchWithFilter(ODataQueryError):
    code = "SearchWithFilter"
    default_message = "The query parameter '$filter' is not supported with '$search'."


class SearchWithOrderBy(ODataQueryError):
    code = "SearchWithOrderBy"
    default_message = "The query parameter '$orderBy' is not supported with '$search'."


class InvalidQueryOptionValue(ODataQueryError):
    """A $top or $skip that is not an integer in range."""


# ---------------------------------------------------------------- attachments and upload sessions


class AbstractAttachment(GraphError):
    """An attachment without `@odata.type`: the abstract type cannot be made."""

    status, code = 400, "RequestBodyRead"  # fidelity: chosen (Outlook REST answered 422 with this text)
    default_message = (
        "Cannot process input of abstract type 'Microsoft.OutlookServices.Attachment'; give the attachment's "
        "'@odata.type' (#microsoft.graph.fileAttachment, #microsoft.graph.itemAttachment or "
        "#microsoft.graph.referenceAttachment)."
    )


class UnsupportedItemType(GraphError):
    code = "ErrorInvalidParameter"  # fidelity: chosen (the emulator has mail only, no events or contacts)

    def __init__(self, odata_type: str) -> None:
        super().__init__(
            f"The item of an itemAttachment must be a '#microsoft.graph.message' in the emulator; got '{odata_type}'."
        )


class AttachmentTooLarge(GraphError):
    status, code = 413, "RequestEntityTooLarge"  # fidelity: chosen (Graph answers 413, as for any large body)
    default_message = (
        "The attachment is too large to add in one request: attachments of 3 MB or more are added through an "
        "upload session (attachments/createUploadSession)."
    )


class AttachmentBelowMinimumSize(GraphError):
    status, code = 400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"  # fidelity: chosen (the status)
    default_message = (
        "Attachment size should not be less than the minimum size for an upload session (2 MB); add a smaller "
        "attachment with POST .../attachments."
    )


class MessageSizeExceeded(GraphError):
    code = "ErrorMessageSizeExceeded"
    default_message = "The message exceeds the maximum supported size."


class UploadSessionNotFound(GraphError):
    """An upload URL that names no live session: unknown, expired, cancelled, finished or with a wrong token."""

    status, code = 404, "ErrorItemNotFound"  # fidelity: chosen
    default_message = "The upload session was not found; it may have expired, been cancelled or completed."


class InvalidContentRange(GraphError):
    """A chunk out of order, overlapping, past the end, or with a Content-Range that does not match its body."""

    status, code = 400, "ErrorInvalidContentRange"  # fidelity: chosen


class UnsupportedQueryOption(ODataQueryError):
    """A query parameter the route does not take: refused, never ignored."""

    def __init__(self, name: str, allowed: tuple[str, ...]) -> None:
        takes = ", ".join(allowed) if allowed else "no query parameters"
        super().__init__(f"The query parameter '{name}' is not supported here; this request takes {takes}.")


# ---------------------------------------------------------------- composing: MIME, drafts, replies


class MimeContentInvalidBase64(GraphError):
    code = "ErrorMimeContentInvalidBase64String"
    default_message = "Invalid base64 string for MIME content."


class MimeContentInvalid(GraphError):
    code = "ErrorMimeContentInvalid"  # fidelity: chosen


class UnknownActionParameter(GraphError):
    """A body property an action does not take (ODataLib's text)."""

    code = "RequestBodyRead"

    def __init__(self, name: str, action: str) -> None:
        super().__init__(
            f"The parameter '{name}' in the request payload is not a valid parameter for the operation '{action}'."
        )


class NotADraft(GraphError):
    code = "ErrorInvalidOperation"  # fidelity: chosen
    default_message = "Only a draft can be sent; this message has been sent already."


class CommentAndMessageBody(GraphError):
    code = "ErrorInvalidParameter"  # fidelity: chosen (the docs give the 400, not its code)
    default_message = "Specify either 'comment' or the 'body' property of the 'message' parameter, not both."


class ForwardRecipients(GraphError):
    code = "ErrorInvalidParameter"  # fidelity: chosen (the docs give the 400, not its code)
    default_message = (
        "Specify the recipients either in 'toRecipients' or in the 'toRecipients' property of the 'message' "
        "parameter, exactly one of them."
    )


# ---------------------------------------------------------------- directory objects (/users): Entra ID's codes


class AuthorizationRequestDenied(GraphError):
    status, code = 403, "Authorization_RequestDenied"
    default_message = "Insufficient privileges to complete the operation."


class ResourceNotFound(GraphError):
    """A directory object that does not exist (`/users/{id | userPrincipalName}`)."""

    status, code = 404, "Request_ResourceNotFound"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Resource '{key}' does not exist or one of its queried reference-property objects are not present."
        )


class DirectoryBadRequest(GraphError):
    code = "Request_BadRequest"


class UnsupportedQuery(GraphError):
    code = "Request_UnsupportedQuery"


class CountNotSupported(DirectoryBadRequest):
    """`/users/$count` without `ConsistencyLevel: eventual`."""

    default_message = "$count is not currently supported."


class SearchNeedsConsistencyLevel(UnsupportedQuery):
    default_message = (
        "Request with $search query parameter only works through MSGraph with a special request header: "
        "'ConsistencyLevel: eventual'"
    )


class ExpiredPageToken(GraphError):
    code = "Directory_ExpiredPageToken"  # fidelity: chosen (also for a token the emulator did not make)
    default_message = "The specified page token value has expired and can no longer be included in your request."


class SelectParseFailed(GraphError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Parsing OData Select and Expand failed: Could not find a property named '{name}' on type "
            "'microsoft.graph.user'."
        )


# ---------------------------------------------------------------- JSON batching ($batch)


class FailedDependency(GraphError):
    """An inner request of a batch not run because a request it depends on failed."""

    status, code = 424, "FailedDependency"  # fidelity: chosen (Graph documents the status, not the body)

    def __init__(self, dependency: str) -> None:
        super().__init__(f"The request was not run: the request '{dependency}' it depends on failed.")


# ---------------------------------------------------------------- message delta


class ChangeTrackingNotSupported(GraphError):
    """Delta on a collection Graph tracks no changes for (`/users/{u}/messages/delta`)."""

    default_message = "Unsupported request: Change tracking is not supported against 'microsoft.graph.message'."


class InvalidUrlQuery(ODataQueryError):
    """A query option delta on messages does not take, or takes only in one form."""

    code = "ErrorInvalidUrlQuery"


class BadSyncToken(GraphError):
    """A $skiptoken or $deltatoken this service did not issue for the folder asked about."""  # fidelity: chosen

    def __init__(self, detail: str) -> None:
        super().__init__(f"Badly formed token: {detail}")


class SyncStateNotFound(GraphError):
    """A state token the service can no longer answer: the client starts again without a token."""

    status, code = 410, "SyncStateNotFound"

    def __init__(self, generation: int, highest: int) -> None:
        super().__init__(f"The sync state generation is not found; generation={generation};[highest={highest}].")


class SyncStateInvalid(GraphError):
    """A state token used with another id type than its round began with."""  # fidelity: chosen

    status, code = 410, "SyncStateInvalid"


# ---------------------------------------------------------------- throttling


class TooManyRequests(GraphError):
    """Outlook's throttling of an app on a mailbox (requests or upload bytes in a window), with Retry-After."""

    status, code = 429, "TooManyRequests"
    default_message = "Please retry again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})

    def body(self, *, request_id: str, client_request_id: str, now: datetime) -> dict[str, Any]:
        return {
            "error": {"code": self.code, "message": self.message, "innerError": throttle_inner_error(request_id, now)}
        }


def throttle_inner_error(request_id: str, now: datetime) -> dict[str, str]:
    """The innerError of Graph's generic 429 (graph-mail.md section 4)."""
    return {
        "code": "429",
        "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "message": "Please retry after",
        "request-id": request_id,
        "status": "429",
    }


class MailboxConcurrency(GraphError):
    """Exchange's answer over 4 requests at once; captured without an innerError."""

    status, code = 429, "ApplicationThrottled"
    default_message = "Application is over its MailboxConcurrency limit."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})

    def body(self, *, request_id: str, client_request_id: str, now: datetime) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}
