"""Helpers for token-endpoint tests: posting a client-credentials form and reading Entra's answers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from m365_mock.identity.keys import b64url, new_rsa_key, private_key_pem, self_signed_certificate
from m365_mock.state.directory import Application, Certificate

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BASE = "https://emu.test:8443"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def post_token(client, tenant: str, *, version: int = 2, headers: dict | None = None, **form: Any):
    path = f"/{tenant}/oauth2/v2.0/token" if version == 2 else f"/{tenant}/oauth2/token"
    return client.post(path, data={k: v for k, v in form.items() if v is not None}, base_url=BASE, headers=headers)


def secret_form(app: Application, **overrides: Any) -> dict[str, Any]:
    form = {
        "client_id": app.app_id,
        "client_secret": app.secrets[0].value,
        "grant_type": "client_credentials",
        "scope": GRAPH_SCOPE,
    }
    form.update(overrides)
    return form


def assert_aadsts(response, status: int, error: str, code: int, text: str | None = None) -> dict[str, Any]:
    """The response is Entra's error body for AADSTS`code`, with `text` in its description."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    if text is not None:
        assert text in body["error_description"]
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert f"Correlation ID: {body['correlation_id']}" in body["error_description"]
    assert f"Timestamp: {body['timestamp']}" in body["error_description"]
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert response.headers["request-id"] == body["trace_id"]
    return body


def add_certificate(app: Application) -> tuple[bytes, Certificate]:
    """Register a fresh self-signed certificate on `app`; returns its private key PEM and the credential."""
    key = new_rsa_key()
    cert = Certificate(key_id=str(uuid.uuid4()), certificate=self_signed_certificate(key, "daemon"))
    app.certificates.append(cert)
    return private_key_pem(key), cert


def make_assertion(
    key_pem: bytes,
    cert: Certificate,
    *,
    client_id: str,
    audience: str,
    algorithm: str = "RS256",
    padded: bool = True,
    now: float | None = None,
    lifetime: float = 600.0,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A client assertion as MSAL builds one: RS256 + padded `x5t`, or PS256 + `x5t#S256`; float times."""
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "iat": now + 0.25,
        "exp": now + lifetime + 0.61,
    }
    payload.update(claims or {})
    if header is None:
        if algorithm == "PS256":
            header = {"x5t#S256": b64url(cert.sha256)}
        else:
            thumb = b64url(cert.sha1)
            header = {"x5t": thumb + "=" * (-len(thumb) % 4) if padded else thumb}
    return jwt.encode(payload, key_pem, algorithm=algorithm, headers=header)


def decode_unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})
