"""World conditions: each holds or not as the world is, says what the world looked like when it does not, and is
read through the control API only; `wait` waits for them, `check` (and any step's `expect`) expects them."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest

from m365_mock.scenarios import conditions
from m365_mock.scenarios.conditions import unmet
from m365_mock.scenarios.model import ScenarioError, Step, load_scenario, parse_scenario
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.steps import perform
from m365_mock.scenarios.world import World, prepare

pytestmark = pytest.mark.slow

DOMAIN = "fabrikam.onmicrosoft.com"
SUPPORT, SALES = f"support@{DOMAIN}", f"sales@{DOMAIN}"
TENANT = {
    "tenants": [
        {
            "domains": [DOMAIN],
            "mailboxes": [{"address": SUPPORT}, {"address": SALES}],
            "applications": [
                {"display_name": "Daemon", "permissions": ["Mail.ReadWrite", "Mail.Send"], "secrets": [{}]}
            ],
        }
    ]
}


@pytest.fixture
def world(target, tmp_path) -> World:
    """An empty world: two mailboxes and one app."""
    return prepare(target, parse_scenario({"name": "x", "tenant": TENANT, "steps": [{"do": "token"}]}), tmp_path)


def deliver(world: World, subject: str, minute: int, **fields) -> None:
    """A message from outside into support@ (Graph message properties, `folder`), received at 08:<minute>."""
    world.admin.deliver(SUPPORT, {"subject": subject, "receivedDateTime": f"2026-05-01T08:{minute:02d}:00Z", **fields})


def test_folder_holds_with_its_counts_and_otherwise_says_what_it_holds(world):
    deliver(world, "first", 1, isRead=True)
    deliver(world, "second", 2)
    assert conditions.folder(world, {"mailbox": SUPPORT, "folder": "Inbox", "total": 2, "unread": 1}) == (
        [],
        "total 2, unread 1; newest subjects: ['second', 'first']",
    )
    assert conditions.folder(world, {"mailbox": SUPPORT, "folder": "inbox", "total_at_least": 2})[0] == []
    assert unmet(world, {"folder": [{"mailbox": SUPPORT, "folder": "inbox", "total": 0, "unread": 0}]}) == [
        f"folder Inbox of {SUPPORT}: total 2 (expected 0); folder Inbox of {SUPPORT}: unread 1 (expected 0) "
        "[total 2, unread 1; newest subjects: ['second', 'first']]"
    ]
    assert unmet(world, {"folder": {"mailbox": SUPPORT, "folder": "inbox", "total_at_least": 3}}) == [
        f"folder Inbox of {SUPPORT}: total 2 (expected at least 3) [total 2, unread 1; newest subjects: "
        "['second', 'first']]"
    ]
    [missing] = unmet(world, {"folder": {"mailbox": SUPPORT, "folder": "Processed"}})
    assert missing.startswith(
        f"folder Processed of {SUPPORT}: Mailbox '{SUPPORT}' has no folder 'Processed'; its folders: Archive, "
    )
    [nobody] = unmet(world, {"folder": {"mailbox": f"nobody@{DOMAIN}", "folder": "inbox"}})
    assert nobody == f"folder inbox of nobody@{DOMAIN}: No tenant of this emulator has a mailbox 'nobody@{DOMAIN}'."


def test_message_finds_a_subject_with_its_state_anywhere_or_in_one_folder(world):
    deliver(world, "Printer jammed", 1, categories=["Urgent", "Printers"], flag={"flagStatus": "flagged"})
    deliver(world, "Toner low", 2, isRead=True, folder="junkemail")
    urgent = {"mailbox": SUPPORT, "subject": "Printer jammed", "read": False, "flagged": True}
    assert conditions.message(world, {**urgent, "categories": ["urgent"], "folder": "Inbox"}) == (
        [],
        "'Printer jammed' in Inbox (unread, flagged, categories ['Urgent', 'Printers'])",
    )
    assert unmet(world, {"message": {"mailbox": SUPPORT, "subject_contains": "TONER", "read": True}}) == []
    assert unmet(world, {"message": {**urgent, "read": True, "has_attachments": False}}) == [
        f"no message 'Printer jammed' in {SUPPORT} with {{'read': True, 'flagged': True, 'has_attachments': False}} "
        "[found: [\"'Printer jammed' in Inbox (unread, flagged, categories ['Urgent', 'Printers'])\"]]"
    ]
    assert unmet(world, {"message": {"mailbox": SUPPORT, "folder": "inbox", "subject": "Toner low"}}) == [
        f"no message 'Toner low' in inbox of {SUPPORT} [newest subjects: ['Printer jammed']]"
    ]
    assert unmet(world, {"no_message": {"mailbox": SUPPORT, "folder": "inbox", "subject_contains": "toner"}}) == []
    assert unmet(world, {"no_message": {"mailbox": SUPPORT, "subject_contains": "toner"}}) == [
        f"1 message(s) with 'toner' in its subject in {SUPPORT} (expected none) "
        "[found: [\"'Toner low' in Junk Email (read)\"]]"
    ]


def test_outbound_matches_recipients_subject_body_and_attachments_by_name_and_hash(world):
    _, mail = world.daemon({})
    receipt = b"ticket 42 received"
    for _ in range(2):
        mail.send(
            SUPPORT,
            to=["Ann@Example.org"],
            cc=[SALES],
            subject="Re: Printer jammed",
            body="We have your ticket.",
            attachments=[("receipt.txt", receipt, "text/plain")],
        )
    digest = hashlib.sha256(receipt).hexdigest()
    wanted = {
        "to": "ann@example.org",
        "subject_contains": "re:",
        "body_contains": "your ticket",
        "attachments": [{"name": "receipt.txt", "sha256": digest.upper()}],
    }
    assert unmet(world, {"outbound": [wanted, {**wanted, "count": 2}]}) == []
    seen = "2 outbound message(s); newest: [\"'Re: Printer jammed' to Ann@Example.org with ['receipt.txt']\", "
    assert conditions.outbound(world, {**wanted, "count": 1}) == (
        [f"2 outbound message(s) match {wanted} (expected 1)"],
        seen + "\"'Re: Printer jammed' to Ann@Example.org with ['receipt.txt']\"]",
    )
    assert conditions.outbound(world, {"attachments": [{"name": "receipt.txt", "sha256": "0" * 64}]})[0] == [
        f"no outbound message matches {{'attachments': [{{'name': 'receipt.txt', 'sha256': '{'0' * 64}'}}]}}"
    ]
    assert conditions.outbound(world, {"to": [SALES]})[0] != []  # delivered inside the tenant, not sent outside
    [twice] = unmet(world, {"no_duplicates": {"mailbox": SUPPORT}})
    assert twice.startswith("sent outside 2 times: 'Re: Printer jammed' to ann@example.org [")


def test_log_counts_the_records_of_an_app_on_a_mailbox_with_a_status(world):
    _, mail = world.daemon({})
    list(mail.messages(SUPPORT, top=5))
    assert unmet(world, {"log": [{"as": "Daemon", "mailbox": SUPPORT, "status": 200}, {"kind": "token"}]}) == []
    assert unmet(world, {"log": {"app": "{app_id:Daemon}", "kind": "all", "count_at_least": 2}}) == []
    problems, seen = conditions.log(world, {"as": "Daemon", "status": 403})
    assert problems == ["0 log record(s) match {'as': 'Daemon', 'status': 403} (expected at least 1)"]
    assert seen == f"1 such record(s) of any status; newest: ['GET /v1.0/users/{SUPPORT}/messages?%24top=5 200']"


def test_no_duplicates_finds_a_message_twice_in_the_mailbox_but_not_a_sent_copy(world):
    deliver(world, "once", 1, internetMessageId="<once@example.org>")
    assert unmet(world, {"no_duplicates": {"mailbox": SUPPORT}}) == []
    _, mail = world.daemon({})
    mail.send(SUPPORT, to=[SUPPORT], subject="to myself", body="")  # one copy in Sent Items, one in the Inbox
    assert unmet(world, {"no_duplicates": {"mailbox": SUPPORT}}) == []
    deliver(world, "twice", 2, internetMessageId="<twice@example.org>")
    deliver(world, "twice", 3, internetMessageId="<twice@example.org>", folder="archive")
    assert unmet(world, {"no_duplicates": {"mailbox": SUPPORT, "folder": "inbox"}}) == []
    assert unmet(world, {"no_duplicates": {"mailbox": SUPPORT}}) == [
        f"2 copies of 'twice' in Archive (unread) in {SUPPORT} [4 message(s) compared in {SUPPORT}; "
        "0 sent outside from it]"
    ]


def test_judging_the_world_leaves_no_trace_in_the_request_log(world):
    before = world.admin.log()
    every = {
        "folder": {"mailbox": SUPPORT, "folder": "inbox"},
        "message": {"mailbox": SUPPORT, "subject": "x"},
        "no_message": {"mailbox": SUPPORT, "subject": "x"},
        "outbound": {},
        "log": {"kind": "all"},
        "no_duplicates": {"mailbox": SUPPORT},
    }
    assert set(every) == set(conditions.CONDITIONS)
    unmet(world, every)
    assert world.admin.log() == before == []


def test_wait_returns_once_the_world_holds_and_on_timeout_says_what_it_looked_like(world):
    arriving = threading.Timer(0.4, lambda: deliver(world, "late", 1))
    arriving.start()
    began = time.monotonic()
    waited = perform(world, Step("wait", "w", {"until": {"message": {"mailbox": SUPPORT, "subject": "late"}}}, {}))
    assert waited.failure is None and 0.3 < time.monotonic() - began < 3
    assert waited.note.startswith("held after ") and waited.note.endswith(" s: message")
    never = {
        "folder": {"mailbox": SUPPORT, "folder": "inbox", "total": 5},
        "no_message": {"mailbox": SUPPORT, "subject": "late"},
    }
    timed_out = perform(world, Step("wait", "w", {"until": never, "timeout": 0.3}, {}))
    assert timed_out.failure == (
        f"not within 0.3 s: folder Inbox of {SUPPORT}: total 1 (expected 5) [total 1, unread 1; newest subjects: "
        f"['late']]; 1 message(s) 'late' in {SUPPORT} (expected none) [found: [\"'late' in Inbox (unread)\"]]"
    )


def test_wait_ends_at_once_when_the_daemon_it_waits_for_dies(world):
    perform(world, Step("start", "s", {"command": "sleep 0.2; echo no config >&2; exit 2"}, {}))
    began = time.monotonic()
    waited = perform(world, Step("wait", "w", {"until": {"message": {"mailbox": SUPPORT, "subject": "x"}}}, {}))
    assert time.monotonic() - began < 3
    assert waited.failure.startswith(
        "daemon exited with exit code 2 (stderr ends: 'no config'), after 0."
    ) and waited.failure.endswith(f"s of waiting; no message 'x' in {SUPPORT} [newest subjects: []]")


def test_check_and_the_expect_of_any_step_take_the_world_conditions(target, tmp_path):
    data = {
        "name": "judged",
        "tenant": TENANT,
        "setup": [{"deliver": {"mailbox": SUPPORT, "message": {"subject": "Printer jammed"}}}],
        "steps": [
            {
                "do": "check",
                "name": "holds",
                "expect": {"message": {"mailbox": "support@{domain}", "subject": "Printer jammed"}},
            },
            {
                "do": "check",
                "name": "does not",
                "expect": {"folder": {"mailbox": SUPPORT, "folder": "inbox", "total": 0}},
            },
            {
                "do": "run",
                "name": "after a run",
                "command": "true",
                "expect": {"no_message": {"mailbox": SUPPORT, "subject": "Printer jammed"}},
            },
        ],
    }
    path = tmp_path / "judged.json"
    path.write_text(json.dumps(data))
    result = run_scenario(target, load_scenario(path))
    found = {step.name: (step.passed, step.detail) for step in result.steps}
    assert found["holds"] == (True, "the world is as expected: message")
    assert found["does not"] == (
        False,
        f"folder Inbox of {SUPPORT}: total 1 (expected 0) [total 1, unread 1; newest subjects: ['Printer jammed']]",
    )
    assert found["after a run"] == (
        False,
        f"1 message(s) 'Printer jammed' in {SUPPORT} (expected none) [found: [\"'Printer jammed' in Inbox (unread)\"]]",
    )


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"do": "check"}, "steps[0].expect: required when do is 'check'"),
        ({"do": "check", "expect": {}}, "steps[0].expect: {} should be non-empty"),
        ({"do": "wait"}, "steps[0].until: required when do is 'wait'"),
        ({"do": "wait", "until": {}}, "steps[0].until: {} should be non-empty"),
        ({"do": "wait", "until": {"flder": {}}}, "steps[0].until.flder: unknown key; did you mean 'folder'?"),
        (
            {"do": "wait", "until": {"folder": [{"mailbox": "a", "folder": "b", "totl": 1}]}},
            "steps[0].until.folder[0].totl: unknown key; did you mean 'total'?",
        ),
        (
            {"do": "check", "expect": {"folder": "inbox"}},
            "steps[0].expect.folder: expected a mapping or a list, got a string",
        ),
        (
            {"do": "check", "expect": {"message": {"mailbox": "a"}}},
            "steps[0].expect.message: give 'subject' or 'subject_contains'",
        ),
        (
            {"do": "check", "expect": {"no_message": {"mailbox": "a", "subject": "x", "subject_contains": "y"}}},
            "steps[0].expect.no_message: give only one of 'subject' and 'subject_contains'",
        ),
        (
            {"do": "check", "expect": {"log": {"app": "a", "as": "b"}}},
            "steps[0].expect.log: give `as` or `app`, not both",
        ),
        (
            {"do": "check", "expect": {"log": {"outcome": "Granted"}}},
            "steps[0].expect.log.outcome: expected 'granted', 'denied', 'error', 'issued' or 'refused', got 'Granted'",
        ),
        ({"do": "check", "expect": {"no_duplicates": {}}}, "steps[0].expect.no_duplicates.mailbox: required"),
        (
            {"do": "wait", "until": {"log": {}}, "timeout": -1},
            "steps[0].timeout: expected a number of 0 or more, got -1",
        ),
    ],
)
def test_conditions_are_read_strictly(step, problem):
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": "x", "steps": [step]})
    assert str(info.value) == f"scenario: {problem}"
