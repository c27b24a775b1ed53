"""POST /{tenant}/oauth2/token (v1): `resource=` instead of `scope`, numbers as strings."""

from __future__ import annotations

from tests.identity.helpers import (
    BASE,
    JWT_BEARER,
    add_certificate,
    assert_aadsts,
    decode_unverified,
    make_assertion,
    post_token,
)


def v1_form(app, **overrides):
    form = {
        "client_id": app.app_id,
        "client_secret": app.secrets[0].value,
        "grant_type": "client_credentials",
        "resource": "https://graph.microsoft.com/",
    }
    form.update(overrides)
    return form


def test_v1_token_has_string_numbers_and_echoes_the_resource(client, tenant, demo_app, clock):
    clock.freeze(1_800_000_000)
    response = post_token(client, tenant.id, version=1, **v1_form(demo_app))
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == "3599" and body["ext_expires_in"] == "3599"
    assert body["expires_on"] == str(1_800_000_000 + 3599)
    assert body["not_before"] == "1800000000"
    assert body["resource"] == "https://graph.microsoft.com/"
    claims = decode_unverified(body["access_token"])
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["roles"] == ["Mail.ReadWrite", "Mail.Send"]


def test_v1_without_resource(client, tenant, demo_app):
    response = post_token(client, tenant.id, version=1, **v1_form(demo_app, resource=None))
    assert_aadsts(response, 400, "invalid_request", 900144, "'resource'")


def test_v1_unknown_resource(client, tenant, demo_app):
    response = post_token(client, tenant.id, version=1, **v1_form(demo_app, resource="https://vault.azure.net"))
    assert_aadsts(response, 400, "invalid_resource", 500011, "The resource principal named https://vault.azure.net")


def test_v1_wrong_secret(client, tenant, demo_app):
    response = post_token(client, tenant.id, version=1, **v1_form(demo_app, client_secret="nope"))
    assert_aadsts(response, 401, "invalid_client", 7000215)


def test_v1_assertion_audience_is_the_v1_endpoint(client, tenant, demo_app):
    key_pem, cert = add_certificate(demo_app)
    assertion = make_assertion(key_pem, cert, client_id=demo_app.app_id, audience=f"{BASE}/{tenant.id}/oauth2/token")
    form = v1_form(demo_app, client_secret=None, client_assertion_type=JWT_BEARER, client_assertion=assertion)
    response = post_token(client, tenant.id, version=1, **form)
    assert response.status_code == 200, response.get_json()
    assert decode_unverified(response.get_json()["access_token"])["appidacr"] == "2"
