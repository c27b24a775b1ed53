"""Graph listing throughput: the emulator next to two bare routes, measured in one run.

    python benchmarks/graph_throughput.py [--duration 8] [--connections 8] [--rounds 3] [--json]

Three targets, loaded the same way (GET with a valid bearer token, 8 connections, HTTPS, same server):

- emulator: `m365-mock serve` on the demo tenant: GET /v1.0/users/support@.../messages?$top=10, which checks
  the token, the access policy and the permission, reads the page and serializes it, and logs the request.
- prebuilt: a bare Flask route returning the very same JSON bytes, fetched from the emulator before the run.
- built: a bare Flask route that builds the same JSON per request (json.dumps of the page's parsed data).

Goals: emulator >= 0.5 x prebuilt and >= 1.0 x built; emulator p99 <= 50 ms under this load.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as `python benchmarks/graph_throughput.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h

if TYPE_CHECKING:
    from flask import Flask

MAILBOX = "support@contoso.onmicrosoft.com"
PATH = f"/v1.0/users/{MAILBOX}/messages?$top=10"
GOAL_VS_PREBUILT = 0.5
GOAL_VS_BUILT = 1.0
GOAL_P99_MS = 50.0
RATIOS = [
    h.Ratio("emulator / prebuilt", "emulator", "prebuilt", GOAL_VS_PREBUILT),
    h.Ratio("emulator / prebuilt, by server CPU per request", "emulator", "prebuilt", GOAL_VS_PREBUILT, by_cpu=True),
    h.Ratio("emulator / built", "emulator", "built", GOAL_VS_BUILT),
    h.Ratio("emulator / built, by server CPU per request", "emulator", "built", GOAL_VS_BUILT, by_cpu=True),
]
PREPARED = "prepared-page.json"


CONTENT_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"


def prebuilt_app(state_dir: Path) -> Flask:
    """The emulator's own answer for the page, returned as prepared bytes by a bare route."""
    from flask import Flask, Response

    body = (state_dir / PREPARED).read_bytes()
    app = Flask("graph_prebuilt")

    @app.get(f"/v1.0/users/{MAILBOX}/messages")
    def page() -> Response:
        return Response(body, content_type=CONTENT_TYPE)

    return app


def built_app(state_dir: Path) -> Flask:
    """The same page's data held as Python objects, serialized to JSON on every request by a bare route."""
    from flask import Flask, Response

    data = json.loads((state_dir / PREPARED).read_bytes())
    app = Flask("graph_built")

    @app.get(f"/v1.0/users/{MAILBOX}/messages")
    def page() -> Response:
        return Response(json.dumps(data, separators=(",", ":")), content_type=CONTENT_TYPE)

    return app


def fetch_token(emulator: Any) -> str:
    """A token for the demo app, from the emulator's own token endpoint."""
    import requests

    app = next(a for a in emulator.facts["apps"] if a.get("client_secret"))
    response = requests.post(
        emulator.tenant["token_endpoint"],
        timeout=10,
        verify=emulator.ca_file,
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    response.raise_for_status()
    return response.json()["access_token"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/graph_throughput.py",
        description="GET messages req/s: the emulator vs a bare route with the same JSON.",
    )
    h.add_load_arguments(parser, "request threads of both servers")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start both servers, check they answer the same page, load each in turn, print the figures and ratio."""
    args = build_parser().parse_args(argv)
    from m365_mock.identity.keys import ensure_tls_files
    from m365_mock.tools.process import start_emulator

    generator = h.choose_generator(args.generator)
    load_before = os.getloadavg()[0]
    servers: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        state = Path(tmp)
        ca_file = str(ensure_tls_files(state).ca_cert)
        try:
            h.log("starting the emulator ...")
            emulator = start_emulator(state, "--threads", str(args.threads))
            servers.append(emulator)
            h.limits_out_of_reach(emulator)  # 8 connections on one mailbox are over Outlook's 4 at once
            token = fetch_token(emulator)
            headers = {"Authorization": f"Bearer {token}"}
            target = h.Target(
                "emulator", emulator.base_url + PATH, method="GET", headers=headers, server_pid=emulator.process.pid
            )
            status, body = h.send(target, ca_file)
            if status != 200 or len(json.loads(body)["value"]) != 10:
                print(f"error: the emulator answered {status}: {body[:300]!r}", file=sys.stderr)
                return 1
            (state / PREPARED).write_bytes(body)
            target.note = f"m365-mock, token, policy + permission checks, page of 10 ({len(body):,} bytes), logged"
            targets = [target]
            for name, note in (
                ("prebuilt", "bare Flask route returning the same bytes"),
                ("built", "bare Flask route building the same JSON per request"),
            ):
                h.log(f"starting {name} ({note}) ...")
                bare = h.start_flask_app(
                    f"benchmarks.graph_throughput:{name}_app", state, threads=args.threads, name=name
                )
                servers.append(bare)
                bare_target = h.Target(
                    name, bare.base_url + PATH, method="GET", headers=headers, server_pid=bare.process.pid, note=note
                )
                status, answer = h.send(bare_target, ca_file)
                if status != 200 or json.loads(answer) != json.loads(body):
                    print(f"error: {name} does not answer the emulator's page", file=sys.stderr)
                    return 1
                targets.append(bare_target)
            results = h.measure_rounds(targets, args, generator)
        finally:
            for server in reversed(servers):
                server.stop()
    by_name = {r.name: r for r in results}
    p99 = by_name["emulator"].latency_p99_ms
    latency = {"p99_ms": p99, "goal_ms": GOAL_P99_MS, "met": None if p99 is None else p99 <= GOAL_P99_MS}
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "graph_throughput",
                    "duration_seconds": args.duration,
                    "connections": args.connections,
                    "threads": args.threads,
                    "rounds": args.rounds,
                    "load_average_1min_before": load_before,
                    "results": {r.name: r.as_dict() for r in results},
                    "ratios": [ratio.as_dict(by_name) for ratio in RATIOS],
                    "emulator_latency": latency,
                },
                indent=2,
            )
        )
    else:
        h.print_table(
            results,
            RATIOS,
            header=[
                f"GET {PATH} with a valid token, HTTPS",
                f"load generator: {results[0].generator}; {args.connections} connections; "
                f"{args.duration:g} s per target after {args.warmup:g} s warm-up; "
                f"{os.cpu_count()} CPUs shared with the load",
                f"figures are comparable only within this run (1-min load average before the run: {load_before:.2f})",
                "",
            ],
        )
        verdict = "n/a" if p99 is None else ("met" if latency["met"] else "NOT met")
        print(f"emulator p99 latency {p99 if p99 is not None else '-'} ms (goal <= {GOAL_P99_MS:g} ms: {verdict})")
    return 1 if any(r.non_2xx for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
