"""The bearer-token check Graph routes rely on: signature, audience, lifetime, tenant."""

from __future__ import annotations

import time

import jwt
import pytest

from mock_server.identity.keys import SigningKey
from mock_server.identity.tokens import GRAPH_APP_ID, TokenRejected
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
