"""`m365-mock serve` for real: granian over TLS, connection files, restarts, and the CLI's error paths."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509

from m365_mock.identity.keys import load_certificate
from m365_mock.tools.process import start_emulator

pytestmark = pytest.mark.slow
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def get_token(served, **overrides):
    form = {
        "client_id": served.app["app_id"],
        "client_secret": served.app["client_secret"],
        "grant_type": "client_credentials",
        "scope": GRAPH_SCOPE,
        **overrides,
    }
    return requests.post(served.tenant["token_endpoint"], data=form, verify=served.ca_file, timeout=10)


def test_connection_files_describe_the_running_emulator(served):
    facts = json.loads((served.state_dir / "connection.json").read_text())
    assert facts["base_url"].startswith("https://127.0.0.1:")
    assert facts["graph_url"] == facts["base_url"] + "/v1.0"
    assert facts["ca_file"] == str(served.state_dir / "ca.pem")
    assert facts["tenants"][0]["domains"] == ["contoso.onmicrosoft.com", "contoso.com"]
    assert facts["apps"][0]["display_name"] == "Contact Center Connector"
    env = dict(line.split("=", 1) for line in (served.state_dir / "connection.env").read_text().splitlines())
    assert env["M365_MOCK_BASE_URL"] == facts["base_url"]
    assert env["M365_MOCK_CA_FILE"] == facts["ca_file"]
    assert env["M365_MOCK_TENANT_ID"] == facts["tenants"][0]["id"]
    assert env["M365_MOCK_CLIENT_ID"] == facts["apps"][0]["app_id"]
    assert env["M365_MOCK_CLIENT_SECRET"] == facts["apps"][0]["client_secret"]
    for name in ("connection.json", "connection.env"):
        assert stat.S_IMODE(os.stat(served.state_dir / name).st_mode) == 0o600


def test_tls_is_trusted_through_the_ca_file_alone(served):
    context = ssl.create_default_context(cafile=served.ca_file)
    port = int(served.base_url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cert = load_certificate(tls.getpeercert(binary_form=True))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    ca = load_certificate(Path(served.ca_file).read_text())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_token_through_the_real_server_verifies_with_the_published_keys(served):
    response = get_token(served, client_info="1")
    assert response.status_code == 200
    assert response.headers["request-id"]
    token = response.json()["access_token"]
    tenant_id = served.tenant["id"]
    keys = requests.get(f"{served.base_url}/{tenant_id}/discovery/v2.0/keys", verify=served.ca_file, timeout=10)
    key = jwt.PyJWK(keys.json()["keys"][0], algorithm="RS256")
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com")
    assert claims["tid"] == tenant_id and claims["roles"] == ["Mail.ReadWrite", "Mail.Send"]


def test_discovery_over_tls_advertises_the_served_origin(served):
    doc = requests.get(
        f"{served.tenant['authority']}/v2.0/.well-known/openid-configuration", verify=served.ca_file, timeout=10
    ).json()
    assert doc["token_endpoint"] == served.tenant["token_endpoint"]


def test_errors_over_the_real_server_are_json(served):
    response = get_token(served, client_secret="wrong")
    assert response.status_code == 401 and response.json()["error_codes"] == [7000215]
    response = requests.get(f"{served.base_url}/no/such/thing", verify=served.ca_file, timeout=10)
    assert response.status_code == 404 and response.json()["error"] == "invalid_request"
    response = requests.get(f"{served.base_url}/v1.0/nothing", verify=served.ca_file, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"


def test_concurrent_token_requests_all_succeed_with_distinct_tokens(served):
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: get_token(served), range(32)))
    assert [r.status_code for r in responses] == [200] * 32
    utis = {jwt.decode(r.json()["access_token"], options={"verify_signature": False})["uti"] for r in responses}
    assert len(utis) == 32


def test_restart_reuses_the_ca_and_the_signing_key(tmp_path):
    with start_emulator(tmp_path) as first:
        ca_before = (tmp_path / "ca.pem").read_bytes()
        token = get_token(first).json()["access_token"]
    assert not (tmp_path / "connection.json").exists()
    with start_emulator(tmp_path) as second:
        assert (tmp_path / "ca.pem").read_bytes() == ca_before
        keys = requests.get(
            f"{second.base_url}/{second.tenant['id']}/discovery/v2.0/keys", verify=second.ca_file, timeout=10
        ).json()["keys"]
        jwt.decode(
            token,
            jwt.PyJWK(keys[0], algorithm="RS256").key,
            algorithms=["RS256"],
            audience="https://graph.microsoft.com",
        )


def test_extra_hostname_goes_into_the_certificate_and_the_advertised_url(tmp_path):
    with start_emulator(tmp_path, "--hostname", "emulator.test") as running:
        assert running.base_url.startswith("https://emulator.test:")
        leaf = load_certificate((tmp_path / "tls-cert.pem").read_text())
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "emulator.test" in names.get_values_for_type(x509.DNSName)


def test_plain_http_option(tmp_path):
    with start_emulator(tmp_path, "--http") as running:
        assert running.base_url.startswith("http://") and running.ca_file is None
        assert requests.get(f"{running.base_url}/_m365/health", timeout=10).json()["status"] == "ok"


def test_tenant_file_with_a_generated_secret(tmp_path):
    config = tmp_path / "tenant.yaml"
    config.write_text(
        "tenants:\n  - domains: [fabrikam.onmicrosoft.com]\n    applications:\n"
        "      - display_name: Ticketing\n        permissions: [Mail.Read]\n        secrets: [{}]\n"
    )
    with start_emulator(tmp_path / "state", "--config", str(config)) as running:
        secret = running.app["client_secret"]
        assert secret and running.tenant["domains"] == ["fabrikam.onmicrosoft.com"]
        output = (tmp_path / "state" / "serve.log").read_text()
        assert f"Generated secret for Ticketing ({running.app['app_id']}): {secret}  (shown once)" in output
        assert get_token(running).status_code == 200


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "m365_mock", *args], capture_output=True, text=True, timeout=60)


def test_bad_tenant_file_exits_2_with_the_reason(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "tenants:\n  - domains: [x.com]\n    applications:\n      - display_name: A\n"
        "        permissions: [Mail.Write]\n"
    )
    result = run_cli("serve", "--config", str(bad), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "tenants[0].applications[0].permissions: unknown Graph application permission 'Mail.Write'" in result.stderr
    assert "Traceback" not in result.stderr


def test_ca_path_prints_the_ca_file(tmp_path):
    result = run_cli("ca-path", "--state-dir", str(tmp_path))
    assert result.returncode == 0
    path = result.stdout.strip()
    assert path == str(tmp_path / "ca.pem")
    assert "BEGIN CERTIFICATE" in Path(path).read_text()


def test_port_in_use_is_reported(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--state-dir", str(tmp_path))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_admin_key_reaches_the_connection_files_and_opens_the_control_api(served):
    facts = served.facts
    env = dict(line.split("=", 1) for line in (served.state_dir / "connection.env").read_text().splitlines())
    assert facts["admin_key"] and env["M365_MOCK_ADMIN_KEY"] == facts["admin_key"]
    assert facts["control_url"] == served.base_url + "/_m365"
    url = f"{facts['control_url']}/outbound"
    assert requests.get(url, verify=served.ca_file, timeout=10).status_code == 401
    ok = requests.get(url, headers={"X-M365-Admin-Key": facts["admin_key"]}, verify=served.ca_file, timeout=10)
    assert ok.status_code == 200 and "value" in ok.json()


def test_the_dashboard_url_is_announced_and_serves_the_login_page(served):
    url = served.facts["dashboard_url"]
    assert url == served.base_url + "/_m365/ui/"
    assert f"  Dashboard:    {url}  (log in with the admin key {served.facts['admin_key']})" in (
        (served.state_dir / "serve.log").read_text().splitlines()
    )
    login = requests.get(url, verify=served.ca_file, timeout=10)
    assert login.url.startswith(url + "login") and 'name="key"' in login.text


def test_admin_key_can_be_chosen(tmp_path):
    with start_emulator(tmp_path, env={"M365_MOCK_ADMIN_KEY": "ci-key"}) as running:
        assert running.facts["admin_key"] == "ci-key"


def test_stops_promptly_while_an_http2_client_keeps_its_connection(tmp_path):
    """msgraph-sdk keeps an HTTP/2 connection open; Ctrl+C / SIGTERM must still stop the emulator."""
    import asyncio
    import ssl as ssl_module

    import httpx

    with start_emulator(tmp_path) as running:

        async def hold_connection() -> None:
            context = ssl_module.create_default_context(cafile=running.ca_file)
            client = httpx.AsyncClient(http2=True, verify=context)
            response = await client.get(f"{running.base_url}/_m365/health")
            assert response.status_code == 200
            started = time.monotonic()
            running.process.terminate()
            await asyncio.get_running_loop().run_in_executor(None, running.process.wait, 15)
            assert time.monotonic() - started < 6
            await client.aclose()

        asyncio.run(hold_connection())


def test_log_command_shows_decisions_of_the_running_emulator(tmp_path):
    """`m365-mock log` against the real server: the demo policy grants support@ and denies sales@."""
    with start_emulator(tmp_path) as running:
        token = get_token(running).json()["access_token"]
        for mailbox in ("support", "sales"):
            requests.get(
                f"{running.base_url}/v1.0/users/{mailbox}@contoso.onmicrosoft.com/messages",
                headers={"Authorization": f"Bearer {token}"},
                verify=running.ca_file,
                timeout=10,
            )
        result = run_cli("log", "--state-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
        issued, *lines = result.stdout.splitlines()
        assert "200  issued" in issued and issued.endswith("/oauth2/v2.0/token")  # token requests are logged too
        assert "200  granted" in lines[0] and "support@contoso.onmicrosoft.com" in lines[0]
        assert "RestrictAccess policy" in lines[1] and lines[1].strip().endswith("matches via cctr_sec_group")
        assert "403  denied" in lines[2] and "sales@contoso.onmicrosoft.com" in lines[2]
        assert lines[3].strip() == (
            "denied: RestrictAccess policies limit the app to cctr_sec_group; sales@contoso.onmicrosoft.com is in none"
        )
        denied = run_cli("log", "--state-dir", str(tmp_path), "--outcome", "denied", "--json")
        records = [json.loads(line) for line in denied.stdout.splitlines()]
        assert [(r["mailbox"], r["status"]) for r in records] == [("sales@contoso.onmicrosoft.com", 403)]
        tokens = run_cli("log", "--state-dir", str(tmp_path), "--kind", "token", "--json")
        assert [json.loads(line)["outcome"] for line in tokens.stdout.splitlines()] == ["issued"]


def test_log_command_without_an_emulator(tmp_path):
    result = run_cli("log", "--state-dir", str(tmp_path))
    assert result.returncode == 2 and "no emulator to talk to" in result.stderr


# ---------------------------------------------------------------- slow and oversized requests (the front)


def _port(running) -> int:
    return int(running.base_url.rsplit(":", 1)[1])


def open_tls(running) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=running.ca_file)
    raw = socket.create_connection(("127.0.0.1", _port(running)), timeout=20)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def start_upload(running, path: str, *, length: int = 1000, sent: bytes = b"grant_type=") -> ssl.SSLSocket:
    """A POST whose headers and first `sent` bytes arrive, then nothing more."""
    conn = open_tls(running)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{_port(running)}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    )
    conn.sendall(head.encode() + sent)
    return conn


def read_answer(conn: ssl.SSLSocket, method: str = "POST") -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(conn, method=method)
    response.begin()
    response.body = response.read()  # type: ignore[attr-defined]
    return response


@pytest.fixture(scope="module")
def two_threads(tmp_path_factory):
    with start_emulator(tmp_path_factory.mktemp("two-threads"), "--threads", "2", "--body-timeout", "1") as running:
        yield running


def test_stalled_uploads_do_not_hold_the_request_threads(tmp_path):
    with start_emulator(tmp_path, "--threads", "2") as running:
        stalled = [start_upload(running, _token_path(running)) for _ in range(8)]
        try:
            health = requests.get(f"{running.base_url}/_m365/health", verify=running.ca_file, timeout=5)
            assert health.status_code == 200
            assert get_token(running).status_code == 200
        finally:
            for conn in stalled:
                conn.close()


def _token_path(running) -> str:
    return "/" + running.tenant["token_endpoint"].split("/", 3)[3]


def test_a_stalled_body_gets_408_in_the_aadsts_format(two_threads):
    conn = start_upload(two_threads, _token_path(two_threads))
    with conn:
        answer = read_answer(conn)
    assert answer.status == 408
    body = json.loads(answer.body)
    assert body["error"] == "invalid_request" and "did not arrive" in body["error_description"]
    assert answer.getheader("Connection") == "close"


def test_a_stalled_body_gets_408_in_the_graph_format(two_threads):
    conn = start_upload(two_threads, "/v1.0/users/support@contoso.onmicrosoft.com/sendMail", sent=b"{")
    with conn:
        answer = read_answer(conn)
    assert answer.status == 408
    error = json.loads(answer.body)["error"]
    assert error["innerError"]["request-id"] == answer.getheader("request-id")


def test_a_stalled_body_is_answered_in_json_and_the_connection_closed(two_threads):
    conn = start_upload(two_threads, "/v1.0/users/support@contoso.onmicrosoft.com/sendMail", sent=b"{")
    with conn:
        answer = read_answer(conn)
        assert conn.recv(1) == b""  # the server closed it
    assert "did not arrive within 1 s" in json.loads(answer.body)["error"]["message"]
    assert answer.getheader("Connection") == "close"


def test_a_pooled_session_survives_refused_uploads(two_threads):
    """401s answered to 100 KB and 3 MB bodies, then ordinary requests, all on one keep-alive session."""
    url = f"{two_threads.base_url}/v1.0/users/support@contoso.onmicrosoft.com/sendMail"
    health = f"{two_threads.base_url}/_m365/health"
    ca, headers = two_threads.ca_file, {"Content-Type": "application/json"}
    with requests.Session() as session:
        for body in [b"x" * 100_000] * 20 + [b"x" * 3_000_000] * 5:
            refused = session.post(url, data=body, headers=headers, verify=ca, timeout=10)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
            assert session.get(health, verify=ca, timeout=10).status_code == 200


def test_a_body_over_the_limit_over_https_gets_its_413(two_threads):
    response = requests.post(
        two_threads.tenant["token_endpoint"], data=b"x" * (10 * 1024 * 1024), verify=two_threads.ca_file, timeout=30
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


def test_a_one_mib_header_gets_a_json_431(two_threads):
    response = requests.get(
        f"{two_threads.base_url}/v1.0/users/support@contoso.onmicrosoft.com/messages",
        headers={"X-Big": "x" * (1024 * 1024)},
        verify=two_threads.ca_file,
        timeout=30,
    )
    assert response.status_code == 431
    assert response.json()["error"]["code"]


def test_a_one_mib_header_gets_a_json_answer(two_threads):
    response = requests.post(
        two_threads.tenant["token_endpoint"],
        headers={"X-Big": "x" * (1024 * 1024)},
        verify=two_threads.ca_file,
        timeout=30,
    )
    assert "header" in response.json()["error_description"]


def test_a_too_long_url_gets_a_json_414(two_threads):
    response = requests.get(
        f"{two_threads.base_url}/v1.0/users/support@contoso.onmicrosoft.com/messages?$filter=" + "x" * 20_000,
        verify=two_threads.ca_file,
        timeout=30,
    )
    assert response.status_code == 414
    assert response.json()["error"]["code"]


def test_a_too_long_url_gets_a_json_answer(two_threads):
    response = requests.get(
        f"{two_threads.base_url}/_m365/health?" + "x" * 20_000, verify=two_threads.ca_file, timeout=30
    )
    assert response.status_code == 414
    assert "URL" in response.json()["error"]["message"]


def test_http2_large_body_gets_its_answer(two_threads):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("h2")
    context = ssl.create_default_context(cafile=two_threads.ca_file)
    with httpx.Client(http2=True, verify=context, timeout=30) as client:
        response = client.post(
            f"{two_threads.base_url}/v1.0/users/support@contoso.onmicrosoft.com/sendMail",
            content=b"x" * (6 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        assert response.http_version == "HTTP/2"
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "RequestEntityTooLarge"
        assert client.get(f"{two_threads.base_url}/_m365/health").status_code == 200


# ---------------------------------------------------------------- the processes


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _port_closed(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _gone(pid: int, within: float) -> bool:
    """Whether process `pid` has exited (or is a zombie) now or within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_worker_exits_when_the_serve_process_is_killed(tmp_path):
    running = start_emulator(tmp_path)
    workers = _children(running.process.pid)
    try:
        assert workers, "granian's worker process"
        os.kill(running.facts["pid"], signal.SIGKILL)
        running.process.wait(10)
        assert all(_gone(pid, 10) for pid in workers)
        # A killed process's leader shows as a zombie while its other threads still exit (and hold its files):
        # the port is free once the last one is gone.
        assert _port_closed(_port(running), within=10), "something still listens on the emulator's port"
    finally:  # a worker that outlived its parent would keep the port: do not leave it behind
        for pid in workers:
            if not _gone(pid, 0):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_the_emulator_leads_its_own_process_group_so_a_forced_stop_reaches_the_worker(tmp_path):
    from m365_mock.tools.process import kill_group

    running = start_emulator(tmp_path)
    workers = _children(running.process.pid)
    assert os.getpgid(running.process.pid) == running.process.pid
    assert all(os.getpgid(pid) == running.process.pid for pid in workers)
    kill_group(running.process)
    assert all(_gone(pid, 10) for pid in workers)


def test_a_failed_second_start_leaves_the_running_emulators_files_alone(tmp_path):
    from m365_mock.tools.process import EmulatorStartError

    with start_emulator(tmp_path) as first:
        connection = (tmp_path / "connection.json").read_text()
        log = (tmp_path / "serve.log").read_text()
        with pytest.raises(EmulatorStartError, match="cannot listen"):
            start_emulator(tmp_path, "--port", str(_port(first)))
        assert (tmp_path / "connection.json").read_text() == connection
        assert (tmp_path / "serve.log").read_text() == log
        assert requests.get(f"{first.base_url}/_m365/health", verify=first.ca_file, timeout=10).status_code == 200
    assert not list(tmp_path.glob(".serve-*"))


def test_a_failed_second_demo_leaves_the_running_emulators_files_alone(tmp_path):
    with start_emulator(tmp_path) as first:
        connection = (tmp_path / "connection.json").read_text()
        log = (tmp_path / "serve.log").read_text()
        result = run_cli("demo", "--port", str(_port(first)), "--state-dir", str(tmp_path))
        assert result.returncode == 1 and "cannot listen" in result.stderr
        assert (tmp_path / "connection.json").read_text() == connection
        assert (tmp_path / "serve.log").read_text() == log


def test_banner_snippets_run_as_pasted(served):
    """The MSAL and azure-identity snippets of the banner, pasted into Python as they are, get tokens."""
    pytest.importorskip("msal")
    pytest.importorskip("azure.identity")
    text = (served.state_dir / "serve.log").read_text()
    for heading in ("MSAL for Python (pip install msal):\n", "azure-identity (pip install azure-identity):\n"):
        snippet = text.split(heading, 1)[1].split("\n\n", 1)[0]
        result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip(), heading
