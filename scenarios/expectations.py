"""Expectations: a step's `expect:` checked against the Outcome the step produced.

Without `error`, the step must have succeeded; with it, it must have failed that way. Every other key of `expect`
has one check in CHECKS, which says what came back when it differs from what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from m365_mock.scenarios.conditions import CONDITIONS, unmet
from m365_mock.scenarios.daemons import describe_exit, tail

if TYPE_CHECKING:
    from m365_mock.scenarios.behaviour import BehaviourReport
    from m365_mock.scenarios.model import Step
    from m365_mock.scenarios.steps import Outcome, StepError


def check(step: Step, outcome: Outcome) -> tuple[bool, str]:
    """Compare an outcome with the step's `expect`; (passed, explanation)."""
    expect = step.expect
    if outcome.failure is not None:
        return False, outcome.failure
    if expect.get("error") is not None:
        return _failed_as_expected(expect["error"], outcome.error)
    got = outcome.error
    if got is not None and expect.get("ok", True):
        return False, f"expected success, got {got.status} {got.code}: {got.message}"
    problems = []
    if "exit_code" not in expect and outcome.success_exit is not None:
        problems.extend(_exit_code(outcome.success_exit, outcome))
    for key, problems_of in CHECKS.items():
        if key in expect:
            problems.extend(problems_of(expect[key], outcome))
    if problems:
        return False, "; ".join(problems)
    return True, _summary(step, outcome)


def _failed_as_expected(wanted: dict[str, Any], got: StepError | None) -> tuple[bool, str]:
    if got is None:
        return False, f"expected error {_describe_error(wanted)}, but the step succeeded"
    problems = []
    if "status" in wanted and wanted["status"] != got.status:
        problems.append(f"status {got.status} (expected {wanted['status']})")
    if "code" in wanted and str(wanted["code"]) != str(got.code):
        problems.append(f"code {got.code} (expected {wanted['code']})")
    if "message" in wanted and wanted["message"] != got.message:
        problems.append(f"message {got.message!r} (expected {wanted['message']!r})")
    if "message_contains" in wanted and wanted["message_contains"] not in got.message:
        problems.append(f"message {got.message!r} (expected to contain {wanted['message_contains']!r})")
    if problems:
        return False, "wrong error: " + "; ".join(problems)
    return True, f"failed as expected: {got.status} {got.code}"


def _describe_error(error: dict[str, Any]) -> str:
    return " ".join(str(error[k]) for k in ("status", "code") if k in error) or "(any)"


WORLD_CONDITIONS = tuple(CONDITIONS)

# ---------------------------------------------------------------- one check per key: (expected, outcome) -> problems


def _subjects(outcome: Outcome) -> list[Any]:
    return [m.get("subject") for m in outcome.messages]


def _count(wanted: int, outcome: Outcome) -> list[str]:
    return [] if outcome.count == wanted else [f"count {outcome.count} (expected {wanted})"]


def _count_at_least(wanted: int, outcome: Outcome) -> list[str]:
    return [] if (outcome.count or 0) >= wanted else [f"count {outcome.count} (expected at least {wanted})"]


def _subjects_are(wanted: list[str], outcome: Outcome) -> list[str]:
    subjects = _subjects(outcome)
    return [] if subjects == wanted else [f"subjects {subjects} (expected {wanted})"]


def _contains_subject(wanted: str, outcome: Outcome) -> list[str]:
    subjects = _subjects(outcome)
    return [] if wanted in subjects else [f"no message {wanted!r} among {subjects[:10]}"]


def _body_visible(wanted: bool, outcome: Outcome) -> list[str]:
    if outcome.body_visible == wanted:
        return []
    return [f"body {'present' if outcome.body_visible else 'absent'} (expected {'present' if wanted else 'absent'})"]


def _claims(wanted: dict[str, Any], outcome: Outcome) -> list[str]:
    claims = outcome.claims or {}
    return [
        f"claim {claim} = {claims.get(claim)!r} (expected {value!r})"
        for claim, value in (wanted or {}).items()
        if claims.get(claim) != value
    ]


def _no_claims(wanted: list[str], outcome: Outcome) -> list[str]:
    claims = outcome.claims or {}
    return [f"claim {claim} present (expected absent): {claims[claim]!r}" for claim in wanted or [] if claim in claims]


def _folder_count(key: str, field: str) -> Callable[[int, Outcome], list[str]]:
    def check_count(wanted: int, outcome: Outcome) -> list[str]:
        actual = (outcome.folder or {}).get(field)
        return [] if actual == wanted else [f"{key} {actual} (expected {wanted})"]

    return check_count


def _entries(wanted: int, outcome: Outcome) -> list[str]:
    return [] if len(outcome.log) == wanted else [f"{len(outcome.log)} log entries (expected {wanted})"]


def _decision_contains(wanted: str, outcome: Outcome) -> list[str]:
    missing = [r["decision"] for r in outcome.log if wanted not in (r.get("decision") or "")]
    if missing or not outcome.log:
        return [f"decisions {missing or '(none)'} (expected each to contain {wanted!r})"]
    return []


# In the order their problems are reported.
def _attachments(wanted: list[str], outcome: Outcome) -> list[str]:
    names = [a["name"] for a in outcome.attachments]
    return [] if names == wanted else [f"attachments {names} (expected {wanted})"]


def _intact(wanted: bool, outcome: Outcome) -> list[str]:
    broken = [a["name"] for a in outcome.attachments if not a["intact"]]
    if wanted and (broken or not outcome.attachments):
        return [f"attachments not as sent: {broken or 'none came back'}"]
    if not wanted and not broken:
        return ["every attachment came back intact (expected a difference)"]
    return []


def _statuses(wanted: list[int], outcome: Outcome) -> list[str]:
    return [] if outcome.statuses == wanted else [f"statuses {outcome.statuses} (expected {wanted})"]


def _throttled_at_least(wanted: int, outcome: Outcome) -> list[str]:
    throttled = sum(1 for r in outcome.log if r["status"] == 429)
    return [] if throttled >= wanted else [f"{throttled} throttled answers (429) (expected at least {wanted})"]


def _retry_after_honoured(wanted: bool, outcome: Outcome) -> list[str]:
    """After each answer with Retry-After, the same app's next request on the mailbox came no sooner (by the
    emulator's clock, as the log records it)."""
    from m365_mock.scenarios.behaviour import came_before_retry_after

    early = [
        f"{after['method']} {after['path']} {gap:.2f} s after a Retry-After of {first['retry_after']}"
        for first, after, gap in came_before_retry_after(outcome.log)
    ]
    if wanted and early:
        return ["requests came before their Retry-After: " + "; ".join(early[:3])]
    if not wanted and not early:
        return ["every Retry-After was waited out (expected one that was not)"]
    return []


def _changed(wanted: list[str], outcome: Outcome) -> list[str]:
    got = sorted(str(s) for s in _subjects(outcome))
    return [] if got == sorted(wanted) else [f"changed {got} (expected {sorted(wanted)})"]


def _removed(wanted: int, outcome: Outcome) -> list[str]:
    return [] if outcome.removed == wanted else [f"removed {outcome.removed} (expected {wanted})"]


# ---------------------------------------------------------------- a behaviour step's report (behaviour.py)


def _on_report(key: str, check: Callable[[Any, BehaviourReport], list[str]]) -> Callable[[Any, Outcome], list[str]]:
    """A check of the behaviour report; on a step that made none it fails, saying so."""

    def checked(wanted: Any, outcome: Outcome) -> list[str]:
        if outcome.behaviour is None:
            return [f"{key}: only a behaviour step has a behaviour report"]
        return check(wanted, outcome.behaviour)

    return checked


def _described(report: BehaviourReport, rules: list[str]) -> str:
    """`rule (count) e.g. #12 ... GET ... -> 403 ...` for each of these rules found, joined by commas."""
    return ", ".join(f"{f.rule} ({f.count}) e.g. {f.examples[0].line()}" for f in report.findings if f.rule in rules)


def _findings(wanted: list[str], report: BehaviourReport) -> list[str]:
    found = report.rules_found
    if set(found) == set(wanted):
        return []
    extra = [rule for rule in found if rule not in wanted]
    return [f"findings {found} (expected {wanted})" + (f": {_described(report, extra)}" if extra else "")]


def _has_findings(wanted: list[str], report: BehaviourReport) -> list[str]:
    missing = [rule for rule in wanted if rule not in report.rules_found]
    return [f"no {', '.join(missing)} finding (found {report.rules_found or 'none'})"] if missing else []


def _no_findings(wanted: list[str], report: BehaviourReport) -> list[str]:
    present = [rule for rule in report.rules_found if rule in wanted]
    return [f"found {_described(report, present)}"] if present else []


def _token_requests_at_most(wanted: int, report: BehaviourReport) -> list[str]:
    made = report.token_requests
    return [] if made <= wanted else [f"{made} token request{'s' * (made != 1)} (expected at most {wanted})"]


def _touched_only(wanted: list[str], report: BehaviourReport) -> list[str]:
    allowed = {address.lower() for address in wanted}
    other = [mailbox for mailbox in report.mailboxes if mailbox not in allowed]
    return [f"requests on {', '.join(other)} (expected only {', '.join(wanted)})"] if other else []


def _never_touched(wanted: list[str], report: BehaviourReport) -> list[str]:
    barred = {address.lower() for address in wanted}
    hit = [mailbox for mailbox in report.mailboxes if mailbox in barred]
    return [f"requests on {', '.join(hit)} (expected none)"] if hit else []


def _sent_client_request_id(wanted: bool, report: BehaviourReport) -> list[str]:
    missing, graph = report.without_client_request_id, report.graph_requests
    if not graph:
        return ["no Graph request was made, so none sent a client-request-id"]
    if wanted and missing:
        return [f"{len(missing)} of {len(graph)} Graph requests sent no client-request-id, e.g. {missing[0].line()}"]
    if not wanted and not missing:
        return ["every Graph request sent a client-request-id (expected one without)"]
    return []


def _stopped_after_403(wanted: bool, report: BehaviourReport) -> list[str]:
    if not report.forbidden:
        return ["no request was refused with 403, so there was nothing to stop after"]
    repeated = report.finding("retried-403")
    if wanted and repeated:
        return [f"{repeated.count} request(s) asked again after a 403, e.g. {repeated.examples[0].line()}"]
    if not wanted and not repeated:
        return ["no request refused with 403 was asked again (expected one that was)"]
    return []


def _polls_at_most_per_minute(wanted: float, report: BehaviourReport) -> list[str]:
    busy = [p for p in report.polls if p.per_minute > wanted]
    return [f"polled {p.name} {p.per_minute:.1f} times a minute (expected at most {wanted:g})" for p in busy]


def _exit_code(wanted: int, outcome: Outcome) -> list[str]:
    if outcome.exit_code == wanted:
        return []
    output = next(
        (
            f"{name} ends: {tail(text)!r}"
            for name, text in (("stderr", outcome.stderr), ("stdout", outcome.stdout))
            if text.strip()
        ),
        "no output",
    )
    return [f"{describe_exit(outcome.exit_code)} (expected {wanted}); {output}"]


def _output_contains(stream: str) -> Callable[[str, Outcome], list[str]]:
    def check_output(wanted: str, outcome: Outcome) -> list[str]:
        text = getattr(outcome, stream)
        return [] if wanted in text else [f"{stream} does not contain {wanted!r}; it ends: {tail(text)!r}"]

    return check_output


def _condition(key: str) -> Callable[[Any, Outcome], list[str]]:
    """A world condition (conditions.py) as an expectation: it must hold after the step."""

    def check_condition(wanted: Any, outcome: Outcome) -> list[str]:
        if outcome.world is None:
            return [f"{key}: no world to look at"]
        return unmet(outcome.world, {key: wanted})

    return check_condition


CHECKS: dict[str, Callable[[Any, Outcome], list[str]]] = {
    "count": _count,
    "count_at_least": _count_at_least,
    "subjects": _subjects_are,
    "contains_subject": _contains_subject,
    "body_visible": _body_visible,
    "claims": _claims,
    "no_claims": _no_claims,
    "unread": _folder_count("unread", "unreadItemCount"),
    "total": _folder_count("total", "totalItemCount"),
    "entries": _entries,
    "decision_contains": _decision_contains,
    "attachments": _attachments,
    "intact": _intact,
    "statuses": _statuses,
    "changed": _changed,
    "removed": _removed,
    "throttled_at_least": _throttled_at_least,
    "retry_after_honoured": _retry_after_honoured,
    "findings": _on_report("findings", _findings),
    "has_findings": _on_report("has_findings", _has_findings),
    "no_findings": _on_report("no_findings", _no_findings),
    "token_requests_at_most": _on_report("token_requests_at_most", _token_requests_at_most),
    "touched_only": _on_report("touched_only", _touched_only),
    "never_touched": _on_report("never_touched", _never_touched),
    "sent_client_request_id": _on_report("sent_client_request_id", _sent_client_request_id),
    "stopped_after_403": _on_report("stopped_after_403", _stopped_after_403),
    "polls_at_most_per_minute": _on_report("polls_at_most_per_minute", _polls_at_most_per_minute),
    "exit_code": _exit_code,
    "stdout_contains": _output_contains("stdout"),
    "stderr_contains": _output_contains("stderr"),
    **{key: _condition(key) for key in WORLD_CONDITIONS},
}


def _summary(step: Step, outcome: Outcome) -> str:
    """What a step that passed did, for the report."""
    if outcome.note:
        return outcome.note
    if step.do == "check":
        return "the world is as expected: " + ", ".join(k for k in step.expect if k in WORLD_CONDITIONS)
    if outcome.claims is not None:
        return f"token for {outcome.claims.get('app_displayname')} with roles {outcome.claims.get('roles', [])}"
    if step.do == "log":
        return f"{len(outcome.log)} log entries"
    if step.do == "download":
        kept = sum(1 for a in outcome.attachments if a["intact"])
        return f"{len(outcome.attachments)} attachment(s) saved, {kept} byte for byte as sent"
    if outcome.body_visible is not None:
        return f"{outcome.messages[0].get('subject')!r} read, body {'present' if outcome.body_visible else 'absent'}"
    if outcome.folder is not None and outcome.count is None:
        return (
            f"{outcome.folder.get('displayName')}: {outcome.folder.get('totalItemCount')} total, "
            f"{outcome.folder.get('unreadItemCount')} unread"
        )
    if outcome.count is not None:
        return f"{outcome.count} message(s)"
    return "ok"
