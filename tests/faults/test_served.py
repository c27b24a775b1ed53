"""Fault rules through the real server (granian, HTTPS, the front): what a client sees of a connection closed,
an answer cut short, trickled or late, and what the request log says of it."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from m365_mock.tools.control_client import ControlClient

SUPPORT = "support@contoso.onmicrosoft.com"
PAGE = f"/v1.0/users/{SUPPORT}/messages?$top=5"


@pytest.fixture
def api(served) -> Iterator[ControlClient]:
    """The served emulator's control API; its fault rules and mail put back afterwards."""
    client = ControlClient(served.base_url, served.facts["admin_key"], ca_file=served.ca_file)
    yield client
    client.reset()


@pytest.fixture
def graph(served) -> Iterator[Any]:
    """GET and POST on the served emulator's Graph as the demo app, over one keep-alive session."""
    app = served.app
    token = requests.post(
        served.tenant["token_endpoint"],
        verify=served.ca_file,
        timeout=30,
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
    ).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.base_url = served.base_url  # type: ignore[attr-defined]
    session.ca_file = served.ca_file  # type: ignore[attr-defined]  (per request: REQUESTS_CA_BUNDLE would win)
    yield session
    session.close()


def get(graph, path: str = PAGE) -> requests.Response:
    return graph.get(graph.base_url + path, timeout=30, verify=graph.ca_file)


def send(graph, subject: str) -> requests.Response:
    message = {"subject": subject, "toRecipients": [{"emailAddress": {"address": "someone@example.org"}}]}
    return graph.post(
        f"{graph.base_url}/v1.0/users/{SUPPORT}/sendMail", json={"message": message}, timeout=30, verify=graph.ca_file
    )


def outbound(api: ControlClient) -> list[str]:
    return [m["subject"] for m in api.outbound()]


def test_a_connection_closed_before_the_request_ran(api, graph):
    rule = api.add_fault(close="before", operation="send", times=1)
    with pytest.raises(requests.ConnectionError, match="Remote end closed connection without response"):
        send(graph, "Never sent")
    assert outbound(api) == []
    assert get(graph).status_code == 200  # the client's next connection is served
    [record] = api.log(limit=2)[:1]
    assert (record["status"], record["fault"], record["error_code"]) == (0, rule["id"], None)


def test_a_connection_closed_after_the_request_ran(api, graph):
    api.add_fault(close="after", operation="send", times=1)
    with pytest.raises(requests.ConnectionError, match="Remote end closed connection without response"):
        send(graph, "Sent, answer lost")
    assert outbound(api) == ["Sent, answer lost"]
    assert api.log(limit=1)[0]["status"] == 0


def test_a_connection_closed_over_http2(api, served):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("h2")
    api.add_fault(close="before", path="/v1.0/users/*/messages", times=1)
    context = ssl.create_default_context(cafile=served.ca_file)
    with httpx.Client(http2=True, verify=context, timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(served.base_url + PAGE)
        assert client.get(served.base_url + PAGE).status_code == 401  # no token: the rule acted once


def test_a_truncated_answer_stops_short_of_its_length(api, graph):
    whole = get(graph).content
    api.add_fault(truncate=100, path="/v1.0/users/*/messages", times=1)
    with pytest.raises(
        requests.exceptions.ChunkedEncodingError, match=rf"IncompleteRead\(100 bytes read, {len(whole) - 100}"
    ):
        get(graph)
    api.add_fault(truncate=0, path="/v1.0/users/*/messages", times=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match=r"IncompleteRead\(0 bytes read"):
        get(graph)
    assert get(graph).content == whole


def test_a_truncated_empty_answer_is_still_incomplete(api, graph):
    api.add_fault(truncate=10, operation="send", times=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        send(graph, "Sent, answer cut")
    assert outbound(api) == ["Sent, answer cut"]


def test_a_trickled_answer_arrives_whole_chunk_by_chunk(api, served, graph):
    whole = get(graph).content
    chunk = len(whole) // 4 + 1
    api.add_fault(trickle={"chunk_bytes": chunk, "interval": 0.2}, path="/v1.0/users/*/messages", times=1)
    host, port = served.base_url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=served.ca_file)
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    connection.request("GET", PAGE, headers={"Authorization": graph.headers["Authorization"]})
    response = connection.getresponse()
    arrivals, received = [], b""
    while piece := response.read1(65536):
        received += piece
        arrivals.append(time.monotonic())
    connection.close()
    assert received == whole and json.loads(received)["value"] is not None
    assert len(arrivals) >= 4  # four chunks, each after the last (a read may join two that came together)
    assert arrivals[-1] - arrivals[0] >= 0.2 * 2


def test_latency_holds_the_answer_not_a_request_thread(api, served, graph):
    """More late answers than the server has request threads: a request beside them is answered first."""
    api.add_fault(latency=2.0, path="/v1.0/users/*/messages", method="GET")
    finished: list[str] = []

    def slow() -> None:
        requests.get(served.base_url + PAGE, verify=served.ca_file, timeout=30)
        finished.append("slow")

    with ThreadPoolExecutor(20) as pool:
        late = [pool.submit(slow) for _ in range(20)]
        time.sleep(0.3)  # the slow requests are in
        assert get(graph, f"/v1.0/users/{SUPPORT}/mailFolders").status_code == 200
        finished.append("beside")
        for future in late:
            future.result()
    assert finished[0] == "beside" and finished.count("slow") == 20
    assert api.faults()[0]["fired"] == 20


def test_presets_over_the_real_server(api, graph):
    api.add_fault("throttle", times=1)
    throttled = get(graph)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert get(graph).status_code == 200
