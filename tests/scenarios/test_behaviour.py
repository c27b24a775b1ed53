"""The behaviour report: each rule on request-log records that break it and on near misses that do not; the
`behaviour` step and its expectations in scenarios run against a served emulator; `m365-mock report` on one."""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from m365_mock.scenarios.behaviour import RULE_IDS, came_before_retry_after, report
from m365_mock.scenarios.calls import per_minute, read_call
from m365_mock.scenarios.model import ScenarioError, Step, parse_scenario
from m365_mock.scenarios.report import console, junit, result_json
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.steps import perform
from m365_mock.scenarios.world import prepare
from m365_mock.tools.process import start_emulator
from tests.scenarios.conftest import clean_env, run_cli

APP = "11111111-2222-3333-4444-555555555555"
SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
INBOX = f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages"
TOKEN = "/tenant-id/oauth2/v2.0/token"
POLICY = f"denied: RestrictAccess policies limit the app to cctr_sec_group; {SALES} is in none"


class Log:
    """Request-log records as GET /_m365/log gives them, written one request at a time (seconds from 10:00)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, at: float, path: str, status: int = 200, *, method: str = "GET", **fields: Any) -> Log:
        moment = datetime(2026, 5, 1, 10, tzinfo=UTC) + timedelta(seconds=at)
        record = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "seq": len(self.records) + 1,
            "kind": "token" if path == TOKEN else "graph",
            "client_request_id": str(uuid.uuid4()),
            "method": "POST" if path == TOKEN else method,
            "path": path,
            "status": status,
            "app_id": APP,
            "mailbox": None if path == TOKEN else SUPPORT,
            "outcome": ("issued" if status == 200 else "refused") if path == TOKEN else "granted",
            "decision": None,
            "error_code": None,
            "retry_after": None,
        }
        self.records.append(record | fields)
        return self

    def token(self, at: float, status: int = 200) -> Log:
        return self.add(at, TOKEN, status)

    def found(self, **options: Any) -> dict[str, int]:
        """Rule id -> count of the findings."""
        return {f.rule: f.count for f in report(self.records, **options).findings}


GOOD = f"{INBOX}?$select=id,subject&$top=50&$filter=isRead eq false"


def good_poll(log: Log, at: float) -> Log:
    return log.add(at, GOOD)


def test_a_well_behaved_run_has_no_findings():
    log = Log().token(0)
    for second in range(0, 300, 10):
        good_poll(log, second + 0.5)
    assert log.found() == {}
    made = report(log.records)
    assert made.text().splitlines()[-1] == "  No findings: nothing Microsoft's guidance warns against."


# ---------------------------------------------------------------- each rule, broken and nearly broken


def test_token_not_cached_a_token_per_request():
    log = Log()
    for second in range(6):
        log.token(second * 10).add(second * 10 + 0.2, GOOD)
    made = report(log.records)
    [finding] = made.findings
    assert (finding.rule, finding.count) == ("token-not-cached", 5)
    assert [call.seq for call in finding.examples] == [3, 5, 7]
    assert finding.explanation.startswith(
        "It was issued 6 tokens in 50.2 s for 6 Graph requests, 5 more than the 1 that would have done (one to "
        "start, one per 5.0 min of run, one after each 401 answer)."
    )
    assert "Acquire and cache tokens using the Microsoft Authentication Library (MSAL)" in finding.explanation


def test_token_not_cached_near_misses():
    # One token per five minutes of run, one after each 401, one per token lifetime when that is shorter.
    assert Log().token(0).add(1, GOOD).token(300).add(301, GOOD).found() == {}
    assert Log().token(0).add(1, GOOD).add(2, GOOD, 401).token(3).add(4, GOOD).found() == {}
    assert Log().token(0).token(60).token(120).add(121, GOOD).found(token_lifetime=60) == {}
    assert Log().token(0).token(60).token(120).add(121, GOOD).found() == {"token-not-cached": 2}
    # Refused token requests gave no token to cache.
    assert Log().token(0, 401).token(1, 401).token(2).add(3, GOOD).found() == {}


def test_retry_without_backoff():
    log = Log().token(0).add(1, GOOD, 503).add(1.4, GOOD).add(10, GOOD, 429).add(10.2, GOOD)
    made = report(log.records)
    [finding] = made.findings
    assert (finding.rule, finding.count) == ("retry-without-backoff", 2)
    assert [call.seq for call in finding.examples] == [3, 5]
    assert finding.explanation.startswith(
        "2 requests went out again less than 1 s after a 429 or 5xx answer that gave no Retry-After. Microsoft "
        "Graph throttling guidance asks clients to avoid immediate retries"
    )


def test_retry_without_backoff_near_misses():
    assert Log().token(0).add(1, GOOD, 503).add(2.1, GOOD).found() == {}  # waited more than a second
    assert Log().token(0).add(1, GOOD, 404).add(1.1, GOOD).found() == {}  # not a 429 or 5xx
    assert Log().token(0).add(1, GOOD, 503).add(1.1, f"{GOOD}&$skip=50").found() == {}  # another request
    # With Retry-After, coming back early is retry-after-ignored, not this rule.
    assert Log().token(0).add(1, GOOD, 429, retry_after=2).add(1.1, GOOD).found() == {"retry-after-ignored": 1}


def test_retry_after_ignored():
    log = Log().token(0).add(1, GOOD, 429, retry_after=3).add(2.5, GOOD)
    [finding] = report(log.records).findings
    assert (finding.rule, finding.count, finding.examples[0].seq) == ("retry-after-ignored", 1, 3)
    assert "(1.50 s after a Retry-After of 3 s)" in finding.explanation
    assert "Microsoft Graph throttling guidance" in finding.explanation


def test_retry_after_ignored_near_misses():
    assert Log().token(0).add(1, GOOD, 429, retry_after=3).add(4, GOOD).found() == {}
    sales = f"/v1.0/users/{SALES}/mailFolders/inbox/messages?$select=id&$top=5&$filter=isRead eq false"
    # Throttling is per app and mailbox: another mailbox may be asked at once.
    assert Log().token(0).add(1, GOOD, 429, retry_after=3).add(1.2, sales, mailbox=SALES).found() == {}


def test_came_before_retry_after_is_the_test_of_retry_after_honoured():
    log = Log().add(0, GOOD, 429, retry_after=2).add(1, GOOD).add(5, GOOD, 429, retry_after=1).add(6, GOOD)
    [(first, after, gap)] = came_before_retry_after(log.records)
    assert (first["seq"], after["seq"], gap) == (1, 2, 1.0)


def test_retried_403():
    denied = {"mailbox": SALES, "outcome": "denied", "decision": POLICY, "error_code": "ErrorAccessDenied"}
    path = f"/v1.0/users/{SALES}/messages"
    log = Log().token(0).add(1, f"{path}?$top=5", 403, **denied).add(31, f"{path}?$top=10", 403, **denied)
    log.add(61, f"{path}?$top=5", 403, **denied)
    found = report(log.records).finding("retried-403")
    assert found is not None and found.count == 2 and [c.seq for c in found.examples] == [3, 4]
    assert found.explanation.startswith("2 requests asked again for what a 403 had just refused (1 distinct request")


def test_retried_403_near_misses():
    denied = {"mailbox": SALES, "outcome": "denied", "decision": POLICY, "error_code": "ErrorAccessDenied"}
    path = f"/v1.0/users/{SALES}/messages?$top=5"
    # Asked again after more than an hour; another request on the mailbox; the same request after a 200.
    assert "retried-403" not in Log().token(0).add(1, path, 403, **denied).add(3700, path, 403, **denied).found()
    other = f"/v1.0/users/{SALES}/mailFolders/inbox"
    assert "retried-403" not in Log().token(0).add(1, path, 403, **denied).add(2, other, 403, **denied).found()
    assert Log().token(0).add(1, GOOD).add(2, GOOD, 404).add(3, GOOD).found() == {}


def test_full_listing():
    log = Log().token(0)
    for second in (10, 20, 30):
        log.add(second, f"{INBOX}?$select=id&$top=10").add(second + 1, f"{INBOX}?$select=id&$top=10&$skip=10")
    [finding] = report(log.records).findings
    assert (finding.rule, finding.count) == ("full-listing", 3)
    assert [call.seq for call in finding.examples] == [2, 4, 6]
    assert f"({SUPPORT} inbox 3 times)" in finding.explanation
    assert "Use delta query to track changes in Microsoft Graph data" in finding.explanation


def test_full_listing_near_misses():
    listing = f"{INBOX}?$select=id&$top=10"
    twice = (
        Log().token(0).add(10, listing).add(20, listing).add(21, f"{listing}&$skip=10").add(22, f"{listing}&$skip=20")
    )
    assert twice.found() == {}  # two rounds, however many pages
    filtered = Log().token(0)
    for second in (10, 20, 30):
        filtered.add(second, f"{listing}&$filter=isRead eq false")
    assert filtered.found() == {}
    with_delta = Log().token(0).add(1, f"/v1.0/users/{SUPPORT}/mailFolders/Inbox/messages/delta?$select=id")
    for second in (10, 20, 30):
        with_delta.add(second, listing)
    assert with_delta.found() == {}
    elsewhere = Log().token(0)
    for second, folder in ((10, "inbox"), (20, "archive"), (30, "inbox")):
        elsewhere.add(second, f"/v1.0/users/{SUPPORT}/mailFolders/{folder}/messages?$select=id&$top=10")
    assert elsewhere.found() == {}


def test_no_select():
    log = Log().token(0).add(1, f"{INBOX}?$top=10&$filter=isRead eq false").add(2, f"{INBOX}?%24top=10&%24skip=10")
    log.add(3, f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/delta")
    [finding] = report(log.records).findings
    assert (finding.rule, finding.count, [c.seq for c in finding.examples]) == ("no-select", 2, [2, 4])
    assert finding.explanation.startswith("2 of 2 message listings asked for no $select")
    assert "Best practices for working with Microsoft Graph" in finding.explanation


def test_no_select_near_misses():
    delta = f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/delta"
    log = Log().token(0).add(1, f"{INBOX}?%24select=id%2Csubject&%24top=5&$filter=isRead eq false")
    log.add(2, f"{delta}?$select=id").add(3, f"{delta}?$skiptoken=abc").add(4, f"{delta}?$deltatoken=xyz")
    log.add(5, f"/v1.0/users/{SUPPORT}/messages/AAMk=")  # one message, not a listing
    assert log.found() == {}


def test_filter_orderby_refused():
    path = f"{INBOX}?$select=id&$top=5&$filter=subject eq 'x'&$orderby=receivedDateTime"
    log = Log().token(0).add(1, path, 400, error_code="InefficientFilter")
    [finding] = report(log.records).findings
    assert (finding.rule, finding.count) == ("filter-orderby-refused", 1)
    assert finding.examples[0].line() == (f"#2 10:00:01.000 GET {path} -> 400 InefficientFilter")
    assert "The restriction or sort order is too complex for this operation." in finding.explanation
    assert Log().token(0).add(1, path, 400, error_code="BadRequest").found() == {}


def test_unbounded_top():
    log = Log().token(0).add(1, f"{INBOX}?$select=id").add(2, f"{INBOX}?$select=id&$top=2000", 400)
    [finding] = report(log.records).findings
    assert (finding.rule, finding.count) == ("unbounded-top", 2)
    assert finding.explanation.startswith(
        "2 listings chose no page size (1 without $top, 1 with a $top outside 1 to 1000)"
    )


def test_unbounded_top_near_misses():
    delta = f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/delta?$select=id"
    log = Log().token(0).add(1, f"{INBOX}?$select=id&$top=1000").add(2, f"{INBOX}?$select=id&$skip=1000").add(3, delta)
    assert log.found() == {}


def test_out_of_scope_names_the_mailboxes_and_the_reason():
    denied = {"mailbox": SALES, "outcome": "denied", "decision": POLICY, "error_code": "ErrorAccessDenied"}
    log = (
        Log().token(0).add(1, f"/v1.0/users/{SALES}/messages?$select=id&$top=5&$filter=isRead eq false", 403, **denied)
    )
    [finding] = report(log.records).findings
    assert (finding.rule, finding.count) == ("out-of-scope", 1)
    assert finding.explanation.startswith(
        f"1 request reached for 1 mailbox its access policy excludes ({SALES}): RestrictAccess policies limit the "
        f"app to cctr_sec_group; {SALES} is in none."
    )


def test_out_of_scope_near_miss_a_missing_permission_is_no_policy():
    missing = {"outcome": "denied", "decision": "denied: missing Mail.Send", "error_code": "ErrorAccessDenied"}
    log = Log().token(0).add(1, f"/v1.0/users/{SUPPORT}/sendMail", 403, method="POST", **missing)
    assert log.found() == {}


def test_no_client_request_id():
    log = Log().add(0, TOKEN, client_request_id=None)  # a token request without one is not counted
    log.add(1, GOOD, client_request_id=None).add(2, GOOD)
    [finding] = report(log.records).findings
    assert (finding.rule, finding.count, finding.examples[0].seq) == ("no-client-request-id", 1, 2)
    assert finding.explanation.startswith("1 of 2 Graph requests carried no client-request-id header.")
    assert Log().add(0, TOKEN, client_request_id=None).add(1, GOOD).found() == {}


def test_every_rule_is_tested_here():
    tests = [name for name in globals() if name.startswith("test_")]
    assert [rule for rule in RULE_IDS if not any(t.startswith(f"test_{rule.replace('-', '_')}") for t in tests)] == []


# ---------------------------------------------------------------- reading requests, the report's parts


@pytest.mark.parametrize(
    ("method", "path", "operation", "folder"),
    [
        ("GET", f"/v1.0/users/{SUPPORT}/messages?$top=5", "list messages", ""),
        ("GET", f"/v1.0/users/{SUPPORT}/mailFolders/Inbox/messages", "list messages", "inbox"),
        ("GET", f"/v1.0/users/{SUPPORT}/mailFolders/AAMk=/childFolders/BBMk=/messages", "list messages", "bbmk="),
        ("GET", f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/microsoft.graph.delta()", "delta", "inbox"),
        ("GET", f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/delta", "delta", "inbox"),
        ("GET", f"/v1.0/users/{SUPPORT}/messages/$count", "count messages", ""),
        ("GET", f"/v1.0/users/{SUPPORT}/messages/AAMk=", "get message", ""),
        ("PATCH", f"/v1.0/users/{SUPPORT}/messages/AAMk=", "update message", ""),
        ("GET", f"/v1.0/users/{SUPPORT}/messages/AAMk=/$value", "get MIME", ""),
        ("POST", f"/v1.0/users/{SUPPORT}/messages/AAMk=/move", "move", ""),
        ("POST", f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/AAMk=/createReply", "create reply", "inbox"),
        ("POST", f"/v1.0/users/{SUPPORT}/messages/AAMk=/microsoft.graph.send", "send draft", ""),
        ("GET", f"/v1.0/users/{SUPPORT}/messages/AAMk=/attachments", "list attachments", ""),
        ("GET", f"/v1.0/users/{SUPPORT}/messages/AAMk=/attachments/CCMk=/$value", "get attachment content", ""),
        ("POST", f"/v1.0/users/{SUPPORT}/messages/AAMk=/attachments/createUploadSession", "upload session", ""),
        ("POST", f"/v1.0/users/{SUPPORT}/sendMail", "send mail", None),
        ("GET", f"/v1.0/users/{SUPPORT}/mailFolders", "list folders", None),
        ("POST", f"/v1.0/users/{SUPPORT}/mailFolders/inbox/childFolders", "create folder", None),
        ("GET", f"/v1.0/users/{SUPPORT}/mailFolders/inbox", "get folder", None),
        ("GET", f"/v1.0/users/{SUPPORT}", "read user", None),
        ("POST", "/v1.0/$batch", "batch", None),
        ("GET", "/v1.0/me/messages", "GET /me", None),
        ("PUT", "/api/v2.0/Users('x')/Messages('y')/AttachmentSessions('z')", "upload attachment chunk", None),
    ],
)
def test_each_request_is_named_by_its_operation(method, path, operation, folder):
    call = read_call(Log().add(0, path, method=method).records[0])
    assert (call.operation, call.folder) == (operation, folder)


def test_a_call_knows_its_mailbox_from_the_decision_or_else_the_path():
    unknown = read_call(Log().add(0, "/v1.0/users/Nobody@Contoso.com/messages", 404, mailbox=None).records[0])
    assert unknown.mailbox == "nobody@contoso.com"
    by_id = read_call(Log().add(0, "/v1.0/users/6f1c-id/messages", 200, mailbox="Ann@Contoso.com").records[0])
    assert by_id.mailbox == "ann@contoso.com"


@pytest.mark.parametrize(
    ("times", "rate"),
    [([], 0.0), ([0], 1.0), ([0, 0.1], 2.0), ([0, 2, 4, 6, 8, 10], 30.0), ([0, 0, 0], 3.0), ([0, 30, 60, 90], 2.0)],
)
def test_polls_per_minute(times, rate):
    assert per_minute(times) == rate


def test_the_report_groups_requests_by_operation_and_shows_mailboxes_and_polling():
    log = Log().token(0)
    for second in (0, 20, 40):
        good_poll(log, second + 1)
    log.add(50, f"/v1.0/users/{SUPPORT}/messages/AAMk=/move", 201, method="POST")
    log.add(55, f"/v1.0/users/{SALES}/messages?$select=id&$top=5&$filter=isRead eq false", 403, mailbox=SALES)
    made = report(log.records, subject="the test daemon")
    assert [(o.operation, o.count, o.statuses) for o in made.operations] == [
        ("token", 1, {200: 1}),
        ("list messages", 4, {200: 3, 403: 1}),
        ("move", 1, {201: 1}),
    ]
    assert made.mailboxes == [SUPPORT, SALES]
    assert [(p.name, p.rounds, p.per_minute) for p in made.polls] == [
        (f"{SUPPORT} inbox", 3, 3.0),
        (f"{SALES} (all messages)", 1, 1.0),
    ]
    text = made.text().splitlines()
    assert text[:6] == [
        "Behaviour of the test daemon: 6 requests (#1 to #6) over 55.0 s",
        "  Requests by operation:",
        "    token              1  200 x1",
        "    list messages      4  200 x3, 403 x1",
        "    move               1  201 x1",
        f"  Mailboxes touched: {SUPPORT}, {SALES}",
    ]
    encoded = json.loads(json.dumps(made.to_json()))
    assert encoded == made.to_json()
    assert encoded["operations"][1] == {"operation": "list messages", "count": 4, "statuses": {"200": 3, "403": 1}}
    assert (encoded["requests"], encoded["first_seq"], encoded["last_seq"], encoded["token_requests"]) == (6, 1, 6, 1)


def test_the_report_leaves_out_requests_that_are_neither_graph_nor_token():
    log = Log().token(0).add(1, GOOD)
    log.records.append({**log.records[1], "seq": 3, "kind": "other", "path": "/common/discovery/instance"})
    assert len(report(log.records).calls) == 2
    assert report([]).text() == "Behaviour of the requests: no requests logged."


# ---------------------------------------------------------------- the `behaviour` step in scenarios


def scenario(*steps: dict[str, Any], setup: list | None = None) -> Any:
    return parse_scenario({"name": "behaviour", "setup": setup or [], "steps": list(steps)})


def test_a_misspelt_rule_id_is_refused_when_the_file_is_read():
    with pytest.raises(ScenarioError) as info:
        scenario({"do": "behaviour", "expect": {"no_findings": ["retried-403", "token-not-cashed"]}})
    assert str(info.value).startswith("scenario: steps[0].expect.no_findings[1]: expected 'token-not-cached', ")


@pytest.mark.slow
def test_the_behaviour_step_judges_the_reference_client_and_its_expectations_pass(target, tmp_path):
    result = run_scenario(
        target,
        scenario(
            {"do": "process", "mailbox": "support@{domain}", "move_to": "Processed"},
            {"do": "fetch", "mailbox": "sales@{domain}", "expect": {"error": {"status": 403}}},
            {"do": "fetch", "mailbox": "sales@{domain}", "expect": {"error": {"status": 403}}},
            {
                "do": "behaviour",
                "as": "Contact Center Connector",
                "expect": {
                    "findings": ["retried-403", "no-select", "out-of-scope"],
                    "has_findings": ["out-of-scope"],
                    "no_findings": ["token-not-cached", "no-client-request-id", "full-listing"],
                    "token_requests_at_most": 1,
                    "touched_only": ["support@{domain}", "SALES@{domain}"],
                    "never_touched": ["billing@{domain}"],
                    "sent_client_request_id": True,
                    "retry_after_honoured": True,
                    "stopped_after_403": False,
                },
            },
        ),
    )
    assert result.passed, console([result])
    step = result.steps[-1]
    assert step.detail == (
        "behaviour of Contact Center Connector since the scenario began: 19 requests, findings: retried-403, "
        "no-select, out-of-scope"
    )
    assert step.behaviour is not None and step.behaviour.token_requests == 1
    shown = console([result])
    assert "           Behaviour of Contact Center Connector since the scenario began: 19 requests" in shown
    assert "             [retried-403] Repeated a request refused with 403 (1)" in shown
    as_json = result_json(result)["steps"][-1]["behaviour"]
    assert [f["rule"] for f in as_json["findings"]] == ["retried-403", "no-select", "out-of-scope"]
    assert "behaviour" not in result_json(result)["steps"][0]
    junit([result], tmp_path / "junit.xml")
    out = ET.parse(tmp_path / "junit.xml").find(".//system-out").text
    assert "\n      [out-of-scope] Reached for mailboxes outside its access policy (2)" in out


@pytest.mark.slow
def test_behaviour_expectations_that_fail_say_what_was_found(target, tmp_path):
    result = run_scenario(
        target,
        scenario(
            {"do": "fetch", "mailbox": "sales@{domain}", "expect": {"error": {"status": 403}}},
            {
                "do": "behaviour",
                "expect": {
                    "findings": ["no-select"],
                    "has_findings": ["token-not-cached"],
                    "no_findings": ["out-of-scope"],
                    "token_requests_at_most": 0,
                    "touched_only": ["support@{domain}"],
                    "never_touched": ["sales@{domain}"],
                    "sent_client_request_id": False,
                    "stopped_after_403": False,
                    "polls_at_most_per_minute": 0.5,
                },
            },
            {"do": "behaviour", "expect": {"stopped_after_403": True}},
            {"do": "fetch", "mailbox": "support@{domain}", "expect": {"findings": []}},
        ),
    )
    denied = rf"#\d+ [\d:.]+ GET /v1\.0/users/{SALES}/messages\?\$top=50 -> 403 ErrorAccessDenied"
    problems = result.steps[1].detail.split("; ")
    assert re.fullmatch(
        rf"findings \['no-select', 'out-of-scope'\] \(expected \['no-select'\]\): out-of-scope \(1\) e\.g\. {denied}",
        problems[0],
    )
    assert re.fullmatch(rf"found out-of-scope \(1\) e\.g\. {denied}", problems[2])
    assert [problems[1], *problems[3:]] == [
        "no token-not-cached finding (found ['no-select', 'out-of-scope'])",
        "1 token request (expected at most 0)",
        f"requests on {SALES} (expected only {SUPPORT})",
        f"requests on {SALES} (expected none)",
        "every Graph request sent a client-request-id (expected one without)",
        "no request refused with 403 was asked again (expected one that was)",
        f"polled {SALES} (all messages) 1.0 times a minute (expected at most 0.5)",
    ]
    assert result.steps[2].passed, result.steps[2].detail  # one 403, not asked again
    assert result.steps[3].detail == "findings: only a behaviour step has a behaviour report"
    junit([result], tmp_path / "junit.xml")
    failure = ET.parse(tmp_path / "junit.xml").find(".//failure").text
    assert "\n    Behaviour of Contact Center Connector since the scenario began: 2 requests" in failure


@pytest.mark.slow
def test_stopped_after_403_needs_a_403_and_sent_client_request_id_a_graph_request(target):
    result = run_scenario(
        target,
        scenario(
            {"do": "token"},
            {"do": "behaviour", "expect": {"sent_client_request_id": True, "stopped_after_403": True}},
        ),
    )
    assert result.steps[1].detail == (
        "no Graph request was made, so none sent a client-request-id; "
        "no request was refused with 403, so there was nothing to stop after"
    )


@dataclass
class Span:
    """What `world.daemons` holds for a started daemon, as far as the report reads it."""

    app_id: str
    first_seq: int
    last_seq: int | None


def newest_seq(world) -> int:
    return world.admin.log(limit=1)[0]["seq"]


@pytest.mark.slow
def test_a_daemons_report_holds_its_apps_requests_from_its_start_to_its_stop(target):
    world = prepare(target, scenario({"do": "token"}))
    app = world.app(None)
    _, mail = world.daemon({})
    list(mail.messages(SUPPORT, top=5, limit=5))  # before the daemon: not its
    started = newest_seq(world)
    for _ in range(2):
        list(mail.messages(SUPPORT, top=5, limit=5))
    stopped = newest_seq(world)
    list(mail.messages(SUPPORT, top=5, limit=5))  # after it: not its
    world.daemons["connector"] = Span(app["app_id"], started, stopped)
    outcome = perform(world, Step("behaviour", "b", {"daemon": "connector"}, {}))
    assert outcome.error is None and outcome.behaviour is not None
    assert [call.seq for call in outcome.behaviour.calls] == [started + 1, started + 2]
    assert outcome.behaviour.subject == "daemon 'connector' (Contact Center Connector)"
    world.daemons["connector"] = Span(app["app_id"], started, None)  # still running: up to now
    assert len(perform(world, Step("behaviour", "b", {"daemon": "connector"}, {})).behaviour.calls) == 3
    since_start = perform(world, Step("behaviour", "b", {}, {})).behaviour
    assert [call.operation for call in since_start.calls] == ["token", *["list messages"] * 4]


@pytest.mark.slow
def test_a_behaviour_step_naming_no_started_daemon_or_both_a_daemon_and_an_app_fails(target):
    result = run_scenario(
        target,
        scenario(
            {"do": "behaviour", "daemon": "conector"},
            {"do": "behaviour", "daemon": "conector", "as": "Contact Center Connector"},
        ),
    )
    assert [step.detail for step in result.steps] == [
        "could not run: no daemon called 'conector' was started in this scenario (started: none)",
        "could not run: a behaviour step takes `daemon` (a started daemon) or `as` (an app), not both",
    ]


# ---------------------------------------------------------------- `m365-mock report` on a running emulator


def flawed_daemon(running) -> str:
    """Requests as a careless daemon makes them: a token per request, no client-request-id, the inbox listed in
    full each poll, sales@ (outside its policy) asked twice; returns its app id."""
    app = running.app
    for attempt in range(3):
        form = {
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        }
        token = requests.post(running.tenant["token_endpoint"], data=form, verify=running.ca_file, timeout=10)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        mailbox = SUPPORT if attempt < 2 else SALES
        for _ in range(2 if mailbox == SALES else 1):
            requests.get(
                f"{running.base_url}/v1.0/users/{mailbox}/mailFolders/inbox/messages",
                headers=headers,
                verify=running.ca_file,
                timeout=10,
            )
    requests.get(
        f"{running.base_url}/v1.0/users/{SUPPORT}/mailFolders/inbox/messages?$select=id&$top=5",
        headers={**headers, "client-request-id": str(uuid.uuid4())},
        verify=running.ca_file,
        timeout=10,
    )
    return app["app_id"]


@pytest.mark.slow
def test_report_command_judges_a_running_emulators_log(tmp_path):
    state = str(tmp_path / "state")
    env = clean_env(tmp_path / "state")
    with start_emulator(tmp_path / "state") as running:
        app_id = flawed_daemon(running)
        result = run_cli("report", "--app", app_id, "--state-dir", state, env=env)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"Behaviour of app {app_id} (Contact Center Connector): 8 requests (#1 to #8) over ")
        assert lines[1:7] == [
            "  Requests by operation:",
            "    token              3  200 x3",
            "    list messages      5  200 x3, 403 x2",
            f"  Mailboxes touched: {SUPPORT}, {SALES}",
            lines[5],  # the pace of polls made as fast as a test makes them
            f"  Polled {SALES} inbox: 2 times, at most 2.0 a minute",
        ]
        assert lines[5].startswith(f"  Polled {SUPPORT} inbox: 3 times, at most ")
        assert [line for line in lines if line.startswith("  [")] == [
            "  [token-not-cached] Token not cached (2)",
            "  [retried-403] Repeated a request refused with 403 (1)",
            "  [full-listing] Full listings where delta query would do (3)",
            "  [no-select] Message listings without $select (4)",
            "  [unbounded-top] Listings without a page size ($top missing or over 1000) (4)",
            "  [out-of-scope] Reached for mailboxes outside its access policy (2)",
            "  [no-client-request-id] Graph requests without client-request-id (4)",
        ]
        assert re.fullmatch(
            rf"      e\.g\. #7 [\d:.]+ GET /v1\.0/users/{SALES}/mailFolders/inbox/messages -> 403 ErrorAccessDenied",
            lines[lines.index("  [retried-403] Repeated a request refused with 403 (1)") + 8],
        )
        as_json = run_cli("report", "--json", "--state-dir", state, env=env)
        [judged] = json.loads(as_json.stdout)
        named = f"app {app_id} (Contact Center Connector)"
        assert (judged["subject"], judged["requests"], judged["token_requests"]) == (named, 8, 3)
        assert {f["rule"]: f["count"] for f in judged["findings"]}["token-not-cached"] == 2
        [example] = next(f for f in judged["findings"] if f["rule"] == "retried-403")["examples"]
        assert (example["seq"], example["status"], example["error_code"]) == (7, 403, "ErrorAccessDenied")
        since = run_cli("report", "--since", "7", "--state-dir", state, env=env)
        first = since.stdout.splitlines()[0]
        assert first.startswith(f"Behaviour of app {app_id} (Contact Center Connector): 1 request (#8 to #8) over ")
        assert since.stdout.splitlines()[-1] == "  No findings: nothing Microsoft's guidance warns against."
        nothing = run_cli("report", "--app", "no-such-app", "--state-dir", state, env=env)
        assert (nothing.returncode, nothing.stdout) == (0, "no requests logged for app no-such-app\n")
        later = run_cli("report", "--since", "8", "--state-dir", state, env=env)
        assert (later.returncode, later.stdout) == (0, "no requests logged after #8\n")
        other = run_cli("report", "--tenant", "nowhere.example", "--state-dir", state, env=env)
        assert other.returncode == 1 and other.stderr.startswith("m365-mock report: ")


def test_report_command_without_an_emulator(tmp_path):
    result = run_cli("report", "--state-dir", str(tmp_path), env=clean_env(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("m365-mock report: no emulator to talk to:")
    bad = run_cli("report", "--since", "-1", "--state-dir", str(tmp_path), env=clean_env(tmp_path))
    assert (
        bad.returncode == 2 and "argument --since: expected a log sequence number (0 or more), got '-1'" in bad.stderr
    )
