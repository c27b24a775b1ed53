"""Scenario files, the runner and its reports: the built-in library passes, a wrong expectation fails clearly."""

from __future__ import annotations

import json
import re
import tempfile
import xml.etree.ElementTree as ET

import pytest

from m365_mock.scenarios.model import Scenario, ScenarioError, Step, builtin_scenarios, load_scenario, parse_scenario
from m365_mock.scenarios.report import console, junit
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.schema import SCHEMA, SCHEMA_FILE, schema_text
from tests.scenarios.conftest import EXPECTED_KINDS, REPO, clean_env, run_cli

pytestmark = pytest.mark.slow


def test_schema_file_is_the_schema():
    assert json.loads(SCHEMA_FILE.read_text()) == SCHEMA
    assert SCHEMA_FILE.read_text() == schema_text(), "run: python -m m365_mock.scenarios.schema"


RAOP = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
DENIED = "Access is denied. Check credentials and try again."


def documented_library() -> dict[str, str]:
    """docs/scenarios.md's list of the built-in library: file name -> the situation it replays."""
    text = (REPO / "docs" / "scenarios.md").read_text().split("## The built-in library", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w-]+)` \| (.+?) \|$", text, re.MULTILINE)
    return dict(rows)


def steps(scenario: Scenario, do: str, **options) -> list[Step]:
    """The scenario's steps of one kind whose options include `options` (as written, placeholders and all)."""
    return [s for s in scenario.steps if s.do == do and all(s.options.get(k) == v for k, v in options.items())]


def succeeds(step: Step) -> bool:
    return "error" not in step.expect


def setup_of(scenario: Scenario, kind: str) -> list:
    return [action[kind] for action in scenario.setup if kind in action]


def created_app(scenario: Scenario) -> dict:
    """The body of the one app the scenario's setup registers."""
    [request] = [c for c in setup_of(scenario, "control") if c["path"] == "/tenants/{tenant}/applications"]
    return request["body"]


def demo() -> dict:
    from m365_mock.state.tenantfile import demo_tenant_data

    return demo_tenant_data()["tenants"][0]


def demo_group(name: str) -> list[str]:
    [group] = [g for g in demo()["groups"] if g["display_name"] == name]
    return [member.split("@")[0] for member in group["members"]]


def restricted_mailbox(s: Scenario) -> None:
    # The runbook's policy, in the demo tenant: the app is restricted to cctr_sec_group, which holds support@ only.
    assert s.tenant == "demo" and not s.setup
    [policy] = demo()["access_policies"]
    assert (policy["access_right"], policy["scope"].split("@")[0]) == ("RestrictAccess", "cctr_sec_group")
    assert "support" in demo_group("cctr_sec_group") and "sales" not in demo_group("cctr_sec_group")
    [support] = steps(s, "fetch", mailbox="support@{domain}")
    assert succeeds(support) and support.expect["count"] > 0
    [read] = steps(s, "read", mailbox="support@{domain}")
    assert read.expect == {"body_visible": True}
    [sales] = steps(s, "fetch", mailbox="sales@{domain}")
    assert sales.expect["error"] == {"status": 403, "code": "ErrorAccessDenied", "message": RAOP}
    [send] = steps(s, "send", mailbox="sales@{domain}")
    assert (send.expect["error"]["status"], send.expect["error"]["code"]) == (403, "ErrorAccessDenied")
    [log] = steps(s, "log", mailbox="sales@{domain}", outcome="denied")
    assert log.expect["entries"] == 2 and "RestrictAccess" in log.expect["decision_contains"]


def deny_access(s: Scenario) -> None:
    # billing@ is in cctr_sec_group, which the Restrict policy lets in; a Deny policy on a group holding it wins.
    assert "billing" in demo_group("cctr_sec_group")
    [script] = setup_of(s, "exo")
    assert "-Members billing@{domain}" in script and "-AccessRight DenyAccess" in script
    [billing] = steps(s, "fetch", mailbox="billing@{domain}")
    assert billing.expect["error"]["code"] == "ErrorAccessDenied" and "[RAOP]" in billing.expect["error"].values()
    [support] = steps(s, "fetch", mailbox="support@{domain}")
    assert succeeds(support) and support.expect["count"] > 0
    [log] = steps(s, "log", mailbox="billing@{domain}", outcome="denied")
    assert "DenyAccess" in log.expect["decision_contains"]


def policy_added_while_running(s: Scenario) -> None:
    app = created_app(s)["display_name"]
    kinds = [step.do for step in s.steps]
    before, admin, after = kinds.index("fetch"), kinds.index("admin"), kinds.index("fetch", kinds.index("admin"))
    assert before < admin < after
    first, policy, second = s.steps[before], s.steps[admin], s.steps[after]
    assert first.options == second.options == {"as": app, "mailbox": "sales@{domain}"}, "the same app and token"
    assert succeeds(first) and first.expect["count"] > 0
    script = policy.options["action"]["exo"]
    assert script.startswith("New-ApplicationAccessPolicy") and f"-AppId {{app_id:{app}}}" in script
    assert second.expect["error"]["code"] == "ErrorAccessDenied" and "[RAOP]" in second.expect["error"].values()


def expired_secret(s: Scenario) -> None:
    [secret] = [c["body"] for c in setup_of(s, "control") if c["path"].endswith("/secrets")]
    [seconds] = setup_of(s, "advance")
    assert seconds > secret["expires_in_days"] * 86400
    [token] = steps(s, "token")
    assert (token.expect["error"]["status"], token.expect["error"]["code"]) == (401, 7000222)


def wrong_secret(s: Scenario) -> None:
    [token] = steps(s, "token", credential="secret_id")
    assert (token.expect["error"]["status"], token.expect["error"]["code"]) == (401, 7000215)


def no_admin_consent(s: Scenario) -> None:
    app = created_app(s)
    assert app["admin_consent"] is False and app["permissions"]
    [token] = steps(s, "token", **{"as": app["display_name"]})
    assert succeeds(token) and token.expect["no_claims"] == ["roles"]
    fetches = steps(s, "fetch", **{"as": app["display_name"]})
    assert fetches and all(
        f.expect["error"] == {"status": 403, "code": "ErrorAccessDenied", "message": DENIED} for f in fetches
    )


def mail_send_missing(s: Scenario) -> None:
    app = created_app(s)
    assert "Mail.Send" not in app["permissions"] and "Mail.Read" in app["permissions"]
    [fetch] = steps(s, "fetch", **{"as": app["display_name"]})
    assert succeeds(fetch) and fetch.expect["count"] > 0
    [send] = steps(s, "send", **{"as": app["display_name"]})
    assert send.expect["error"] == {"status": 403, "code": "ErrorAccessDenied", "message": DENIED}
    [log] = steps(s, "log", **{"as": app["display_name"]})
    assert "Mail.Send" in log.expect["decision_contains"]


def readbasic_only(s: Scenario) -> None:
    app = created_app(s)
    assert app["permissions"] == ["Mail.ReadBasic.All"]
    [read] = steps(s, "read", **{"as": app["display_name"]})
    assert read.expect == {"body_visible": False}


def certificate_credential(s: Scenario) -> None:
    [made] = setup_of(s, "certificate")
    assert made == {"app": demo()["applications"][0]["display_name"]}
    [token] = steps(s, "token", credential="certificate")
    assert token.expect["claims"]["appidacr"] == "2"
    [fetch] = steps(s, "fetch", credential="certificate")
    assert succeeds(fetch) and fetch.expect["count"] > 0


def shared_to_shared(s: Scenario) -> None:
    shared = {m["address"].split("@")[0] for m in demo()["mailboxes"] if m["type"] == "shared"}
    [send] = steps(s, "send")
    sender, recipient = (send.options[k].split("@")[0] for k in ("mailbox", "to"))
    assert {sender, recipient} <= shared and sender != recipient
    [arrived] = steps(s, "wait_for_delivery", mailbox=send.options["to"], subject=send.options["subject"])
    assert arrived.expect == {"count": 1}


def fetch_loop(s: Scenario) -> None:
    [delivered] = setup_of(s, "deliver")
    assert (delivered["count"], delivered["unread_ratio"]) == (25, 1)
    [loop] = steps(s, "process", mailbox=delivered["mailbox"], mark_read=True)
    assert loop.expect == {"count": 25, "total": 0, "unread": 0}, "every message once, none left behind"
    [moved] = steps(s, "folder", mailbox=delivered["mailbox"], folder=loop.options["move_to"])
    assert moved.expect == {"total": 25, "unread": 0}


def attachments_intact(s: Scenario) -> None:
    [delivered] = setup_of(s, "deliver")
    attachments = delivered["message"]["attachments"]
    assert [a["content_type"] for a in attachments] == ["application/pdf", "image/png"]
    assert attachments[1]["inline"] is True and f"cid:{attachments[1]['content_id']}" in delivered["message"]["body"]
    [download] = steps(s, "download", mailbox=delivered["mailbox"], subject=delivered["message"]["subject"])
    assert download.expect == {"attachments": [a["name"] for a in attachments], "intact": True}


def reply_with_large_attachment(s: Scenario) -> None:
    [delivered] = setup_of(s, "deliver")
    [reply] = steps(s, "reply", mailbox=delivered["mailbox"], subject=delivered["message"]["subject"])
    [label] = reply.options["attachments"]
    assert label["size"] >= 10 * 2**20, "large enough to need an upload session"
    sender = delivered["message"]["from"].split("<")[1].rstrip(">")
    [download] = steps(s, "download", mailbox=sender, subject=f"RE: {delivered['message']['subject']}")
    assert download.expect == {"attachments": [label["name"]], "intact": True}


def batch_allowed_and_restricted(s: Scenario) -> None:
    in_scope = set(demo_group("cctr_sec_group"))
    [batch] = steps(s, "batch")
    mailboxes = [m.split("@")[0] for m in batch.options["mailboxes"]]
    assert batch.expect == {"statuses": [200 if m in in_scope else 403 for m in mailboxes]}
    assert 403 in batch.expect["statuses"] and 200 in batch.expect["statuses"]


def delta_sync(s: Scenario) -> None:
    rounds = steps(s, "sync")
    assert len(rounds) == 3 and len({(r.options["mailbox"], r.options.get("folder")) for r in rounds}) == 1
    delivered = [d["message"]["subject"] for d in setup_of(s, "deliver")]
    assert sorted(rounds[0].expect["changed"]) == sorted(delivered) and rounds[0].expect["removed"] == 0
    between = s.steps[s.steps.index(rounds[0]) + 1 : s.steps.index(rounds[1])]
    kinds = [step.do for step in between]
    assert "admin" in kinds and "mark_read" in kinds and kinds.count("move") == 2, "new, changed, moved, deleted"
    assert rounds[1].expect["removed"] == 2 and len(rounds[1].expect["changed"]) == 2
    assert rounds[2].expect == {"changed": [], "removed": 0}, "each change once"


def throttled_fetch_loop(s: Scenario) -> None:
    [limits] = setup_of(s, "settings")
    throttling = limits["throttling"]
    [delivered] = setup_of(s, "deliver")
    [loop] = steps(s, "process", mailbox=delivered["mailbox"], mark_read=True)
    requests_needed = 1 + 2 * delivered["count"]  # a listing, then a PATCH and a move a message
    assert requests_needed > throttling["mailboxRequests"], "the loop must run into the limit"
    assert loop.expect == {"count": delivered["count"], "total": 0, "unread": 0}, "every message once"
    [log] = steps(s, "log", mailbox=delivered["mailbox"])
    assert log.expect == {"throttled_at_least": 1, "retry_after_honoured": True}


def token_expires_mid_run(s: Scenario) -> None:
    lifetime = 3599
    [advance] = [step for step in s.steps if step.do == "admin"]
    assert advance.options["action"]["advance"] > lifetime
    fetches = steps(s, "fetch")
    assert len(fetches) == 2 and s.steps.index(fetches[0]) < s.steps.index(advance) < s.steps.index(fetches[1])
    [log] = steps(s, "log")
    assert log.expect == {"statuses": [200, 401, 200]}, "one refusal, one renewal, then success"


def service_unavailable_burst(s: Scenario) -> None:
    [rule] = setup_of(s, "fault")
    assert rule["preset"] == "service-unavailable" and rule["times"] == 2
    first, second = steps(s, "fetch")
    assert first.expect == {"error": {"status": 503, "code": "serviceNotAvailable"}}
    assert "error" not in second.expect
    [log] = steps(s, "log")
    assert log.expect == {"statuses": [503] * rule["times"] + [200]}


def dropped_connection_mid_page(s: Scenario) -> None:
    [rule] = setup_of(s, "fault")
    assert rule["close"] == "before" and rule["nth"] == 2, "the second page's connection, before any answer"
    [fetch] = steps(s, "fetch")
    assert fetch.options["top"] < fetch.expect["count"], "more than one page"
    [log] = steps(s, "log")
    assert log.expect["statuses"][:3] == [200, 0, 200], "a page, the dropped request, its retry"


def slow_token_endpoint(s: Scenario) -> None:
    [rule] = setup_of(s, "fault")
    assert rule["operation"] == "token" and rule["latency"] >= 1 and rule["times"] == 1
    assert [step.do for step in s.steps][:2] == ["token", "fetch"]


SITUATIONS = {
    "01-restricted-mailbox": restricted_mailbox,
    "02-deny-access": deny_access,
    "03-policy-added-while-running": policy_added_while_running,
    "04-expired-secret": expired_secret,
    "05-wrong-secret": wrong_secret,
    "06-no-admin-consent": no_admin_consent,
    "07-mail-send-missing": mail_send_missing,
    "08-readbasic-only": readbasic_only,
    "09-certificate-credential": certificate_credential,
    "10-shared-to-shared": shared_to_shared,
    "11-fetch-loop": fetch_loop,
    "12-attachments-intact": attachments_intact,
    "13-reply-with-large-attachment": reply_with_large_attachment,
    "14-batch-allowed-and-restricted": batch_allowed_and_restricted,
    "15-delta-sync": delta_sync,
    "16-throttled-fetch-loop": throttled_fetch_loop,
    "17-token-expires-mid-run": token_expires_mid_run,
    "18-service-unavailable-burst": service_unavailable_burst,
    "19-dropped-connection-mid-page": dropped_connection_mid_page,
    "20-slow-token-endpoint": slow_token_endpoint,
}


def test_library_has_the_situations_teams_hit():
    assert list(documented_library()) == [p.stem for p in builtin_scenarios()] == list(SITUATIONS)


@pytest.mark.parametrize("path", builtin_scenarios(), ids=lambda p: p.stem)
def test_each_library_scenario_expects_what_makes_it_its_situation(path):
    SITUATIONS[path.stem](load_scenario(path))


@pytest.mark.parametrize("path", builtin_scenarios(), ids=lambda p: p.stem)
def test_each_builtin_scenario_passes_and_leaves_nothing_in_the_temp_folder(target, path, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    result = run_scenario(target, load_scenario(path))
    assert result.passed, console([result])
    assert result.steps and all(step.passed for step in result.steps)
    assert sorted(p.name for p in temp.iterdir()) == []


def test_a_wrong_expectation_fails_with_what_was_expected_and_what_came(target):
    scenario = parse_scenario(
        {
            "name": "wrong on purpose",
            "steps": [
                {"do": "fetch", "mailbox": "support@{domain}", "expect": {"count": 99}},
                {"do": "fetch", "mailbox": "sales@{domain}"},
                {"do": "fetch", "mailbox": "support@{domain}", "expect": {"error": {"status": 403}}},
                {"do": "token", "expect": {"claims": {"roles": ["Mail.Read"]}}},
            ],
        }
    )
    result = run_scenario(target, scenario)
    assert not result.passed
    details = [step.detail for step in result.steps]
    assert details[0] == "count 13 (expected 99)"
    assert details[1] == (
        "expected success, got 403 ErrorAccessDenied: Access to OData is disabled: [RAOP] : "
        "Blocked by tenant configured AppOnly AccessPolicy settings."
    )
    assert details[2] == "expected error 403, but the step succeeded"
    assert details[3] == "claim roles = ['Mail.ReadWrite', 'Mail.Send'] (expected ['Mail.Read'])"
    report = console([result])
    assert "FAIL  wrong on purpose" in report and "0 passed, 1 failed" in report


def test_a_failing_setup_stops_the_scenario(target):
    scenario = parse_scenario(
        {"name": "bad setup", "setup": [{"exo": "New-Nothing -Foo bar"}], "steps": [{"do": "token"}]}
    )
    result = run_scenario(target, scenario)
    assert not result.passed and result.steps == []
    assert result.error.startswith("setup failed: exo failed: New-Nothing : The term 'New-Nothing' is not recognized")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": [{"do": "token"}]}, "scenario: name: required"),
        (
            {"name": "x", "steps": [{"do": "dance"}]},
            f"scenario: steps[0].do: expected {EXPECTED_KINDS}, got 'dance'",
        ),
        (
            {"name": "x", "steps": [{"do": "fetch", "mailbox": "a@b.example", "expect": {"count": "many"}}]},
            "scenario: steps[0].expect.count: expected a whole number, got a string",
        ),
        (
            {"name": "x", "steps": [{"do": "fetch", "mailbox": "a@b.example", "expct": {"count": 1}}]},
            "scenario: steps[0].expct: unknown key; did you mean 'expect'?",
        ),
        (
            {"name": "x", "setup": [{"exo": "a", "advance": 1}], "steps": [{"do": "token"}]},
            "scenario: setup[0]: give only one of 'exo' and 'advance'",
        ),
        (
            {"name": "x", "setup": [{}], "steps": [{"do": "token"}]},
            "scenario: setup[0]: give 'exo', 'control', 'deliver', 'advance', 'settings', 'certificate' or 'fault'",
        ),
    ],
)
def test_invalid_scenarios_name_the_place(data, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert str(info.value) == message


def test_every_problem_of_plain_data_is_reported_in_the_order_of_its_keys():
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": " ", "tenant": 7, "steps": [{"do": "send", "mailbox": "a@b.example", "to": 3}]})
    assert str(info.value).splitlines() == [
        "scenario: name: expected a non-empty string",
        "scenario: tenant: expected a string or a mapping, got a whole number",
        "scenario: steps[0].to: expected a string or a list, got a whole number",
    ]


def test_junit_report(target, tmp_path):
    good = run_scenario(target, load_scenario(builtin_scenarios()[4]))
    bad = run_scenario(
        target,
        parse_scenario(
            {"name": "bad", "steps": [{"do": "fetch", "mailbox": "support@{domain}", "expect": {"count": 1}}]}
        ),
    )
    junit([good, bad], tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [good.name, "bad"]
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == "1. fetch: count 13 (expected 1)"


def test_cli_runs_files_and_writes_junit(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: wrong\nsteps:\n  - do: fetch\n    mailbox: support@{domain}\n    expect: {count: 2}\n")
    result = run_cli(
        "scenario",
        "run",
        str(builtin_scenarios()[4]),
        str(wrong),
        "--junit",
        str(tmp_path / "j.xml"),
        env=clean_env(tmp_path / "state"),
    )
    assert result.returncode == 1, result.stderr
    assert "PASS  Wrong secret" in result.stdout and "FAIL  wrong" in result.stdout
    assert "count 13 (expected 2)" in result.stdout and "1 passed, 1 failed" in result.stdout
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "1"


def test_cli_refuses_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps: []\n")
    result = run_cli("scenario", "run", str(bad), env=clean_env(tmp_path / "state"))
    assert result.returncode == 2 and f"{bad}:2:1: steps: expected a non-empty list" in result.stderr


def test_cli_against_a_running_emulator_by_url(tmp_path):
    from m365_mock.tools.process import start_emulator

    with start_emulator(tmp_path / "state") as running:
        result = run_cli(
            "scenario",
            "run",
            str(builtin_scenarios()[0]),
            "--url",
            running.base_url,
            f"--admin-key={running.facts['admin_key']}",  # a generated key may start with '-'
            "--ca-file",
            running.ca_file,
            "--json",
            env=clean_env(tmp_path / "nothing-here"),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    [report] = json.loads(result.stdout)
    assert report["passed"] is True and report["name"].startswith("Restricted mailbox")


def test_demo_runs_the_library_against_a_served_emulator(tmp_path):
    result = run_cli("demo", "--no-serve", "--port", "0", "--state-dir", str(tmp_path), env=clean_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(builtin_scenarios())} passed, 0 failed" in result.stdout


def test_attachments_are_found_next_to_the_scenario_file(target, tmp_path):
    (tmp_path / "invoice.txt").write_text("amount due: 42")
    path = tmp_path / "attach.yaml"
    path.write_text(
        "name: attach\nsteps:\n"
        "  - do: send\n    mailbox: support@{domain}\n    to: billing@{domain}\n    subject: With file\n"
        "    attachments: [invoice.txt]\n"
        "  - do: wait_for_delivery\n    mailbox: billing@{domain}\n    subject: With file\n    expect: {count: 1}\n"
    )
    result = run_scenario(target, load_scenario(path))
    assert result.passed, console([result])


def test_the_report_shows_each_steps_requests_and_the_throttling_that_fired(target):
    result = run_scenario(target, load_scenario(REPO / "scenarios" / "library" / "16-throttled-fetch-loop.yaml"))
    assert result.passed, console([result])
    [loop] = [step for step in result.steps if step.name == "1. process"]
    assert re.fullmatch(r"\d+ requests: 200 x\d+, 201 x\d+, 429 x\d+; throttled \d+ \(Retry-After 1 s\)", loop.requests)
    assert f"           {loop.requests}" in console([result]).splitlines()
    denied = run_scenario(target, load_scenario(REPO / "scenarios" / "library" / "01-restricted-mailbox.yaml"))
    [blocked] = [s for s in denied.steps if s.name == "sales@ (outside the group) is blocked by the policy"]
    assert blocked.requests == "1 request: 403 x1"
