"""Refusals the server front decides before the app runs are answered by the app, in each service's format."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import RequestHeaderFieldsTooLarge, RequestTimeout, RequestURITooLarge

from m365_mock.web import REFUSAL
from tests.helpers import ADMIN_KEY


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (RequestTimeout("The request body did not arrive within 2 s of its last part."), 408, "RequestTimeout"),
        (RequestURITooLarge("The URL is 20000 bytes long; at most 16384 are read."), 414, "RequestUriTooLong"),
        (RequestHeaderFieldsTooLarge("The headers are 70000 bytes."), 431, "RequestHeaderFieldsTooLarge"),
    ],
)
def test_graph_paths_answer_refusals_in_graphs_format(client, emulator, refusal, status, code):
    answer = client.post("/v1.0/users/support@contoso.onmicrosoft.com/sendMail", environ_overrides={REFUSAL: refusal})
    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert (error["code"], error["message"]) == (code, refusal.description)
    assert error["innerError"]["request-id"] == answer.headers["request-id"]
    assert [r.status for r in emulator.log.query()] == [status]


def test_token_paths_answer_refusals_in_entras_format(client):
    refusal = RequestTimeout("The request body did not arrive within 2 s of its last part.")
    answer = client.post("/contoso.onmicrosoft.com/oauth2/v2.0/token", environ_overrides={REFUSAL: refusal})
    assert answer.status_code == 408
    body = answer.get_json()
    assert body["error"] == "invalid_request" and body["error_codes"] == []
    assert body["error_description"].startswith(refusal.description + " Trace ID: ")


def test_control_paths_answer_refusals_in_the_control_format(client):
    refusal = RequestURITooLarge("The URL is 20000 bytes long; at most 16384 are read.")
    answer = client.get("/_m365/health", headers={"X-M365-Admin-Key": ADMIN_KEY}, environ_overrides={REFUSAL: refusal})
    assert answer.status_code == 414
    assert answer.get_json()["error"]["message"] == refusal.description


def test_the_fronts_refusal_comes_before_the_routes_own_checks(client):
    """A URL over the limit is answered 414 even where the control API would refuse its query first."""
    refusal = RequestURITooLarge("The request URL is longer than the emulator's limit of 16384 bytes.")
    answer = client.get("/_m365/log?" + "x" * 100, environ_overrides={REFUSAL: refusal})
    assert answer.status_code == 414
