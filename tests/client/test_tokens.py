"""TokenProvider against a real emulator: caching, renewal, secrets, certificates, AADSTS errors, TLS trust."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes

from m365_mock.client import AuthError, ClientSettings, ConfigError, MailClient, TokenProvider
from m365_mock.client.auth import CertificateCredential
from tests.client.conftest import SUPPORT, Control, RecordingSession, make_certificate

pytestmark = pytest.mark.slow


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def graph_status(settings: ClientSettings, token: str) -> int:
    """What Graph answers to this token (without any client logic in between)."""
    response = requests.get(
        f"{settings.graph_url}/users/{SUPPORT}/mailFolders/inbox",
        headers={"Authorization": f"Bearer {token}"},
        verify=settings.ca_file,
        timeout=30,
    )
    return response.status_code


# ---------------------------------------------------------------- caching and renewal


def test_token_is_cached(settings: ClientSettings) -> None:
    session = RecordingSession()
    provider = TokenProvider(settings, session)
    first = provider.token()
    assert provider.token() == first and provider.fetch_count == 1
    with MailClient(settings, tokens=provider) as mail:
        mail.folders(SUPPORT)
        mail.folder(SUPPORT, "inbox")
    assert provider.fetch_count == 1
    assert len([r for r in session.sent if r.url.endswith("/oauth2/v2.0/token")]) == 1
    claims = claims_of(first)
    assert claims["appid"] == settings.client_id and claims["appidacr"] == "1"
    assert abs(provider.expires_at - claims["exp"]) < 5


def test_token_renewed_when_it_nears_expiry(settings: ClientSettings, control: Control) -> None:
    provider = TokenProvider(settings, clock=control.now)
    first = provider.token()
    lifetime = claims_of(first)["exp"] - control.now()
    control.advance(lifetime - 400)  # 400 s left: more than the 300 s margin
    assert provider.token() == first and provider.fetch_count == 1
    control.advance(150)  # 250 s left: renew
    second = provider.token()
    assert second != first and provider.fetch_count == 2
    assert claims_of(second)["exp"] > claims_of(first)["exp"]
    assert provider.expires_at > control.now() + 3000
    control.advance(300)  # the first token has now expired on the emulator's clock
    assert graph_status(settings, first) == 401
    assert graph_status(settings, second) == 200


def test_invalidate_forces_a_new_token(settings: ClientSettings) -> None:
    provider = TokenProvider(settings)
    first = provider.token()
    provider.invalidate("some other token")  # not the current one: kept
    assert provider.token() == first
    provider.invalidate()
    assert provider.expires_at == 0.0
    assert provider.token() != first and provider.fetch_count == 2


def test_expired_token_401_is_renewed_and_retried_once(settings: ClientSettings, control: Control) -> None:
    provider = TokenProvider(settings)  # the daemon's clock does not know the emulator moved on
    with MailClient(settings, tokens=provider) as mail:
        assert len(mail.folders(SUPPORT)) >= 9
        old = provider.token()
        control.advance(2 * 3600)
        assert graph_status(settings, old) == 401
        assert mail.folder(SUPPORT, "inbox")["totalItemCount"] == 13
    assert provider.fetch_count == 2 and provider.token() != old
    statuses = [r["status"] for r in control.log() if r["path"].endswith("/mailFolders/inbox")]
    assert statuses == [401, 401, 200]  # ours without the client, then the client's: rejected, renewed, granted


def test_token_is_thread_safe(settings: ClientSettings) -> None:
    provider = TokenProvider(settings)
    tokens: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        tokens.append(provider.token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 8 and len(set(tokens)) == 1 and provider.fetch_count == 1


# ---------------------------------------------------------------- secrets and AADSTS errors


def test_wrong_secret_is_aadsts_7000215(settings: ClientSettings) -> None:
    with pytest.raises(AuthError) as caught:
        TokenProvider(settings.merged(client_secret="wrong")).token()
    error = caught.value
    assert (error.status, error.error, error.code, error.codes) == (401, "invalid_client", 7000215, [7000215])
    assert error.description.startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID" in error.description and "Trace ID" not in error.message
    assert settings.client_id in error.message
    assert uuid.UUID(error.correlation_id) and uuid.UUID(error.trace_id)


def test_new_secret_works_then_expires(settings: ClientSettings, control: Control) -> None:
    secret = control("POST", control.app_path("/secrets"), {"expires_in_days": 1}, expect=201)["value"]
    fresh = settings.merged(client_secret=secret)
    assert claims_of(TokenProvider(fresh).token())["appid"] == settings.client_id
    control.advance(2 * 86400)
    with pytest.raises(AuthError) as caught:
        TokenProvider(fresh).token()
    assert (caught.value.status, caught.value.code) == (401, 7000222)
    assert "are expired" in caught.value.message


def test_unknown_tenant_and_app(settings: ClientSettings) -> None:
    with pytest.raises(AuthError) as caught:
        TokenProvider(settings.merged(tenant="nowhere.example")).token()
    assert (caught.value.status, caught.value.error, caught.value.code) == (400, "invalid_request", 90002)
    app_id = str(uuid.uuid4())
    with pytest.raises(AuthError) as caught:
        TokenProvider(settings.merged(client_id=app_id)).token()
    assert (caught.value.error, caught.value.code) == ("unauthorized_client", 700016)
    assert app_id in caught.value.message


def test_tenant_by_domain(settings: ClientSettings) -> None:
    provider = TokenProvider(settings.merged(tenant="contoso.onmicrosoft.com"))
    assert claims_of(provider.token())["tid"] == settings.tenant


def test_no_credential_is_a_config_error(settings: ClientSettings) -> None:
    bare = ClientSettings(settings.tenant, settings.client_id, login_url=settings.login_url, ca_file=settings.ca_file)
    with pytest.raises(ConfigError, match="no credential"):
        TokenProvider(bare).token()


# ---------------------------------------------------------------- certificates


@pytest.mark.parametrize("algorithm", ["PS256", "RS256"])
def test_certificate_credential(settings: ClientSettings, control: Control, tmp_path: Path, algorithm: str) -> None:
    pem_file, cert_pem, _ = make_certificate(tmp_path)
    control("POST", control.app_path("/certificates"), {"pem": cert_pem}, expect=201)
    cert_settings = settings.merged(certificate_file=str(pem_file), assertion_algorithm=algorithm)
    provider = TokenProvider(cert_settings)
    assert provider.credential_type == "certificate"
    claims = provider.claims()
    assert claims["appidacr"] == "2" and claims["appid"] == settings.client_id
    with MailClient(cert_settings, tokens=provider) as mail:
        assert mail.folder(SUPPORT, "inbox")["totalItemCount"] == 13


def test_assertion_shape(tmp_path: Path) -> None:
    pem_file, _, cert = make_certificate(tmp_path)
    credential = CertificateCredential.load(str(pem_file))
    audience = "https://login.microsoftonline.com/t/oauth2/v2.0/token"
    rs = credential.assertion("app", audience, "RS256", 1_700_000_000)
    header = jwt.get_unverified_header(rs)
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and header["x5t"].endswith("=")
    ps = credential.assertion("app", audience, "PS256", 1_700_000_000)
    assert jwt.get_unverified_header(ps)["alg"] == "PS256" and "x5t#S256" in jwt.get_unverified_header(ps)
    claims = jwt.decode(ps, cert.public_key(), algorithms=["PS256"], audience=audience, options={"verify_exp": False})
    assert claims["iss"] == claims["sub"] == "app" and claims["exp"] - claims["iat"] == 600
    assert credential.sha1_thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()


def test_encrypted_certificate_key(settings: ClientSettings, control: Control, tmp_path: Path) -> None:
    pem_file, cert_pem, _ = make_certificate(tmp_path, password=b"s3cret")
    control("POST", control.app_path("/certificates"), {"pem": cert_pem}, expect=201)
    good = settings.merged(certificate_file=str(pem_file), certificate_password="s3cret")
    assert TokenProvider(good).claims()["appidacr"] == "2"
    with pytest.raises(ConfigError, match="no usable private key"):
        TokenProvider(settings.merged(certificate_file=str(pem_file))).token()


def test_unregistered_certificate_is_aadsts_700027(settings: ClientSettings, tmp_path: Path, control: Control) -> None:
    pem_file, _, _ = make_certificate(tmp_path, "stranger")
    with pytest.raises(AuthError) as caught:
        TokenProvider(settings.merged(certificate_file=str(pem_file))).token()
    assert (caught.value.status, caught.value.error, caught.value.code) == (401, "invalid_client", 700027)


def test_certificate_file_problems(settings: ClientSettings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read certificate file"):
        TokenProvider(settings.merged(certificate_file=str(tmp_path / "missing.pem"))).token()
    pem_file, _, _ = make_certificate(tmp_path)
    key_only = tmp_path / "key-only.pem"
    key_only.write_text(pem_file.read_text().split("-----BEGIN CERTIFICATE-----")[0])
    with pytest.raises(ConfigError, match="no certificate for its private key"):
        TokenProvider(settings.merged(certificate_file=str(key_only))).token()


# ---------------------------------------------------------------- TLS trust


def test_requests_ca_bundle_cannot_override_the_ca_file(
    settings: ClientSettings, control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")  # lacks the emulator's CA
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    session = requests.Session()
    session.verify = settings.ca_file  # what MSAL does: silently overridden by the variable
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{settings.login_url}/_m365/health", timeout=10)
    with MailClient(settings, session=session) as mail:
        assert mail.folder(SUPPORT, "inbox")["totalItemCount"] == 13
    assert TokenProvider(settings, session).token()
