"""Scenario files: each kind of step is refused without its options; `cc` and `deliver.message` read as documented."""

from __future__ import annotations

import pytest

from m365_mock.scenarios.actions import run_setup
from m365_mock.scenarios.model import ScenarioError, parse_scenario
from m365_mock.scenarios.report import console
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.schema import STEP_KINDS
from m365_mock.scenarios.steps import perform
from m365_mock.scenarios.world import prepare

pytestmark = pytest.mark.slow

# A complete step of each kind, and the options it cannot run without: without any one of them, the file is refused.
COMPLETE = {
    "token": {},
    "fetch": {"mailbox": "support@{domain}"},
    "read": {"mailbox": "support@{domain}", "subject": "Hello"},
    "mark_read": {"mailbox": "support@{domain}", "subject": "Hello"},
    "move": {"mailbox": "support@{domain}", "subject": "Hello", "move_to": "Done"},
    "send": {"mailbox": "support@{domain}", "to": "billing@{domain}"},
    "download": {"mailbox": "support@{domain}", "subject": "Hello"},
    "reply": {"mailbox": "support@{domain}", "subject": "Hello"},
    "batch": {"mailboxes": ["support@{domain}"]},
    "sync": {"mailbox": "support@{domain}"},
    "wait_for_delivery": {"mailbox": "billing@{domain}", "subject": "Hello"},
    "process": {"mailbox": "support@{domain}"},
    "folder": {"mailbox": "support@{domain}"},
    "log": {},
    "admin": {"action": {"advance": 60}},
    "run": {"command": "true"},
    "start": {"command": ["sleep", "1"]},
    "stop": {},
    "wait": {"until": {"folder": {"mailbox": "support@{domain}", "folder": "inbox", "total": 0}}},
    "check": {"expect": {"no_duplicates": {"mailbox": "support@{domain}"}}},
    "behaviour": {},
}
REQUIRED = {
    "fetch": ["mailbox"],
    "read": ["mailbox", "subject"],
    "mark_read": ["mailbox", "subject"],
    "move": ["mailbox", "subject", "move_to"],
    "send": ["mailbox", "to"],
    "download": ["mailbox", "subject"],
    "reply": ["mailbox", "subject"],
    "batch": ["mailboxes"],
    "sync": ["mailbox"],
    "wait_for_delivery": ["mailbox", "subject"],
    "process": ["mailbox"],
    "folder": ["mailbox"],
    "admin": ["action"],
    "run": ["command"],
    "start": ["command"],
    "wait": ["until"],
}


@pytest.mark.parametrize(
    ("kind", "option"),
    [(kind, option) for kind, options in REQUIRED.items() for option in options],
)
def test_a_step_without_a_required_option_is_refused_naming_the_step(kind, option):
    assert set(COMPLETE) == set(STEP_KINDS)
    step = {"do": kind, **{k: v for k, v in COMPLETE[kind].items() if k != option}}
    data = {"name": "x", "steps": [{"do": "token"}, {"do": "token"}, step]}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert str(info.value) == f"scenario: steps[2].{option}: required when do is '{kind}'"
    parse_scenario({"name": "x", "steps": [{"do": kind, **COMPLETE[kind]}]})


def test_a_message_field_the_runner_cannot_deliver_is_refused():
    data = {
        "name": "x",
        "setup": [{"deliver": {"mailbox": "support@{domain}", "message": {"subject": "Hi", "sender": "a@b.example"}}}],
        "steps": [{"do": "token"}],
    }
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert str(info.value) == (
        "scenario: setup[0].deliver.message.sender: unknown key; "
        "known: subject, from, to, body, body_type, received, read, folder, importance, categories, attachments"
    )


def test_cc_takes_one_address_as_to_does(target):
    scenario = parse_scenario(
        {
            "name": "cc as one address",
            "setup": [
                {
                    "control": {
                        "method": "POST",
                        "path": "/tenants/{tenant}/applications",
                        "body": {"display_name": "Auditor", "permissions": ["Mail.Read"], "secrets": [{}]},
                    }
                }
            ],
            "steps": [
                {
                    "do": "send",
                    "mailbox": "support@{domain}",
                    "to": "billing@{domain}",
                    "cc": "sales@{domain}",
                    "subject": "Copy for sales",
                },
                {
                    "do": "wait_for_delivery",
                    "as": "Auditor",
                    "mailbox": "sales@{domain}",
                    "subject": "Copy for sales",
                    "expect": {"count": 1},
                },
            ],
        }
    )
    result = run_scenario(target, scenario)
    assert result.passed, console([result])


def test_deliver_takes_a_message_written_as_in_tenant_files(target):
    scenario = parse_scenario(
        {
            "name": "one message from outside",
            "setup": [
                {
                    "deliver": {
                        "mailbox": "support@{domain}",
                        "message": {
                            "subject": "Printer on floor 2 is jammed",
                            "from": "Ann Lee <ann.lee@example.org>",
                            "body": "It jams on every second page.",
                            "received": "2026-05-01T08:00:00Z",
                            "importance": "high",
                            "categories": ["Hardware"],
                        },
                    }
                },
                {"deliver": {"mailbox": "billing@{domain}", "message": {"subject": "Bare", "from": "bob@example.org"}}},
            ],
            "steps": [
                {"do": "read", "mailbox": "support@{domain}", "subject": "Printer on floor 2 is jammed"},
                {"do": "read", "mailbox": "billing@{domain}", "subject": "Bare"},
            ],
        }
    )
    world = prepare(target, scenario)
    notes = [run_setup(world, action) for action in scenario.setup]
    assert notes[0] == "deliver: 'Printer on floor 2 is jammed' to support@contoso.onmicrosoft.com"
    first, second = (perform(world, step) for step in scenario.steps)
    assert first.error is None and second.error is None
    [message] = first.messages
    assert message["from"]["emailAddress"] == {"name": "Ann Lee", "address": "ann.lee@example.org"}
    assert message["body"]["contentType"].lower() == "text"
    assert message["body"]["content"] == "It jams on every second page."
    assert message["receivedDateTime"] == "2026-05-01T08:00:00Z"
    assert (message["importance"], message["categories"], message["isRead"]) == ("high", ["Hardware"], False)
    assert [r["emailAddress"]["address"] for r in message["toRecipients"]] == ["support@contoso.onmicrosoft.com"]
    assert second.messages[0]["from"]["emailAddress"] == {"name": "bob@example.org", "address": "bob@example.org"}


def test_a_refused_admin_action_names_the_request_and_the_answer(target):
    register = {
        "control": {
            "method": "POST",
            "path": "/tenants/{tenant}/applications",
            "body": {"display_name": "Broken", "permissions": ["Mail.Nope"]},
        }
    }
    result = run_scenario(target, parse_scenario({"name": "x", "setup": [register], "steps": [{"do": "token"}]}))
    assert result.error.startswith("setup failed: POST /_m365/tenants/")
    assert "/applications answered 400 InvalidField: unknown Graph application permission 'Mail.Nope'" in result.error
    late = {"do": "admin", "action": {"deliver": {"mailbox": "nobody@{domain}", "count": 2}}}
    result = run_scenario(target, parse_scenario({"name": "x", "steps": [late, {"do": "token"}]}))
    assert [step.passed for step in result.steps] == [False, True]
    assert result.steps[0].detail == (
        "could not run: POST /_m365/mailboxes/nobody%40contoso.onmicrosoft.com/messages answered 404 "
        "MailboxNotFound: No tenant of this emulator has a mailbox 'nobody@contoso.onmicrosoft.com'."
    )
