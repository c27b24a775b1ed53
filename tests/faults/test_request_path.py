"""Fault rules on the one request path (Flask's test client): where each is matched, what each answers, what the
state is afterwards, and the request-log record of the rule that acted."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from m365_mock.state.faults import read_rule
from m365_mock.tools.logview import format_records
from tests.helpers import SALES, SUPPORT, TENANT
from tests.identity.helpers import post_token, secret_form

MESSAGES = f"/users/{SUPPORT}/messages"


@pytest.fixture
def fault(emulator):
    """Put a rule in force in the app under test; the rule as added."""
    return lambda **spec: emulator.faults.add(read_rule(spec))


def records(emulator) -> list[dict]:
    return [r.to_json() for r in emulator.log.query()]


def outbound_subjects(emulator) -> list[str]:
    return [m.subject for m in emulator.mail.outbound()]


def send_mail(graph, subject: str = "Hello"):
    message = {"subject": subject, "toRecipients": [{"emailAddress": {"address": "someone@example.org"}}]}
    return graph.post(f"/users/{SUPPORT}/sendMail", json={"message": message})


# ---------------------------------------------------------------- matched before the route, on method and path


def test_a_path_rule_answers_before_the_token_is_even_checked(client, fault, emulator):
    rule = fault(path="/v1.0/users/*/messages", method="GET", status=503)
    response = client.get(f"/v1.0{MESSAGES}", base_url="https://graph.emu.test")
    body = response.get_json()
    assert response.status_code == 503
    assert body["error"]["code"] == "serviceNotAvailable"
    assert body["error"]["innerError"]["request-id"] == response.headers["request-id"]
    assert emulator.faults.counters(rule) == (1, 1, False)
    [record] = records(emulator)
    assert (record["status"], record["fault"], record["error_code"], record["app_id"]) == (
        503,
        rule.id,
        "serviceNotAvailable",
        None,
    )


def test_other_paths_and_methods_pass(graph, fault, emulator):
    rule = fault(path="/v1.0/users/*/messages", method="POST", status=503)
    assert graph.get(MESSAGES).status_code == 200
    assert graph.get(f"/users/{SUPPORT}/mailFolders").status_code == 200
    assert emulator.faults.counters(rule) == (0, 0, False)


def test_the_control_api_is_never_faulted(admin, fault):
    fault(path="/**", status=503)
    assert admin.call("GET", "/_m365/faults", expect=200).json()["value"][0]["matched"] == 0


def test_the_token_endpoint_down(client, fault, tenant, demo_app, emulator):
    rule = fault(preset="token-endpoint-down", times=1)
    down = post_token(client, tenant.id, **secret_form(demo_app))
    body = down.get_json()
    assert down.status_code == 503
    assert (body["error"], body["error_codes"]) == ("temporarily_unavailable", [90006])
    assert body["error_description"].startswith("AADSTS90006: The service is temporarily unavailable. Trace ID: ")
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=90006"
    assert "Retry-After" not in down.headers
    assert post_token(client, tenant.id, **secret_form(demo_app)).status_code == 200
    down_record, up_record = records(emulator)  # every token request is logged, with the rule that acted on it
    assert (down_record["path"], down_record["status"], down_record["fault"]) == (
        f"/{tenant.id}/oauth2/v2.0/token",
        503,
        rule.id,
    )
    assert (down_record["kind"], down_record["outcome"], down_record["error_code"]) == (
        "token",
        "refused",
        "AADSTS90006",
    )
    assert (up_record["status"], up_record["outcome"], up_record["fault"]) == (200, "issued", None)
    assert down_record["app_id"] is None  # refused before its body was read
    assert up_record["app_id"] == demo_app.app_id


def test_the_token_endpoint_down_answers_even_a_request_it_could_not_read(client, fault, tenant):
    fault(preset="token-endpoint-down")
    assert post_token(client, tenant.id, grant_type="client_credentials").status_code == 503
    assert post_token(client, tenant.id, version=1).status_code == 503


def test_discovery_is_faulted_by_path(client, fault):
    fault(path="/*/v2.0/.well-known/openid-configuration", status=500)
    response = client.get(f"/{TENANT}/v2.0/.well-known/openid-configuration")
    assert (response.status_code, response.get_json()["error"]) == (500, "server_error")


# ---------------------------------------------------------------- matched at a gate, on app, mailbox and operation


def test_an_operation_rule_waits_for_the_gate_and_the_send_does_not_happen(graph, fault, emulator):
    rule = fault(operation="send", status=503, retry_after=7)
    assert graph.get(MESSAGES).status_code == 200
    refused = send_mail(graph, "Not sent")
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "7")
    assert outbound_subjects(emulator) == []
    assert emulator.faults.counters(rule) == (1, 1, False)
    record = records(emulator)[-1]
    assert (record["app_id"], record["operation"], record["fault"]) == (graph_app_id(emulator), None, rule.id)


def graph_app_id(emulator) -> str:
    return next(iter(emulator.directory.tenants[0].applications.values())).app_id


def test_app_by_display_name_and_mailbox_as_addressed(graph, graph_as, fault, emulator):
    rule = fault(app="Contact Center Connector", mailbox=SALES, status=500, code="ErrorInternalServerTransientError")
    assert graph.get(MESSAGES).status_code == 200
    other_app = graph_as("Mail.Read")
    assert other_app.get(f"/users/{SALES}/messages").status_code == 200
    refused = graph.get(f"/users/{SALES.upper()}/messages")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (500, "ErrorInternalServerTransientError")
    assert emulator.faults.counters(rule) == (1, 1, False)


def test_mailbox_by_the_address_an_id_resolves_to(graph, fault, tenant):
    fault(mailbox=SUPPORT, status=503)
    mailbox_id = tenant.mailbox(SUPPORT).id
    assert graph.get(f"/users/{mailbox_id}/messages").status_code == 503


def test_a_directory_read_meets_rules_about_the_app(graph, fault, emulator):
    rule = fault(operation="read directory", preset="throttle")
    refused = graph.get("/users")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (429, "TooManyRequests")
    assert emulator.faults.counters(rule) == (1, 1, False)


def test_an_app_rule_on_the_token_endpoint(client, fault, tenant, demo_app):
    fault(app=demo_app.app_id, operation="token", status=400, code="invalid_grant", aadsts=50000, message="Nope.")
    body = post_token(client, tenant.id, **secret_form(demo_app)).get_json()
    assert (body["error"], body["error_codes"]) == ("invalid_grant", [50000])
    assert body["error_description"].startswith("AADSTS50000: Nope. Trace ID")


def test_a_request_meets_each_rule_once_and_one_rule_acts(graph, fault, emulator):
    before = fault(path="/v1.0/users/*/messages", latency=0.001)
    at_gate = fault(mailbox=SUPPORT, status=503)
    assert graph.get(MESSAGES).status_code == 200  # the first rule acted; the gate does not look again
    assert emulator.faults.counters(before) == (1, 1, False)
    assert emulator.faults.counters(at_gate) == (0, 0, False)
    assert graph.get(f"/users/{SUPPORT}/mailFolders").status_code == 503
    assert emulator.faults.counters(at_gate) == (1, 1, False)


def test_inner_batch_requests_are_matched_each_on_their_own(graph, fault, emulator):
    rule = fault(preset="throttle", mailbox=SALES)
    dropped = fault(close="before", mailbox=SUPPORT)
    batch = graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/users/{SUPPORT}/messages"},
                {"id": "2", "method": "GET", "url": f"/users/{SALES}/messages"},
            ]
        },
    )
    assert batch.status_code == 200
    answers = {a["id"]: a for a in batch.get_json()["responses"]}
    assert answers["1"]["status"] == 200  # a rule on the connection does not act inside a $batch
    assert answers["2"]["status"] == 429
    assert answers["2"]["headers"]["Retry-After"] == "2"
    assert answers["2"]["body"]["error"]["code"] == "TooManyRequests"
    assert emulator.faults.counters(rule) == (1, 1, False)
    assert emulator.faults.counters(dropped) == (0, 0, False)


# ---------------------------------------------------------------- presets


def graph_body(response) -> dict:
    return json.loads(response.get_data())


@pytest.mark.parametrize(
    ("preset", "status", "code", "message", "retry_after", "inner"),
    [
        ("throttle", 429, "TooManyRequests", "Please retry again later.", "2", "throttle"),
        (
            "mailbox-concurrency",
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            "1",
            None,
        ),
        (
            "service-unavailable",
            503,
            "serviceNotAvailable",
            "The service is not available. Try the request again after a delay. There may be a Retry-After header.",
            None,
            "standard",
        ),
        ("gateway-timeout", 504, "UnknownError", "", None, "standard"),
        ("bad-gateway", 502, "UnknownError", "", None, "standard"),
        (
            "mailbox-not-enabled",
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            None,
            "standard",
        ),
        (
            "invalid-user",
            404,
            "ErrorInvalidUser",
            f"The requested user '{SUPPORT.upper()}' is invalid.",
            None,
            "standard",
        ),
    ],
)
def test_graph_presets(graph, fault, clock, preset, status, code, message, retry_after, inner):
    now = datetime.fromtimestamp(int(time.time()), UTC)
    clock.freeze(now)
    date = now.strftime("%Y-%m-%dT%H:%M:%S")
    fault(preset=preset)
    response = graph.get(f"/users/{SUPPORT.upper()}/messages")
    error = graph_body(response)["error"]
    assert (response.status_code, error["code"], error["message"]) == (status, code, message)
    assert response.headers.get("Retry-After") == retry_after
    assert response.mimetype == "application/json"
    request_id = response.headers["request-id"]
    if inner == "throttle":
        assert error["innerError"] == {
            "code": "429",
            "date": date,
            "message": "Please retry after",
            "request-id": request_id,
            "status": "429",
        }
    elif inner == "standard":
        assert error["innerError"] == {"date": date, "request-id": request_id, "client-request-id": request_id}
    else:
        assert "innerError" not in error


def test_a_preset_with_a_retry_after_of_its_own(graph, fault):
    fault(preset="throttle", retry_after=0)
    assert graph.get(MESSAGES).headers["Retry-After"] == "0"


@pytest.mark.parametrize(
    ("spec", "status", "code", "message"),
    [
        ({"status": 429}, 429, "TooManyRequests", "Please retry again later."),
        ({"status": 500}, 500, "UnknownError", ""),
        ({"status": 504, "message": "slow"}, 504, "UnknownError", "slow"),
        ({"status": 409, "code": "ErrorIrresolvableConflict"}, 409, "ErrorIrresolvableConflict", ""),
    ],
)
def test_a_status_of_ones_own(graph, fault, spec, status, code, message):
    fault(**spec)
    response = graph.get(MESSAGES)
    error = graph_body(response)["error"]
    assert (response.status_code, error["code"], error["message"]) == (status, code, message)
    assert "Retry-After" not in response.headers


# ---------------------------------------------------------------- the body and the connection, without the front


def test_invalid_json_is_a_whole_answer_that_does_not_parse(graph, fault, deliver):
    deliver(SUPPORT, subject="One")
    whole = graph.get(MESSAGES).get_data()
    fault(invalid_json=True, times=1)
    response = graph.get(MESSAGES)
    assert response.status_code == 200
    assert response.get_data() == whole[: len(whole) // 2]
    assert response.headers["Content-Length"] == str(len(whole) // 2)
    with pytest.raises(ValueError):
        json.loads(response.get_data())


def test_invalid_json_of_an_empty_answer(graph, fault):
    fault(invalid_json=True, operation="send")
    response = send_mail(graph)
    assert (response.status_code, response.get_data()) == (202, b"{")


def test_an_answer_without_a_body_has_nothing_to_spoil(graph, fault, deliver):
    message = deliver(SUPPORT, subject="Gone")
    rule = fault(invalid_json=True, method="DELETE")
    response = graph.delete(f"{MESSAGES}/{message.id}")
    assert (response.status_code, response.get_data()) == (204, b"")
    assert "Content-Length" not in response.headers or response.headers["Content-Length"] == "0"
    assert emulator_of(graph).faults.counters(rule) == (1, 1, False)


def emulator_of(graph):
    return graph.client.application.extensions["m365"]


def test_a_closed_connection_before_the_request_changes_nothing(graph, fault, emulator):
    rule = fault(close="before", operation="send")
    with pytest.raises(ConnectionAbortedError, match=f"fault rule '{rule.id}'"):
        send_mail(graph, "Lost")
    assert outbound_subjects(emulator) == []
    [record] = records(emulator)
    assert (record["status"], record["error_code"], record["fault_action"]) == (
        0,
        None,
        "connection closed before the request ran",
    )


def test_a_closed_connection_after_the_request_loses_only_the_answer(graph, fault, emulator):
    fault(close="after", operation="send")
    with pytest.raises(ConnectionAbortedError):
        send_mail(graph, "Sent, answer lost")
    assert outbound_subjects(emulator) == ["Sent, answer lost"]
    assert records(emulator)[-1]["status"] == 0


def test_truncated_answer_without_the_front(graph, fault, deliver):
    deliver(SUPPORT, subject="One")
    whole = graph.get(MESSAGES).get_data()
    fault(truncate=10_000_000, times=1)
    response = graph.get(MESSAGES)
    assert response.get_data() == whole[:-1]  # never the whole body
    assert response.headers["Content-Length"] == str(len(whole))


def test_trickle_and_latency_without_the_front_keep_the_body(graph, fault, deliver):
    deliver(SUPPORT, subject="One")
    whole = graph.get(MESSAGES).get_data()
    fault(trickle={"chunk_bytes": len(whole) // 3 + 1, "interval": 0.05}, latency=0.05, times=1)
    started = time.monotonic()
    response = graph.get(MESSAGES)
    assert response.get_data() == whole
    assert time.monotonic() - started >= 0.05 + 2 * 0.05


# ---------------------------------------------------------------- the request log


def test_the_log_names_the_rule_and_m365_mock_log_shows_it(graph, fault, emulator):
    rule = fault(id="drop-sends", close="before", operation="send")
    with pytest.raises(ConnectionAbortedError):
        send_mail(graph)
    graph.get(MESSAGES)
    [dropped, fine] = records(emulator)
    assert (dropped["fault"], dropped["fault_action"]) == ("drop-sends", rule.action)
    assert (fine["fault"], fine["fault_action"]) == (None, None)
    lines = format_records([dropped, fine]).splitlines()
    assert "---  error" in lines[0] and lines[0].endswith(f"POST /v1.0/users/{SUPPORT}/sendMail")
    assert lines[1].strip() == "fault drop-sends: connection closed before the request ran"
    assert "fault" not in "\n".join(lines[2:])
