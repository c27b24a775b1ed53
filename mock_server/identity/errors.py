"""The AADSTS error catalogue: one class per code, with the real status, `error` and message text.

Raise one of these anywhere under identity/; `render` turns it into Entra's JSON error body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

ASSERTION_DOC = "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials"


class AadstsError(Exception):
    """An Entra token-service error; subclasses fix the status, OAuth `error` and AADSTS code."""

    status: ClassVar[int] = 400
    error: ClassVar[str] = "invalid_request"
    code: ClassVar[int] = 0
    template: ClassVar[str] = ""

    def __init__(self, **fields: Any) -> None:
        self.description = self.template.format(**fields)
        self.headers: dict[str, str] = {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The description as Entra starts it: `AADSTS<code>: <text>` (no prefix for code-less errors)."""
        return f"AADSTS{self.code}: {self.description}" if self.code else self.description

    def body(self, *, trace_id: str, correlation_id: str, now: datetime | None = None) -> dict[str, Any]:
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"{self.message} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {stamp}"
            ),
            "error_codes": [self.code] if self.code else [],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        }
        if self.code:
            body["error_uri"] = f"https://login.microsoftonline.com/error?code={self.code}"
        return body


def render(exc: AadstsError, *, trace_id: str, correlation_id: str, now: datetime) -> tuple[dict[str, Any], int]:
    """Entra's JSON error body and status; `trace_id` is the request id, `correlation_id` the client's."""
    return exc.body(trace_id=trace_id, correlation_id=correlation_id, now=now), exc.status


class InvalidClientSecret(AadstsError):
    status, error, code = 401, "invalid_client", 7000215
    template = (
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        "not the client secret ID, for a secret added to app '{app_id}'."
    )


class ExpiredClientSecret(AadstsError):
    status, error, code = 401, "invalid_client", 7000222
    template = (
        "The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to create new keys "
        "for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added "
        "security: https://aka.ms/certCreds."
    )


class MissingClientCredential(AadstsError):
    status, error, code = 401, "invalid_client", 7000218
    template = "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."


class ApplicationNotFound(AadstsError):
    status, error, code = 400, "unauthorized_client", 700016
    template = (
        "Application with identifier '{app_id}' was not found in the directory '{tenant}'. This can happen if the "
        "application has not been installed by the administrator of the tenant or consented to by any user in the "
        "tenant. You may have sent your authentication request to the wrong tenant."
    )


class TenantNotFound(AadstsError):
    status, error, code = 400, "invalid_request", 90002
    template = (
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant."
    )


class TenantNotFoundForDiscovery(TenantNotFound):
    error = "invalid_tenant"


class ScopeWithoutDefault(AadstsError):
    status, error, code = 400, "invalid_scope", 1002012
    template = (
        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with "
        "/.default suffixed to the resource identifier (application ID URI)."
    )


class InvalidScope(AadstsError):
    status, error, code = 400, "invalid_scope", 70011
    template = "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."


class ResourceNotFound(AadstsError):
    status, error, code = 400, "invalid_resource", 500011
    template = (
        "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the "
        "application has not been installed by the administrator of the tenant or consented to by any user in the "
        "tenant. You might have sent your authentication request to the wrong tenant."
    )


class MissingParameter(AadstsError):
    status, error, code = 400, "invalid_request", 900144
    template = "The request body must contain the following parameter: '{name}'."


class ResourceParameterNotSupported(AadstsError):
    status, error, code = 400, "invalid_request", 901002
    template = "The 'resource' request parameter isn't supported."


class UnsupportedGrantType(AadstsError):
    status, error, code = 400, "unsupported_grant_type", 70003
    template = "The app requested an unsupported grant type '{grant_type}'."


class ApplicationDisabled(AadstsError):
    status, error, code = 400, "unauthorized_client", 7000112
    template = "Application '{app_id}'({name}) is disabled."


class GrantNotSupportedOnCommon(AadstsError):
    status, error, code = 400, "invalid_request", 9001023
    template = "The grant type isn't supported over the /common or /consumers endpoints."


class InvalidAssertion(AadstsError):
    status, error, code = 401, "invalid_client", 50027
    template = "Invalid JWT token. {reason}"


class AssertionTypeInvalid(AadstsError):
    status, error, code = 400, "invalid_request", 50027
    template = (
        "Invalid JWT token. The client_assertion_type '{value}' is not supported; use "
        "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'."
    )


class AssertionKeyNotFound(AadstsError):
    status, error, code = 401, "invalid_client", 700027
    template = (
        "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used "
        "by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see "
        "configured keys for app Id '{app_id}'.]"
    )


class AssertionBadSignature(AadstsError):
    status, error, code = 401, "invalid_client", 700027
    template = (
        "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the "
        "expected signature value., Thumbprint of key used by client: '{thumbprint}', Found key 'Start={start}, "
        "End={end}']"
    )


class AssertionOutsideTimeRange(AadstsError):
    status, error, code = 401, "invalid_client", 700024
    template = (
        "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {start}, "
        "expiry time of assertion {end}. Review the documentation at " + ASSERTION_DOC + " ."
    )


class AssertionAudienceMismatch(AadstsError):
    status, error, code = 401, "invalid_client", 700023
    template = "Client assertion audience claim does not match Realm issuer. Expected '{expected}', found '{found}'."


class AssertionSubjectMismatchesIssuer(AadstsError):
    status, error, code = 401, "invalid_client", 50048
    template = "Subject mismatches Issuer claim in the client assertion. Contact the tenant admin."


class AssertionClientIdMismatch(AadstsError):
    status, error, code = 401, "invalid_client", 700021
    template = "Client assertion application identifier doesn't match 'client_id' parameter."


class UnknownInstance(AadstsError):
    status, error, code = 400, "invalid_instance", 50049
    template = "Unknown or invalid instance."


class MethodNotAccepted(AadstsError):
    status, error, code = 405, "invalid_request", 900561
    template = "The endpoint only accepts {allowed} requests. Received a {method} request."


class RequestTooLarge(AadstsError):
    """Emulator-specific (no AADSTS code): the body is over the configured limit."""

    status, error, code = 413, "invalid_request", 0
    template = "The request body exceeds the emulator's limit of {limit} bytes."


class RefusedRequest(AadstsError):
    """Emulator-specific (no AADSTS code): the HTTP request was refused before it was read (408, 414, 431)."""

    error, code = "invalid_request", 0
    template = "{detail}"

    def __init__(self, *, status: int, detail: str) -> None:
        self.status = status  # type: ignore[misc]
        super().__init__(detail=detail)


class EndpointNotFound(AadstsError):
    """Emulator-specific (no AADSTS code): the real host answers unknown paths with an HTML page."""

    status, error, code = 404, "invalid_request", 0
    template = "The token service has no endpoint at {path}."


class MalformedRequest(AadstsError):
    """Emulator-specific (no AADSTS code): the HTTP request itself could not be read."""

    status, error, code = 400, "invalid_request", 0
    template = "{detail}"


class TokenRequestsThrottled(AadstsError):
    """The app asked for tokens too often (Entra answers client credentials with 429 and `Retry-After`)."""

    status, error, code = 429, "temporarily_unavailable", 0  # fidelity: chosen (the body is not documented)
    template = (
        "Too many token requests for app '{app_id}': the limit is {limit}. Retry after {retry_after} seconds, and "
        "keep the token until it nears its expiry instead of asking for a new one."
    )

    def __init__(self, *, app_id: str, limit: str, retry_after: int) -> None:
        super().__init__(app_id=app_id, limit=limit, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}
