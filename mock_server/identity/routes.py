"""Entra ID routes: thin handlers that parse the request, ask the directory, and serialize the answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from flask import Blueprint, Response, request
from werkzeug.wrappers import Request as WerkzeugRequest

from m365_mock import faultpoint
from m365_mock.emulator import Emulator
from m365_mock.identity import errors
from m365_mock.identity.assertions import verify_client_assertion
from m365_mock.identity.tokens import (
    APPIDACR_CERTIFICATE,
    APPIDACR_SECRET,
    RESERVED_SCOPES,
    IssuedToken,
    Resource,
    resolve_resource,
    sts_issuer,
)
from m365_mock.state.directory import Application, Tenant
from m365_mock.state.throttling import Throttled
from m365_mock.web import (
    TOKEN_CLIENT,
    TOKEN_TENANT,
    current_emulator,
    current_request,
    json_response,
    origin_of,
    request_origin,
)

identity = Blueprint("identity", __name__)

MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations", "consumers"})
TOKEN_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "x-ms-ests-server": "m365-mock"}
DISCOVERY_HEADERS = {"Cache-Control": "max-age=86400, private", "Access-Control-Allow-Origin": "*"}


def _host_without_port(http: WerkzeugRequest) -> str:
    """The request's host name as it appears in a URL, port dropped (`[::1]` keeps its brackets)."""
    host = http.host.lower()
    return host if host.endswith("]") or ":" not in host else host.rsplit(":", 1)[0]


def _graph_aliases(http: WerkzeugRequest) -> frozenset[str]:
    """The emulator's own origins, with and without port: it serves Graph there."""
    scheme = http.scheme
    return frozenset({f"{scheme}://{http.host.lower()}", f"{scheme}://{_host_without_port(http)}"})


def _discovery_tenant(segment: str) -> Tenant:
    tenant = current_emulator().directory.tenant(segment)
    if tenant is None:
        raise errors.TenantNotFoundForDiscovery(tenant=segment)
    return tenant


# ---------------------------------------------------------------- token endpoint


@dataclass
class TokenRequest:
    """One call of a token endpoint: where it came in and what the form said."""

    http: WerkzeugRequest
    emulator: Emulator
    tenant: Tenant
    tenant_segment: str
    form: dict[str, str]
    version: int
    basic_client_id: str | None = None
    basic_secret: str | None = None

    @property
    def endpoint_url(self) -> str:
        """The token endpoint as called: what a client assertion's `aud` must be."""
        return f"{origin_of(self.http)}{self.http.path}"

    def param(self, name: str) -> str | None:
        value = self.form.get(name)
        return value if value not in (None, "") else None

    def require(self, name: str) -> str:
        value = self.param(name)
        if value is None:
            raise errors.MissingParameter(name=name)
        return value


def _resolve(identifier: str, http: WerkzeugRequest) -> Resource | None:
    """Graph by URL or app id, else the emulator's own origins (computed only when needed)."""
    return resolve_resource(identifier) or resolve_resource(identifier, _graph_aliases(http))


def _requested_resource(req: TokenRequest) -> Resource:
    """The resource of a v2 `scope` (`<resource>/.default`) or a v1 `resource` parameter."""
    if req.version == 1:
        identifier = req.require("resource")
        resource = _resolve(identifier, req.http)
        if resource is None:
            raise errors.ResourceNotFound(resource=identifier, tenant=req.tenant_segment)
        return resource
    if req.param("resource") is not None:
        raise errors.ResourceParameterNotSupported()
    scopes = [s for s in req.require("scope").split() if s.lower() not in RESERVED_SCOPES]
    if not scopes:
        raise errors.InvalidScope(scope=req.require("scope"))
    resources = []
    for scope in scopes:
        if not scope.lower().endswith("/.default"):
            raise errors.ScopeWithoutDefault(scope=scope)
        identifier = scope[: -len("/.default")]
        if not identifier:
            raise errors.InvalidScope(scope=scope)
        resources.append(identifier.rstrip("/").lower())
    if len(set(resources)) > 1:
        raise errors.InvalidScope(scope=" ".join(scopes))
    identifier = scopes[0][: -len("/.default")]
    resource = _resolve(identifier, req.http)
    if resource is None:
        raise errors.ResourceNotFound(resource=identifier, tenant=req.tenant_segment)
    return resource


def _authenticate_client(req: TokenRequest, app: Application) -> str:
    """Check the app's secret or certificate assertion; return `appidacr` (1 secret, 2 certificate)."""
    assertion = req.param("client_assertion")
    if assertion is not None:
        verify_client_assertion(
            assertion,
            req.param("client_assertion_type"),
            app=app,
            client_id=app.app_id,
            audience=req.endpoint_url,
            now=req.emulator.clock.now(),
        )
        return APPIDACR_CERTIFICATE
    secret = req.param("client_secret") or req.basic_secret
    if secret is None:
        raise errors.MissingClientCredential()
    now = req.emulator.clock.now()
    for candidate in app.secrets:
        if candidate.matches(secret):
            if not candidate.start.timestamp() <= now < candidate.end.timestamp():
                raise errors.ExpiredClientSecret(app_id=app.app_id)
            return APPIDACR_SECRET
    raise errors.InvalidClientSecret(app_id=app.app_id)


def client_credentials_grant(req: TokenRequest) -> tuple[IssuedToken, Resource]:
    """OAuth 2.0 client credentials: an app-only token for the app's consented application permissions."""
    client_id = req.param("client_id") or req.basic_client_id
    if client_id is None:
        raise errors.MissingParameter(name="client_id")
    if req.emulator.faults.at_gate:
        faultpoint.at_gate(req.emulator, req.http.environ, tenant=req.tenant, app_id=client_id, operation="token")
    resource = _requested_resource(req)
    app = req.tenant.application(client_id)
    if app is None:
        raise errors.ApplicationNotFound(app_id=client_id, tenant=req.tenant_segment)
    if not app.enabled:
        raise errors.ApplicationDisabled(app_id=app.app_id, name=app.display_name)
    try:
        req.emulator.throttle.admit_token_request(req.tenant.id, app.app_id)
    except Throttled as over:
        raise errors.TokenRequestsThrottled(app_id=app.app_id, limit=over.limit, retry_after=over.retry_after) from None
    appidacr = _authenticate_client(req, app)
    return req.emulator.issuer.issue(req.tenant, app, resource.audience, appidacr), resource


GRANT_HANDLERS: dict[str, Callable[[TokenRequest], tuple[IssuedToken, Resource]]] = {
    "client_credentials": client_credentials_grant,
}


def parse_form(body: bytes) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body; of a repeated name the first value counts.

    Names and values are percent-decoded only when they contain `%` or `+`: token requests are a handful of
    mostly plain fields, and this is the token endpoint's hot path.
    """
    form: dict[str, str] = {}
    for pair in body.decode("utf-8", "replace").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        form.setdefault(name, value)
    return form


def _is_form(environ: dict[str, Any]) -> bool:
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0]
    return mimetype.strip().lower() == "application/x-www-form-urlencoded"


def _token_request(emulator: Emulator, http: WerkzeugRequest, tenant_segment: str, version: int) -> TokenRequest:
    if tenant_segment.lower() in MULTI_TENANT_SEGMENTS:
        raise errors.GrantNotSupportedOnCommon()
    tenant = emulator.directory.tenant(tenant_segment)
    if tenant is None:
        raise errors.TenantNotFound(tenant=tenant_segment)
    environ = http.environ
    form = parse_form(http.get_data(cache=False)) if _is_form(environ) else {}
    req = TokenRequest(http, emulator, tenant, tenant_segment, form, version)
    auth = http.authorization if "HTTP_AUTHORIZATION" in environ else None
    if auth is not None and auth.type == "basic":
        req.basic_client_id = unquote_plus(auth.username or "") or None
        req.basic_secret = unquote_plus(auth.password or "") or None
    environ[TOKEN_TENANT] = tenant.id
    environ[TOKEN_CLIENT] = req.param("client_id") or req.basic_client_id
    return req


def token_answer(emulator: Emulator, http: WerkzeugRequest, tenant_segment: str, version: int) -> dict[str, Any]:
    """The JSON body a token endpoint (v2.0 or v1) returns for this request, or the AadstsError it raises."""
    req = _token_request(emulator, http, tenant_segment, version)
    grant_type = req.require("grant_type")
    handler = GRANT_HANDLERS.get(grant_type)
    if handler is None:
        raise errors.UnsupportedGrantType(grant_type=grant_type)
    token, resource = handler(req)
    if version == 2:
        return {
            "token_type": "Bearer",
            "expires_in": token.expires_in,
            "ext_expires_in": token.expires_in,
            "access_token": token.access_token,
        }
    return {
        "token_type": "Bearer",
        "expires_in": str(token.expires_in),
        "ext_expires_in": str(token.expires_in),
        "expires_on": str(token.expires_on),
        "not_before": str(token.not_before),
        "resource": resource.requested_as,
        "access_token": token.access_token,
    }


@identity.post("/<tenant_segment>/oauth2/v2.0/token")
def token_v2(tenant_segment: str) -> Response:
    body = token_answer(current_emulator(), current_request(), tenant_segment, 2)
    return json_response(body, headers=TOKEN_HEADERS)


@identity.post("/<tenant_segment>/oauth2/token")
def token_v1(tenant_segment: str) -> Response:
    body = token_answer(current_emulator(), current_request(), tenant_segment, 1)
    return json_response(body, headers=TOKEN_HEADERS)


# ---------------------------------------------------------------- discovery


def _tenant_for_metadata(segment: str) -> tuple[str, str | None]:
    """(issuer tenant id, region) for a discovery document; multi-tenant segments keep the placeholder."""
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        return "{tenantid}", None
    return _discovery_tenant(segment).id, "NA"


_V2_CLAIMS = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
]
_V1_CLAIMS = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "email",
    "given_name",
    "family_name",
    "nickname",
]


def _openid_configuration(tenant_segment: str, version: int) -> Response:
    """The v2.0 or v1 discovery document: this emulator's absolute URLs under the tenant segment as called."""
    tid, region = _tenant_for_metadata(tenant_segment)
    base = f"{request_origin()}/{tenant_segment}"
    v2 = "/v2.0" if version == 2 else ""
    doc: dict[str, Any] = {
        "token_endpoint": f"{base}/oauth2{v2}/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery{v2}/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    if version == 2:
        doc |= {
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{request_origin()}/{tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{request_origin()}/oidc/userinfo",
        }
    else:
        doc |= {
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": sts_issuer(tid),
            "microsoft_multi_refresh_token": True,
        }
    doc |= {
        "authorization_endpoint": f"{base}/oauth2{v2}/authorize",
        "device_authorization_endpoint": f"{base}/oauth2{v2}/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2{v2}/logout",
        "claims_supported": _V2_CLAIMS if version == 2 else _V1_CLAIMS,
    }
    if version == 1:
        doc |= {"check_session_iframe": f"{base}/oauth2/checksession", "userinfo_endpoint": f"{base}/openid/userinfo"}
    doc |= {
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": request.host,
        "rbac_url": "https://pas.windows.net",
    }
    return json_response(doc, headers=DISCOVERY_HEADERS)


@identity.get("/<tenant_segment>/v2.0/.well-known/openid-configuration")
def openid_configuration_v2(tenant_segment: str) -> Response:
    return _openid_configuration(tenant_segment, 2)


@identity.get("/<tenant_segment>/.well-known/openid-configuration")
def openid_configuration_v1(tenant_segment: str) -> Response:
    return _openid_configuration(tenant_segment, 1)


def _jwks(tenant_segment: str) -> Response:
    tid, _ = _tenant_for_metadata(tenant_segment)
    key = current_emulator().signing_key.jwk(issuer=f"{request_origin()}/{tid}/v2.0")
    return json_response({"keys": [key]}, headers=DISCOVERY_HEADERS)


@identity.get("/<tenant_segment>/discovery/v2.0/keys")
def jwks_v2(tenant_segment: str) -> Response:
    return _jwks(tenant_segment)


@identity.get("/<tenant_segment>/discovery/keys")
def jwks_v1(tenant_segment: str) -> Response:
    return _jwks(tenant_segment)


@identity.get("/common/discovery/instance")
def instance_discovery() -> Response:
    """Instance metadata for `instance_discovery=<url>` clients; only this emulator's host is a known instance."""
    authorize = request.args.get("authorization_endpoint") or f"{request_origin()}/common/oauth2/authorize"
    try:
        hostname = urlsplit(authorize).hostname
    except ValueError:
        raise errors.UnknownInstance() from None
    parts = urlsplit(authorize)
    if hostname != _host_without_port(request).strip("[]"):
        raise errors.UnknownInstance()
    tenant_segment = next((s for s in parts.path.split("/") if s), "common")
    host = request.host
    return json_response(
        {
            "tenant_discovery_endpoint": f"{request_origin()}/{tenant_segment}/v2.0/.well-known/openid-configuration",
            "api-version": request.args.get("api-version", "1.1"),
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        },
        headers=DISCOVERY_HEADERS,
    )
