"""The live log: requests appear as they happen (server-sent events through the server front), filtered, and a
click shows one whole; streams hold no request thread."""

from __future__ import annotations

import contextlib
import time

import pytest
import requests

pytestmark = pytest.mark.slow

SALES = "sales@contoso.onmicrosoft.com"
SUPPORT = "support@contoso.onmicrosoft.com"


def token(served) -> str:
    app = served.app
    answer = requests.post(
        served.tenant["token_endpoint"],
        verify=served.ca_file,
        timeout=30,
        headers={"User-Agent": "live-log-test/1.0"},
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert answer.status_code == 200
    return answer.json()["access_token"]


def read(served, access_token: str, mailbox: str) -> requests.Response:
    return requests.get(
        f"{served.base_url}/v1.0/users/{mailbox}/messages?$top=1",
        headers={
            "Authorization": f"Bearer {access_token}",
            "client-request-id": "c0ffee00-0000-4000-8000-000000000000",
        },
        verify=served.ca_file,
        timeout=30,
    )


def test_a_denied_request_appears_within_a_second_and_a_click_shows_it_whole(dashboard, served, ui_url):
    from playwright.sync_api import expect

    dashboard.goto(ui_url + "/log")
    expect(dashboard.locator("#log-state")).to_have_text("live")
    access_token = token(served)
    expect(dashboard.locator("#log-rows tr", has_text="token").first).to_be_visible(timeout=1000)
    denied = read(served, access_token, SALES)
    assert denied.status_code == 403
    asked = time.monotonic()
    row = dashboard.locator(f'#log-rows tr[data-status="403"]:has-text("{SALES}")').first
    expect(row).to_be_visible(timeout=1000)
    assert time.monotonic() - asked < 1.0
    assert "denied" in row.inner_text() and "Contact Center Connector" in row.inner_text()
    row.click()
    answer = dashboard.locator("#log-answer")
    expect(answer.locator('[data-field="error_code"]')).to_have_text("ErrorAccessDenied")
    expect(answer.locator('[data-field="decision"]')).to_contain_text("denied: ")
    request = dashboard.locator("#log-request")
    expect(request.locator('[data-field="client_request_id"]')).to_have_text("c0ffee00-0000-4000-8000-000000000000")
    expect(request.locator('[data-field="path"]')).to_have_text(f"/v1.0/users/{SALES}/messages?$top=1")


def test_the_denied_filter_shows_only_denied_requests_live_and_from_before(dashboard, served, ui_url):
    from playwright.sync_api import expect

    access_token = token(served)
    assert read(served, access_token, SALES).status_code == 403  # before the page opens: in its backlog
    dashboard.goto(ui_url + f"/log?show=denied&mailbox={SALES}")
    expect(dashboard.locator("#log-state")).to_have_text("live")
    assert read(served, access_token, SUPPORT).status_code == 200
    assert read(served, access_token, SALES).status_code == 403
    rows = dashboard.locator("#log-rows tr")
    expect(rows.nth(1)).to_be_visible(timeout=1000)
    time.sleep(0.3)  # a granted record would have come with the second denied one
    statuses = rows.evaluate_all("rows => rows.map(r => [r.dataset.status, r.dataset.outcome])")
    assert statuses and all(s == ["403", "denied"] for s in statuses)
    assert dashboard.locator("select[name=show]").input_value() == "denied"


def test_an_unknown_filter_is_refused_not_ignored(dashboard, ui_url):
    answer = dashboard.goto(ui_url + "/log?outcome=denied")
    assert answer.status == 400
    assert "does not take the query parameter 'outcome'" in dashboard.locator("body").inner_text()


def test_open_streams_hold_no_request_thread(served, ui_url):
    """More live logs open than the server has request threads: Graph still answers, and the streams get it."""
    session = requests.Session()  # verify per request: REQUESTS_CA_BUNDLE would override session.verify
    login = session.post(
        ui_url + "/login", data={"key": served.facts["admin_key"]}, allow_redirects=False, verify=served.ca_file
    )
    assert login.status_code == 303
    streams = [
        session.get(ui_url + "/log/events?kind=graph", stream=True, timeout=10, verify=served.ca_file)
        for _ in range(12)
    ]
    try:
        assert all(s.status_code == 200 and s.headers["Content-Type"].startswith("text/event-stream") for s in streams)
        answer = read(served, token(served), SUPPORT)
        assert answer.status_code == 200
        request_id = answer.headers["request-id"]
        for stream in streams:
            received = b""
            for chunk in stream.iter_content(chunk_size=None):
                received += chunk
                if request_id.encode() in received:
                    break
            assert request_id.encode() in received
    finally:
        for stream in streams:
            stream.close()
        session.close()


def test_an_open_live_log_does_not_hold_the_emulator_when_it_stops(tmp_path):
    """With --persist the worker may take up to a minute to stop gracefully; an open live log must not make it."""
    from m365_mock.tools.process import start_emulator

    with start_emulator(tmp_path, "--persist") as running:
        session = requests.Session()
        ui = running.base_url + "/_m365/ui"
        session.post(
            ui + "/login", data={"key": running.facts["admin_key"]}, allow_redirects=False, verify=running.ca_file
        )
        stream = session.get(ui + "/log/events", stream=True, timeout=30, verify=running.ca_file)
        assert stream.status_code == 200
        started = time.monotonic()
        running.process.terminate()
        running.process.wait(30)
        assert time.monotonic() - started < 10  # the worker's graceful stop waits up to 60 s for open answers
        with contextlib.suppress(requests.exceptions.ChunkedEncodingError):  # ended, cleanly or cut
            for _ in stream.iter_content(chunk_size=None):
                pass
        session.close()
