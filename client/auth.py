"""App-only tokens from the Entra ID v2 token endpoint (client credentials), by client secret or certificate."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from m365_mock.client.errors import AuthError, ConfigError
from m365_mock.client.settings import ClientSettings
from m365_mock.client.transport import Transport

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 600


def _b64url(data: bytes, *, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if pad else text.rstrip("=")


@dataclass(frozen=True)
class CertificateCredential:
    """A private key and the certificate registered on the app for it."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def load(cls, path: str, password: str | None = None) -> CertificateCredential:
        """Read one PEM file holding the private key and its certificate (chain certificates may follow)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read certificate file {path}: {exc.strerror or exc}") from None
        try:
            key = serialization.load_pem_private_key(data, password.encode() if password else None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} holds no usable private key: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"{path}: Entra ID certificate credentials need an RSA key")
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            certificates = []
        matching = [c for c in certificates if c.public_key() == key.public_key()]
        if not matching:
            raise ConfigError(f"{path} holds no certificate for its private key (put both in one PEM file)")
        return cls(key, matching[0])

    @property
    def sha1_thumbprint(self) -> str:
        """The hex SHA-1 thumbprint the Azure portal shows."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()

    def assertion(self, client_id: str, audience: str, algorithm: str, now: float) -> str:
        """The client assertion JWT: RS256 with `x5t` (as MSAL sends it) or PS256 with `x5t#S256`."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        if algorithm == "RS256":
            header = {"x5t": _b64url(hashlib.sha1(der).digest(), pad=True)}
        else:
            header = {"x5t#S256": _b64url(hashlib.sha256(der).digest())}
        issued = int(now)
        claims = {
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "nbf": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        return jwt.encode(claims, self.private_key, algorithm=algorithm, headers={"typ": "JWT", **header})


class TokenProvider:
    """Gets and caches the app-only access token for Graph; thread-safe.

    The token is renewed when fewer than `refresh_margin` seconds (default 300, at most half the lifetime)
    remain; `clock` gives "now" in seconds since the epoch (tests move it). A certificate credential is used
    when `settings.certificate_file` is set, else the client secret.
    """

    def __init__(
        self,
        settings: ClientSettings,
        session: requests.Session | None = None,
        *,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport or Transport(settings, session)
        self.refresh_margin = refresh_margin
        self.clock = clock
        self.expires_at = 0.0
        self.fetch_count = 0
        self._renew_at = 0.0
        self._token: str | None = None
        self._credential: CertificateCredential | None = None
        self._lock = threading.Lock()

    @property
    def credential_type(self) -> str:
        """`certificate` or `secret`: what the token request proves the app's identity with."""
        return "certificate" if self.settings.certificate_file else "secret"

    def token(self) -> str:
        """The cached access token, or a new one when none is cached or it is near its expiry."""
        with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still `token`, when given: another thread may have renewed)."""
        with self._lock:
            if token is None or token == self._token:
                self._token, self.expires_at, self._renew_at = None, 0.0, 0.0

    def claims(self) -> dict[str, Any]:
        """The current token's claims, decoded without verification (Graph tokens are opaque to clients)."""
        return jwt.decode(self.token(), options={"verify_signature": False})

    def _form(self) -> dict[str, str]:
        settings = self.settings
        form = {"client_id": settings.client_id, "grant_type": "client_credentials", "scope": settings.scope}
        if settings.certificate_file:
            if self._credential is None:
                self._credential = CertificateCredential.load(settings.certificate_file, settings.certificate_password)
            form["client_assertion_type"] = JWT_BEARER
            form["client_assertion"] = self._credential.assertion(
                settings.client_id, settings.token_endpoint, settings.assertion_algorithm, self.clock()
            )
        elif settings.client_secret:
            form["client_secret"] = settings.client_secret
        else:
            raise ConfigError("no credential: set a client secret or a certificate file")
        return form

    def _fetch(self) -> None:
        started = self.clock()
        try:
            response = self.transport.request(
                "POST", self.settings.token_endpoint, data=self._form(), retry_network_errors=True
            )
        except requests.RequestException as exc:
            raise AuthError(0, "network_error", f"cannot reach {self.settings.token_endpoint}: {exc}") from exc
        if response.status_code != 200:
            raise AuthError.from_response(response)
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3599))
        except (ValueError, KeyError, TypeError):
            raise AuthError(
                response.status_code, "invalid_response", "the token endpoint's answer has no token"
            ) from None
        self.fetch_count += 1
        self._token = token
        self.expires_at = started + lifetime
        self._renew_at = self.expires_at - min(self.refresh_margin, lifetime / 2)
