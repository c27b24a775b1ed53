"""The control API's OpenAPI 3.1 document, written from the route declarations (api.py) and served at
/_m365/openapi.json without the admin key.

Each declared route appears with its path and query parameters, its request body, its answers, and, for every
refusal status it may give, the error shape with the codes it uses at that status.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from importlib import metadata
from typing import Any

from flask import Response

from m365_mock.control import schemas as s
from m365_mock.control.api import ADMIN_HEADER, OPERATIONS, Operation, Refusal, route
from m365_mock.web import json_response

# What a path parameter names, with an example from the demo tenant.
PATH_PARAMETERS: dict[str, tuple[str, str]] = {
    "tenant": ("A tenant: its id or one of its domains.", "contoso.onmicrosoft.com"),
    "app": ("An app registration: its app id or display name (any case).", "Contact Center Connector"),
    "secret": ("A client secret's id (the Secret ID).", "00000000-0000-0000-0000-000000000000"),
    "certificate": ("A certificate's key id or thumbprint.", "0000000000000000000000000000000000000000"),
    "mailbox": ("A mailbox: its address, an alias or its id.", "support@contoso.onmicrosoft.com"),
    "address": ("A mailbox of any tenant: its address, an alias or its id.", "support@contoso.onmicrosoft.com"),
    "group": ("A group: its address, name or id.", "cctr_sec_group"),
    "member": ("A member of the group: address, alias or id.", "support@contoso.onmicrosoft.com"),
    "policy": ("An access policy's identity (a GUID).", "00000000-0000-0000-0000-000000000000"),
    "principal": ("A service principal: app id, object id or display name.", "Contact Center Connector"),
    "scope": ("A management scope's name.", "EMEA mailboxes"),
    "assignment": ("A role assignment's name.", "Application Mail.Read-Contact Center Connector"),
    "fault": ("A fault rule's id.", "fault-1"),
}
STATUS_WORDS = {
    400: "The request is wrong",
    401: "No admin key, or the wrong one",
    404: "Nothing by that name",
    405: "Not a method of this route",
    409: "It exists already, or is still in use",
    413: "The body is too large",
    415: "The body is not JSON",
}


@route(
    "GET",
    "/openapi.json",
    summary="This document: the control API in OpenAPI 3.1, without the admin key",
    tag="emulator",
    public=True,
    answers={200: {"type": "object", "required": ["openapi", "paths"]}},
)
def openapi_document() -> Response:
    return json_response(document())


def document() -> dict[str, Any]:
    """The OpenAPI document of every declared control route."""
    return _document(len(OPERATIONS))


@functools.cache
def _document(_routes: int) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for operation in OPERATIONS:
        paths[operation.path][operation.method.lower()] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "m365-mock control API",
            "version": _version(),
            "description": "The emulator's own API: the tenant world (apps, mailboxes, groups, access policies, "
            "RBAC for Applications) changed live, mail put in, the request log read, the clock moved, the whole "
            f"world exported and imported. Every route but health and this document needs the admin key in the "
            f"{ADMIN_HEADER} header (printed at start-up and in connection.json).",
        },
        "servers": [{"url": "/_m365"}],
        "security": [{"adminKey": []}],
        "tags": [{"name": tag} for tag in dict.fromkeys(o.tag for o in OPERATIONS)],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"adminKey": {"type": "apiKey", "in": "header", "name": ADMIN_HEADER}},
            "schemas": s.components(),
        },
    }


def _version() -> str:
    try:
        return metadata.version("m365-mock")
    except metadata.PackageNotFoundError:
        return "0"


def _operation(operation: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": operation.endpoint,
        "summary": operation.summary,
        "tags": [operation.tag],
    }
    if operation.description:
        out["description"] = operation.description
    if operation.public:
        out["security"] = []
    parameters = [_path_parameter(name) for name in operation.parameters]
    parameters += [
        {"name": q.name, "in": "query", "required": False, "description": q.description, "schema": q.schema}
        for q in operation.query
    ]
    if parameters:
        out["parameters"] = parameters
    if operation.body is not None:
        out["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": operation.body}},
        }
    responses: dict[str, Any] = {}
    for status, schema in operation.answers.items():
        answer: dict[str, Any] = {"description": "Done" if status < 300 else STATUS_WORDS.get(status, "")}
        if schema is not None:
            answer["content"] = {"application/json": {"schema": schema}}
        responses[str(status)] = answer
    for status, codes in _refusals_by_status(operation.all_refusals()).items():
        responses[str(status)] = {
            "description": f"{STATUS_WORDS.get(status, 'Refused')}: {', '.join(codes)}",
            "content": {"application/json": {"schema": _error(codes)}},
        }
    out["responses"] = dict(sorted(responses.items()))
    return out


def _path_parameter(name: str) -> dict[str, Any]:
    description, example = PATH_PARAMETERS[name]
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        # One path segment: a `/` in it would name another route.
        "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$", "examples": [example]},
    }


def _refusals_by_status(refusals: list[Refusal]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for refusal in refusals:
        if refusal.code not in found[refusal.status]:
            found[refusal.status].append(refusal.code)
    return dict(sorted(found.items()))


def _error(codes: list[str]) -> dict[str, Any]:
    """The error shape with `code` one of `codes`."""
    return {
        "allOf": [
            s.ref("Error"),
            {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
        ]
    }
