"""Every change made with a dashboard session carries the session's CSRF token, or it is refused and nothing
changes; the admin key header needs none (it cannot be sent by another site's page)."""

from __future__ import annotations

import re

import pytest

from m365_mock.ui.session import COOKIE, CSRF_HEADER


@pytest.fixture
def session(client, emulator):
    """The test client logged in to the dashboard; the page's CSRF token."""
    assert client.post("/_m365/ui/login", data={"key": emulator.admin_key}).status_code == 303
    page = client.get("/_m365/ui/emulator").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page).group(1)


def frozen(client) -> bool:
    return client.get("/_m365/time").get_json()["frozen"]


@pytest.mark.parametrize("given", [None, "", "0" * 64])
def test_a_control_api_change_without_the_sessions_token_is_refused_and_changes_nothing(client, session, given):
    headers = {} if given is None else {CSRF_HEADER: given}
    refused = client.post("/_m365/time", json={"freeze": True}, headers=headers)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "CsrfTokenInvalid"
    assert frozen(client) is False
    assert client.post("/_m365/time", json={"freeze": True}, headers={CSRF_HEADER: session}).status_code == 200
    assert frozen(client) is True


def test_another_sessions_token_is_not_this_ones(app, client, emulator, session):
    other = app.test_client()
    other.post("/_m365/ui/login", data={"key": emulator.admin_key})
    other_page = other.get("/_m365/ui/emulator").get_data(as_text=True)
    other_token = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', other_page).group(1)
    assert other_token != session
    assert client.post("/_m365/time", json={"freeze": True}, headers={CSRF_HEADER: other_token}).status_code == 403


def test_a_dashboard_form_without_the_token_is_refused(client, session):
    refused = client.post("/_m365/ui/logout")
    assert refused.status_code == 403
    assert "CSRF token is missing" in refused.get_data(as_text=True)
    assert client.get("/_m365/ui/mailboxes").status_code == 200  # still logged in
    assert client.post("/_m365/ui/logout", data={"csrf": session}).status_code == 303
    assert client.get("/_m365/ui/mailboxes").status_code == 303  # to the login form


def test_reads_need_the_session_but_no_token_and_the_admin_key_needs_none(client, emulator, session):
    assert client.get("/_m365/time").status_code == 200
    client.delete_cookie(COOKIE, path="/_m365/")
    assert client.get("/_m365/time").get_json()["error"]["code"] == "AdminKeyRequired"
    with_key = client.post("/_m365/time", json={"freeze": True}, headers={"X-M365-Admin-Key": emulator.admin_key})
    assert with_key.status_code == 200


def test_a_forged_or_ended_session_is_no_session(client, emulator, session):
    client.set_cookie(COOKIE, "forged", path="/_m365/")
    assert client.get("/_m365/time").status_code == 401
    assert client.get("/_m365/ui/access").status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/_m365/ui/", "//evil.example/_m365/ui/", "/v1.0/me"])
def test_login_goes_back_only_to_a_dashboard_page(client, emulator, target):
    answer = client.post("/_m365/ui/login", data={"key": emulator.admin_key, "next": target})
    assert (answer.status_code, answer.headers["Location"]) == (303, "/_m365/ui/")


@pytest.mark.parametrize(
    ("path", "takes"),
    [
        ("/_m365/ui/mailboxes?pge=2", "it takes none"),
        ("/_m365/ui/outbound?pge=2", "it takes page"),
        ("/_m365/ui/emulator?tenant=x", "it takes none"),
        ("/_m365/ui/access?tenat=x", "it takes tenant, page"),
        ("/_m365/ui/log?outcome=denied", "it takes show, kind, app, mailbox"),
    ],
)
def test_a_query_parameter_a_page_does_not_take_is_refused_not_ignored(client, session, path, takes):
    refused = client.get(path)
    assert refused.status_code == 400
    name = path.split("?")[1].split("=")[0]
    assert f"does not take the query parameter &#39;{name}&#39;; {takes}." in refused.get_data(as_text=True)
