"""The JSON Schema of one fault rule: the tenant file's `faults:` entries and the control API's POST /faults body.

The schema judges shape (keys, types, ranges, enumerations); `rules.read_rule` refuses the combinations it cannot
see (two actions, options of another action, a regex that does not compile).
"""

from __future__ import annotations

from typing import Any

from m365_mock.state.faults.rules import OPERATIONS, PRESETS

_TEXT = {"type": "string", "pattern": r"\S"}


def _count(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "description": description}


def _seconds(low: float, high: float, description: str) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high, "description": description}


FAULT: dict[str, Any] = {
    "type": "object",
    "description": "A fault rule: which requests it matches, when among them it acts, and what it does "
    "(docs/faults.md). Exactly one of preset, status, close, truncate, invalid_json, trickle; latency alone or "
    "with any of them.",
    "additionalProperties": False,
    "properties": {
        "id": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
            "description": "The rule's name (letters, digits, . _ -); default fault-N.",
        },
        "method": {
            "type": ["string", "array"],
            "items": {"type": "string", "pattern": r"^[A-Za-z]+$"},
            "pattern": r"^[A-Za-z]+$",
            "minItems": 1,
            "description": "Only requests with this HTTP method (or one of these), any case.",
        },
        "path": {
            **_TEXT,
            "description": "Only requests whose path (no query) matches this glob, any case: * within a segment, "
            "** across segments, ? one character; e.g. /v1.0/users/*/mailFolders/*/messages.",
        },
        "path_regex": {**_TEXT, "description": "Only requests whose path (no query) this Python regex finds in."},
        "app": {**_TEXT, "description": "Only requests of this app: its app id (client_id) or display name."},
        "mailbox": {
            **_TEXT,
            "description": "Only requests on this mailbox: as the URL names it, or the address it resolves to.",
        },
        "operation": {
            "type": ["string", "array"],
            "items": {"enum": list(OPERATIONS)},
            "minItems": 1,
            "if": {"type": "string"},
            "then": {"enum": list(OPERATIONS)},
            "description": "Only requests doing this (or one of these): read, read content, write, send, "
            "read directory (the access decision's operations) or token (the token endpoint).",
        },
        "nth": _count("Act on the n-th matching request (with `times`, from it on); once unless every/times say more."),
        "every": _count("Act on every k-th matching request: the nth, nth + k, ... (nth defaults to k)."),
        "probability": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "Act on each matching request with this probability, drawn from a random source seeded "
            "with `seed`: the same seed gives the same sequence.",
        },
        "seed": {"type": "integer", "description": "The seed of `probability`'s random source; default 0."},
        "times": _count("Act this many times, then no more (the rule stays listed, spent); default until removed."),
        "preset": {"enum": list(PRESETS), "description": "A well-known failure (docs/faults.md lists them)."},
        "status": {
            "type": "integer",
            "minimum": 400,
            "maximum": 599,
            "description": "Answer with this status and an error body in the format of the path's service: "
            "Graph's, or the token endpoint's AADSTS body.",
        },
        "code": {**_TEXT, "description": "The error code (Graph `code`, or the token endpoint's OAuth `error`)."},
        "message": {"type": "string", "description": "The error message (Graph `message` or AADSTS description)."},
        "aadsts": {
            "type": "integer",
            "minimum": 1,
            "maximum": 99_999_999,
            "description": "The AADSTS number of a token endpoint answer (error_codes, `AADSTS<n>:` prefix).",
        },
        "retry_after": {
            "type": "integer",
            "minimum": 0,
            "maximum": 86_400,
            "description": "A Retry-After header on the answer, in whole seconds.",
        },
        "close": {
            "enum": ["before", "after"],
            "description": "Close the connection without an answer: before the request runs (nothing changes), or "
            "after it ran (its changes are made, its answer is lost).",
        },
        "truncate": {
            "type": "integer",
            "minimum": 0,
            "description": "Send the answer's head and at most this many bytes of its body (always fewer than "
            "the whole), then close the connection.",
        },
        "invalid_json": {
            "const": True,
            "description": "Answer with the body cut in half, framed as complete: it does not parse.",
        },
        "trickle": {
            "type": "object",
            "additionalProperties": False,
            "description": "Send the answer's body slowly: chunk_bytes at a time, interval seconds apart.",
            "properties": {
                "chunk_bytes": {"type": "integer", "minimum": 1, "maximum": 1_048_576, "description": "Default 64."},
                "interval": _seconds(0.001, 60, "Seconds between chunks; default 0.5."),
            },
        },
        "latency": _seconds(0.001, 300, "Seconds (real time) added before the answer."),
    },
}
