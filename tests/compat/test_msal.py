"""MSAL Python `ConfidentialClientApplication` against the served emulator, with nothing changed but the
authority, `instance_discovery=False` and the CA trust (REQUESTS_CA_BUNDLE)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import msal
import pytest
from msal.oauth2cli.assertion import JwtAssertionCreator

from m365_mock.identity.keys import b64url_decode
from m365_mock.tools.process import RunningEmulator

if TYPE_CHECKING:
    from .conftest import CertApp, CertificateCredential, TokenChecker

pytestmark = pytest.mark.compat

GRAPH_SCOPE = "https://graph.microsoft.com/.default"

Trust = Callable[[RunningEmulator], Path]


def confidential_app(authority: str, client_id: str, credential: Any) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=authority, instance_discovery=False
    )


@pytest.fixture
def sent_assertions(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Headers and claims of every client assertion MSAL signs (a pass-through spy on its assertion creator)."""
    seen: list[dict[str, Any]] = []
    real = JwtAssertionCreator.create_normal_assertion

    def spy(self: JwtAssertionCreator, *args: Any, **kwargs: Any) -> bytes:
        assertion = real(self, *args, **kwargs)
        text = assertion.decode("ascii")
        seen.append(
            {"header": jwt.get_unverified_header(text), "claims": jwt.decode(text, options={"verify_signature": False})}
        )
        return assertion

    monkeypatch.setattr(JwtAssertionCreator, "create_normal_assertion", spy)
    return seen


@pytest.mark.parametrize("tenant_form", ["guid", "domain"])
def test_client_secret_token(served: RunningEmulator, trust: Trust, tokens: TokenChecker, tenant_form: str) -> None:
    trust(served)
    tenant_id = served.tenant["id"]
    segment = tenant_id if tenant_form == "guid" else "contoso.onmicrosoft.com"
    assert segment in (tenant_id, *served.tenant["domains"])
    app = confidential_app(f"{served.base_url}/{segment}", served.app["app_id"], served.app["client_secret"])

    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    assert result["token_source"] == "identity_provider"
    tokens.check(served, result["access_token"], tenant_id=tenant_id, app_id=served.app["app_id"], appidacr="1")


def test_second_call_is_served_from_cache(served: RunningEmulator, trust: Trust) -> None:
    trust(served)
    app = confidential_app(served.tenant["authority"], served.app["app_id"], served.app["client_secret"])

    first = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    second = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert first.get("token_source") == "identity_provider", first
    assert second.get("token_source") == "cache", second
    assert second["access_token"] == first["access_token"]


def test_wrong_secret_is_invalid_client(served: RunningEmulator, trust: Trust) -> None:
    trust(served)
    app = confidential_app(served.tenant["authority"], served.app["app_id"], "not-the-secret-8Q~x")

    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "access_token" not in result
    assert result["error"] == "invalid_client", result
    assert 7000215 in result["error_codes"]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert served.app["app_id"] in result["error_description"]


def test_certificate_by_sha1_thumbprint_sends_rs256(
    cert_app: CertApp, trust: Trust, tokens: TokenChecker, sent_assertions: list[dict[str, Any]]
) -> None:
    trust(cert_app.emulator)
    cert = cert_app.certificate
    app = confidential_app(
        cert_app.emulator.tenant["authority"],
        cert_app.app_id,
        {"private_key": cert.key_pem, "thumbprint": cert.sha1_hex},
    )

    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "access_token" in result, result
    [sent] = sent_assertions
    assert sent["header"]["alg"] == "RS256"
    assert b64url_decode(sent["header"]["x5t"]).hex() == cert.sha1_hex
    assert "x5t#S256" not in sent["header"]
    assert sent["claims"]["aud"] == f"{cert_app.emulator.tenant['authority']}/oauth2/v2.0/token"
    tokens.check(
        cert_app.emulator, result["access_token"], tenant_id=cert_app.tenant_id, app_id=cert_app.app_id, appidacr="2"
    )


def test_certificate_by_public_certificate_sends_ps256(
    cert_app: CertApp, trust: Trust, tokens: TokenChecker, sent_assertions: list[dict[str, Any]]
) -> None:
    trust(cert_app.emulator)
    cert = cert_app.certificate
    app = confidential_app(
        f"{cert_app.emulator.base_url}/fabrikam.onmicrosoft.com",
        cert_app.app_id,
        {"private_key": cert.key_pem, "public_certificate": cert.cert_pem},
    )

    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "access_token" in result, result
    [sent] = sent_assertions
    assert sent["header"]["alg"] == "PS256"
    assert b64url_decode(sent["header"]["x5t#S256"]) == cert.sha256
    assert "x5t" not in sent["header"]
    assert len(sent["header"]["x5c"]) == 1
    tokens.check(
        cert_app.emulator, result["access_token"], tenant_id=cert_app.tenant_id, app_id=cert_app.app_id, appidacr="2"
    )


def test_client_secret_on_certificate_app(cert_app: CertApp, trust: Trust, tokens: TokenChecker) -> None:
    trust(cert_app.emulator)
    app = confidential_app(cert_app.emulator.tenant["authority"], cert_app.app_id, cert_app.secret)

    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "access_token" in result, result
    tokens.check(
        cert_app.emulator, result["access_token"], tenant_id=cert_app.tenant_id, app_id=cert_app.app_id, appidacr="1"
    )


def test_unregistered_certificate_is_invalid_client(
    cert_app: CertApp, trust: Trust, stranger_certificate: CertificateCredential
) -> None:
    trust(cert_app.emulator)
    app = confidential_app(
        cert_app.emulator.tenant["authority"],
        cert_app.app_id,
        {"private_key": stranger_certificate.key_pem, "thumbprint": stranger_certificate.sha1_hex},
    )

    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "access_token" not in result
    assert result["error"] == "invalid_client", result
    assert 700027 in result["error_codes"]
    assert stranger_certificate.sha1_hex.upper() in result["error_description"]
