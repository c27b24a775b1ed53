"""Control API: fault rules (docs/faults.md). A rule added here is in force for the next request; `/reset` puts back
the rules of the world loaded at start-up, `/import` those of the file imported.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from m365_mock.control import errors
from m365_mock.control import schemas as s
from m365_mock.control.api import route
from m365_mock.control.directory import NO_CONTENT, created, no_content
from m365_mock.control.fields import entry_body
from m365_mock.state.faults import FaultExists, FaultNotFound, FaultRule, RuleRefused, read_rule
from m365_mock.state.tenantfile import Problem
from m365_mock.web import current_emulator, json_response

TAG = "faults"


def fault_json(rule: FaultRule) -> dict[str, Any]:
    """The rule as given, with what it does in words and its counters."""
    matched, fired, spent = current_emulator().faults.counters(rule)
    return {**rule.spec, "action": rule.action, "matched": matched, "fired": fired, "spent": spent}


def _rule(rule_id: str) -> FaultRule:
    try:
        return current_emulator().faults.get(rule_id)
    except FaultNotFound as exc:
        raise errors.FaultNotFound(str(exc)) from None


@route(
    "GET",
    "/faults",
    summary="The fault rules in force, in the order added",
    tag=TAG,
    answers={200: s.listing(s.ref("Fault"))},
)
def list_faults() -> Response:
    return json_response({"value": [fault_json(rule) for rule in current_emulator().faults.rules]})


@route(
    "POST",
    "/faults",
    summary="Add a fault rule",
    tag=TAG,
    body=s.ref("fault"),
    body_required=True,
    answers={201: s.ref("Fault")},
    refusals=(errors.InvalidField, errors.FaultExists),
)
def add_fault() -> Response:
    """Matched from the next request on, after the rules already in force; without `id` it is named fault-N."""
    payload = entry_body("fault")
    try:
        rule = read_rule(payload)
    except RuleRefused as exc:
        raise errors.refused_body(errors.InvalidField, [Problem(exc.path, exc.message)]) from None
    try:
        rule = current_emulator().faults.add(rule)
    except FaultExists as exc:
        raise errors.FaultExists(str(exc)) from None
    return created(fault_json(rule))


@route(
    "GET",
    "/faults/{fault}",
    summary="One fault rule, with its counters",
    tag=TAG,
    answers={200: s.ref("Fault")},
    refusals=(errors.FaultNotFound,),
)
def get_fault(fault: str) -> Response:
    return json_response(fault_json(_rule(fault)))


@route(
    "DELETE",
    "/faults/{fault}",
    summary="Remove a fault rule",
    tag=TAG,
    answers=NO_CONTENT,
    refusals=(errors.FaultNotFound,),
)
def remove_fault(fault: str) -> Response:
    try:
        current_emulator().faults.remove(fault)
    except FaultNotFound as exc:
        raise errors.FaultNotFound(str(exc)) from None
    return no_content()


@route("DELETE", "/faults", summary="Remove every fault rule", tag=TAG, answers=NO_CONTENT)
def remove_faults() -> Response:
    current_emulator().faults.clear()
    return no_content()
