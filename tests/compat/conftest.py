"""Fixtures for driving the real Microsoft SDKs against served emulators over HTTPS, loopback only.

Two emulators serve these tests: the session-wide `served` one on the demo tenant (client secret only) and
`cert_served`, started here on a tenant file whose app also has a self-signed certificate credential.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from m365_mock.identity import keys
from m365_mock.tools.process import RunningEmulator, start_emulator

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
MAIL_ROLES = ["Mail.ReadWrite", "Mail.Send"]
TOKEN_LIFETIME = 3599
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CERT_TENANT_DOMAIN = "fabrikam.onmicrosoft.com"


# ---------------------------------------------------------------- no network but loopback


def _loopback_host(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and report) any name lookup or connection that is not loopback, e.g. to login.microsoftonline.com."""
    blocked: list[str] = []
    real_getaddrinfo, real_connect, real_connect_ex = (
        socket.getaddrinfo,
        socket.socket.connect,
        socket.socket.connect_ex,
    )

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback_host(host):
            blocked.append(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"compat tests are offline: refused to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback_host(address[0]):
            blocked.append(f"connect {address}")
            raise ConnectionRefusedError(f"compat tests are offline: refused to connect to {address!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield blocked
    assert not blocked, f"an SDK tried to leave the machine: {blocked}"


# ---------------------------------------------------------------- TLS trust


@pytest.fixture
def untrusted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CA variables at the system bundle only, so trusting the emulator needs `connection_verify`."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        if SYSTEM_BUNDLE.exists():
            monkeypatch.setenv(name, str(SYSTEM_BUNDLE))
        else:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[RunningEmulator], Path]:
    """`trust(emulator)`: make REQUESTS_CA_BUNDLE and SSL_CERT_FILE a bundle of the system CAs plus the emulator's.

    requests lets REQUESTS_CA_BUNDLE override MSAL's session-level `verify`, so the variable is the way in.
    """

    def apply(running: RunningEmulator) -> Path:
        assert running.ca_file, "the emulator is expected to serve HTTPS"
        system = SYSTEM_BUNDLE.read_text() if SYSTEM_BUNDLE.exists() else ""
        bundle = tmp_path / "ca-bundle.pem"
        bundle.write_text(system.rstrip("\n") + "\n" + Path(running.ca_file).read_text())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        return bundle

    return apply


# ---------------------------------------------------------------- an emulator whose app has a certificate


@dataclass(frozen=True)
class CertificateCredential:
    """A key pair and self-signed certificate as an app registration's credential, in the forms SDKs take."""

    key_pem: str
    cert_pem: str
    sha1_hex: str
    sha256: bytes

    @property
    def combined_pem(self) -> str:
        """Private key followed by the certificate: what azure-identity's `certificate_path` expects."""
        return self.key_pem + self.cert_pem


def make_certificate(common_name: str) -> CertificateCredential:
    key = keys.new_rsa_key()
    cert = keys.self_signed_certificate(key, common_name)
    return CertificateCredential(
        key_pem=keys.private_key_pem(key).decode("ascii"),
        cert_pem=keys.certificate_pem(cert),
        sha1_hex=keys.thumbprint_sha1(cert).hex(),
        sha256=keys.thumbprint_sha256(cert),
    )


@dataclass(frozen=True)
class CertApp:
    """The certificate emulator and the credentials of its one app."""

    emulator: RunningEmulator
    certificate: CertificateCredential
    secret: str

    @property
    def tenant_id(self) -> str:
        return self.emulator.tenant["id"]

    @property
    def app_id(self) -> str:
        return self.emulator.app["app_id"]


@pytest.fixture(scope="session")
def app_certificate() -> CertificateCredential:
    return make_certificate("compat-tests certificate connector")


@pytest.fixture(scope="session")
def stranger_certificate() -> CertificateCredential:
    """A certificate that no app in any emulator has registered."""
    return make_certificate("compat-tests unregistered")


@pytest.fixture(scope="session")
def cert_app(tmp_path_factory: pytest.TempPathFactory, app_certificate: CertificateCredential) -> Iterator[CertApp]:
    """A second `m365-mock serve` on a tenant file: one app with a client secret and a certificate."""
    folder = tmp_path_factory.mktemp("cert-emulator")
    secret = "cmp8Q~" + secrets.token_urlsafe(26)
    tenant_file = folder / "tenant.yaml"
    tenant_file.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "name": "Fabrikam",
                        "domains": [CERT_TENANT_DOMAIN],
                        "mailboxes": [{"address": f"support@{CERT_TENANT_DOMAIN}", "type": "shared"}],
                        "applications": [
                            {
                                "display_name": "Certificate Connector",
                                "permissions": MAIL_ROLES,
                                "admin_consent": True,
                                "secrets": [{"display_name": "compat", "value": secret}],
                                "certificates": [{"display_name": "compat", "pem": app_certificate.cert_pem}],
                            }
                        ],
                    }
                ]
            },
            sort_keys=False,
        )
    )
    with start_emulator(folder / "state", "--config", str(tenant_file)) as running:
        assert running.app["certificate_thumbprints"] == [app_certificate.sha1_hex.upper()], running.app
        yield CertApp(running, app_certificate, secret)


# ---------------------------------------------------------------- checking issued tokens


class TokenChecker:
    """Verifies access tokens against the issuing emulator's published JWKS, as a resource server would."""

    def __init__(self) -> None:
        self._jwks: dict[str, jwt.PyJWKClient] = {}

    def _client(self, running: RunningEmulator, tenant_id: str) -> jwt.PyJWKClient:
        url = f"{running.base_url}/{tenant_id}/discovery/v2.0/keys"
        if url not in self._jwks:
            context = ssl.create_default_context(cafile=running.ca_file)
            self._jwks[url] = jwt.PyJWKClient(url, cache_keys=True, ssl_context=context)
        return self._jwks[url]

    def check(
        self, running: RunningEmulator, token: str, *, tenant_id: str, app_id: str, appidacr: str
    ) -> dict[str, Any]:
        """Signature (RS256, key from the JWKS by `kid`), audience, issuer, lifetime and app claims; the claims."""
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "RS256", header
        signing_key = self._client(running, tenant_id).get_signing_key_from_jwt(token)
        assert signing_key.key_id == header["kid"]
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=GRAPH_AUDIENCE,
            issuer=f"https://sts.windows.net/{tenant_id}/",
            options={"require": ["exp", "iat", "nbf", "aud", "iss", "tid", "appid", "roles"]},
        )
        assert claims["aud"] == GRAPH_AUDIENCE
        assert claims["tid"] == tenant_id
        assert claims["appid"] == app_id
        assert claims["roles"] == MAIL_ROLES
        assert claims["appidacr"] == appidacr
        assert claims["idtyp"] == "app"
        assert claims["oid"] == claims["sub"]
        assert abs(claims["exp"] - (time.time() + TOKEN_LIFETIME)) <= 30
        assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME
        return claims


@pytest.fixture(scope="session")
def tokens() -> TokenChecker:
    return TokenChecker()


def contoso_without_mail(folder: Path) -> Path:
    """A tenant file shaped like the demo tenant (its three shared mailboxes and the mail app) with empty mailboxes.

    The built-in demo tenant starts with sample mail; tests that count messages want to know every one there is.
    """
    domain = "contoso.onmicrosoft.com"
    mailboxes = (("support", "Customer Support"), ("sales", "Sales"), ("billing", "Billing"))
    path = folder / "tenant.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "name": "Contoso",
                        "domains": [domain],
                        "mailboxes": [
                            {"address": f"{local}@{domain}", "display_name": name, "type": "shared"}
                            for local, name in mailboxes
                        ],
                        "applications": [
                            {
                                "display_name": "Contact Center Connector",
                                "permissions": ["Mail.ReadWrite", "Mail.Send"],
                                "admin_consent": True,
                                "secrets": [{"display_name": "compat"}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    return path


@contextlib.contextmanager
def empty_contoso(folder: Path) -> Iterator[RunningEmulator]:
    """`m365-mock serve` on `contoso_without_mail`, for a module whose tests must not share mailboxes."""
    with start_emulator(folder / "state", "--config", str(contoso_without_mail(folder))) as running:
        assert running.facts.get("admin_key"), "connection.json is expected to carry the control API's admin key"
        assert running.app["client_secret"], running.app
        yield running


def seed(running: RunningEmulator, address: str, message: dict[str, Any]) -> list[str]:
    """Deliver mail through the control API (`{"count": N}` or one message); the new message ids."""
    import requests

    response = requests.post(
        f"{running.base_url}/_m365/mailboxes/{address}/messages",
        headers={"X-M365-Admin-Key": running.facts["admin_key"]},
        json=message,
        verify=running.ca_file,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["ids"]
