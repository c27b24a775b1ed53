"""Slow clients: how the emulator answers while uploads that stopped half-way are open.

Starts `m365-mock serve` (HTTPS, `--threads N`), measures the latency of `/_m365/health` and of a token
request on their own, then opens 4 x N uploads that send their headers and part of a body and then nothing,
and measures the same requests again while those are open. Last, it times how long a stalled upload waits
for its 408 (`--body-timeout`). Figures only: nothing here is a pass/fail test.

    python benchmarks/slow_clients.py                 # --threads 2, 8 stalled uploads, 30 samples
    python benchmarks/slow_clients.py --threads 4 --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as `python benchmarks/slow_clients.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import limits_out_of_reach, log
from m365_mock.tools.process import RunningEmulator, start_emulator

REQUEST_TIMEOUT = 60.0


def _connect(running: RunningEmulator, timeout: float | None = None) -> http.client.HTTPSConnection:
    timeout = timeout or REQUEST_TIMEOUT
    context = ssl.create_default_context(cafile=running.ca_file)
    return http.client.HTTPSConnection("127.0.0.1", _port(running), timeout=timeout, context=context)


def _port(running: RunningEmulator) -> int:
    return int(running.base_url.rsplit(":", 1)[1])


def _token_path(running: RunningEmulator) -> str:
    return "/" + running.tenant["token_endpoint"].split("/", 3)[3]


def _token_form(running: RunningEmulator) -> str:
    return urlencode(
        {
            "client_id": running.app["app_id"],
            "client_secret": running.app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        }
    )


def sample(running: RunningEmulator, what: str, count: int) -> dict[str, Any]:
    """`count` requests, each on a new connection (as a client that has none to spare would): latencies in ms."""
    timings, statuses = [], set()
    for _ in range(count):
        conn = _connect(running)
        started = time.perf_counter()
        try:
            if what == "health":
                conn.request("GET", "/_m365/health")
            else:
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                conn.request("POST", _token_path(running), body=_token_form(running), headers=headers)
            response = conn.getresponse()
            response.read()
            statuses.add(response.status)
        except OSError as exc:
            statuses.add(type(exc).__name__)
        finally:
            timings.append((time.perf_counter() - started) * 1000)
            conn.close()
    return {
        "requests": count,
        "p50_ms": round(statistics.median(timings), 2),
        "max_ms": round(max(timings), 2),
        "statuses": sorted(map(str, statuses)),
    }


def stall(running: RunningEmulator, sent: bytes = b"grant_type=") -> ssl.SSLSocket:
    """A token POST announcing 1000 bytes that sends its headers and `sent`, then nothing."""
    context = ssl.create_default_context(cafile=running.ca_file)
    conn = context.wrap_socket(
        socket.create_connection(("127.0.0.1", _port(running)), timeout=REQUEST_TIMEOUT),
        server_hostname="127.0.0.1",
    )
    head = (
        f"POST {_token_path(running)} HTTP/1.1\r\nHost: 127.0.0.1:{_port(running)}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    )
    conn.sendall(head.encode() + sent)
    return conn


def time_408(running: RunningEmulator) -> dict[str, Any]:
    """Seconds from a stalled upload's last byte to its answer, and the answer's status."""
    conn = stall(running)
    started = time.perf_counter()
    try:
        response = http.client.HTTPResponse(conn, method="POST")  # type: ignore[arg-type]
        response.begin()
        response.read()
        return {"status": response.status, "seconds": round(time.perf_counter() - started, 2)}
    except OSError as exc:
        return {"status": type(exc).__name__, "seconds": round(time.perf_counter() - started, 2)}
    finally:
        conn.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="m365-slow-clients-") as folder:
        extra = ["--threads", str(args.threads)]
        if args.body_timeout is not None:
            extra += ["--body-timeout", str(args.body_timeout)]
        with start_emulator(Path(folder), *extra) as running:
            limits_out_of_reach(running)
            sample(running, "token", 5)  # warm-up
            result: dict[str, Any] = {"threads": args.threads, "stalled_uploads": args.factor * args.threads}
            log("health and token requests with no stalled upload ...")
            result["quiet"] = {what: sample(running, what, args.samples) for what in ("health", "token")}
            log(f"opening {result['stalled_uploads']} stalled uploads ...")
            stalled = [stall(running) for _ in range(result["stalled_uploads"])]
            try:
                time.sleep(0.2)
                log("health and token requests while they are open ...")
                result["stalled"] = {what: sample(running, what, args.samples) for what in ("health", "token")}
            finally:
                for conn in stalled:
                    conn.close()
            log("timing a stalled upload's answer ...")
            result["stalled_upload_answer"] = time_408(running)
            result["body_timeout"] = args.body_timeout
    return result


def print_table(result: dict[str, Any]) -> None:
    threads, stalled = result["threads"], result["stalled_uploads"]
    print(f"m365-mock serve --threads {threads}; {stalled} stalled uploads open for the second rows")
    print("(each request on a new HTTPS connection; figures are for this machine and this run)")
    print()
    print(f"{'request':<8}  {'while':<16}  {'p50 ms':>8}  {'max ms':>9}  statuses")
    for phase, label in (("quiet", "nothing stalled"), ("stalled", "uploads stalled")):
        for what in ("health", "token"):
            row = result[phase][what]
            statuses = ",".join(row["statuses"])
            print(f"{what:<8}  {label:<16}  {row['p50_ms']:>8.2f}  {row['max_ms']:>9.2f}  {statuses}")
    answer = result["stalled_upload_answer"]
    timeout = result["body_timeout"] if result["body_timeout"] is not None else "default"
    print()
    print(f"a stalled upload is answered {answer['status']} after {answer['seconds']:.2f} s (--body-timeout {timeout})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="the emulator's --threads (default 2)")
    parser.add_argument("--factor", type=int, default=4, help="stalled uploads per thread (default 4)")
    parser.add_argument("--samples", type=int, default=30, help="requests per figure (default 30)")
    parser.add_argument(
        "--body-timeout", type=float, default=2.0, help="the emulator's --body-timeout (default 2; 0: leave it out)"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=60.0, help="seconds a request may wait for its answer (default 60)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    global REQUEST_TIMEOUT
    REQUEST_TIMEOUT = args.request_timeout
    if not args.body_timeout:
        args.body_timeout = None
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
