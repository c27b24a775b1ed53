"""Retries, Retry-After, 401 renewal and request ids, against a tiny scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from m365_mock.client import AuthError, ClientSettings, GraphError, MailClient, TokenProvider
from m365_mock.client.errors import parse_retry_after

pytestmark = pytest.mark.slow

MAILBOX = "shared@contoso.com"
TOKEN_PATH = "/contoso.com/oauth2/v2.0/token"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Stub:
    """Answers each path from a script of replies (the last one repeats) and records every request."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self.tokens_issued = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.seen.append(Seen(self.command, self.path, dict(self.headers), body, time.monotonic()))
                reply = stub.next_reply(self.path)
                payload = b"" if reply.body is None else reply.body
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                self.send_response(reply.status)
                if reply.body is not None and not isinstance(reply.body, bytes):
                    self.send_header("Content-Type", "application/json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def next_reply(self, path: str) -> Reply:
        if path.startswith(TOKEN_PATH) and TOKEN_PATH not in self.scripts:
            self.tokens_issued += 1
            return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": f"t{self.tokens_issued}"})
        key = next((k for k in self.scripts if path.startswith(k)), None)
        if key is None:
            return Reply(404, {"error": {"code": "ResourceNotFound", "message": "Resource could not be discovered."}})
        script = self.scripts[key]
        return script.pop(0) if len(script) > 1 else script[0]

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts[path] = list(replies)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(path)]


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def settings_for(stub: Stub, **overrides: Any) -> ClientSettings:
    return ClientSettings(
        "contoso.com", "app-id", "secret", login_url=stub.url, graph_url=f"{stub.url}/v1.0", **overrides
    )


MESSAGES = f"/v1.0/users/{MAILBOX}/messages"
OK_PAGE = Reply(200, {"value": [{"id": "m1"}]})
THROTTLED = {"error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}}


def test_429_twice_then_ok_honours_retry_after(stub: Stub) -> None:
    stub.script(
        MESSAGES, Reply(429, THROTTLED, {"Retry-After": "1"}), Reply(429, THROTTLED, {"Retry-After": "1"}), OK_PAGE
    )
    with MailClient(settings_for(stub)) as mail:
        started = time.monotonic()
        assert [m["id"] for m in mail.messages(MAILBOX)] == ["m1"]
        elapsed = time.monotonic() - started
    calls = stub.calls(MESSAGES)
    assert len(calls) == 3
    assert elapsed >= 2.0 and calls[1].at - calls[0].at >= 1.0 and calls[2].at - calls[1].at >= 1.0
    ids = {c.headers["client-request-id"] for c in calls}
    assert len(ids) == 1 and uuid.UUID(ids.pop()).version == 4  # one logical request, one id
    assert [c.headers.get("Retry-Attempt") for c in calls] == [None, "1", "2"]
    assert all(c.headers["Authorization"] == "Bearer t1" for c in calls)


def test_503_forever_gives_up_after_max_retries(stub: Stub) -> None:
    unavailable = {"error": {"code": "serviceNotAvailable", "message": "Service unavailable."}}
    stub.script(MESSAGES, Reply(503, unavailable, {"request-id": "r-503"}))
    with MailClient(settings_for(stub, max_retries=2, retry_backoff=0.01)) as mail, pytest.raises(GraphError) as caught:
        list(mail.messages(MAILBOX))
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (503, "serviceNotAvailable", "r-503")
    assert len(stub.calls(MESSAGES)) == 3


def test_backoff_is_exponential_without_retry_after(stub: Stub) -> None:
    stub.script(MESSAGES, Reply(504, b"gateway"), Reply(503, b""), OK_PAGE)
    with MailClient(settings_for(stub, retry_backoff=0.2)) as mail:
        list(mail.messages(MAILBOX))
    calls = stub.calls(MESSAGES)
    assert len(calls) == 3
    first, second = calls[1].at - calls[0].at, calls[2].at - calls[1].at
    assert 0.2 <= first < 1.5 and 0.4 <= second < 3.0  # base, then twice the base (plus up to 25% jitter)


def test_retry_after_beyond_the_wait_budget_is_not_waited_for(stub: Stub) -> None:
    stub.script(MESSAGES, Reply(429, THROTTLED, {"Retry-After": "120"}))
    started = time.monotonic()
    with MailClient(settings_for(stub, max_retry_wait=60)) as mail, pytest.raises(GraphError) as caught:
        list(mail.messages(MAILBOX))
    assert time.monotonic() - started < 1.0
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, "ApplicationThrottled", 120.0)
    assert len(stub.calls(MESSAGES)) == 1


def test_wait_budget_is_cumulative(stub: Stub) -> None:
    stub.script(MESSAGES, Reply(429, THROTTLED, {"Retry-After": "0.4"}))
    with MailClient(settings_for(stub, max_retries=10, max_retry_wait=1.0)) as mail, pytest.raises(GraphError):
        list(mail.messages(MAILBOX))
    assert len(stub.calls(MESSAGES)) == 3  # waited 0.4 + 0.4; a third wait would pass 1.0 s


def test_retry_after_as_http_date(stub: Stub) -> None:
    stub.script(MESSAGES, Reply(503, None, {"Retry-After": formatdate(time.time() + 2, usegmt=True)}), OK_PAGE)
    with MailClient(settings_for(stub)) as mail:
        list(mail.messages(MAILBOX))
    calls = stub.calls(MESSAGES)
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 0.9


def test_post_and_patch_are_retried_too(stub: Stub) -> None:
    stub.script(f"/v1.0/users/{MAILBOX}/sendMail", Reply(429, THROTTLED, {"Retry-After": "0"}), Reply(202))
    stub.script(f"/v1.0/users/{MAILBOX}/messages/m1", Reply(504, None), Reply(200, {"id": "m1", "isRead": True}))
    with MailClient(settings_for(stub, retry_backoff=0.01)) as mail:
        mail.send(MAILBOX, to="a@contoso.com", subject="s", body="b")
        assert mail.mark_read(MAILBOX, "m1")["isRead"] is True
    sends = stub.calls(f"/v1.0/users/{MAILBOX}/sendMail")
    assert len(sends) == 2 and sends[0].body == sends[1].body
    assert json.loads(sends[1].body)["message"]["toRecipients"] == [{"emailAddress": {"address": "a@contoso.com"}}]
    assert [c.method for c in stub.calls(f"/v1.0/users/{MAILBOX}/messages/m1")] == ["PATCH", "PATCH"]


def test_401_renews_the_token_and_retries_once(stub: Stub) -> None:
    expired = {
        "error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed, the token is expired."}
    }
    stub.script(MESSAGES, Reply(401, expired), OK_PAGE)
    with MailClient(settings_for(stub)) as mail:
        assert [m["id"] for m in mail.messages(MAILBOX)] == ["m1"]
    assert [c.headers["Authorization"] for c in stub.calls(MESSAGES)] == ["Bearer t1", "Bearer t2"]
    assert stub.tokens_issued == 2


def test_401_twice_is_an_error(stub: Stub) -> None:
    rejected = {"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}}
    stub.script(MESSAGES, Reply(401, rejected))
    with MailClient(settings_for(stub)) as mail, pytest.raises(GraphError) as caught:
        list(mail.messages(MAILBOX))
    assert (caught.value.status, caught.value.code) == (401, "InvalidAuthenticationToken")
    assert len(stub.calls(MESSAGES)) == 2 and stub.tokens_issued == 2


def test_token_endpoint_throttling_is_retried(stub: Stub) -> None:
    token = {"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"}
    stub.script(TOKEN_PATH, Reply(429, {"error": "temporarily_unavailable"}, {"Retry-After": "0"}), Reply(200, token))
    assert TokenProvider(settings_for(stub)).token() == "tok"
    calls = stub.calls(TOKEN_PATH)
    assert (
        len(calls) == 2
        and b"client_secret=secret" in calls[0].body
        and b"grant_type=client_credentials" in calls[0].body
    )


def test_token_lifetime_shorter_than_the_margin(stub: Stub) -> None:
    stub.script(TOKEN_PATH, Reply(200, {"token_type": "Bearer", "expires_in": 120, "access_token": "short"}))
    now = [1000.0]
    provider = TokenProvider(settings_for(stub), clock=lambda: now[0])
    provider.token()
    now[0] += 59  # renewed at half the lifetime, not on every call
    provider.token()
    assert len(stub.calls(TOKEN_PATH)) == 1
    now[0] += 2
    provider.token()
    assert len(stub.calls(TOKEN_PATH)) == 2


def test_non_json_errors(stub: Stub) -> None:
    stub.script(MESSAGES, Reply(502, b"<html>Bad Gateway</html>"))
    stub.script(TOKEN_PATH, Reply(404, b"<html>Not Found</html>"))
    with pytest.raises(AuthError) as auth:
        TokenProvider(settings_for(stub)).token()
    assert (auth.value.status, auth.value.error, auth.value.code) == (404, "http_error", None)
    del stub.scripts[TOKEN_PATH]
    with MailClient(settings_for(stub)) as mail, pytest.raises(GraphError) as caught:
        list(mail.messages(MAILBOX))
    assert (caught.value.status, caught.value.code) == (502, "BadGateway") and "Bad Gateway" in caught.value.message


def test_next_link_is_followed_unchanged(stub: Stub) -> None:
    link = f"{stub.url}/v1.0/users/{MAILBOX}/mailFolders('Inbox')/messages?%24top=1&%24skiptoken=a%2Bb%3D%3D"
    stub.script(MESSAGES, Reply(200, {"value": [{"id": "m1"}], "@odata.nextLink": link}))
    stub.script(f"/v1.0/users/{MAILBOX}/mailFolders", Reply(200, {"value": [{"id": "m2"}]}))
    with MailClient(settings_for(stub)) as mail:
        assert [m["id"] for m in mail.messages(MAILBOX, top=1)] == ["m1", "m2"]
    assert stub.seen[-1].path == link.removeprefix(stub.url)
    first = stub.calls(MESSAGES)[0].path
    assert first == f"/v1.0/users/{MAILBOX}/messages?%24top=1"


def test_network_failure_on_get_is_retried_then_typed(stub: Stub) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound but not listening: refused
        settings = ClientSettings(
            "contoso.com", "app-id", "secret", login_url=stub.url, graph_url=f"{dead}/v1.0", retry_backoff=0.01
        )
        started = time.monotonic()
        with MailClient(settings) as mail, pytest.raises(GraphError) as caught:
            mail.folders(MAILBOX)
    assert (caught.value.status, caught.value.code) == (0, "NetworkError")
    assert time.monotonic() - started >= 0.01 + 0.02 + 0.04


def test_parse_retry_after() -> None:
    assert parse_retry_after("2.128") == 2.128
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
