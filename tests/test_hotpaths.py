"""The hot paths (token endpoints, message listings) answer exactly as the Flask routes do.

Every request here is sent twice, once with the hot paths on and once with them off (Flask only), and the two
answers must match: status, body, headers (request ids aside) and the request-log record. A counter on the
Flask views shows which way each answer was made: successes by the hot path, every error by Flask.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from flask import request_started

from m365_mock.state.directory import GRAPH_APP_ID
from tests.helpers import GROUP, RAOP, SALES, SUPPORT, GraphClient
from tests.identity.helpers import (
    JWT_BEARER,
    add_certificate,
    make_assertion,
    post_token,
    secret_form,
)

HOT_VIEWS = ("graph.list_messages", "graph.list_folder_messages", "identity.token_v2", "identity.token_v1")
RANDOM_CLAIMS = ("aio", "rh", "uti")


@pytest.fixture
def hot(app):
    return app.extensions["m365_hot_paths"]


@pytest.fixture
def flask_calls(app) -> Counter:
    """How often each Flask view the hot paths stand in for was called."""
    calls: Counter = Counter()
    for name in HOT_VIEWS:
        view = app.view_functions[name]

        def counted(*args: Any, _view: Callable = view, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _view(*args, **kwargs)

        app.view_functions[name] = counted
    return calls


@pytest.fixture
def mailbox(deliver, emulator, tenant):
    """support@ with a few messages in the Inbox and one in a child folder."""
    for index, (subject, read) in enumerate(
        [("Invoice 1", False), ("Invoice 2", True), ("Refund", False), ("Hello", True), ("Invoice 3", False)]
    ):
        deliver(SUPPORT, subject=subject, is_read=read, categories=["Blue"] if index % 2 else [])
    store = emulator.mail.store(tenant.mailbox(SUPPORT))
    child = store.create_folder(store.folder("inbox"), "Escalations", False)
    deliver(SUPPORT, folder=child.id, subject="Escalated")
    return store


def _headers(response) -> list[tuple[str, str]]:
    """The headers in the order sent, request ids aside."""
    return [
        (k.lower(), v)
        for k, v in response.headers.items()
        if k.lower() not in ("request-id", "client-request-id", "x-ms-request-id")
    ]


def _header_map(response) -> dict[str, str]:
    return {
        k.lower(): v
        for k, v in response.headers.items()
        if k.lower() not in ("request-id", "client-request-id", "x-ms-request-id")
    }


def _last_log(emulator) -> dict[str, Any] | None:
    records = emulator.log.query()
    if not records:
        return None
    record = records[-1].to_json()
    del record["time"], record["request_id"]
    return record


def both_ways(hot, emulator, send: Callable[[], Any]) -> tuple[Any, Any]:
    """The answer to `send()` with the hot paths, then without, with their log records."""
    emulator.log.clear()
    hot.enabled = True
    fast = send()
    fast_log = _last_log(emulator)
    hot.enabled = False
    try:
        slow = send()
    finally:
        hot.enabled = True
    assert _last_log(emulator) == fast_log
    return fast, slow


PER_REQUEST_FIELDS = ("request-id", "client-request-id", "date", "trace_id", "correlation_id", "timestamp")


def _body(response) -> Any:
    """The body; of an error, without the fields that name the request or its time."""
    if response.status_code < 400:
        return response.get_data()
    body = response.get_json()
    details = body["error"].get("innerError", {}) if isinstance(body.get("error"), dict) else body
    for name in PER_REQUEST_FIELDS:
        details.pop(name, None)
    if "error_description" in body:  # AADSTS text ends with "Trace ID: … Correlation ID: … Timestamp: …"
        body["error_description"] = body["error_description"].split(" Trace ID: ")[0]
    return body


def assert_same_answer(fast, slow) -> None:
    assert fast.status_code == slow.status_code, (fast.get_data(as_text=True), slow.get_data(as_text=True))
    assert _headers(fast) == _headers(slow)
    assert _body(fast) == _body(slow)


# ---------------------------------------------------------------- message listings


def listing_cases(store) -> list[tuple[str, dict[str, str]]]:
    inbox = store.folder("inbox")
    return [
        (f"/users/{SUPPORT}/messages", {}),
        (f"/users/{SUPPORT}/messages?$top=2", {}),
        (f"/users/{SUPPORT}/messages?%24top=2&%24skip=1&%24count=true", {}),
        (f"/users/{SUPPORT}/messages?$select=subject,isRead&$filter=isRead eq false", {}),
        (f"/users/{SUPPORT}/messages?$filter=categories/any(c:c eq 'Blue')&$top=1", {}),
        (f"/users/{SUPPORT}/messages?$orderby=receivedDateTime asc&$top=3", {}),
        (f'/users/{SUPPORT}/messages?$search="invoice"', {}),
        (f"/users/{SUPPORT.upper()}/messages?$top=1", {}),
        (f"/users/{SUPPORT}/mailFolders/inbox/messages?$top=1", {}),
        (f"/users/{SUPPORT}/mailFolders('Inbox')/messages", {}),
        (f"/users/{SUPPORT}/mailFolders/{inbox.id}/messages?$select=subject", {}),
        (f"/users/{SUPPORT}/messages?$top=2", {"Prefer": 'outlook.body-content-type="text"'}),
        (f"/users/{SUPPORT}/messages?$top=2", {"Prefer": 'IdType="ImmutableId"'}),
        (f"/users/{SUPPORT}/messages?$top=1", {"client-request-id": "0f0e0d0c-0000-4000-8000-000000000001"}),
    ]


def test_listings_are_answered_by_the_hot_path_as_flask_answers_them(graph, hot, emulator, mailbox, flask_calls):
    for path, headers in listing_cases(mailbox):
        fast, slow = both_ways(hot, emulator, lambda p=path, h=headers: graph.get(p, headers=h))
        assert fast.status_code == 200, (path, fast.get_json())
        assert_same_answer(fast, slow)
        assert fast.get_json()["value"], path
    assert sum(flask_calls.values()) == len(listing_cases(mailbox)), "the Flask views ran only with hot paths off"


@pytest.mark.parametrize(
    "path",
    [
        "/users/nobody@contoso.onmicrosoft.com/messages",
        "/users/n\u00f6body@contoso.onmicrosoft.com/messages",
        f"/users/{SUPPORT}/messages?$top=abc",
        f"/users/{SUPPORT}/messages?$top=1001",
        f"/users/{SUPPORT}/messages?$filter=isRead eq",
        f"/users/{SUPPORT}/messages?$filter=isRead eq false&$orderby=subject",
        f'/users/{SUPPORT}/messages?$search="a"&$filter=isRead eq false',
        f"/users/{SUPPORT}/mailFolders/nosuchfolder/messages",
        f"/users/{SUPPORT}/mailFolders/AAMkAD!!/messages",
        f"/users/{SUPPORT}/messages/",
        f"/users/{SUPPORT}/Messages",
    ],
)
def test_listing_errors_are_left_to_flask(graph, hot, emulator, mailbox, flask_calls, path):
    fast, slow = both_ways(hot, emulator, lambda: graph.get(path))
    assert fast.status_code >= 400
    assert_same_answer(fast, slow)
    assert fast.get_json()["error"]["code"]


@pytest.mark.parametrize("token", [None, "garbage", "a.b.c"])
def test_missing_or_garbled_tokens_are_left_to_flask(client, hot, emulator, mailbox, flask_calls, token):
    graph = GraphClient(client, token)
    fast, slow = both_ways(hot, emulator, lambda: graph.get(f"/users/{SUPPORT}/messages"))
    assert fast.status_code == 401
    assert_same_answer(fast, slow)
    assert flask_calls["graph.list_messages"] == 2


def test_an_expired_token_is_left_to_flask(graph, hot, emulator, mailbox, flask_calls, clock):
    clock.advance(3600)
    fast, slow = both_ways(hot, emulator, lambda: graph.get(f"/users/{SUPPORT}/messages"))
    assert fast.status_code == 401
    assert fast.get_json()["error"]["code"] == "InvalidAuthenticationToken"
    assert_same_answer(fast, slow)


def test_a_mailbox_outside_the_policy_is_denied_the_same_way(
    graph, hot, emulator, tenant, demo_app, admin, flask_calls
):
    admin.policy(demo_app.app_id, GROUP)
    fast, slow = both_ways(hot, emulator, lambda: graph.get(f"/users/{SALES}/messages"))
    assert fast.status_code == 403
    assert fast.get_json()["error"]["message"] == RAOP
    assert_same_answer(fast, slow)
    assert emulator.log.query()[-1].outcome == "denied"
    allowed_fast, allowed_slow = both_ways(hot, emulator, lambda: graph.get(f"/users/{SUPPORT}/messages"))
    assert allowed_fast.status_code == 200
    assert_same_answer(allowed_fast, allowed_slow)
    assert flask_calls["graph.list_messages"] == 3  # the denial twice, the allowed listing once (Flask only)


def test_read_basic_permission_hides_bodies_on_the_hot_path_too(graph_as, hot, emulator, mailbox):
    graph = graph_as("Mail.ReadBasic.All")
    fast, slow = both_ways(hot, emulator, lambda: graph.get(f"/users/{SUPPORT}/messages?$top=2"))
    assert fast.status_code == 200
    assert_same_answer(fast, slow)
    assert all("body" not in message for message in fast.get_json()["value"])


def test_other_methods_and_routes_are_not_touched(graph, hot, emulator, mailbox, flask_calls):
    head_fast, head_slow = both_ways(hot, emulator, lambda: graph.request("HEAD", f"/users/{SUPPORT}/messages"))
    assert head_fast.status_code == head_slow.status_code
    post_fast, post_slow = both_ways(hot, emulator, lambda: graph.post(f"/users/{SUPPORT}/messages", json={}))
    assert post_fast.status_code == post_slow.status_code
    assert flask_calls["graph.list_messages"] == 2  # HEAD, with and without hot paths


def test_a_flask_hook_for_every_request_turns_the_hot_paths_off(app, graph, hot, mailbox, flask_calls):
    """A hook added to the app (throttling, faults, ...) must run for hot requests too, so Flask answers them."""
    seen = []
    app.before_request(lambda: seen.append("hook"))
    response = graph.get(f"/users/{SUPPORT}/messages")
    assert response.status_code == 200
    assert seen == ["hook"]
    assert flask_calls["graph.list_messages"] == 1
    assert not hot.nothing_skipped()


def test_a_hook_added_after_hot_requests_still_runs(app, graph, hot, mailbox, flask_calls):
    """Only hot requests so far: Flask has not seen its first request and still takes hooks."""
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200
    assert flask_calls["graph.list_messages"] == 0
    seen = []
    app.before_request(lambda: seen.append("hook"))
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200
    assert seen == ["hook"]
    assert flask_calls["graph.list_messages"] == 1


@pytest.mark.parametrize("kind", ["teardown_appcontext", "request_started signal", "after_request on graph"])
def test_other_per_request_work_turns_the_hot_paths_off(app, graph, hot, mailbox, flask_calls, kind):
    seen = []

    def note(*args: Any, **kwargs: Any) -> Any:
        seen.append(kind)
        return args[0] if kind == "after_request on graph" else None

    if kind == "teardown_appcontext":
        app.teardown_appcontext(note)
    elif kind == "request_started signal":
        request_started.connect(note, app)
    else:
        app.after_request_funcs.setdefault("graph", []).append(note)
    try:
        assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200
    finally:
        request_started.disconnect(note, app)
    assert seen == [kind]
    assert flask_calls["graph.list_messages"] == 1
    assert hot.nothing_skipped() is False


def test_trusted_hosts_are_checked_by_flask(app, graph, hot, emulator, mailbox):
    app.config["TRUSTED_HOSTS"] = ["graph.emu.test"]
    fast, slow = both_ways(
        hot, emulator, lambda: graph.get(f"/users/{SUPPORT}/messages", headers={"Host": "evil.test"})
    )
    assert fast.status_code == 400
    assert_same_answer(fast, slow)
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200


def test_with_only_the_request_log_hook_the_hot_paths_stay_on(graph, hot, mailbox, flask_calls):
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200
    assert hot.nothing_skipped()
    assert flask_calls["graph.list_messages"] == 0


# ---------------------------------------------------------------- token endpoints


def _claims(response) -> dict[str, Any]:
    claims = jwt.decode(response.get_json()["access_token"], options={"verify_signature": False})
    return {k: v for k, v in claims.items() if k not in RANDOM_CLAIMS}


def assert_same_token_answer(fast, slow) -> None:
    assert fast.status_code == slow.status_code == 200, (fast.get_json(), slow.get_json())
    assert [name for name, _ in _headers(fast)] == [name for name, _ in _headers(slow)]
    assert _header_map(fast) == _header_map(slow) | {"content-length": fast.headers["Content-Length"]}
    fast_body, slow_body = fast.get_json(), slow.get_json()
    assert set(fast_body) == set(slow_body)
    assert {k: v for k, v in fast_body.items() if k != "access_token"} == {
        k: v for k, v in slow_body.items() if k != "access_token"
    }
    assert _claims(fast) == _claims(slow)


def test_token_requests_are_answered_by_the_hot_path_as_flask_answers_them(
    client, hot, emulator, tenant, demo_app, clock, flask_calls
):
    clock.freeze(1_800_000_000)
    key_pem, cert = add_certificate(demo_app)
    endpoint = f"https://emu.test:8443/{tenant.id}/oauth2/v2.0/token"
    assertion_form = {
        "client_id": demo_app.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": make_assertion(
            key_pem, cert, client_id=demo_app.app_id, audience=endpoint, now=1_800_000_000
        ),
        "grant_type": "client_credentials",
        "scope": f"{GRAPH_APP_ID}/.default",
    }
    requests = [
        lambda: post_token(client, tenant.id, **secret_form(demo_app)),
        lambda: post_token(
            client,
            "contoso.onmicrosoft.com",
            **secret_form(demo_app, scope="openid https://graph.microsoft.com/.default"),
        ),
        lambda: post_token(client, tenant.id, **assertion_form),
        lambda: post_token(
            client, tenant.id, version=1, **secret_form(demo_app, scope=None, resource="https://graph.microsoft.com")
        ),
        lambda: post_token(
            client,
            tenant.id,
            headers={"client-request-id": "0f0e0d0c-0000-4000-8000-000000000002"},
            **secret_form(demo_app),
        ),
    ]
    for send in requests:
        fast, slow = both_ways(hot, emulator, send)
        assert_same_token_answer(fast, slow)
    assert sum(flask_calls.values()) == len(requests)


@pytest.mark.parametrize(
    "case",
    [
        "wrong secret",
        "unknown tenant",
        "common",
        "no grant type",
        "password grant",
        "json body",
        "huge body",
        "bad scope",
    ],
)
def test_token_errors_are_left_to_flask_with_the_body_intact(
    client, hot, emulator, tenant, demo_app, flask_calls, case
):
    def send():
        if case == "wrong secret":
            return post_token(client, tenant.id, **secret_form(demo_app, client_secret="nope"))
        if case == "unknown tenant":
            return post_token(client, "fabrikam.onmicrosoft.com", **secret_form(demo_app))
        if case == "common":
            return post_token(client, "common", **secret_form(demo_app))
        if case == "no grant type":
            return post_token(client, tenant.id, **secret_form(demo_app, grant_type=None))
        if case == "password grant":
            return post_token(client, tenant.id, **secret_form(demo_app, grant_type="password"))
        if case == "json body":
            return client.post(
                f"/{tenant.id}/oauth2/v2.0/token", json=secret_form(demo_app), base_url="https://emu.test"
            )
        if case == "huge body":
            padding = "x" * (emulator.settings.max_body_bytes + 1)
            return post_token(client, tenant.id, **secret_form(demo_app, padding=padding))
        return post_token(client, tenant.id, **secret_form(demo_app, scope="Mail.Read"))

    fast, slow = both_ways(hot, emulator, send)
    assert fast.status_code >= 400
    assert_same_answer(fast, slow)
    assert flask_calls["identity.token_v2"] == 2


@pytest.mark.parametrize("announced", ["+5", "\u00b2", "0", "-1"])
def test_token_bodies_of_another_length_than_announced(client, hot, emulator, tenant, demo_app, announced):
    """Content-Length longer than the body, or not a plain number: the answer Flask gives, never a crash."""
    body = urlencode(secret_form(demo_app)).encode()
    length = str(len(body) + 5) if announced == "+5" else announced

    def send():
        return client.post(
            f"/{tenant.id}/oauth2/v2.0/token",
            data=body,
            base_url="https://emu.test",
            content_type="application/x-www-form-urlencoded",
            environ_overrides={"CONTENT_LENGTH": length},
        )

    fast, slow = both_ways(hot, emulator, send)
    assert fast.status_code == 400
    assert fast.get_json()["error"] == "invalid_request"
    assert_same_answer(fast, slow)


def test_a_secret_that_fails_on_the_hot_path_is_read_again_by_flask(client, hot, tenant, demo_app, flask_calls):
    """The hot path reads the body before it knows the answer; Flask must still see all of it."""
    response = post_token(client, tenant.id, **secret_form(demo_app, client_secret="wrong"))
    body = response.get_json()
    assert response.status_code == 401 and body["error_codes"] == [7000215]
    assert demo_app.app_id in body["error_description"]
    assert flask_calls["identity.token_v2"] == 1
