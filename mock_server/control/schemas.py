"""JSON Schemas of the control API's bodies and answers, as the route declarations use them.

An object the tenant file also describes (an application, a mailbox, an access policy, ...) is the tenant file's
own definition (`$defs` of state/tenantfile/schema.py), by reference: a create body is checked against exactly
that definition, and an answer is that definition with the fields it always carries required (and the few the
answer adds). The OpenAPI document puts them all under `components/schemas`.
"""

from __future__ import annotations

import copy
from typing import Any

from m365_mock.state.tenantfile.schema import MAX_GENERATED, SCHEMA

COMPONENTS_PATH = "#/components/schemas/"
ISO_TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
NON_EMPTY = {"type": "string", "pattern": r"\S"}


def ref(name: str) -> dict[str, Any]:
    """A reference to a schema of the document (`application`, `Mailbox`, ...)."""
    return {"$ref": f"{COMPONENTS_PATH}{name}"}


def listing(items: dict[str, Any]) -> dict[str, Any]:
    """`{"value": [...]}`, the shape of every list the control API answers."""
    return _closed({"value": {"type": "array", "items": items}}, ["value"])


def _closed(properties: dict[str, Any], required: list[str] | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties, **more}
    if required:
        out["required"] = required
    return out


def _from_tenant_file(node: Any) -> Any:
    """A tenant-file definition with its `#/$defs/x` references pointing into the document's components."""
    if isinstance(node, dict):
        return {
            key: (f"{COMPONENTS_PATH}{value.removeprefix('#/$defs/')}" if key == "$ref" else _from_tenant_file(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_from_tenant_file(item) for item in node]
    return node


def _answer(definition: str, required: list[str], **added: dict[str, Any]) -> dict[str, Any]:
    """A tenant-file definition as an answer: `required` always present, `added` fields the answer also has."""
    schema = copy.deepcopy(_from_tenant_file(SCHEMA["$defs"][definition]))
    schema.pop("oneOf", None)  # a certificate's pem-or-file choice is for what is sent
    schema["properties"].update(added)
    schema["required"] = required + list(added)
    return schema


# ---------------------------------------------------------------- answers


def _lifetime() -> dict[str, Any]:
    return {
        "in_force": {"type": "boolean", "description": "Whether it applies to Graph requests now."},
        "effective_from": {**NULLABLE_TIME, "description": "When a new rule takes effect (propagation delay)."},
        "removed_from": {**NULLABLE_TIME, "description": "When a removed rule stops applying."},
    }


ERROR = _closed(
    {
        "error": _closed(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "description": "One entry per wrong place when a body is refused for several reasons.",
                    "items": _closed(
                        {"code": {"type": "string"}, "target": {"type": "string"}, "message": {"type": "string"}},
                        ["code", "target", "message"],
                    ),
                },
            },
            ["code", "message"],
        )
    },
    ["error"],
)

TENANT = _closed(
    {"id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "domains": {"type": "array"}},
    ["id", "name", "domains"],
)

OUTBOUND = _closed(
    {
        "sentDateTime": ISO_TIME,
        "sender": {"type": "string"},
        "recipients": {"type": "array", "items": {"type": "string"}},
        "subject": {"type": "string"},
        "body": _closed({"contentType": {"enum": ["text", "html"]}, "content": {"type": "string"}}),
        "internetMessageId": {"type": "string"},
        "toRecipients": {"type": "array", "items": {"type": "object"}},
        "ccRecipients": {"type": "array", "items": {"type": "object"}},
        "bccRecipients": {"type": "array", "items": {"type": "object"}},
        "attachments": {
            "type": "array",
            "description": "What it carried (names, types, sizes and a file's SHA-256; the bytes are not kept).",
            "items": _closed(
                {
                    "name": {"type": "string"},
                    "contentType": {"type": ["string", "null"]},
                    "size": {"type": "integer", "minimum": 0},
                    "sha256": {"type": ["string", "null"]},
                },
                ["name", "contentType", "size", "sha256"],
            ),
        },
    },
    ["sentDateTime", "sender", "recipients", "subject", "body"],
)

LOG_RECORD = _closed(
    {
        "time": ISO_TIME,
        "seq": {"type": "integer", "minimum": 1, "description": "The record's number in the log, from 1."},
        "kind": {"enum": ["graph", "token", "other"]},
        "request_id": {"type": "string"},
        "client_request_id": {
            "type": ["string", "null"],
            "description": "The client-request-id the client sent; null when it sent none.",
        },
        "user_agent": {"type": ["string", "null"]},
        "method": {"type": "string"},
        "path": {"type": "string"},
        "status": {"type": "integer", "description": "0: the connection was closed without an answer (a fault rule)."},
        "tenant_id": {"type": ["string", "null"]},
        "app_id": {"type": ["string", "null"]},
        "mailbox": {"type": ["string", "null"]},
        "operation": {"type": ["string", "null"]},
        "outcome": {"enum": ["granted", "denied", "error", "issued", "refused"]},
        "decision": {"type": ["string", "null"], "description": "Why the request was allowed or denied."},
        "error_code": {"type": ["string", "null"]},
        "batch_request_id": {
            "type": ["string", "null"],
            "description": "For a request sent inside a $batch, the request id of that $batch.",
        },
        "retry_after": {"type": ["integer", "null"], "description": "The answer's Retry-After, in seconds."},
        "fault": {"type": ["string", "null"], "description": "The id of the fault rule that acted on the request."},
        "fault_action": {"type": ["string", "null"], "description": "What that rule did (status 0: no answer)."},
    },
    ["time", "seq", "kind", "request_id", "method", "path", "status", "outcome"],
)

TIME = _closed(
    {"now": {**ISO_TIME, "description": "The emulator's now, UTC."}, "frozen": {"type": "boolean"}},
    ["now", "frozen"],
)

SETTINGS_FIELDS = {
    "tokenLifetime": {"type": "integer", "minimum": 1, "maximum": 365 * 86400, "description": "Seconds."},
    "propagationDelay": {
        "type": "integer",
        "minimum": 0,
        "maximum": 10 * 365 * 86400,
        "description": "Seconds before a policy or role-assignment change takes effect.",
    },
    "nestedGroupMembership": {"type": "boolean", "description": "Group scopes include nested groups' members."},
}
_WHOLE = {"type": "integer", "minimum": 1}
THROTTLING_FIELDS = {
    "enabled": {"type": "boolean", "description": "false turns every limit off."},
    "mailboxRequests": {**_WHOLE, "description": "Requests per app and mailbox in a window (10000)."},
    "mailboxWindow": {**_WHOLE, "description": "That window in seconds (600)."},
    "uploadBytes": {**_WHOLE, "description": "PATCH/POST/PUT body bytes per app and mailbox in a window (150 MiB)."},
    "uploadWindow": {**_WHOLE, "description": "That window in seconds (300)."},
    "mailboxConcurrency": {**_WHOLE, "description": "Requests at once per app and mailbox (4)."},
    "concurrencyScope": {"enum": ["mailbox", "app"], "description": "Count requests at once per mailbox or per app."},
    "appRequestsPerSecond": {**_WHOLE, "description": "Graph requests per app a second (2000)."},
    "tokenRequests": {**_WHOLE, "description": "Token requests per app in a window (200)."},
    "tokenWindow": {**_WHOLE, "description": "That window in seconds (60)."},
}
SETTINGS_FIELDS = {
    **SETTINGS_FIELDS,
    "throttling": _closed(
        THROTTLING_FIELDS, description="Throttling limits; a change gives only the limits it changes."
    ),
}
SETTINGS = _closed(
    {**SETTINGS_FIELDS, "throttling": _closed(THROTTLING_FIELDS, list(THROTTLING_FIELDS))}, list(SETTINGS_FIELDS)
)

THROTTLING_STATE = _closed(
    {
        "limits": _closed(THROTTLING_FIELDS, list(THROTTLING_FIELDS)),
        "value": {
            "type": "array",
            "items": _closed(
                {
                    "tenant_id": {"type": "string"},
                    "app_id": {"type": "string"},
                    "mailbox": {"type": "string", "description": "The mailbox's address."},
                    "requests": {"type": "integer", "description": "Requests in the current window."},
                    "upload_bytes": {"type": "integer", "description": "Body bytes in the current upload window."},
                    "in_flight": {"type": "integer", "description": "Requests being answered now."},
                    "next_reset": {
                        "type": ["string", "null"],
                        "description": "When the oldest counted request leaves the window (emulator time).",
                    },
                },
                ["tenant_id", "app_id", "mailbox", "requests", "upload_bytes", "in_flight", "next_reset"],
            ),
        },
    },
    ["limits", "value"],
)

MAILBOX_FOLDER = _closed(
    {
        "id": {"type": "string"},
        "displayName": {"type": "string"},
        "path": {"type": "string", "description": "Display names from the top of the mailbox, joined by '/'."},
        "wellKnownName": {"type": ["string", "null"]},
        "totalItemCount": {"type": "integer", "minimum": 0},
        "unreadItemCount": {"type": "integer", "minimum": 0},
    },
    ["id", "displayName", "path", "wellKnownName", "totalItemCount", "unreadItemCount"],
)

MESSAGE_SUMMARY = _closed(
    {
        "id": {"type": "string"},
        "subject": {"type": "string"},
        "from": {"type": ["string", "null"], "description": "The sender's address."},
        "receivedDateTime": ISO_TIME,
        "isRead": {"type": "boolean"},
        "categories": {"type": "array", "items": {"type": "string"}},
        "flagStatus": {"type": "string"},
        "hasAttachments": {"type": "boolean"},
        "internetMessageId": {"type": "string"},
        "parentFolderId": {"type": "string"},
    },
    [
        "id",
        "subject",
        "from",
        "receivedDateTime",
        "isRead",
        "categories",
        "flagStatus",
        "hasAttachments",
        "internetMessageId",
        "parentFolderId",
    ],
)

MAILBOX_MESSAGES = _closed(
    {
        "folders": {
            "type": "array",
            "items": MAILBOX_FOLDER,
            "description": "The folder asked for, or every folder of the mailbox, with its counts.",
        },
        "total": {"type": "integer", "minimum": 0, "description": "Messages in the folder (or the mailbox)."},
        "value": {"type": "array", "items": MESSAGE_SUMMARY, "description": "The newest `top`, newest first."},
    },
    ["folders", "total", "value"],
)

CREATED_MESSAGES = _closed(
    {
        "created": {"type": "integer", "minimum": 1},
        "ids": {"type": "array", "items": {"type": "string"}, "description": "The new ids (the last 100)."},
    },
    ["created", "ids"],
)

POLICY_TEST = _closed(
    {
        "app_id": {"type": "string"},
        "mailbox": {"type": "string"},
        "mailbox_id": {"type": "string"},
        "mailbox_sid": {"type": "string"},
        "access_check_result": {"enum": ["Granted", "Denied"]},
        "reason": {"type": "string"},
    },
    ["app_id", "mailbox", "mailbox_id", "mailbox_sid", "access_check_result", "reason"],
)

AUTHORIZATION_TEST = listing(
    _closed(
        {
            "role_name": {"type": "string"},
            "granted_permissions": {"type": "array", "items": {"type": "string"}},
            "allowed_resource_scope": {"type": "string"},
            "scope_type": {"enum": ["Organization", "CustomRecipientScope"]},
            "in_scope": {"oneOf": [{"type": "boolean"}, {"const": "Not Run"}]},
        },
        ["role_name", "granted_permissions", "allowed_resource_scope", "scope_type", "in_scope"],
    )
)

_TENANT_FILE = {k: v for k, v in SCHEMA.items() if k not in ("$defs", "$schema", "$id")}

ANSWERS: dict[str, dict[str, Any]] = {
    "Error": ERROR,
    "Tenant": TENANT,
    "Application": _answer(
        "application",
        [
            "app_id",
            "display_name",
            "object_id",
            "service_principal_id",
            "permissions",
            "admin_consent",
            "enabled",
            "secrets",
            "certificates",
        ],
    ),
    "Secret": _answer("secret", ["id", "value", "display_name", "starts", "expires"]),
    "Certificate": _answer("certificate", ["id", "display_name", "pem"]),
    "Mailbox": _answer("mailbox", ["id", "address", "display_name", "type"]),
    "Group": _answer("group", ["id", "address", "display_name", "members"]),
    "AccessPolicy": _answer(
        "accessPolicy",
        ["id", "app_id", "scope", "access_right", "description"],
        identity={"type": "string", "description": "As Get-ApplicationAccessPolicy shows it."},
        scope_name={"type": "string"},
        scope_identity={"type": "string"},
        scope_identity_raw={"type": "string"},
        shard_type={"const": "All"},
        is_valid={"type": "boolean"},
        object_state={"type": "string"},
        **_lifetime(),
    ),
    "ServicePrincipal": _answer(
        "servicePrincipal", ["app_id", "object_id", "display_name"], identity={"type": "string"}
    ),
    "ManagementScope": _answer("managementScope", ["name", "filter"]),
    "RoleAssignment": _answer("roleAssignment", ["name", "role", "app_id"], **_lifetime()),
    "Fault": _answer(
        "fault",
        ["id"],
        action={"type": "string", "description": "What the rule does, in words (the request log shows the same)."},
        matched={"type": "integer", "minimum": 0, "description": "Requests that met its criteria so far."},
        fired={"type": "integer", "minimum": 0, "description": "Times it acted."},
        spent={"type": "boolean", "description": "It acted as many times as `times` allows."},
    ),
    "PolicyTest": POLICY_TEST,
    "AuthorizationTest": AUTHORIZATION_TEST,
    "OutboundMessage": OUTBOUND,
    "LogRecord": LOG_RECORD,
    "Time": TIME,
    "Settings": SETTINGS,
    "Throttling": THROTTLING_STATE,
    "CreatedMessages": CREATED_MESSAGES,
    "MailboxMessages": MAILBOX_MESSAGES,
    "TenantFile": _from_tenant_file(_TENANT_FILE),
}


def components() -> dict[str, dict[str, Any]]:
    """Every schema of the document: the tenant file's definitions (by their names there) and the answers."""
    return {**_from_tenant_file(SCHEMA["$defs"]), **ANSWERS}


# ---------------------------------------------------------------- bodies that are not tenant-file entries

APPLICATION_CHANGE = _closed(
    {
        "permissions": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "description": "Graph application permissions, a list or a comma-separated string.",
        },
        "admin_consent": {"type": "boolean"},
        "enabled": {"type": "boolean"},
        "display_name": NON_EMPTY,
    },
)

MAILBOX_CHANGE = _closed(
    {
        "display_name": NON_EMPTY,
        "custom_attributes": {
            **SCHEMA["$defs"]["mailbox"]["properties"]["custom_attributes"],
            "description": "Merged into the mailbox's; an empty string clears one.",
        },
    }
)

MEMBER = _closed({"member": {**NON_EMPTY, "description": "A mailbox or group: address, alias or id."}}, ["member"])

POLICY_CHANGE = _closed({"description": {"type": "string"}}, ["description"])

POLICY_TEST_BODY = _closed(
    {
        "app_id": {**NON_EMPTY, "description": "An app id or display name."},
        "mailbox": {**NON_EMPTY, "description": "A mailbox."},
        "recipient": {**NON_EMPTY, "description": "A mailbox or a mail-enabled security group (wins over mailbox)."},
    },
    ["app_id"],
)

AUTHORIZATION_TEST_BODY = _closed({"resource": {**NON_EMPTY, "description": "A mailbox to test the scopes on."}})

GENERATE = _closed(
    {
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_GENERATED},
        "seed": {"type": "integer", "description": "Default 365: the same seed gives the same mail."},
        "unreadRatio": {"type": "number", "minimum": 0, "maximum": 1, "description": "Default 0.3."},
        "folder": {"type": "string", "description": "A well-known folder name or a folder id; default inbox."},
    },
    ["count"],
    description="Generated mail (Faker, fixed seed).",
)

MESSAGE = {
    "type": "object",
    "description": "One message, in Graph's message properties, delivered as if from outside.",
    "properties": {
        "subject": {"type": "string"},
        "body": {"type": "object", "properties": {"contentType": {"enum": ["text", "html"]}, "content": {}}},
        "from": {"type": "object", "properties": {"emailAddress": {"type": "object"}}},
        "toRecipients": {"type": "array", "items": {"type": "object"}},
        "folder": {"type": "string", "description": "A well-known folder name or a folder id; default inbox."},
        "receivedDateTime": {**ISO_TIME, "description": "Default: now."},
        "attachments": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Graph attachments, each with its @odata.type (#microsoft.graph.fileAttachment, ...).",
        },
    },
    "not": {"anyOf": [{"required": ["count"]}, {"required": ["mime"]}]},
}

MIME_MESSAGE = _closed(
    {
        "mime": {"type": "string", "description": "Base64 of an RFC 5322 message (headers, body, attachments)."},
        "folder": {"type": "string", "description": "A well-known folder name or a folder id; default inbox."},
        "receivedDateTime": {**ISO_TIME, "description": "Default: now."},
    },
    ["mime"],
    description="One message in MIME, delivered as if from outside.",
)

DELIVERY = {"oneOf": [GENERATE, MESSAGE, MIME_MESSAGE]}

TIME_CHANGE = _closed(
    {
        "advance": {"type": "number", "description": "Seconds to move the clock (within ±100 years)."},
        "freeze": {
            "oneOf": [{"const": True}, ISO_TIME],
            "description": "true: stop the clock now; a time: stop it there (years 1971-2999).",
        },
        "resume": {"type": "boolean", "description": "true: let a frozen clock run again."},
        "reset": {"type": "boolean", "description": "true: back to real time."},
    }
)

SETTINGS_CHANGE = _closed(SETTINGS_FIELDS)
