"""Certificate credentials: verifying the client assertion JWT an app signs with its private key."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import jwt

from m365_mock.identity import errors
from m365_mock.identity.keys import b64url_decode
from m365_mock.state.directory import Application, Certificate

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SUPPORTED_ALGORITHMS = ("RS256", "PS256")
CLOCK_SKEW_SECONDS = 300


def _aad_time(epoch: float) -> str:
    """Entra's time format; instants outside what a date can hold are clamped to its ends."""
    epoch = min(max(epoch, 0.0), 253402300799.0)
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _thumbprint(header: dict) -> tuple[bytes | None, bytes | None]:
    """The SHA-1 (`x5t`) and SHA-256 (`x5t#S256`) thumbprints a header names, padded or not."""
    sha1 = sha256 = None
    try:
        if isinstance(header.get("x5t#S256"), str):
            sha256 = b64url_decode(header["x5t#S256"])
        if isinstance(header.get("x5t"), str):
            sha1 = b64url_decode(header["x5t"])
    except ValueError:
        raise errors.InvalidAssertion(
            reason="The certificate thumbprint in the token header is not base64url."
        ) from None
    if sha1 is None and sha256 is None:
        raise errors.InvalidAssertion(reason="No certificate thumbprint specified in token header.")
    return sha1, sha256


def verify_client_assertion(
    assertion: str, assertion_type: str | None, *, app: Application, client_id: str, audience: str, now: float
) -> Certificate:
    """Check an assertion for `app` as Entra does and return the certificate that signed it.

    Accepted: RS256 with `x5t` or PS256 with `x5t#S256` (either thumbprint padded or not), float `exp`/`iat`,
    optional `nbf`, `aud` equal to the token endpoint called, `iss` = `sub` = client id.
    """
    if assertion_type != JWT_BEARER:
        raise errors.AssertionTypeInvalid(value=assertion_type or "")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise errors.InvalidAssertion(reason="Token format not valid.") from None
    algorithm = header.get("alg")
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise errors.InvalidAssertion(reason=f"The token is signed with an unsupported algorithm {algorithm!r}.")
    sha1, sha256 = _thumbprint(header)
    shown = (sha1 or sha256 or b"").hex().upper()
    cert = app.certificate_by_thumbprint(sha1, sha256)
    if cert is None:
        raise errors.AssertionKeyNotFound(thumbprint=shown, app_id=app.app_id)
    try:
        claims = jwt.decode(
            assertion,
            cert.certificate.public_key(),  # type: ignore[arg-type]  # an app's certificate key: RSA in practice
            algorithms=[algorithm],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise errors.AssertionBadSignature(
            thumbprint=shown, start=cert.start.isoformat(), end=cert.end.isoformat()
        ) from None
    except jwt.PyJWTError:
        raise errors.InvalidAssertion(reason="Token format not valid.") from None
    if not cert.start.timestamp() <= now <= cert.end.timestamp():
        raise errors.AssertionKeyNotFound(thumbprint=shown, app_id=app.app_id)
    _check_time(claims, now)
    found_aud = claims.get("aud")
    if found_aud != audience and not (isinstance(found_aud, str) and found_aud.rstrip("/") == audience):
        raise errors.AssertionAudienceMismatch(expected=audience, found=found_aud)
    if claims.get("iss") != claims.get("sub"):
        raise errors.AssertionSubjectMismatchesIssuer()
    if str(claims.get("sub", "")).lower() != client_id.lower():
        raise errors.AssertionClientIdMismatch()
    return cert


def _check_time(claims: dict, now: float) -> None:
    def number(name: str) -> float | None:
        value = claims.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise errors.InvalidAssertion(reason=f"The '{name}' claim is not a number.")
        return float(value)

    expires, not_before = number("exp"), number("nbf")
    if expires is None:
        raise errors.InvalidAssertion(reason="The 'exp' claim is missing.")
    start = not_before if not_before is not None else 0.0
    if now > expires + CLOCK_SKEW_SECONDS or now + CLOCK_SKEW_SECONDS < start:
        raise errors.AssertionOutsideTimeRange(now=_aad_time(now), start=_aad_time(start), end=_aad_time(expires))
