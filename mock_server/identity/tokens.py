"""App-only access tokens: issuing them as Entra does, and verifying them as Graph does."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import jwt

from m365_mock.clock import Clock
from m365_mock.identity.keys import SigningKey, b64url
from m365_mock.ids import random_bytes
from m365_mock.state.directory import GRAPH_APP_ID, GRAPH_RESOURCE, Application, Directory, Tenant

# Scopes OpenID Connect reserves; Entra tolerates them beside a `/.default` scope.
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
GRAPH_AUDIENCES = frozenset({GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID})
APPIDACR_SECRET = "1"
APPIDACR_CERTIFICATE = "2"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def sts_issuer(tenant_id: str) -> str:
    """The `iss` of a v1.0 access token, which is what Graph accepts."""
    return f"https://sts.windows.net/{tenant_id}/"


@dataclass(frozen=True)
class Resource:
    """A resource a token may be requested for; `audience` is what the token's `aud` will be."""

    audience: str
    requested_as: str


def resolve_resource(identifier: str, graph_aliases: frozenset[str] = frozenset()) -> Resource | None:
    """Map a resource identifier (App ID URI or app id GUID) to a known resource, or None.

    Graph is known by its URL and its app id. `graph_aliases` are extra URLs that stand for Graph: the
    emulator's own origins, since it serves Graph there (msgraph-sdk derives `https://<host>/.default`).
    """
    text = identifier.strip()
    key = text.rstrip("/").lower()
    if key == GRAPH_RESOURCE:
        return Resource(GRAPH_RESOURCE, text)
    if key == GRAPH_APP_ID:
        return Resource(GRAPH_APP_ID, text)
    if key in graph_aliases:
        return Resource(GRAPH_RESOURCE, text)
    return None


def looks_like_guid(text: str) -> bool:
    return bool(_GUID.match(text))


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    claims: dict[str, Any]
    expires_in: int

    @property
    def expires_on(self) -> int:
        return int(self.claims["exp"])

    @property
    def not_before(self) -> int:
        return int(self.claims["nbf"])


class TokenIssuer:
    """Signs app-only access tokens shaped like real Graph tokens (RS256, `kid` = `x5t`)."""

    def __init__(self, signing_key: SigningKey, clock: Clock, lifetime: int) -> None:
        self.signing_key = signing_key
        self.clock = clock
        self.lifetime = lifetime
        # The header never changes, so its segment is encoded once; PyJWT's RS256 makes the signature.
        header = {"typ": "JWT", "alg": "RS256", "x5t": signing_key.kid, "kid": signing_key.kid}
        self._header_segment = b64url(_compact_json(header)).encode("ascii")
        self._rs256 = jwt.get_algorithm_by_name("RS256")

    def issue(self, tenant: Tenant, app: Application, audience: str, appidacr: str) -> IssuedToken:
        now = int(self.clock.now())
        issuer = sts_issuer(tenant.id)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "aio": b64url(random_bytes(48)),
            "app_displayname": app.display_name,
            "appid": app.app_id,
            "appidacr": appidacr,
            "idp": issuer,
            "idtyp": "app",
            "oid": app.service_principal_id,
            "rh": "0." + b64url(random_bytes(40)) + ".",
            "sub": app.service_principal_id,
            "tid": tenant.id,
            "uti": b64url(random_bytes(16)),
            "ver": "1.0",
        }
        roles = app.granted_roles()
        if roles:
            claims["roles"] = roles
        return IssuedToken(self._sign(claims), claims, self.lifetime)

    def _sign(self, claims: dict[str, Any]) -> str:
        """The compact JWS `header.payload.signature` (RFC 7515 section 7.1)."""
        signing_input = self._header_segment + b"." + b64url(_compact_json(claims)).encode("ascii")
        signature = self._rs256.sign(signing_input, self.signing_key.private_key)
        return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def _compact_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class TokenRejected(Exception):
    """A bearer token Graph would refuse; `reason` is one of the class constants, `message` Graph's text."""

    EMPTY = "empty"
    MALFORMED = "malformed"
    SIGNATURE = "signature"
    AUDIENCE = "audience"
    EXPIRED = "expired"
    TENANT = "tenant"
    CLAIMS = "claims"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class VerifiedToken:
    tenant: Tenant
    app_id: str
    roles: tuple[str, ...]
    claims: dict[str, Any]


SIGNATURE_CACHE_SIZE = 10_000
MALFORMED_MESSAGE = "CompactToken parsing failed with error code: 80049217"
INVALID_AUDIENCE = "Access token validation failure. Invalid audience."
INVALID_ISSUER = "Access token validation failure. Invalid issuer."
VALIDATION_FAILURE = "Access token validation failure."
_INT64 = 2**63  # .NET reads the NumericDate claims (exp, nbf) as Int64 seconds


def _is_numeric_date(value: Any) -> bool:
    """A JSON number a NumericDate claim can hold: not a bool, finite, within Int64."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and -_INT64 <= value < _INT64


def _check_claim_types(claims: dict[str, Any]) -> None:
    """Refuse, as Graph's 401s, a signed token whose claims have types Entra never issues.

    Checked once per token, before its claims are remembered, in the order `verify` checks their values; the
    audience, which never changes, is checked here too. What `verify` then reads has a known type. A JSON null
    `roles` or `appid` counts as absent.
    """
    audience = claims.get("aud")
    if not isinstance(audience, str) or audience not in GRAPH_AUDIENCES:  # fidelity: chosen (a list is refused)
        raise TokenRejected(TokenRejected.AUDIENCE, INVALID_AUDIENCE)
    if not _is_numeric_date(claims.get("exp")) or ("nbf" in claims and not _is_numeric_date(claims["nbf"])):
        raise TokenRejected(TokenRejected.MALFORMED, MALFORMED_MESSAGE)
    if not isinstance(claims.get("tid", ""), str) or not isinstance(claims.get("iss", ""), str):
        raise TokenRejected(TokenRejected.TENANT, INVALID_ISSUER)
    roles, app_id = claims.get("roles"), claims.get("appid")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(role, str) for role in roles)):
        raise TokenRejected(TokenRejected.CLAIMS, VALIDATION_FAILURE)
    if app_id is not None and not isinstance(app_id, str):
        raise TokenRejected(TokenRejected.CLAIMS, VALIDATION_FAILURE)


class TokenVerifier:
    """Checks a bearer token the way Graph does: signature, audience, lifetime, tenant."""

    def __init__(self, signing_key: SigningKey, clock: Clock, directory: Directory) -> None:
        self.public_key = signing_key.private_key.public_key()
        self.kid = signing_key.kid
        self.clock = clock
        self.directory = directory
        self._signed_claims: dict[str, dict[str, Any]] = {}

    def verify(self, token: str | None) -> VerifiedToken:
        """The token's tenant, app and roles, or TokenRejected with Graph's 401 message.

        The signature, audience and claim-type checks are remembered per token string (only tokens that pass
        them are); lifetime and tenant are checked on every call, so a cached token still expires and still
        fails for a removed tenant.
        """
        if not token or not token.strip():
            raise TokenRejected(TokenRejected.EMPTY, "Access token is empty.")
        claims = self._signed_claims.get(token)
        if claims is None:
            claims = self._check_signature(token)
            _check_claim_types(claims)
            if len(self._signed_claims) >= SIGNATURE_CACHE_SIZE:
                self._signed_claims.clear()
            self._signed_claims[token] = claims
        now = self.clock.now()
        if now >= claims["exp"]:
            raise TokenRejected(TokenRejected.EXPIRED, "Lifetime validation failed, the token is expired.")
        if now < claims.get("nbf", 0):
            raise TokenRejected(TokenRejected.EXPIRED, "Access token has expired or is not yet valid.")
        tenant = self.directory.tenant(claims.get("tid", ""))
        if tenant is None or claims.get("iss") != sts_issuer(tenant.id):
            raise TokenRejected(TokenRejected.TENANT, INVALID_ISSUER)
        return VerifiedToken(tenant, claims.get("appid") or "", tuple(claims.get("roles") or ()), claims)

    def _check_signature(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected(TokenRejected.MALFORMED, MALFORMED_MESSAGE) from None
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            raise TokenRejected(TokenRejected.SIGNATURE, VALIDATION_FAILURE)
        try:
            return jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise TokenRejected(TokenRejected.SIGNATURE, VALIDATION_FAILURE) from None
        except jwt.PyJWTError:
            raise TokenRejected(TokenRejected.MALFORMED, MALFORMED_MESSAGE) from None
