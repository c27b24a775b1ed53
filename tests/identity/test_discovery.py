"""OpenID discovery (v2 and v1), JWKS and instance discovery: absolute URLs of the emulator itself."""

from __future__ import annotations

import jwt
import pytest

from tests.identity.helpers import BASE, assert_aadsts, post_token, secret_form


@pytest.mark.parametrize("segment", ["contoso.onmicrosoft.com", "tenant-guid"])
def test_v2_configuration_points_at_the_emulator(client, tenant, segment):
    segment = tenant.id if segment == "tenant-guid" else segment
    response = client.get(f"/{segment}/v2.0/.well-known/openid-configuration", base_url=BASE)
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["token_endpoint"] == f"{BASE}/{segment}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{BASE}/{segment}/oauth2/v2.0/authorize"
    assert doc["jwks_uri"] == f"{BASE}/{segment}/discovery/v2.0/keys"
    assert doc["issuer"] == f"{BASE}/{tenant.id}/v2.0"
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "private_key_jwt",
        "client_secret_basic",
    ]
    assert doc["subject_types_supported"] == ["pairwise"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["request_uri_parameter_supported"] is False
    urls = [v for v in doc.values() if isinstance(v, str) and v.startswith("https://")]
    assert all(u.startswith(BASE) or u == "https://pas.windows.net" for u in urls), urls
    assert response.headers["Cache-Control"] == "max-age=86400, private"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_common_configuration_keeps_the_tenant_placeholder(client):
    doc = client.get("/common/v2.0/.well-known/openid-configuration", base_url=BASE).get_json()
    assert doc["issuer"] == f"{BASE}/{{tenantid}}/v2.0"
    assert doc["token_endpoint"] == f"{BASE}/common/oauth2/v2.0/token"
    assert doc["tenant_region_scope"] is None


def test_unknown_tenant_discovery_is_invalid_tenant(client):
    response = client.get("/fabrikam.com/v2.0/.well-known/openid-configuration", base_url=BASE)
    assert_aadsts(response, 400, "invalid_tenant", 90002, "Tenant 'fabrikam.com' not found.")


def test_v1_configuration(client, tenant):
    doc = client.get(f"/{tenant.id}/.well-known/openid-configuration", base_url=BASE).get_json()
    assert doc["token_endpoint"] == f"{BASE}/{tenant.id}/oauth2/token"
    assert doc["issuer"] == f"https://sts.windows.net/{tenant.id}/"
    assert doc["jwks_uri"] == f"{BASE}/{tenant.id}/discovery/keys"


@pytest.mark.parametrize("path", ["discovery/v2.0/keys", "discovery/keys"])
def test_jwks_verifies_issued_tokens(client, emulator, tenant, demo_app, path):
    keys = client.get(f"/{tenant.id}/{path}", base_url=BASE).get_json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert {"kty", "use", "kid", "x5t", "n", "e", "x5c", "issuer"} <= set(key)
    assert "alg" not in key
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["e"] == "AQAB"
    assert key["kid"] == key["x5t"] == emulator.signing_key.kid
    assert key["issuer"] == f"{BASE}/{tenant.id}/v2.0"

    token = post_token(client, tenant.id, **secret_form(demo_app)).get_json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(
        token,
        jwt.PyJWK(key, algorithm="RS256").key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        issuer=f"https://sts.windows.net/{tenant.id}/",
    )
    assert claims["appid"] == demo_app.app_id


def test_instance_discovery_for_this_host(client, tenant):
    response = client.get(
        "/common/discovery/instance",
        base_url=BASE,
        query_string={
            "api-version": "1.1",
            "authorization_endpoint": f"https://emu.test/{tenant.id}/oauth2/v2.0/authorize",
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["tenant_discovery_endpoint"] == f"{BASE}/{tenant.id}/v2.0/.well-known/openid-configuration"
    assert body["api-version"] == "1.1"
    assert body["metadata"][0]["aliases"] == ["emu.test:8443"]


def test_instance_discovery_for_another_host(client):
    response = client.get(
        "/common/discovery/instance",
        base_url=BASE,
        query_string={"authorization_endpoint": "https://login.microsoftonline.com/common/oauth2/authorize"},
    )
    assert_aadsts(response, 400, "invalid_instance", 50049, "Unknown or invalid instance.")
