"""The bearer-token check Graph routes rely on: signature, audience, lifetime, tenant."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from m365_mock.identity.keys import SigningKey, b64url
from m365_mock.identity.tokens import GRAPH_APP_ID, MALFORMED_MESSAGE, TokenRejected
from tests.helpers import error_of
from tests.identity.helpers import decode_unverified, post_token, secret_form


@pytest.fixture
def token(client, tenant, demo_app) -> str:
    return post_token(client, tenant.id, **secret_form(demo_app)).get_json()["access_token"]


def resign(emulator, claims, key=None, **header) -> str:
    signing = key or emulator.signing_key
    headers = {"kid": emulator.signing_key.kid, "x5t": emulator.signing_key.kid, **header}
    return jwt.encode(claims, signing.private_key, algorithm="RS256", headers=headers)


def rejected(emulator, token) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        emulator.verifier.verify(token)
    return info.value


def test_valid_token(emulator, tenant, demo_app, token):
    verified = emulator.verifier.verify(token)
    assert verified.tenant is tenant
    assert verified.app_id == demo_app.app_id
    assert verified.roles == ("Mail.ReadWrite", "Mail.Send")


def test_token_for_graph_by_app_id_is_accepted(emulator, token):
    claims = decode_unverified(token) | {"aud": GRAPH_APP_ID}
    assert emulator.verifier.verify(resign(emulator, claims)).roles


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty_token(emulator, value):
    error = rejected(emulator, value)
    assert (error.reason, error.message) == (TokenRejected.EMPTY, "Access token is empty.")


@pytest.mark.parametrize("value", ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_garbled_token(emulator, value):
    error = rejected(emulator, value)
    assert error.reason in (TokenRejected.MALFORMED, TokenRejected.SIGNATURE)
    if error.reason == TokenRejected.MALFORMED:
        assert error.message == "CompactToken parsing failed with error code: 80049217"


def test_forged_signature(emulator, token):
    error = rejected(emulator, resign(emulator, decode_unverified(token), key=SigningKey.generate()))
    assert (error.reason, error.message) == (TokenRejected.SIGNATURE, "Access token validation failure.")


def test_wrong_audience(emulator, token):
    error = rejected(emulator, resign(emulator, decode_unverified(token) | {"aud": "https://management.azure.com"}))
    assert (error.reason, error.message) == (
        TokenRejected.AUDIENCE,
        "Access token validation failure. Invalid audience.",
    )


def test_expired_token(emulator, token, clock):
    clock.advance(3600)
    error = rejected(emulator, token)
    assert (error.reason, error.message) == (TokenRejected.EXPIRED, "Lifetime validation failed, the token is expired.")


def test_token_valid_until_expiry(emulator, token, clock):
    clock.advance(3598)
    assert emulator.verifier.verify(token)


def test_not_yet_valid_token(emulator, token):
    claims = decode_unverified(token) | {"nbf": int(time.time()) + 600}
    error = rejected(emulator, resign(emulator, claims))
    assert (error.reason, error.message) == (TokenRejected.EXPIRED, "Access token has expired or is not yet valid.")


def test_token_of_an_unknown_tenant(emulator, token):
    other = "0000aaaa-1111-2222-3333-444455556666"
    claims = decode_unverified(token) | {"tid": other, "iss": f"https://sts.windows.net/{other}/"}
    assert rejected(emulator, resign(emulator, claims)).reason == TokenRejected.TENANT


def test_a_token_verified_once_still_expires(emulator, token, clock):
    assert emulator.verifier.verify(token)
    clock.advance(3600)
    assert rejected(emulator, token).reason == TokenRejected.EXPIRED


# ------------------------------------------------------------------ claims of types Entra never issues


def sign_raw(emulator, payload: str) -> str:
    """A token signed with the emulator's own key over `payload`, JSON text taken as written (NaN, 1e400...)."""
    key = emulator.signing_key
    header = json.dumps({"typ": "JWT", "alg": "RS256", "x5t": key.kid, "kid": key.kid}, separators=(",", ":"))
    signing_input = f"{b64url(header.encode())}.{b64url(payload.encode())}".encode("ascii")
    signature = jwt.get_algorithm_by_name("RS256").sign(signing_input, key.private_key)
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def with_claim(token: str, name: str, raw: str | None) -> str:
    """The token's claims as JSON text, with `name` set to the JSON text `raw` (None: left out)."""
    claims = {k: json.dumps(v) for k, v in decode_unverified(token).items() if k != name}
    if raw is not None:
        claims[name] = raw
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in claims.items()) + "}"


INVALID_AUDIENCE = "Access token validation failure. Invalid audience."
INVALID_ISSUER = "Access token validation failure. Invalid issuer."
VALIDATION_FAILURE = "Access token validation failure."


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("aud", '["https://graph.microsoft.com"]', INVALID_AUDIENCE),
        ("aud", '["https://graph.microsoft.com", "https://management.azure.com"]', INVALID_AUDIENCE),
        ("aud", "[[1]]", INVALID_AUDIENCE),
        ("aud", "{}", INVALID_AUDIENCE),
        ("aud", "3", INVALID_AUDIENCE),
        ("aud", "null", INVALID_AUDIENCE),
        ("aud", None, INVALID_AUDIENCE),
        ("exp", "1e400", MALFORMED_MESSAGE),
        ("exp", "NaN", MALFORMED_MESSAGE),
        ("exp", "Infinity", MALFORMED_MESSAGE),
        ("exp", str(10**30), MALFORMED_MESSAGE),
        ("exp", "true", MALFORMED_MESSAGE),
        ("exp", '"4102444800"', MALFORMED_MESSAGE),
        ("exp", "[4102444800]", MALFORMED_MESSAGE),
        ("exp", None, MALFORMED_MESSAGE),
        ("nbf", "NaN", MALFORMED_MESSAGE),
        ("nbf", str(-(10**30)), MALFORMED_MESSAGE),
        ("nbf", '{"a":1}', MALFORMED_MESSAGE),
        ("nbf", "null", MALFORMED_MESSAGE),
        ("tid", "[]", INVALID_ISSUER),
        ("tid", "7", INVALID_ISSUER),
        ("iss", '["https://sts.windows.net/"]', INVALID_ISSUER),
        ("roles", "5", VALIDATION_FAILURE),
        ("roles", '"Mail.ReadWrite"', VALIDATION_FAILURE),
        ("roles", '{"Mail.ReadWrite": true}', VALIDATION_FAILURE),
        ("roles", '["Mail.ReadWrite", 1]', VALIDATION_FAILURE),
        ("roles", '[["Mail.ReadWrite"]]', VALIDATION_FAILURE),
        ("appid", '["x"]', VALIDATION_FAILURE),
    ],
)
def test_claims_of_odd_types_are_graphs_401_not_a_500(graph, emulator, token, name, raw, message):
    odd = sign_raw(emulator, with_claim(token, name, raw))
    for _ in range(2):  # the second answer comes after the first was remembered (or not)
        response = graph.get(
            "/users/support@contoso.onmicrosoft.com/messages", headers={"Authorization": f"Bearer {odd}"}
        )
        assert error_of(response) == (401, "InvalidAuthenticationToken", message)


def test_raw_signing_keeps_a_good_token_good(graph, emulator, token):
    same = sign_raw(emulator, with_claim(token, "roles", '["Mail.ReadWrite"]'))
    response = graph.get("/users/support@contoso.onmicrosoft.com/messages", headers={"Authorization": f"Bearer {same}"})
    assert response.status_code == 200
    assert emulator.verifier.verify(same).roles == ("Mail.ReadWrite",)
