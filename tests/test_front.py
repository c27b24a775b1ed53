"""The server front (mock_server/front.py): bodies read before a thread is taken, refusals, the WSGI environ.

The first tests drive `Front` on asyncio with an RSGI scope and protocol shaped like granian's; the last ones
go through the real server (granian RSGI) and compare what a Flask app sees with werkzeug's test client.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.exceptions import (
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    RequestURITooLarge,
)

from m365_mock.front import Front, build_environ
from m365_mock.server import free_port
from m365_mock.web import REFUSAL

REPO_ROOT = Path(__file__).resolve().parents[1]


class Headers:
    """granian's RSGIHeaders: lower-case names, one item per header line."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = [(name.lower(), value) for name, value in items]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((value for key, value in self._items if key == name), default)

    def __contains__(self, name: str) -> bool:
        return any(key == name for key, _ in self._items)


class Scope:
    def __init__(self, method="GET", path="/", query="", headers=(), http_version="1.1", authority=None) -> None:
        self.proto = "http"
        self.http_version = http_version
        self.server = "127.0.0.1:8443"
        self.client = "127.0.0.1:50123"
        self.scheme = "https"
        self.method = method
        self.path = path
        self.query_string = query
        self.authority = authority
        self.headers = Headers(list(headers))


class Protocol:
    """Yields `chunks`, then (with `stall`) waits forever as a client that stopped sending does."""

    def __init__(self, chunks=(), stall=False) -> None:
        self.chunks = list(chunks)
        self.stall = stall
        self.read = 0
        self.answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    async def _body(self):
        for chunk in self.chunks:
            self.read += len(chunk)
            yield chunk
        if self.stall:
            await asyncio.sleep(3600)

    def __aiter__(self):
        return self._body()

    def response_bytes(self, status, headers, body) -> None:
        self.answer = (status, headers, body)


class Recorder:
    """A WSGI app that keeps the environ and the body it read, and answers 200."""

    def __init__(self) -> None:
        self.environ: dict | None = None
        self.body = b""

    def __call__(self, environ, start_response):
        self.environ = environ
        self.body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


def run(front: Front, scope: Scope, protocol: Protocol) -> tuple[int, list[tuple[str, str]], bytes]:
    try:
        asyncio.run(asyncio.wait_for(front.__rsgi__(scope, protocol), 10))
    finally:
        front.__rsgi_del__(None)  # stops the front's threads
    assert protocol.answer is not None
    return protocol.answer


def post(length: int, **kwargs) -> Scope:
    return Scope("POST", "/upload", headers=[("Host", "h"), ("Content-Length", str(length))], **kwargs)


def test_the_app_gets_the_whole_body_and_its_answer_is_sent():
    app = Recorder()
    answer = run(Front(app, threads=1), post(9), Protocol([b"abc", b"def", b"ghi"]))
    assert answer == (200, [("Content-Type", "text/plain")], b"ok")
    assert app.body == b"abcdefghi" and REFUSAL not in app.environ


def test_a_stalled_body_is_refused_with_408_and_the_connection_closed():
    app = Recorder()
    front = Front(app, threads=1, body_timeout=0.05)
    _, headers, _ = run(front, post(100), Protocol([b"x" * 10], stall=True))
    assert isinstance(app.environ[REFUSAL], RequestTimeout)
    assert app.body == b""
    assert ("Connection", "close") in headers


def test_a_body_over_the_limit_is_read_to_its_end_and_refused_with_413():
    app = Recorder()
    front = Front(app, threads=1, max_body=lambda: 10)
    protocol = Protocol([b"x" * 8, b"x" * 8, b"x" * 8])
    _, headers, _ = run(front, post(24), protocol)
    assert isinstance(app.environ[REFUSAL], RequestEntityTooLarge)
    assert protocol.read == 24 and app.body == b""
    assert ("Connection", "close") not in headers  # all of it was read: the connection can be reused


def test_past_the_drain_cap_the_front_stops_reading_and_closes():
    app = Recorder()
    front = Front(app, threads=1, max_body=lambda: 10, drain_cap=20)
    protocol = Protocol([b"x" * 8] * 10)
    _, headers, _ = run(front, post(80), protocol)
    assert isinstance(app.environ[REFUSAL], RequestEntityTooLarge)
    assert protocol.read < 80
    assert ("Connection", "close") in headers


def test_http2_answers_carry_no_connection_header():
    front = Front(Recorder(), threads=1, body_timeout=0.05)
    _, headers, _ = run(front, post(100, http_version="2"), Protocol([b"x"], stall=True))
    assert all(name.lower() != "connection" for name, _ in headers)


def test_a_url_over_the_limit_is_refused_with_414():
    app = Recorder()
    front = Front(app, threads=1, max_url_bytes=100)
    run(front, Scope(path="/v1.0/" + "a" * 60, query="q=" + "b" * 60), Protocol())
    assert isinstance(app.environ[REFUSAL], RequestURITooLarge)


def test_a_header_block_over_the_limit_is_refused_with_431():
    app = Recorder()
    front = Front(app, threads=1, max_header_bytes=1000)
    run(front, Scope(headers=[("Host", "h"), ("X-Big", "v" * 1000)]), Protocol())
    assert isinstance(app.environ[REFUSAL], RequestHeaderFieldsTooLarge)


def test_an_exception_in_the_app_is_an_empty_500():
    def broken(environ, start_response):
        raise RuntimeError("boom")

    assert run(Front(broken, threads=1), Scope(), Protocol()) == (500, [], b"")


def test_environ_has_granian_wsgi_shape():
    scope = Scope(
        "POST",
        "/v1.0/users/café/a b",
        query="x=%C3%A9&y=1",
        headers=[
            ("Host", "emulator.test:8443"),
            ("Content-Type", "application/json"),
            ("Content-Length", "2"),
            ("X-Multi", "a"),
            ("X-Multi", "b"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
        ],
    )
    environ = build_environ(scope, b"{}")
    assert environ["PATH_INFO"] == "/v1.0/users/café/a b".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "x=%C3%A9&y=1"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8443")
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["CONTENT_TYPE"] == "application/json" and environ["CONTENT_LENGTH"] == "2"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_X_MULTI"] == "a,b" and environ["HTTP_COOKIE"] == "a=1;b=2"
    assert environ["HTTP_HOST"] == "emulator.test:8443"
    assert environ["wsgi.url_scheme"] == "https" and environ["SCRIPT_NAME"] == ""
    assert environ["wsgi.input"].read() == b"{}" and environ["wsgi.input_terminated"] is True


def test_environ_over_http2_takes_the_host_from_the_authority_and_ipv6_addresses_bare():
    scope = Scope(http_version="2", authority="[::1]:8443", headers=[("Accept", "*/*")])
    scope.server, scope.client = "[::1]:8443", "[::1]:40000"
    environ = build_environ(scope, b"")
    assert environ["HTTP_HOST"] == "[::1]:8443" and environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert (environ["SERVER_NAME"], environ["REMOTE_ADDR"]) == ("::1", "::1")


# ---------------------------------------------------------------- through the real server

ECHO_APP = """
from flask import Flask, request


def make_app():
    app = Flask("echo")

    @app.route("/", defaults={"rest": ""}, methods=["GET", "POST"])
    @app.route("/<path:rest>", methods=["GET", "POST"])
    def echo(rest):
        return {
            "method": request.method,
            "rest": rest,
            "path": request.path,
            "full_path": request.full_path,
            "url": request.url,
            "args": request.args.to_dict(flat=False),
            "host": request.host,
            "scheme": request.scheme,
            "remote_addr": request.remote_addr,
            "headers": sorted(request.headers.items()),
            "cookies": request.cookies.to_dict(),
            "content_type": request.content_type,
            "content_length": request.content_length,
            "data": request.get_data(as_text=True),
            "form": request.form.to_dict(flat=False),
        }

    return app
"""

SERVE_ECHO = """
import sys
from pathlib import Path
from m365_mock.identity.keys import ensure_tls_files
from m365_mock.server import ServeOptions, serve
state, port = Path(sys.argv[1]), int(sys.argv[2])
tls = ensure_tls_files(state)
options = ServeOptions(port=port, threads=2, state_dir=state, use_tls=len(sys.argv) > 3,
                       cert_file=tls.leaf_cert, key_file=tls.leaf_key, ca_file=tls.ca_cert)
app = make_app()
app.add_url_rule("/_m365/health", "health", lambda: {"status": "ok"})
serve(app, options, lambda: print("ready", flush=True))
"""


@pytest.fixture(scope="module")
def echo_servers(tmp_path_factory):
    """The echo app served by `serve()`: over plain HTTP and over HTTPS (for HTTP/2)."""
    state = tmp_path_factory.mktemp("echo")
    servers, processes = {}, []
    for scheme in ("http", "https"):
        port = free_port()
        args = [sys.executable, "-c", ECHO_APP + SERVE_ECHO, str(state), str(port)]
        process = subprocess.Popen(
            [*args, "tls"] if scheme == "https" else args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        processes.append(process)
        assert process.stdout.readline().strip() == b"ready", process.stdout.read()
        servers[scheme] = (port, str(state / "ca.pem"))
    yield servers
    for process in processes:
        os.killpg(process.pid, 15)
        process.wait(15)


def echo_test_client():
    namespace: dict = {}
    exec(ECHO_APP, namespace)
    return namespace["make_app"]().test_client()


@pytest.mark.slow
def test_what_the_app_sees_equals_what_werkzeug_gives(echo_servers):
    port, _ = echo_servers["http"]
    target = "/v1.0/users/caf%C3%A9/a%20b%2Fc/%E2%82%AC?$filter=subject%20eq%20%27%C3%A9%27&x=1&x=2&plus=a+b"
    body = "grant_type=client_credentials&scope=a%20b"
    headers = {
        "Host": "emulator.test:8443",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
        "Client-Request-Id": "abc",
        "Authorization": "Bearer x.y.z",
        "User-Agent": "front-test",
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", target, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(body.encode())
    served = json.loads(conn.getresponse().read())
    conn.close()

    path, _, query = target.partition("?")
    expected = (
        echo_test_client()
        .post(
            path,
            query_string=query,
            data=body,
            headers=headers,
            base_url="http://emulator.test:8443",
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        .get_json()
    )
    assert served == expected
    assert served["rest"] == "v1.0/users/café/a b/c/€"
    assert served["args"]["$filter"] == ["subject eq 'é'"]


@pytest.mark.slow
def test_repeated_headers_are_joined_as_granian_joins_them(echo_servers):
    port, _ = echo_servers["http"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", "/x")
    for name, value in (("X-Multi", "a"), ("X-Multi", "b"), ("Cookie", "a=1"), ("Cookie", "b=2")):
        conn.putheader(name, value)
    conn.endheaders()
    served = json.loads(conn.getresponse().read())
    assert ["X-Multi", "a,b"] in served["headers"]
    assert served["cookies"] == {"a": "1", "b": "2"}


@pytest.mark.slow
def test_http2_host_comes_from_the_authority(echo_servers):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("h2")
    port, ca_file = echo_servers["https"]
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=ca_file), timeout=10) as client:
        response = client.post(f"https://127.0.0.1:{port}/a%20b?q=1", content=b"x" * 100_000)
    assert response.http_version == "HTTP/2"
    served = response.json()
    assert served["host"] == f"127.0.0.1:{port}" and served["path"] == "/a b"
    assert len(served["data"]) == 100_000
