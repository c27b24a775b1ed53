"""The JSON Schema of tenant files (also written to schema.json beside this module, for editors).

Every key at every level is listed; any other key is refused. Values the schema cannot judge (GUIDs, date-times,
permission names, domains, Exchange's rules) are checked by the reader. Enumerated values are written here in
their documented spelling; the reader accepts them in any case.

`python -m m365_mock.state.tenantfile.schema` writes schema.json from SCHEMA.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from m365_mock.state.faults.schema import FAULT
from m365_mock.state.mailstate import MAIL_SCHEMA, OUTBOUND_SCHEMA

MAX_GENERATED = 200_000
MAX_SECRET_DAYS = 36_500


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _text(description: str, **more: Any) -> dict[str, Any]:
    """A string that is not empty or blank."""
    return {"type": "string", "pattern": r"\S", "description": description, **more}


def _guid(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "uuid", "description": description}


def _date(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "description": description}


def _list(items: dict[str, Any], description: str, **more: Any) -> dict[str, Any]:
    """A list; left empty (`key:` with nothing after it in YAML) it is an empty list."""
    return {"type": ["array", "null"], "items": items, "description": description, **more}


def _object(description: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "description": description, "additionalProperties": False}
    if required:
        out["required"] = required
    out["properties"] = properties
    return out


_ADDRESS = {"type": "string", "format": "email", "pattern": r"\S"}

_WHOLE = {"type": "integer", "minimum": 1}
THROTTLING = _object(
    "Throttling: the limits Outlook and Entra apply (defaults: the documented ones); `enabled: false` turns "
    "them all off. Scale them down in tests (e.g. 20 requests per 60 s) instead of waiting ten minutes.",
    {
        "enabled": {"type": "boolean", "description": "Default true."},
        "mailbox_requests": {**_WHOLE, "description": "Requests per app and mailbox in a window; default 10000."},
        "mailbox_window": {**_WHOLE, "description": "That window, in seconds; default 600."},
        "upload_bytes": {**_WHOLE, "description": "PATCH/POST/PUT body bytes per app and mailbox; default 150 MiB."},
        "upload_window": {**_WHOLE, "description": "That window, in seconds; default 300."},
        "mailbox_concurrency": {**_WHOLE, "description": "Requests at once per app and mailbox; default 4."},
        "concurrency_scope": {
            "enum": ["mailbox", "app"],
            "description": "mailbox (default): 4 at once per app and mailbox; app: 4 at once per app, whatever the "
            "mailboxes (the documentation has said both).",
        },
        "app_requests_per_second": {**_WHOLE, "description": "Graph requests per app a second; default 2000."},
        "token_requests": {**_WHOLE, "description": "Token requests per app in a window; default 200."},
        "token_window": {**_WHOLE, "description": "That window, in seconds; default 60."},
    },
)

SETTINGS = {
    **_object(
        "Emulator-wide settings.",
        {
            "token_lifetime": {
                "type": "integer",
                "minimum": 1,
                "maximum": 365 * 86400,
                "description": "Seconds an access token lives (`expires_in`); default 3599.",
            },
            "max_body_bytes": {
                "type": "integer",
                "minimum": 1,
                "description": "Requests with larger bodies are refused with 413; default 4 MiB (4194304).",
            },
            "propagation_delay": {
                "type": "integer",
                "minimum": 0,
                "maximum": 10 * 365 * 86400,
                "description": "Seconds before a policy or role-assignment change takes effect (real: up to 1 h); "
                "default 0.",
            },
            "nested_group_membership": {
                "type": "boolean",
                "description": "Access-policy group scopes include members of nested groups; default true.",
            },
            "persist": {
                "type": "boolean",
                "description": "Keep the world (mail included) in the state folder across restarts, as "
                "`serve --persist` does; default false.",
            },
            "throttling": THROTTLING,
        },
    ),
    "type": ["object", "null"],
}

MESSAGE = _object(
    "A message put into the mailbox at start-up, as received mail.",
    {
        "subject": {"type": "string", "description": "The subject."},
        "from": _text('The sender: "address" or "Name <address>"; default sender@external.example.'),
        "to": _list({"type": "string"}, "Recipient addresses shown on the message; default the mailbox itself."),
        "body": {"type": "string", "description": "The body."},
        "body_type": {"enum": ["text", "html"], "description": "text or html (any case); default text."},
        "received": _date("When it was received (ISO 8601, UTC `Z` or an offset); default the start-up time."),
        "read": {"type": "boolean", "description": "Whether it is read; default false."},
        "folder": _text(
            "A well-known folder name (inbox, archive, ...) or a folder made under the root; default inbox."
        ),
        "importance": {"enum": ["low", "normal", "high"], "description": "low, normal or high (any case)."},
        "categories": _list({"type": "string"}, "Category names."),
    },
)

MAIL = MAIL_SCHEMA

MAILBOX = _object(
    "A user or shared mailbox.",
    {
        "address": {
            **_ADDRESS,
            "description": "Primary SMTP address = user principal name; in one of the tenant's domains.",
        },
        "type": {"enum": ["user", "shared"], "description": "user or shared (any case); default user."},
        "display_name": _text("Display name; default from the local part of the address."),
        "aliases": _list(_ADDRESS, "Further addresses that deliver here, in the tenant's domains."),
        "custom_attributes": {
            "type": ["object", "null"],
            "description": "CustomAttribute1..15, for management-scope filters: `{1: emea}` or "
            "`{CustomAttribute1: emea}`.",
            "propertyNames": {
                "pattern": "^(?:[Cc][Uu][Ss][Tt][Oo][Mm][Aa][Tt][Tt][Rr][Ii][Bb][Uu][Tt][Ee])?(?:[1-9]|1[0-5])$",
                "description": "CustomAttribute1..15 (or 1..15)",
            },
            "additionalProperties": {"type": ["string", "integer"]},
        },
        "id": _guid("Object id; derived from the address when left out. Unique across every tenant."),
        "generate": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_GENERATED,
            "description": "This many generated messages in the Inbox (Faker, fixed seed).",
        },
        "messages": _list(_ref("message"), "Messages put into the mailbox, as received mail."),
        "mail": _ref("mail"),
    },
    ["address"],
)

GROUP = _object(
    "A mail-enabled security group (an access-policy scope).",
    {
        "address": {**_ADDRESS, "description": "The group's SMTP address, in one of the tenant's domains."},
        "display_name": _text("Display name; default the local part of the address."),
        "members": _list({"type": "string"}, "Mailboxes or other groups, by address, alias or id."),
        "id": _guid("Object id; derived from the address when left out. Unique across every tenant."),
    },
    ["address"],
)

SECRET = _object(
    "A client secret.",
    {
        "display_name": {"type": "string", "description": "The secret's description."},
        "value": _text("The secret's value; left out: generated and printed once at start-up."),
        "id": _guid('The "Secret ID" (sending it instead of the value fails); derived when left out.'),
        "starts": _date("Valid from (ISO 8601); default the load time."),
        "expires": _date("Valid up to, not including (ISO 8601); wins over expires_in_days."),
        "expires_in_days": {
            "type": "number",
            "minimum": -MAX_SECRET_DAYS,
            "maximum": MAX_SECRET_DAYS,
            "description": "Days from the load time until it expires; default 730.",
        },
    },
)

CERTIFICATE = {
    **_object(
        "A public certificate credential: give exactly one of `pem` and `file`.",
        {
            "display_name": {"type": "string", "description": "The certificate's description."},
            "pem": _text("The public certificate, PEM."),
            "file": _text("A PEM file, relative to the tenant file (not in the control API)."),
            "id": _guid("Key id; derived from the thumbprint when left out."),
        },
    ),
    "oneOf": [{"required": ["pem"]}, {"required": ["file"]}],
}

APPLICATION = _object(
    "An app registration with its service principal.",
    {
        "display_name": _text("The app's name."),
        "app_id": _guid("Application (client) id; derived from the name when left out."),
        "object_id": _guid("The app registration's object id; derived when left out."),
        "service_principal_id": _guid(
            "The service principal's (Enterprise application's) object id; derived when left out."
        ),
        "permissions": _list(
            {"type": "string"},
            "Graph application permissions (app roles), in any case: Mail.ReadBasic.All, Mail.ReadBasic, Mail.Read, "
            "Mail.ReadWrite, Mail.Send, MailboxSettings.Read, MailboxSettings.ReadWrite, User.Read.All, "
            "User.ReadBasic.All.",
        ),
        "admin_consent": {"type": "boolean", "description": "false: tokens are issued without `roles`; default true."},
        "enabled": {
            "type": "boolean",
            "description": 'false: AADSTS7000112 "Application ... is disabled"; default true.',
        },
        "secrets": _list(_ref("secret"), "Client secrets."),
        "certificates": _list(_ref("certificate"), "Certificate credentials."),
    },
    ["display_name"],
)

ACCESS_POLICY = _object(
    "An Exchange application access policy (New-ApplicationAccessPolicy), in force at start-up.",
    {
        "app_id": {
            "type": ["string", "array"],
            "items": {"type": "string", "pattern": r"\S"},
            "minItems": 1,
            "pattern": r"\S",
            "description": 'An app id, the display name of an app of this tenant, a list of those, or "*".',
        },
        "scope": _text("A mail-enabled security group or a user mailbox (address, alias or id)."),
        "access_right": {
            "enum": ["RestrictAccess", "DenyAccess"],
            "description": "RestrictAccess or DenyAccess (any case).",
        },
        "description": {"type": "string", "description": "The policy's description."},
        "id": _guid("The policy's identity; derived when left out."),
    },
    ["app_id", "scope", "access_right"],
)

SERVICE_PRINCIPAL = _object(
    "An Exchange service principal (New-ServicePrincipal), needed before RBAC role assignments.",
    {
        "app_id": _text("The app: its id or the display name of an app of this tenant."),
        "object_id": _guid("The Enterprise application's object id; default the app's service principal."),
        "display_name": {"type": "string", "description": "Display name; default the app's name."},
    },
    ["app_id"],
)

MANAGEMENT_SCOPE = _object(
    "An Exchange management scope (New-ManagementScope).",
    {
        "name": _text("The scope's name."),
        "filter": _text(
            "The RecipientRestrictionFilter, e.g. \"CustomAttribute1 -eq 'emea' -and RecipientTypeDetails -eq "
            "'SharedMailbox'\"."
        ),
    },
    ["name", "filter"],
)

ROLE_ASSIGNMENT = _object(
    "An RBAC for Applications role assignment (New-ManagementRoleAssignment -App), in force at start-up.",
    {
        "role": _text(
            "Application Mail.Read / .ReadBasic / .ReadWrite / .Send, Application Mail Full Access, "
            "Application MailboxSettings.*, ..."
        ),
        "app_id": _text("The service principal: app id or display name."),
        "scope": _text("The name of a management scope; left out: the whole organisation."),
        "name": _text("The assignment's name; default from the role and the app."),
    },
    ["role", "app_id"],
)

TENANT = _object(
    "One Entra tenant with its Exchange Online organisation.",
    {
        "name": {"type": "string", "description": "Display name; default the first label of the first domain."},
        "id": _guid("Tenant id; derived from the first domain when left out."),
        "domains": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "format": "hostname", "pattern": r"\S"},
            "description": "Verified (accepted) domains; the first is the default domain.",
        },
        "mailboxes": _list(_ref("mailbox"), "User and shared mailboxes."),
        "groups": _list(_ref("group"), "Mail-enabled security groups (access-policy scopes)."),
        "applications": _list(_ref("application"), "App registrations."),
        "access_policies": _list(_ref("accessPolicy"), "Exchange application access policies (in force at start-up)."),
        "service_principals": _list(_ref("servicePrincipal"), "New-ServicePrincipal: needed before role assignments."),
        "management_scopes": _list(_ref("managementScope"), "New-ManagementScope."),
        "role_assignments": _list(_ref("roleAssignment"), "New-ManagementRoleAssignment -App."),
    },
    ["domains"],
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://m365-mock.example/tenant-file.schema.json",
    "title": "m365-mock tenant file",
    "description": "A world of tenants for `m365-mock serve --config`, POST /_m365/import and GET /_m365/export "
    "(docs/tenant-file.md).",
    "type": "object",
    "additionalProperties": False,
    "required": ["tenants"],
    "properties": {
        "settings": _ref("settings"),
        "tenants": {
            "type": "array",
            "minItems": 1,
            "items": _ref("tenant"),
            "description": "The tenants; at least one.",
        },
        "outbound": OUTBOUND_SCHEMA,
        "faults": _list(_ref("fault"), "Fault rules in force from the start (docs/faults.md)."),
    },
    "$defs": {
        "settings": SETTINGS,
        "tenant": TENANT,
        "mailbox": MAILBOX,
        "message": MESSAGE,
        "mail": MAIL,
        "group": GROUP,
        "application": APPLICATION,
        "secret": SECRET,
        "certificate": CERTIFICATE,
        "accessPolicy": ACCESS_POLICY,
        "servicePrincipal": SERVICE_PRINCIPAL,
        "managementScope": MANAGEMENT_SCOPE,
        "roleAssignment": ROLE_ASSIGNMENT,
        "fault": FAULT,
    },
}

SCHEMA_FILE = Path(__file__).resolve().parent / "schema.json"


def schema_text() -> str:
    """schema.json as it must read."""
    return json.dumps(SCHEMA, indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
