"""The JSON Schema of scenario files (also written to scenarios/schema.json for editors).

`python -m m365_mock.scenarios.schema` writes scenarios/schema.json from SCHEMA. The kinds of step and the options
they require come from steps.py's table of handlers; this module stays light to import (so does steps.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from m365_mock.scenarios.behaviour import RULE_IDS
from m365_mock.scenarios.steps import STEPS
from m365_mock.state.faults.schema import FAULT

# `do`'s values and the options each kind cannot do without (a step missing one is refused when the file is read):
# both from the runner's table of step handlers, so the schema and the runner cannot disagree.
STEP_KINDS = list(STEPS)
REQUIRED_OPTIONS: dict[str, list[str]] = {kind: list(step.required) for kind, step in STEPS.items()}

_ADDRESSES: dict[str, Any] = {
    "type": ["string", "array"],
    "items": {"type": "string"},
    "description": "one address or a list of addresses",
}

# One message delivered by a `deliver` action, written as in tenant files (docs/tenant-file.md); the runner turns
# it into the control API's Graph message fields.
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "description": "one message arriving from outside, written as in tenant files",
    "additionalProperties": False,
    "properties": {
        "subject": {"type": "string"},
        "from": {"type": "string", "description": '"address" or "Name <address>" (default: an external sender)'},
        "to": {**_ADDRESSES, "description": "recipients shown on the message (default: the mailbox)"},
        "body": {"type": "string", "description": "the body text"},
        "body_type": {"enum": ["text", "html"], "description": "default text"},
        "received": {"type": "string", "description": "ISO 8601 time (default: now on the emulator's clock)"},
        "read": {"type": "boolean", "description": "default false"},
        "folder": {"type": "string", "description": "well-known name or folder id (default inbox)"},
        "importance": {"enum": ["low", "normal", "high"]},
        "categories": {"type": "array", "items": {"type": "string"}},
        "attachments": {"type": "array", "items": {"$ref": "#/$defs/attachment"}},
    },
}

# An attachment a step sends or a delivered message carries: a file, or bytes made from a name and a size.
_ATTACHMENT: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "description": "a file, relative to the scenario file"},
        {
            "type": "object",
            "required": ["name", "size"],
            "additionalProperties": False,
            "description": "made bytes (the same every run) of this size",
            "properties": {
                "name": {"type": "string"},
                "size": {"type": "integer", "minimum": 0, "maximum": 150 * 2**20},
                "content_type": {"type": "string", "description": "default: guessed from the name"},
                "inline": {"type": "boolean", "description": "deliver: an inline attachment (default false)"},
                "content_id": {"type": "string", "description": "deliver: the Content-ID an HTML body cites"},
            },
        },
    ]
}

_ACTION_KINDS: dict[str, Any] = {
    "exo": {"type": "string", "description": "Exchange Online PowerShell lines, as `m365-mock exo` runs them"},
    "control": {
        "type": "object",
        "required": ["method", "path"],
        "additionalProperties": False,
        "properties": {
            "method": {"enum": ["GET", "POST", "PATCH", "DELETE"]},
            "path": {"type": "string", "description": "under /_m365, e.g. /tenants/{tenant}/accessPolicies"},
            "body": {},
            "status": {"type": "integer", "description": "expected status (default: any 2xx)"},
        },
    },
    "deliver": {
        "type": "object",
        "required": ["mailbox"],
        "additionalProperties": False,
        "properties": {
            "mailbox": {"type": "string"},
            "count": {"type": "integer", "minimum": 1, "description": "this many generated messages"},
            "unread_ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "message": _MESSAGE,
        },
    },
    "advance": {"type": "number", "description": "move the emulator's clock forward (seconds)"},
    "settings": {"type": "object", "description": "PATCH /_m365/settings"},
    "certificate": {
        "type": "object",
        "required": ["app"],
        "additionalProperties": False,
        "properties": {"app": {"type": "string"}},
        "description": "make a certificate for the app and upload it; steps with `credential: certificate` use it",
    },
    "fault": {
        **FAULT,
        "description": "put a fault rule in force (docs/faults.md), as POST /_m365/faults; {app_id:Name} works in "
        "`app`",
    },
}

_ACTION: dict[str, Any] = {
    "type": "object",
    "description": "One admin action: exactly one of the properties.",
    "additionalProperties": False,
    "properties": _ACTION_KINDS,
    "oneOf": [{"required": [kind]} for kind in _ACTION_KINDS],
}

_RULES: dict[str, Any] = {"type": "array", "items": {"enum": RULE_IDS}, "uniqueItems": True}
_MAILBOXES: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
# What a `behaviour` step's report must show (docs/scenarios.md, "Judging a daemon's behaviour").
_BEHAVIOUR_EXPECT: dict[str, Any] = {
    "findings": {**_RULES, "description": "behaviour: exactly these rules were broken (any order)"},
    "has_findings": {**_RULES, "description": "behaviour: at least these rules were broken"},
    "no_findings": {**_RULES, "description": "behaviour: none of these rules was broken"},
    "token_requests_at_most": {"type": "integer", "minimum": 0, "description": "behaviour: token requests made"},
    "touched_only": {**_MAILBOXES, "description": "behaviour: it made requests on no mailbox but these"},
    "never_touched": {**_MAILBOXES, "description": "behaviour: it made no request on any of these mailboxes"},
    "sent_client_request_id": {
        "type": "boolean",
        "description": "behaviour: true, every Graph request carried client-request-id; false, one did not",
    },
    "stopped_after_403": {
        "type": "boolean",
        "description": "behaviour: true, a request was refused with 403 and none was asked again within the hour",
    },
    "polls_at_most_per_minute": {
        "type": "number",
        "minimum": 0,
        "description": "behaviour: no folder was listed from the start (or synced) more often a minute",
    },
}


def _closed(required: list[str], properties: dict[str, Any], description: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "description": description,
        "properties": properties,
        **more,
    }


_SUBJECT = {
    "subject": {"type": "string", "description": "exactly this subject"},
    "subject_contains": {"type": "string", "description": "a subject containing this (any case)"},
}
_ONE_SUBJECT = {"oneOf": [{"required": ["subject"]}, {"required": ["subject_contains"]}]}
_COUNT = {"type": "integer", "minimum": 0}

# World conditions (conditions.py): the keys of `wait.until`, and of any step's `expect` (checked after it).
_CONDITIONS: dict[str, Any] = {
    "folder": _closed(
        ["mailbox", "folder"],
        {
            "mailbox": {"type": "string"},
            "folder": {"type": "string", "description": "well-known name, id, display name or path (Inbox/Done)"},
            "total": _COUNT,
            "unread": _COUNT,
            "total_at_least": _COUNT,
        },
        "the folder exists, with these counts",
    ),
    "message": _closed(
        ["mailbox"],
        {
            "mailbox": {"type": "string"},
            "folder": {"type": "string", "description": "default: anywhere in the mailbox"},
            **_SUBJECT,
            "read": {"type": "boolean"},
            "categories": {"type": "array", "items": {"type": "string"}, "description": "each among its categories"},
            "flagged": {"type": "boolean"},
            "has_attachments": {"type": "boolean"},
        },
        "a message with this subject and these properties is there",
        **_ONE_SUBJECT,
    ),
    "no_message": _closed(
        ["mailbox"],
        {"mailbox": {"type": "string"}, "folder": {"type": "string"}, **_SUBJECT},
        "no message with this subject is there",
        **_ONE_SUBJECT,
    ),
    "outbound": _closed(
        [],
        {
            "to": {**_ADDRESSES, "description": "each among its recipients"},
            **_SUBJECT,
            "body_contains": {"type": "string"},
            "attachments": {
                "type": "array",
                "items": _closed(
                    ["name"],
                    {"name": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}},
                    "an attachment it carries, by name (and SHA-256 of its bytes)",
                ),
            },
            "count": {**_COUNT, "description": "exactly this many match (default: at least one)"},
        },
        "mail sent outside every tenant matching this",
    ),
    "log": _closed(
        [],
        {
            "as": {"type": "string", "description": "the app (display name or id)"},
            "app": {"type": "string", "description": "the same as `as`"},
            "mailbox": {"type": "string"},
            "status": {"type": "integer"},
            "outcome": {"enum": ["granted", "denied", "error", "issued", "refused"]},
            "kind": {"enum": ["graph", "token", "all"], "description": "default graph"},
            "count_at_least": {**_COUNT, "description": "default 1"},
        },
        "the request log has records like this",
        dependentSchemas={"app": {"not": {"required": ["as"]}, "description": "give `as` or `app`, not both"}},
    ),
    "no_duplicates": _closed(
        ["mailbox"],
        {"mailbox": {"type": "string"}, "folder": {"type": "string", "description": "default: the mailbox"}},
        "no message twice in the folder, nothing sent outside twice",
    ),
}
_CONDITION_VALUES = {
    key: {
        "oneOf": [{"$ref": f"#/$defs/{key}"}, {"type": "array", "minItems": 1, "items": {"$ref": f"#/$defs/{key}"}}],
        "description": f"{schema['description']} (one condition or a list)",
    }
    for key, schema in _CONDITIONS.items()
}

_EXPECT: dict[str, Any] = {
    "type": "object",
    "description": "What the step must produce; without `error`, the step must succeed.",
    "additionalProperties": False,
    "properties": {
        "ok": {"type": "boolean", "description": "true: the step succeeds (the default when no error is expected)"},
        "error": {
            "type": "object",
            "description": "The step must fail with this error (a Graph or AADSTS error).",
            "additionalProperties": False,
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": ["string", "integer"], "description": "Graph code or AADSTS number"},
                "message": {"type": "string", "description": "exact message"},
                "message_contains": {"type": "string"},
            },
        },
        "count": {"type": "integer", "minimum": 0, "description": "number of messages returned or processed"},
        "count_at_least": {"type": "integer", "minimum": 0},
        "subjects": {"type": "array", "items": {"type": "string"}, "description": "exact subjects, in order"},
        "contains_subject": {"type": "string"},
        "body_visible": {"type": "boolean", "description": "read: whether the message body came back"},
        "claims": {"type": "object", "description": "token: claims that must have these values"},
        "no_claims": {"type": "array", "items": {"type": "string"}, "description": "token: claims that must be absent"},
        "unread": {"type": "integer", "minimum": 0, "description": "folder/process: unread count afterwards"},
        "total": {"type": "integer", "minimum": 0, "description": "folder/process: total count afterwards"},
        "entries": {"type": "integer", "minimum": 0, "description": "log: number of matching log records"},
        "decision_contains": {"type": "string", "description": "log: text every matching decision contains"},
        "attachments": {"type": "array", "items": {"type": "string"}, "description": "download: names, in order"},
        "intact": {"type": "boolean", "description": "download: every attachment is byte for byte as it went in"},
        "statuses": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "batch: inner statuses, in order; log: the matching records' statuses, oldest first",
        },
        "changed": {
            "type": "array",
            "items": {"type": "string"},
            "description": "sync: subjects of the messages created or changed (any order), each once",
        },
        "removed": {"type": "integer", "minimum": 0, "description": "sync: number of messages reported removed"},
        "throttled_at_least": {"type": "integer", "minimum": 0, "description": "log: at least this many 429 answers"},
        "retry_after_honoured": {
            "type": "boolean",
            "description": "log: after each answer with Retry-After, the app's next request came no sooner",
        },
        **_BEHAVIOUR_EXPECT,
        "exit_code": {"type": "integer", "description": "run, stop: the exit code (-N: ended by signal N)"},
        "stdout_contains": {"type": "string", "description": "run, stop: text its output contains"},
        "stderr_contains": {"type": "string", "description": "run, stop: text its error output contains"},
        **_CONDITION_VALUES,
    },
}

_STEP: dict[str, Any] = {
    "type": "object",
    "required": ["do"],
    "additionalProperties": False,
    "properties": {
        "do": {"enum": STEP_KINDS},
        "name": {"type": "string"},
        "as": {"type": "string", "description": "the app (display name or id); default: the tenant's first app"},
        "credential": {"enum": ["secret", "secret_id", "certificate"], "description": "default: secret"},
        "mailbox": {"type": "string"},
        "folder": {"type": "string"},
        "unread": {"type": "boolean"},
        "subject": {"type": "string"},
        "to": _ADDRESSES,
        "cc": _ADDRESSES,
        "body": {"type": "string"},
        "attachments": {"type": "array", "items": {"$ref": "#/$defs/attachment"}},
        "mailboxes": {**_ADDRESSES, "description": "batch: the mailboxes whose inboxes one $batch lists"},
        "mark_read": {"type": "boolean"},
        "move_to": {"type": "string"},
        "top": {"type": "integer", "minimum": 1, "maximum": 1000},
        "timeout": {"type": "number", "minimum": 0, "description": "seconds (run: default 60; wait: default 10)"},
        "outcome": {"enum": ["granted", "denied", "error", "issued", "refused"]},
        "kind": {"enum": ["graph", "token", "all"], "description": "log: which requests (default graph)"},
        "action": {"$ref": "#/$defs/action", "description": "admin: the action to take between daemon steps"},
        "command": {
            "oneOf": [
                {"type": "string", "pattern": r"\S", "description": "run with sh -c"},
                {"type": "array", "minItems": 1, "items": {"type": "string"}, "description": "run as it is"},
            ],
            "description": "run, start: the command; {here} is the scenario file's folder",
        },
        "env": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "run, start: more environment variables (placeholders filled)",
        },
        "daemon": {"type": "string", "pattern": r"\S", "description": "start, stop, run, behaviour: the daemon's name"},
        "until": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": _CONDITION_VALUES,
            "description": "wait: the world conditions to wait for",
        },
        "expect": _EXPECT,
    },
    "allOf": [
        *(
            {"if": {"properties": {"do": {"const": kind}}, "required": ["do"]}, "then": {"required": options}}
            for kind, options in REQUIRED_OPTIONS.items()
            if options
        ),
        # `check` checks nothing but its expectations: without one it could not fail.
        {
            "if": {"properties": {"do": {"enum": ["check"]}}, "required": ["do"]},
            "then": {"required": ["expect"], "properties": {"expect": {"minProperties": 1}}},
        },
    ],
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://m365-mock.example/scenario.schema.json",
    "title": "m365-mock scenario",
    "type": "object",
    "required": ["name", "steps"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"\S", "description": "what the report calls the scenario"},
        "description": {"type": "string"},
        "tenant": {
            "description": "`demo` (default), a tenant file path (relative to the scenario), or an inline tenant file",
            "type": ["string", "object"],
        },
        "setup": {
            "type": "array",
            "description": "Admin actions before the steps, in order.",
            "items": {"$ref": "#/$defs/action"},
        },
        "steps": {"type": "array", "minItems": 1, "items": _STEP},
    },
    "$defs": {"action": _ACTION, "attachment": _ATTACHMENT, **_CONDITIONS},
}

SCHEMA_FILE = Path(__file__).resolve().parent / "schema.json"


def schema_text() -> str:
    """scenarios/schema.json as it must read."""
    return json.dumps(SCHEMA, indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
