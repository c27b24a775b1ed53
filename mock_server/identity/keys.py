"""Keys and certificates: the token-signing key, the emulator's TLS CA and leaf, certificate thumbprints."""

from __future__ import annotations

import base64
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without `=` padding; raises ValueError on garbage."""
    text = text.strip().rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not base64url: {text!r}") from exc


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("only RSA private keys are supported")
    return key


def self_signed_certificate(
    key: rsa.RSAPrivateKey, common_name: str, *, days: int = 730, not_before: datetime | None = None
) -> x509.Certificate:
    """A self-signed certificate for `key`, as an app registration's uploaded credential would be."""
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_certificate(pem_or_der: str | bytes) -> x509.Certificate:
    """Parse a PEM (text) or DER (bytes) certificate; raises ValueError when it is neither."""
    data = pem_or_der.encode("ascii") if isinstance(pem_or_der, str) else pem_or_der
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def thumbprint_sha1(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA1())


def thumbprint_sha256(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write `path` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateFileError(ValueError):
    """A key or certificate file in the state folder that cannot be used; the message says what to do."""


def _read_state_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StateFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _load_key_file(path: Path, remedy: str) -> rsa.RSAPrivateKey:
    try:
        return load_private_key(_read_state_file(path))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise StateFileError(f"{path} is not an unencrypted PEM RSA private key ({_reason(exc)}); {remedy}") from exc


def _load_certificate_file(path: Path, remedy: str) -> x509.Certificate:
    try:
        return load_certificate(_read_state_file(path))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise StateFileError(f"{path} is not a PEM certificate ({_reason(exc)}); {remedy}") from exc


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def _same_key(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bool:
    public = cert.public_key()
    return isinstance(public, rsa.RSAPublicKey) and public.public_numbers() == key.public_key().public_numbers()


def _check_pair(key_file: Path, cert_file: Path, remedy: str) -> bool:
    """True when both files exist; StateFileError when only one does (a new pair would replace the other)."""
    if key_file.exists() != cert_file.exists():
        present, missing = (key_file, cert_file) if key_file.exists() else (cert_file, key_file)
        raise StateFileError(f"{present} is there but {missing.name} is missing; {remedy}")
    return key_file.exists()


@dataclass(frozen=True)
class SigningKey:
    """The emulator's token-signing key with the certificate published in the JWKS."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        """Entra sets `kid` and `x5t` to the same value: the base64url SHA-1 thumbprint."""
        return b64url(thumbprint_sha1(self.certificate))

    def jwk(self, issuer: str) -> dict:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "x5c": [base64.b64encode(der(self.certificate)).decode("ascii")],
            "issuer": issuer,
            "cloud_instance_name": "microsoftonline.com",
        }

    @classmethod
    def generate(cls) -> SigningKey:
        key = new_rsa_key()
        return cls(key, self_signed_certificate(key, "m365-mock token signing", days=3650))

    @classmethod
    def load_or_create(cls, folder: Path) -> SigningKey:
        """Reuse the key in `folder` so tokens stay valid across restarts; make it on first use.

        Half a pair, a file that does not parse, or a key that is not the certificate's raises StateFileError:
        a new key would silently invalidate every token already issued (`kid` is the certificate's
        thumbprint).
        """
        key_file, cert_file = folder / "signing-key.pem", folder / "signing-cert.pem"
        remedy = (
            "tokens issued with the old key would no longer verify, so no new key was made: restore the file, "
            "or delete signing-key.pem and signing-cert.pem both to start with a new key"
        )
        if _check_pair(key_file, cert_file, remedy):
            key = _load_key_file(key_file, remedy)
            cert = _load_certificate_file(cert_file, remedy)
            if not _same_key(key, cert):
                raise StateFileError(f"{key_file} is not the key of {cert_file.name}; {remedy}")
            return cls(key, cert)
        signing = cls.generate()
        atomic_write(key_file, private_key_pem(signing.private_key), 0o600)
        atomic_write(cert_file, certificate_pem(signing.certificate))
        return signing


@dataclass(frozen=True)
class TlsFiles:
    """Where the emulator's CA certificate and its HTTPS leaf live."""

    ca_cert: Path
    leaf_cert: Path
    leaf_key: Path


def _leaf_names(hostnames: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in ["localhost", "127.0.0.1", "::1", *hostnames]:
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            entry = x509.DNSName(host)
        if entry not in names:
            names.append(entry)
    return names


def _issue_leaf(ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, hostnames: list[str]):
    leaf_key = new_rsa_key()
    now = datetime.now(UTC) - timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(_leaf_names(hostnames)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return leaf_key, leaf


def _new_ca():
    ca_key = new_rsa_key()
    now = datetime.now(UTC) - timedelta(minutes=5)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "m365-mock"),
            x509.NameAttribute(NameOID.COMMON_NAME, "m365-mock local CA"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca


def _leaf_covers(leaf: x509.Certificate, hostnames: list[str]) -> bool:
    try:
        present = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if leaf.not_valid_after_utc < datetime.now(UTC) + timedelta(days=1):
        return False
    return all(name in present for name in _leaf_names(hostnames))


def ensure_tls_files(folder: Path, hostnames: list[str] | None = None) -> TlsFiles:
    """Make (first start) or reuse the CA and a leaf covering localhost, 127.0.0.1, ::1 and `hostnames`.

    The CA persists so a client that trusted it once keeps trusting it; the leaf is re-issued only when it
    does not cover a requested host name or is about to expire.
    """
    hostnames = hostnames or []
    files = TlsFiles(folder / "ca.pem", folder / "tls-cert.pem", folder / "tls-key.pem")
    ca_key_file = folder / "ca-key.pem"
    ca_remedy = (
        "clients trust this CA, so no new one was made: restore the file, or delete ca.pem and ca-key.pem "
        "both to make a new CA (clients must then trust the new ca.pem)"
    )
    if _check_pair(ca_key_file, files.ca_cert, ca_remedy):
        ca_key = _load_key_file(ca_key_file, ca_remedy)
        ca = _load_certificate_file(files.ca_cert, ca_remedy)
        if not _same_key(ca_key, ca):
            raise StateFileError(f"{ca_key_file} is not the key of {files.ca_cert.name}; {ca_remedy}")
    else:
        ca_key, ca = _new_ca()
        atomic_write(ca_key_file, private_key_pem(ca_key), 0o600)
        atomic_write(files.ca_cert, certificate_pem(ca))
    if files.leaf_cert.exists() and files.leaf_key.exists():
        leaf_remedy = "delete tls-cert.pem and tls-key.pem to have them made again from the CA"
        leaf = _load_certificate_file(files.leaf_cert, leaf_remedy)
        leaf_key = _load_key_file(files.leaf_key, leaf_remedy)
        if not _same_key(leaf_key, leaf):
            raise StateFileError(f"{files.leaf_key} is not the key of {files.leaf_cert.name}; {leaf_remedy}")
        if _leaf_covers(leaf, hostnames) and leaf.issuer == ca.subject:
            return files
    leaf_key, leaf = _issue_leaf(ca_key, ca, hostnames)
    atomic_write(files.leaf_key, private_key_pem(leaf_key), 0o600)
    atomic_write(files.leaf_cert, certificate_pem(leaf) + certificate_pem(ca))
    return files
