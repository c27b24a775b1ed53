"""azure-identity credentials (sync, which wrap MSAL, and aio, which do not) against the served emulator.

Only `authority=<emulator>`, `disable_instance_discovery=True` and `connection_verify=<emulator CA>` are set; the
CA variables point at the system bundle alone, so the TLS trust comes from `connection_verify`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.identity.aio import CertificateCredential as AsyncCertificateCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

from m365_mock.tools.process import RunningEmulator

if TYPE_CHECKING:
    from .conftest import CertApp, TokenChecker

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("untrusted_env")]

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_LIFETIME = 3599


def options(running: RunningEmulator) -> dict[str, Any]:
    return {"authority": running.base_url, "disable_instance_discovery": True, "connection_verify": running.ca_file}


def assert_fresh(token: AccessToken, requested_at: float) -> None:
    """`expires_on` is the request time plus the emulator's 3599 s lifetime (a few seconds of slack)."""
    assert requested_at + TOKEN_LIFETIME - 5 <= token.expires_on <= time.time() + TOKEN_LIFETIME + 5


@pytest.fixture
def aiohttp_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(method, URL) of every request the aio credentials send (a pass-through spy on aiohttp's session)."""
    seen: list[tuple[str, str]] = []
    real = aiohttp.ClientSession._request

    async def spy(self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((method, str(url)))
        return await real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", spy)
    return seen


# ---------------------------------------------------------------- sync: ClientSecretCredential


@pytest.mark.parametrize("tenant_form", ["guid", "domain"])
def test_client_secret_credential(served: RunningEmulator, tokens: TokenChecker, tenant_form: str) -> None:
    tenant_id = served.tenant["id"]
    tenant = tenant_id if tenant_form == "guid" else "contoso.onmicrosoft.com"
    credential = ClientSecretCredential(tenant, served.app["app_id"], served.app["client_secret"], **options(served))

    requested_at = time.time()
    token = credential.get_token(GRAPH_SCOPE)

    assert_fresh(token, requested_at)
    claims = tokens.check(served, token.token, tenant_id=tenant_id, app_id=served.app["app_id"], appidacr="1")
    assert token.expires_on == pytest.approx(claims["exp"], abs=5)


def test_client_secret_credential_wrong_secret(served: RunningEmulator) -> None:
    credential = ClientSecretCredential(
        served.tenant["id"], served.app["app_id"], "not-the-secret-8Q~y", **options(served)
    )

    with pytest.raises(ClientAuthenticationError) as raised:
        credential.get_token(GRAPH_SCOPE)

    assert "AADSTS7000215" in raised.value.message
    assert "Invalid client secret provided" in raised.value.message


def test_without_connection_verify_the_emulator_is_untrusted(served: RunningEmulator) -> None:
    """The control for the tests above: with only the system CAs trusted, the TLS handshake fails."""
    credential = ClientSecretCredential(
        served.tenant["id"],
        served.app["app_id"],
        served.app["client_secret"],
        authority=served.base_url,
        disable_instance_discovery=True,
        retry_total=0,
    )

    with pytest.raises(ClientAuthenticationError) as raised:
        credential.get_token(GRAPH_SCOPE)

    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value) or "certificate verify failed" in str(raised.value)


# ---------------------------------------------------------------- sync: CertificateCredential


@pytest.mark.parametrize("form", ["certificate_path", "certificate_data"])
def test_certificate_credential(cert_app: CertApp, tokens: TokenChecker, tmp_path: Path, form: str) -> None:
    pem = cert_app.certificate.combined_pem
    if form == "certificate_path":
        path = tmp_path / "connector.pem"
        path.write_text(pem)
        source: dict[str, Any] = {"certificate_path": str(path)}
    else:
        source = {"certificate_data": pem.encode("ascii")}
    credential = CertificateCredential(cert_app.tenant_id, cert_app.app_id, **source, **options(cert_app.emulator))

    requested_at = time.time()
    token = credential.get_token(GRAPH_SCOPE)

    assert_fresh(token, requested_at)
    tokens.check(cert_app.emulator, token.token, tenant_id=cert_app.tenant_id, app_id=cert_app.app_id, appidacr="2")


def test_certificate_credential_with_chain(cert_app: CertApp, tokens: TokenChecker) -> None:
    """`send_certificate_chain=True` (subject name / issuer auth) adds `x5c` beside the SHA-1 `x5t`."""
    credential = CertificateCredential(
        cert_app.tenant_id,
        cert_app.app_id,
        certificate_data=cert_app.certificate.combined_pem.encode("ascii"),
        send_certificate_chain=True,
        **options(cert_app.emulator),
    )

    token = credential.get_token(GRAPH_SCOPE)

    tokens.check(cert_app.emulator, token.token, tenant_id=cert_app.tenant_id, app_id=cert_app.app_id, appidacr="2")


# ---------------------------------------------------------------- aio (no MSAL, no discovery request)


def test_async_client_secret_credential(
    served: RunningEmulator, tokens: TokenChecker, aiohttp_requests: list[tuple[str, str]]
) -> None:
    tenant_id = served.tenant["id"]

    async def acquire() -> AccessToken:
        async with AsyncClientSecretCredential(
            tenant_id, served.app["app_id"], served.app["client_secret"], **options(served)
        ) as credential:
            first = await credential.get_token(GRAPH_SCOPE)
            again = await credential.get_token(GRAPH_SCOPE)
            assert again.token == first.token
            return first

    requested_at = time.time()
    token = asyncio.run(acquire())

    assert aiohttp_requests == [("POST", f"{served.base_url}/{tenant_id}/oauth2/v2.0/token")]
    assert_fresh(token, requested_at)
    tokens.check(served, token.token, tenant_id=tenant_id, app_id=served.app["app_id"], appidacr="1")


def test_async_client_secret_credential_wrong_secret(served: RunningEmulator) -> None:
    async def acquire() -> AccessToken:
        async with AsyncClientSecretCredential(
            served.tenant["id"], served.app["app_id"], "not-the-secret-8Q~z", **options(served)
        ) as credential:
            return await credential.get_token(GRAPH_SCOPE)

    with pytest.raises(ClientAuthenticationError) as raised:
        asyncio.run(acquire())

    assert "AADSTS7000215" in raised.value.message


def test_async_certificate_credential(
    cert_app: CertApp, tokens: TokenChecker, aiohttp_requests: list[tuple[str, str]]
) -> None:
    """aio builds its own assertion: PS256 with `x5t#S256`, padded base64url segments, integer `nbf`/`exp`."""

    async def acquire() -> AccessToken:
        async with AsyncCertificateCredential(
            cert_app.tenant_id,
            cert_app.app_id,
            certificate_data=cert_app.certificate.combined_pem.encode("ascii"),
            **options(cert_app.emulator),
        ) as credential:
            return await credential.get_token(GRAPH_SCOPE)

    token = asyncio.run(acquire())

    assert aiohttp_requests == [("POST", f"{cert_app.emulator.base_url}/{cert_app.tenant_id}/oauth2/v2.0/token")]
    tokens.check(cert_app.emulator, token.token, tenant_id=cert_app.tenant_id, app_id=cert_app.app_id, appidacr="2")
