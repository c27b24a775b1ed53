"""Throttling: each limit with scaled settings, 429 bodies and Retry-After, windows rolling on the emulator's clock,
$batch requests counted one by one, the token endpoint, and the state the control API shows."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from m365_mock.clock import iso_exact
from m365_mock.state.throttling import ThrottlingSettings
from tests.helpers import error_of

SUPPORT = "support@contoso.onmicrosoft.com"
BILLING = "billing@contoso.onmicrosoft.com"
INBOX = f"/users/{SUPPORT}/mailFolders/inbox/messages"


def limits(emulator, **values) -> None:
    emulator.settings.throttling = ThrottlingSettings(**values)


def test_requests_over_the_window_get_429_with_retry_after_until_the_window_rolls(graph, emulator, clock):
    clock.freeze()
    limits(emulator, mailbox_requests=3, mailbox_window=60)
    assert [graph.get(INBOX).status_code for _ in range(3)] == [200, 200, 200]
    clock.advance(20)
    refused = graph.get(INBOX)
    assert error_of(refused) == (429, "TooManyRequests", "Please retry again later.")
    assert refused.headers["Retry-After"] == "40"
    inner = refused.get_json()["error"]["innerError"]
    assert (inner["code"], inner["message"], inner["status"]) == ("429", "Please retry after", "429")
    assert inner["request-id"] == refused.headers["request-id"]
    [record] = [r for r in emulator.log.query() if r.status == 429]
    assert (record.retry_after, record.error_code, record.mailbox) == (40, "TooManyRequests", SUPPORT)
    assert graph.get(f"/users/{BILLING}/mailFolders/inbox/messages").status_code == 200, "another mailbox"
    clock.advance(40)
    assert graph.get(INBOX).status_code == 200, "the window rolled on the emulator's clock"


def test_a_refused_request_does_not_count(graph, emulator, clock):
    clock.freeze()
    limits(emulator, mailbox_requests=2, mailbox_window=10)
    graph.get(INBOX)
    graph.get(INBOX)
    for _ in range(5):
        assert graph.get(INBOX).status_code == 429
    clock.advance(10)
    assert [graph.get(INBOX).status_code for _ in range(3)] == [200, 200, 429]


def test_upload_bytes_per_window(graph, emulator, clock):
    clock.freeze()
    limits(emulator, upload_bytes=2000, upload_window=300)
    draft = graph.post(f"/users/{SUPPORT}/messages", json={"subject": "x"}).get_json()
    body = {"body": {"contentType": "text", "content": "y" * 1200}}
    assert graph.patch(f"/users/{SUPPORT}/messages/{draft['id']}", json=body).status_code == 200
    refused = graph.patch(f"/users/{SUPPORT}/messages/{draft['id']}", json=body)
    assert error_of(refused)[:2] == (429, "TooManyRequests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 300
    assert graph.get(INBOX).status_code == 200, "reads carry no upload bytes"


def test_mailbox_concurrency_four_at_once(app, graph, emulator, monkeypatch):
    """Requests held inside the app: the fifth at once on the same mailbox is refused, another mailbox is not."""
    from m365_mock.graph import routes

    limits(emulator)
    entered, release = threading.Barrier(5), threading.Event()
    real = routes.message_page

    def held(*args, **kwargs):
        entered.wait(timeout=10)
        release.wait(timeout=10)
        return real(*args, **kwargs)

    monkeypatch.setattr(routes, "message_page", held)
    from tests.helpers import GraphClient

    results: list[int] = []

    def call() -> None:
        results.append(GraphClient(app.test_client(), graph.token).get(INBOX).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    entered.wait(timeout=10)  # the four are inside, holding their slots
    monkeypatch.setattr(routes, "message_page", real)
    fifth = graph.get(INBOX)
    other = graph.get(f"/users/{BILLING}/mailFolders/inbox/messages")
    release.set()
    for thread in threads:
        thread.join()
    assert error_of(fifth) == (429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
    assert fifth.headers["Retry-After"] == "1"
    assert other.status_code == 200
    assert results == [200] * 4
    assert graph.get(INBOX).status_code == 200, "the slots were given back"


def test_concurrency_scope_app_counts_across_mailboxes(graph, emulator):
    limits(emulator, mailbox_concurrency=1, concurrency_scope="app")
    release = emulator.throttle.admit_mailbox_request(
        emulator.directory.tenants[0].id, graph_app_id(emulator), emulator.directory.tenants[0].mailbox(SUPPORT).id
    )
    try:
        refused = graph.get(f"/users/{BILLING}/mailFolders/inbox/messages")
        assert error_of(refused)[:2] == (429, "ApplicationThrottled")
    finally:
        release()
    assert graph.get(f"/users/{BILLING}/mailFolders/inbox/messages").status_code == 200


def graph_app_id(emulator) -> str:
    return next(iter(emulator.directory.tenants[0].applications.values())).app_id


def test_the_per_app_rate_across_mailboxes(graph, emulator, clock):
    clock.freeze()
    limits(emulator, app_requests_per_second=3)
    statuses = [graph.get(f"/users/{m}/mailFolders/inbox/messages").status_code for m in (SUPPORT, BILLING) * 2]
    assert statuses == [200, 200, 200, 429]
    clock.advance(1)
    assert graph.get(INBOX).status_code == 200


def test_each_batch_request_is_counted_and_throttled_on_its_own(graph, emulator, clock):
    clock.freeze()
    limits(emulator, mailbox_requests=2, mailbox_window=60)
    requests = [
        {"id": str(i), "method": "GET", "url": f"/users/{SUPPORT}/mailFolders/inbox/messages"} for i in range(3)
    ]
    answer = graph.post("/$batch", json={"requests": requests})
    assert answer.status_code == 200
    statuses = {r["id"]: r["status"] for r in answer.get_json()["responses"]}
    assert statuses == {"0": 200, "1": 200, "2": 429}
    throttled = next(r for r in answer.get_json()["responses"] if r["id"] == "2")
    assert throttled["headers"]["Retry-After"] == "60"
    assert throttled["body"]["error"]["code"] == "TooManyRequests"


def test_throttling_off_admits_everything(graph, emulator):
    limits(emulator, enabled=False, mailbox_requests=1)
    assert [graph.get(INBOX).status_code for _ in range(5)] == [200] * 5


def test_the_token_endpoint_throttles_an_app_with_retry_after(client, emulator, tenant, demo_app, clock):
    from tests.identity.helpers import post_token, secret_form

    clock.freeze()
    limits(emulator, token_requests=2, token_window=30)
    assert [post_token(client, tenant.id, **secret_form(demo_app)).status_code for _ in range(2)] == [200, 200]
    refused = post_token(client, tenant.id, **secret_form(demo_app))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    body = refused.get_json()
    assert body["error"] == "temporarily_unavailable" and "2 token requests per 30 s" in body["error_description"]
    clock.advance(30)
    assert post_token(client, tenant.id, **secret_form(demo_app)).status_code == 200


def test_limits_are_settings_of_the_control_api_and_the_state_is_visible(admin, graph, emulator, clock):
    clock.freeze()
    changed = admin.call(
        "PATCH", "/_m365/settings", {"throttling": {"mailboxRequests": 20, "mailboxWindow": 60}}, expect=200
    ).get_json()["throttling"]
    assert (changed["mailboxRequests"], changed["mailboxWindow"], changed["mailboxConcurrency"]) == (20, 60, 4)
    for _ in range(3):
        graph.get(INBOX)
    state = admin.call("GET", "/_m365/throttling", expect=200).get_json()
    assert state["limits"]["mailboxRequests"] == 20
    [row] = [r for r in state["value"] if r["mailbox"] == SUPPORT]
    assert (row["requests"], row["in_flight"], row["upload_bytes"]) == (3, 0, 0)
    assert row["next_reset"] == iso_exact(clock.now_datetime() + timedelta(seconds=60))
    refused = admin.call("PATCH", "/_m365/settings", {"throttling": {"mailboxRequets": 5}})
    assert refused.status_code == 400 and "mailboxRequets" in refused.get_json()["error"]["message"]
    assert admin.call("PATCH", "/_m365/settings", {"throttling": {"mailboxRequests": 0}}).status_code == 400
    assert admin.call("PATCH", "/_m365/settings", {"throttling": {"concurrencyScope": "tenant"}}).status_code == 400


def test_limits_from_the_tenant_file():
    from m365_mock.state.tenantfile import load_world
    from m365_mock.state.tenantfile.problems import ConfigError

    world = load_world(
        {
            "settings": {"throttling": {"mailbox_requests": 20, "mailbox_window": 60}},
            "tenants": [{"domains": ["contoso.onmicrosoft.com"]}],
        }
    )
    assert (world.settings.throttling.mailbox_requests, world.settings.throttling.upload_window) == (20, 300)
    with pytest.raises(ConfigError, match="mailbox_requets"):
        load_world(
            {"settings": {"throttling": {"mailbox_requets": 20}}, "tenants": [{"domains": ["contoso.onmicrosoft.com"]}]}
        )
