"""GET /_m365/openapi.json: the control API described from the same declarations its routes are registered from."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

from m365_mock.control.api import OPERATIONS
from m365_mock.state.tenantfile.schema import SCHEMA


@pytest.fixture
def document(client) -> dict:
    response = client.get("/_m365/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_served_without_the_admin_key_and_only_to_read(client, document):
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "/_m365"}]
    assert document["components"]["securitySchemes"]["adminKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-M365-Admin-Key",
    }
    assert client.post("/_m365/openapi.json").status_code == 405


def test_every_route_of_the_blueprint_is_in_the_document(app, document):
    """The document is made from the registry the blueprint registers from: nothing is left out or made up."""
    served = {
        (method, re.sub(r"<(\w+)>", r"{\1}", rule.rule.removeprefix("/_m365")))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("control.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented == served
    assert len(documented) == len(OPERATIONS) >= 48


def test_each_operation_lists_its_parameters_body_and_refusals(document):
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        assert operation["summary"] and operation["operationId"], where
        names = re.findall(r"{(\w+)}", path)
        in_path = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert in_path == names, where
        responses = operation["responses"]
        assert any(status.startswith("2") for status in responses), where
        public = operation.get("security") == []
        assert ("401" in responses) is not public, where
        if names:
            assert "404" in responses, where
        if "tenant" in names:
            assert "TenantNotFound" in responses["404"]["description"], where
        if method in ("POST", "PATCH") and path not in ("/reset",):
            assert "requestBody" in operation, where
            assert {"400", "413", "415"} <= set(responses), where
        for status, answer in responses.items():
            if status >= "400":
                schema = answer["content"]["application/json"]["schema"]
                assert schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}, where


def test_create_bodies_are_the_tenant_file_definitions(document):
    paths = document["paths"]
    body = {
        path: paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path in paths
        if "post" in paths[path] and "requestBody" in paths[path]["post"]
    }
    assert body["/tenants/{tenant}/applications"] == {"$ref": "#/components/schemas/application"}
    assert body["/tenants/{tenant}/accessPolicies"] == {"$ref": "#/components/schemas/accessPolicy"}
    assert body["/tenants/{tenant}/roleAssignments"] == {"$ref": "#/components/schemas/roleAssignment"}
    assert body["/import"] == {"$ref": "#/components/schemas/TenantFile"}
    schemas = document["components"]["schemas"]
    assert set(SCHEMA["$defs"]) <= set(schemas)
    assert schemas["secret"]["properties"] == SCHEMA["$defs"]["secret"]["properties"]


def test_the_documented_codes_are_the_ones_answered(admin, document):
    """Spot checks of the codes the document lists per status (the fuzzer checks every answer)."""
    members = document["paths"]["/tenants/{tenant}/groups/{group}/members"]["post"]["responses"]
    codes = members["409"]["content"]["application/json"]["schema"]["allOf"][1]
    assert codes["properties"]["error"]["properties"]["code"]["enum"] == ["MemberAlreadyExists"]
    assert "RecipientNotFound" in members["404"]["description"]
    answer = admin.call("POST", "groups/cctr_sec_group/members", {"member": "ghost@contoso.com"}, expect=404)
    assert answer.get_json()["error"]["code"] == "RecipientNotFound"


def test_the_document_is_valid_json_schema_throughout(document):
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    export = document["paths"]["/export"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert export == {"$ref": "#/components/schemas/TenantFile"}


def test_exports_match_the_documented_answer(admin, document):
    """What GET /export answers is valid against the document (its references resolved in place)."""
    validator = Draft202012Validator(
        _rewrite({"$ref": "#/$defs/TenantFile", "$defs": document["components"]["schemas"]})
    )
    exported = admin.call("GET", "/_m365/export", expect=200).get_json()
    assert list(validator.iter_errors(exported)) == []


def _rewrite(node):
    if isinstance(node, dict):
        return {
            k: (v.replace("#/components/schemas/", "#/$defs/") if k == "$ref" else _rewrite(v)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node
