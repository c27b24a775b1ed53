"""Logging in to the dashboard, and what answers without a session."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.slow


def test_logging_in_with_the_admin_key_opens_the_dashboard(anonymous, served, ui_url):
    anonymous.goto(ui_url + "/access")
    assert anonymous.url.startswith(ui_url + "/login?next=")
    anonymous.fill("#key", "not-the-key")
    anonymous.click("button[type=submit]")
    assert anonymous.locator("[role=alert]").inner_text() == "That is not this emulator's admin key."
    anonymous.fill("#key", served.facts["admin_key"])
    anonymous.click("button[type=submit]")
    anonymous.wait_for_url(ui_url + "/access")
    assert anonymous.locator("h1").first.inner_text() == "Access"
    cookie = next(c for c in anonymous.context.cookies() if c["name"] == "m365_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["secure"]
    assert anonymous.evaluate("document.cookie") == ""  # HttpOnly: no script reads the session


def test_logging_out_ends_the_session(dashboard, ui_url):
    dashboard.click("header .logout button")
    dashboard.wait_for_url(ui_url + "/login")
    dashboard.goto(ui_url + "/mailboxes")
    assert dashboard.url.startswith(ui_url + "/login?next=")


@pytest.mark.parametrize("path", ["/", "/mailboxes", "/access", "/log", "/outbound", "/emulator", "/static/ui.css"])
def test_no_page_or_asset_answers_without_a_session(served, ui_url, path):
    answer = requests.get(ui_url + path, verify=served.ca_file, allow_redirects=False, timeout=10)
    assert answer.status_code in (303, 401)
    if answer.status_code == 303:
        assert answer.headers["Location"].startswith("/_m365/ui/login?next=")
    assert b"m365-mock</a>" not in answer.content and b":root" not in answer.content
