"""Fixtures for the client tests: an emulator of their own per module, its control API, and mail settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from m365_mock.client import ClientSettings, MailClient
from m365_mock.tools.process import RunningEmulator, start_emulator

SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
BILLING = "billing@contoso.onmicrosoft.com"
TENANT_DOMAIN = "contoso.onmicrosoft.com"
RAOP = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."


class Control:
    """The emulator's control API (/_m365) with its admin key."""

    def __init__(self, emu: RunningEmulator) -> None:
        self.emu = emu
        self.clock_offset = 0.0

    def __call__(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.emu.base_url}/_m365{path}",
            json=body,
            headers={"X-M365-Admin-Key": self.emu.facts["admin_key"]},
            verify=self.emu.ca_file,
            timeout=30,
        )
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def app_path(self, tail: str = "") -> str:
        return f"/tenants/{self.emu.tenant['id']}/applications/{self.emu.app['app_id']}{tail}"

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock (the fixture moves it back after the test)."""
        self("POST", "/time", {"advance": seconds}, expect=200)
        self.clock_offset += seconds

    def now(self) -> float:
        """The daemon's view of "now" kept in step with the emulator's moved clock."""
        return time.time() + self.clock_offset

    def add_mail(self, address: str, **body: Any) -> list[str]:
        return self("POST", f"/mailboxes/{address}/messages", body, expect=201)["ids"]

    def log(self, **query: str) -> list[dict[str, Any]]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return self("GET", f"/log?{params}", expect=200)["value"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """This module's own emulator (demo tenant), so nothing here disturbs other tests."""
    with start_emulator(tmp_path_factory.mktemp("client-emu")) as running:
        yield running


@pytest.fixture
def control(emu: RunningEmulator) -> Iterator[Control]:
    """The control API; the world is reset before the test and the clock put back after it."""
    ctl = Control(emu)
    ctl("POST", "/reset", expect=200)
    yield ctl
    if ctl.clock_offset:
        ctl("POST", "/time", {"advance": -ctl.clock_offset}, expect=200)


@pytest.fixture
def settings(emu: RunningEmulator, control: Control) -> ClientSettings:
    """The demo app ("Contact Center Connector") against this module's emulator."""
    return ClientSettings.for_emulator(emu.facts)


@pytest.fixture
def mail(settings: ClientSettings) -> Iterator[MailClient]:
    with MailClient(settings) as client:
        yield client


class RecordingSession(requests.Session):
    """A requests Session that remembers the headers of every request it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        return super().send(request, **kwargs)


def make_certificate(
    directory: Path, name: str = "daemon", password: bytes | None = None
) -> tuple[Path, str, x509.Certificate]:
    """A self-signed RSA certificate: (PEM file with key and certificate, certificate PEM, certificate)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path = directory / f"{name}.pem"
    path.write_bytes(key_pem + cert_pem.encode("ascii"))
    return path, cert_pem, cert


@pytest.fixture
def certificate(tmp_path: Path) -> Callable[..., tuple[Path, str, x509.Certificate]]:
    return lambda name="daemon", password=None: make_certificate(tmp_path, name, password)
