"""Certificate credentials: client assertions verified for real (signature, thumbprint, audience, time)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from m365_mock.identity.keys import b64url, new_rsa_key, private_key_pem
from tests.identity.helpers import (
    BASE,
    GRAPH_SCOPE,
    JWT_BEARER,
    add_certificate,
    assert_aadsts,
    decode_unverified,
    make_assertion,
    post_token,
)


@pytest.fixture
def credential(demo_app):
    return add_certificate(demo_app)


def endpoint(tenant_segment: str, version: int = 2) -> str:
    return f"{BASE}/{tenant_segment}/oauth2/v2.0/token" if version == 2 else f"{BASE}/{tenant_segment}/oauth2/token"


def assertion_form(app, assertion: str, **extra):
    return {
        "client_id": app.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "grant_type": "client_credentials",
        "scope": GRAPH_SCOPE,
        **extra,
    }


def request_with(client, tenant, demo_app, credential, segment=None, **kwargs):
    key_pem, cert = credential
    segment = segment or tenant.id
    audience = kwargs.pop("audience", endpoint(segment))
    assertion = make_assertion(key_pem, cert, client_id=demo_app.app_id, audience=audience, **kwargs)
    return post_token(client, segment, **assertion_form(demo_app, assertion))


@pytest.mark.parametrize(
    ("algorithm", "padded"),
    [("RS256", True), ("RS256", False), ("PS256", True)],
    ids=["msal-x5t", "x5t-unpadded", "ps256"],
)
def test_assertion_gives_a_certificate_token(client, tenant, demo_app, credential, algorithm, padded):
    response = request_with(client, tenant, demo_app, credential, algorithm=algorithm, padded=padded)
    assert response.status_code == 200, response.get_json()
    claims = decode_unverified(response.get_json()["access_token"])
    assert claims["appidacr"] == "2"
    assert claims["appid"] == demo_app.app_id
    assert claims["roles"] == ["Mail.ReadWrite", "Mail.Send"]


def test_assertion_to_the_domain_endpoint(client, tenant, demo_app, credential):
    response = request_with(client, tenant, demo_app, credential, segment="contoso.onmicrosoft.com")
    assert response.status_code == 200


def test_assertion_with_nbf_in_the_past(client, tenant, demo_app, credential):
    response = request_with(client, tenant, demo_app, credential, claims={"nbf": time.time() - 10})
    assert response.status_code == 200


def test_unregistered_certificate(client, tenant, demo_app, credential):
    other = add_certificate(demo_app)
    demo_app.certificates.remove(other[1])
    response = request_with(client, tenant, demo_app, other)
    assert_aadsts(
        response,
        401,
        "invalid_client",
        700027,
        f"Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of "
        f"key used by client: '{other[1].thumbprint}', Please visit the Azure Portal, Graph Explorer or "
        f"directly use MS Graph to see configured keys for app Id '{demo_app.app_id}'.]",
    )


def test_signature_by_another_key_with_a_registered_thumbprint(client, tenant, demo_app, credential):
    _, cert = credential
    forged_key = private_key_pem(new_rsa_key())
    response = request_with(client, tenant, demo_app, (forged_key, cert))
    assert_aadsts(
        response,
        401,
        "invalid_client",
        700027,
        "[Reason - The provided signature value did not match the expected signature value.",
    )


def test_expired_assertion_without_nbf_reports_1970(client, tenant, demo_app, credential, clock):
    signed_at = float(int(time.time()))
    clock.freeze(signed_at + 3600)
    response = request_with(client, tenant, demo_app, credential, now=signed_at)

    def aad(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")

    assert_aadsts(
        response,
        401,
        "invalid_client",
        700024,
        f"Client assertion is not within its valid time range. Current time: {aad(signed_at + 3600)}"
        ".0000000Z, assertion valid from 1970-01-01T00:00:00.0000000Z, expiry time of assertion "
        f"{aad(signed_at + 600.61)}.",
    )


def test_assertion_not_yet_valid(client, tenant, demo_app, credential):
    response = request_with(client, tenant, demo_app, credential, claims={"nbf": time.time() + 3600})
    assert_aadsts(response, 401, "invalid_client", 700024, "Client assertion is not within its valid time range.")


def test_assertion_audience_must_be_the_endpoint_called(client, tenant, demo_app, credential):
    wrong = f"https://login.microsoftonline.com/{tenant.id}/oauth2/v2.0/token"
    response = request_with(client, tenant, demo_app, credential, audience=wrong)
    assert_aadsts(
        response, 401, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer."
    )


def test_v1_audience_on_the_v2_endpoint_is_refused(client, tenant, demo_app, credential):
    response = request_with(client, tenant, demo_app, credential, audience=endpoint(tenant.id, 1))
    assert_aadsts(response, 401, "invalid_client", 700023)


def test_issuer_different_from_subject(client, tenant, demo_app, credential):
    response = request_with(client, tenant, demo_app, credential, claims={"iss": "someone-else"})
    assert_aadsts(response, 401, "invalid_client", 50048, "Subject mismatches Issuer claim in the client assertion.")


def test_assertion_for_another_client_id(client, tenant, demo_app, credential):
    other = "99999999-0000-0000-0000-000000000000"
    response = request_with(client, tenant, demo_app, credential, claims={"iss": other, "sub": other})
    assert_aadsts(
        response,
        401,
        "invalid_client",
        700021,
        "Client assertion application identifier doesn't match 'client_id' parameter.",
    )


def test_assertion_without_thumbprint(client, tenant, demo_app, credential):
    response = request_with(client, tenant, demo_app, credential, header={})
    assert_aadsts(
        response,
        401,
        "invalid_client",
        50027,
        "Invalid JWT token. No certificate thumbprint specified in token header.",
    )


def test_garbage_assertion(client, tenant, demo_app):
    response = post_token(client, tenant.id, **assertion_form(demo_app, "not.a.jwt"))
    assert_aadsts(response, 401, "invalid_client", 50027, "Invalid JWT token. Token format not valid.")


def test_symmetric_algorithm_is_refused(client, tenant, demo_app, credential):
    _, cert = credential
    token = jwt.encode(
        {"aud": endpoint(tenant.id), "iss": demo_app.app_id, "sub": demo_app.app_id, "exp": time.time() + 600},
        "a-shared-secret-of-32-bytes-long!",
        algorithm="HS256",
        headers={"x5t": b64url(cert.sha1)},
    )
    response = post_token(client, tenant.id, **assertion_form(demo_app, token))
    assert_aadsts(response, 401, "invalid_client", 50027, "unsupported algorithm 'HS256'")


def test_wrong_assertion_type(client, tenant, demo_app, credential):
    key_pem, cert = credential
    assertion = make_assertion(key_pem, cert, client_id=demo_app.app_id, audience=endpoint(tenant.id))
    form = assertion_form(demo_app, assertion, client_assertion_type="urn:ietf:params:oauth:grant-type:saml2-bearer")
    assert_aadsts(post_token(client, tenant.id, **form), 400, "invalid_request", 50027)


def test_expired_certificate_credential_is_not_found(client, tenant, demo_app, credential, clock):
    clock.freeze(credential[1].end.timestamp() + 60)
    response = request_with(client, tenant, demo_app, credential, now=clock.now())
    assert_aadsts(response, 401, "invalid_client", 700027, "[Reason - The key was not found.")
