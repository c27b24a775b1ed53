"""POST /{tenant}/oauth2/v2.0/token with a client secret: the success path and every error the table lists."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import jwt
import pytest

from m365_mock.state.directory import GRAPH_APP_ID
from tests.identity.helpers import BASE, GRAPH_SCOPE, assert_aadsts, decode_unverified, post_token, secret_form


def test_secret_in_body_gives_an_app_only_graph_token(client, emulator, tenant, demo_app, clock):
    clock.freeze(1_800_000_000)
    response = post_token(client, tenant.id, **secret_form(demo_app))

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Content-Type"].startswith("application/json")

    public_key = emulator.signing_key.private_key.public_key()
    claims = jwt.decode(
        body["access_token"],
        public_key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == f"https://sts.windows.net/{tenant.id}/"
    assert claims["idp"] == claims["iss"]
    assert claims["tid"] == tenant.id
    assert claims["appid"] == demo_app.app_id
    assert claims["app_displayname"] == "Contact Center Connector"
    assert claims["appidacr"] == "1"
    assert claims["idtyp"] == "app"
    assert claims["oid"] == claims["sub"] == demo_app.service_principal_id
    assert claims["roles"] == ["Mail.ReadWrite", "Mail.Send"]
    assert claims["ver"] == "1.0"
    assert "scp" not in claims
    assert claims["iat"] == claims["nbf"] == 1_800_000_000
    assert claims["exp"] == 1_800_000_000 + 3599
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"] == header["x5t"] == emulator.signing_key.kid


@pytest.mark.parametrize("segment", ["contoso.onmicrosoft.com", "CONTOSO.com", "tenant-guid"])
def test_tenant_by_guid_or_any_domain_in_any_case(client, tenant, demo_app, segment):
    segment = tenant.id.upper() if segment == "tenant-guid" else segment
    response = post_token(client, segment, **secret_form(demo_app))
    assert response.status_code == 200
    assert decode_unverified(response.get_json()["access_token"])["tid"] == tenant.id


def test_each_token_is_unique(client, tenant, demo_app):
    tokens = [post_token(client, tenant.id, **secret_form(demo_app)).get_json()["access_token"] for _ in range(3)]
    assert len({decode_unverified(t)["uti"] for t in tokens}) == 3


def test_secret_by_http_basic_is_form_url_decoded(client, tenant, demo_app):
    credentials = f"{quote_plus(demo_app.app_id)}:{quote_plus(demo_app.secrets[0].value)}"
    auth = "Basic " + base64.b64encode(credentials.encode()).decode()
    form = secret_form(demo_app, client_id=None, client_secret=None)
    response = post_token(client, tenant.id, headers={"Authorization": auth}, **form)
    assert response.status_code == 200, response.get_json()
    assert decode_unverified(response.get_json()["access_token"])["appid"] == demo_app.app_id


def test_unknown_fields_such_as_client_info_and_claims_are_ignored(client, tenant, demo_app):
    form = secret_form(demo_app, client_info="1", claims='{"access_token":{"xms_cc":{"values":["CP1"]}}}')
    assert post_token(client, tenant.id, **form).status_code == 200


def test_graph_requested_by_app_id_gives_that_audience(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, scope=f"{GRAPH_APP_ID}/.default"))
    assert response.status_code == 200
    assert decode_unverified(response.get_json()["access_token"])["aud"] == GRAPH_APP_ID


def test_the_emulators_own_origin_stands_for_graph(client, tenant, demo_app):
    """msgraph-sdk without scopes asks for `https://<host>/.default` (port dropped)."""
    for scope in ("https://emu.test/.default", f"{BASE}/.default"):
        response = post_token(client, tenant.id, **secret_form(demo_app, scope=scope))
        assert response.status_code == 200, scope
        assert decode_unverified(response.get_json()["access_token"])["aud"] == "https://graph.microsoft.com"


def test_reserved_oidc_scopes_beside_default_are_tolerated(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, scope=f"openid {GRAPH_SCOPE} offline_access"))
    assert response.status_code == 200


def test_app_without_admin_consent_gets_a_token_without_roles(client, tenant, demo_app):
    demo_app.consent_granted = False
    response = post_token(client, tenant.id, **secret_form(demo_app))
    assert response.status_code == 200
    assert "roles" not in decode_unverified(response.get_json()["access_token"])


def test_token_lifetime_follows_the_setting(client, emulator, tenant, demo_app):
    emulator.issuer.lifetime = 600
    body = post_token(client, tenant.id, **secret_form(demo_app)).get_json()
    claims = decode_unverified(body["access_token"])
    assert body["expires_in"] == 600 and claims["exp"] - claims["iat"] == 600


# ---------------------------------------------------------------- errors


def test_wrong_secret(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, client_secret="not-the-secret"))
    assert_aadsts(
        response,
        401,
        "invalid_client",
        7000215,
        f"Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
        f"value, not the client secret ID, for a secret added to app '{demo_app.app_id}'.",
    )


def test_secret_id_instead_of_value_is_a_wrong_secret(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, client_secret=demo_app.secrets[0].key_id))
    assert_aadsts(response, 401, "invalid_client", 7000215)


def test_expired_secret(client, tenant, demo_app, clock):
    clock.freeze(demo_app.secrets[0].end.timestamp() + 1)
    response = post_token(client, tenant.id, **secret_form(demo_app))
    assert_aadsts(
        response,
        401,
        "invalid_client",
        7000222,
        f"The provided client secret keys for app '{demo_app.app_id}' are expired. Visit the Azure portal "
        "to create new keys for your app: https://aka.ms/NewClientSecret",
    )


def test_secret_valid_until_its_last_second(client, tenant, demo_app, clock):
    clock.freeze(demo_app.secrets[0].end.timestamp() - 1)
    assert post_token(client, tenant.id, **secret_form(demo_app)).status_code == 200


def test_no_secret_and_no_assertion(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, client_secret=None))
    assert_aadsts(
        response,
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def test_unknown_app(client, tenant):
    app_id = "11111111-2222-3333-4444-555555555555"
    response = post_token(
        client,
        "contoso.onmicrosoft.com",
        client_id=app_id,
        client_secret="x",
        grant_type="client_credentials",
        scope=GRAPH_SCOPE,
    )
    assert_aadsts(
        response,
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{app_id}' was not found in the directory 'contoso.onmicrosoft.com'.",
    )


def test_unknown_tenant(client, demo_app):
    response = post_token(client, "fabrikam.onmicrosoft.com", **secret_form(demo_app))
    assert_aadsts(
        response,
        400,
        "invalid_request",
        90002,
        "Tenant 'fabrikam.onmicrosoft.com' not found. Check to make sure you have the correct tenant ID",
    )


def test_tenant_short_name_is_not_a_tenant(client, demo_app):
    """Entra knows tenants by GUID and verified domain only; `contoso` alone is not one."""
    assert_aadsts(post_token(client, "contoso", **secret_form(demo_app)), 400, "invalid_request", 90002)


@pytest.mark.parametrize("scope", ["User.Read", "https://graph.microsoft.com/Mail.Read"])
def test_scope_without_default(client, tenant, demo_app, scope):
    response = post_token(client, tenant.id, **secret_form(demo_app, scope=scope))
    assert_aadsts(
        response,
        400,
        "invalid_scope",
        1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
        "value with /.default suffixed to the resource identifier (application ID URI).",
    )


@pytest.mark.parametrize("scope", ["/.default", f"{GRAPH_SCOPE} https://outlook.office365.com/.default", "openid"])
def test_invalid_scope(client, tenant, demo_app, scope):
    response = post_token(client, tenant.id, **secret_form(demo_app, scope=scope))
    assert_aadsts(
        response,
        400,
        "invalid_scope",
        70011,
        "The provided value for the input parameter 'scope' is not valid. The scope ",
    )


def test_unknown_resource(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, scope="https://api.fabrikam.com/.default"))
    assert_aadsts(
        response,
        400,
        "invalid_resource",
        500011,
        f"The resource principal named https://api.fabrikam.com was not found in the tenant named {tenant.id}.",
    )


@pytest.mark.parametrize("missing", ["grant_type", "client_id", "scope"])
def test_missing_parameter(client, tenant, demo_app, missing):
    response = post_token(client, tenant.id, **secret_form(demo_app, **{missing: None}))
    assert_aadsts(
        response, 400, "invalid_request", 900144, f"The request body must contain the following parameter: '{missing}'."
    )


def test_unsupported_grant_type(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, grant_type="password"))
    assert_aadsts(
        response, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type 'password'."
    )


def test_disabled_app(client, tenant, demo_app):
    demo_app.enabled = False
    response = post_token(client, tenant.id, **secret_form(demo_app))
    assert_aadsts(
        response,
        400,
        "unauthorized_client",
        7000112,
        f"Application '{demo_app.app_id}'(Contact Center Connector) is disabled.",
    )


@pytest.mark.parametrize("segment", ["common", "organizations", "consumers", "Common"])
def test_client_credentials_on_multi_tenant_endpoints(client, demo_app, segment):
    response = post_token(client, segment, **secret_form(demo_app))
    assert_aadsts(
        response,
        400,
        "invalid_request",
        9001023,
        "The grant type isn't supported over the /common or /consumers endpoints.",
    )


def test_resource_parameter_on_v2(client, tenant, demo_app):
    response = post_token(client, tenant.id, **secret_form(demo_app, resource="https://graph.microsoft.com"))
    assert_aadsts(response, 400, "invalid_request", 901002, "The 'resource' request parameter isn't supported.")


def test_correlation_id_is_the_client_request_id(client, tenant, demo_app):
    response = post_token(
        client,
        tenant.id,
        headers={"client-request-id": "3f1e0c2a-aaaa-bbbb-cccc-000000000001"},
        **secret_form(demo_app, client_secret="bad"),
    )
    body = assert_aadsts(response, 401, "invalid_client", 7000215)
    assert body["correlation_id"] == "3f1e0c2a-aaaa-bbbb-cccc-000000000001"
    assert response.headers["client-request-id"] == "3f1e0c2a-aaaa-bbbb-cccc-000000000001"


# ---------------------------------------------------------------- malformed requests never give a 500


def test_json_body_is_not_a_form(client, tenant, demo_app):
    response = client.post(f"/{tenant.id}/oauth2/v2.0/token", json=secret_form(demo_app), base_url=BASE)
    assert_aadsts(response, 400, "invalid_request", 900144, "'grant_type'")


def test_form_encoding_variants_are_decoded(client, tenant, demo_app):
    """Percent-encoded names, `+` for spaces, empty pairs, charset parameter: all as a form decoder reads them."""
    secret = quote_plus(demo_app.secrets[0].value)
    raw = (
        f"&grant%5Ftype=client_credentials&&client_id={demo_app.app_id}&client_secret={secret}"
        "&scope=openid+https%3A%2F%2Fgraph.microsoft.com%2F.default+profile&claims="
    )
    response = client.post(
        f"/{tenant.id}/oauth2/v2.0/token",
        data=raw.encode(),
        base_url=BASE,
        content_type="Application/X-WWW-Form-Urlencoded; charset=utf-8",
    )
    assert response.status_code == 200, response.get_json()
    assert decode_unverified(response.get_json()["access_token"])["aud"] == "https://graph.microsoft.com"


def test_of_a_repeated_parameter_the_first_value_counts(client, tenant, demo_app):
    secret = quote_plus(demo_app.secrets[0].value)
    form = f"grant_type=client_credentials&client_id={demo_app.app_id}&client_secret={secret}&scope={GRAPH_SCOPE}"
    raw = form + "&client_secret=wrong&grant_type=password"
    response = client.post(
        f"/{tenant.id}/oauth2/v2.0/token", data=raw, base_url=BASE, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200, response.get_json()
    reversed_raw = form.replace(f"client_secret={secret}", "client_secret=wrong&client_secret=" + secret)
    response = client.post(
        f"/{tenant.id}/oauth2/v2.0/token",
        data=reversed_raw,
        base_url=BASE,
        content_type="application/x-www-form-urlencoded",
    )
    assert_aadsts(response, 401, "invalid_client", 7000215)


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b"grant_type=%ZZ&&&==", b"=" * 10, b""])
def test_garbled_form_bodies(client, tenant, raw):
    response = client.post(
        f"/{tenant.id}/oauth2/v2.0/token", data=raw, base_url=BASE, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_request", "unsupported_grant_type")


def test_huge_body_is_refused_in_entras_format(client, emulator, tenant, demo_app):
    padding = "x" * (emulator.settings.max_body_bytes + 1)
    response = post_token(client, tenant.id, **secret_form(demo_app, padding=padding))
    assert response.status_code == 413
    body = response.get_json()
    assert body["error"] == "invalid_request" and body["error_codes"] == []
    assert "exceeds the emulator's limit" in body["error_description"]


def test_get_on_the_token_endpoint(client, tenant):
    response = client.get(f"/{tenant.id}/oauth2/v2.0/token", base_url=BASE)
    assert_aadsts(
        response,
        405,
        "invalid_request",
        900561,
        "The endpoint only accepts OPTIONS, POST requests. Received a GET request.",
    )


def test_unknown_identity_path_gets_a_json_404(client):
    response = client.get("/contoso.com/oauth2/v2.0/nothing", base_url=BASE)
    assert response.status_code == 404
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["request-id"]


def test_every_token_request_is_in_the_request_log_with_its_app_and_answer(client, emulator, tenant, demo_app):
    headers = {"client-request-id": "5f0c9d1e-0000-4000-8000-000000000001", "User-Agent": "daemon/1.0"}
    assert post_token(client, tenant.id, headers=headers, **secret_form(demo_app)).status_code == 200
    wrong = post_token(client, tenant.id, **secret_form(demo_app, client_secret="wrong"))
    assert wrong.status_code == 401
    issued, refused = (r.to_json() for r in emulator.log.query(kind="token"))
    assert (issued["outcome"], issued["app_id"], issued["tenant_id"], issued["status"]) == (
        "issued",
        demo_app.app_id,
        tenant.id,
        200,
    )
    assert (issued["client_request_id"], issued["user_agent"]) == (headers["client-request-id"], "daemon/1.0")
    assert (refused["outcome"], refused["path"], refused["error_code"]) == (
        "refused",
        f"/{tenant.id}/oauth2/v2.0/token",
        "AADSTS7000215",
    )
    assert refused["client_request_id"] is None  # the client sent none; the answer's header repeats the request id
    assert emulator.log.query(kind="graph") == []


def test_a_token_requests_client_request_id_may_come_in_the_query_as_msal_node_sends_it(
    client, emulator, tenant, demo_app
):
    path = f"/{tenant.id}/oauth2/v2.0/token?client-request-id=0b1d2c3e-0000-4000-8000-000000000002"
    assert client.post(path, data=secret_form(demo_app), base_url=BASE).status_code == 200
    [record] = emulator.log.query(kind="token")
    assert record.client_request_id == "0b1d2c3e-0000-4000-8000-000000000002"
