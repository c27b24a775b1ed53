"""What fault matching costs when no rule matches: the same Graph listing with no fault rules and with some.

    python benchmarks/fault_matching.py [--duration 8] [--connections 8] [--rounds 3] [--json]

Two emulators (`m365-mock serve` on the demo tenant, HTTPS, same threads), loaded the same way in turn:
GET /v1.0/users/support@.../messages?$top=10 with a valid token (the token, the policy, the page, the log).

- no rules: no fault rule is in force; matching costs an empty-tuple check before the route and at the gate.
- rules, none matching: RULES below are in force, half matched before the route (method, path glob, path regex,
  the token endpoint) and half at the mailbox gate (app, mailbox, operation); none matches this request, so
  every request is checked against every rule and none acts.

Goal: rules / no rules >= 0.9 (fault matching costs at most 10 % of the throughput). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/fault_matching.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h
from benchmarks.graph_throughput import fetch_token

MAILBOX = "support@contoso.onmicrosoft.com"
PATH = f"/v1.0/users/{MAILBOX}/messages?$top=10"
GOAL = 0.9
# Rules that look at every request of the load and act on none of them.
RULES: list[dict[str, Any]] = [
    {"id": "posts-to-messages", "method": "POST", "path": "/v1.0/users/*/messages", "preset": "service-unavailable"},
    {"id": "child-folders", "path": "/v1.0/users/*/mailFolders/*/childFolders/**", "status": 504},
    {"id": "attachments", "path_regex": r"/attachments/[^/]+/\$value$", "truncate": 100},
    {"id": "token-down", "preset": "token-endpoint-down", "probability": 0.5, "seed": 1},
    {"id": "sales-throttled", "preset": "throttle", "mailbox": "sales@contoso.onmicrosoft.com"},
    {"id": "sends-dropped", "operation": "send", "close": "before"},
    {"id": "another-app", "app": "Another App", "latency": 1},
    {"id": "billing-every-third", "mailbox": "billing@contoso.onmicrosoft.com", "every": 3, "status": 503},
]
RATIOS = [
    h.Ratio("rules, none matching / no rules", "rules, none matching", "no rules", GOAL),
    h.Ratio(
        "rules, none matching / no rules, by server CPU per request",
        "rules, none matching",
        "no rules",
        GOAL,
        by_cpu=True,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/fault_matching.py",
        description="GET messages req/s with fault rules in force that match no request, vs none in force.",
    )
    h.add_load_arguments(parser, "request threads of both emulators")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start both emulators, put the rules in force in one, check both answer the page, load each in turn."""
    args = build_parser().parse_args(argv)
    from m365_mock.tools.control_client import ControlClient
    from m365_mock.tools.process import start_emulator

    generator = h.choose_generator(args.generator)
    load_before = os.getloadavg()[0]
    servers: list[Any] = []
    targets: list[h.Target] = []
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        try:
            for name, rules in (("no rules", []), ("rules, none matching", RULES)):
                state = Path(tmp) / name.replace(" ", "-").replace(",", "")
                h.log(f"starting the emulator with {name} ...")
                emulator = start_emulator(state, "--threads", str(args.threads))
                servers.append(emulator)
                ca_file = emulator.ca_file
                headers = {"Authorization": f"Bearer {fetch_token(emulator)}"}  # before a rule could act on it
                control = ControlClient(emulator.base_url, emulator.facts["admin_key"], ca_file=ca_file)
                for rule in rules:
                    control.add_fault(**rule)
                target = h.Target(name, emulator.base_url + PATH, method="GET", headers=headers)
                target.server_pid = emulator.process.pid
                target.note = f"{len(rules)} fault rules in force" if rules else "no fault rule"
                status, body = h.send(target, ca_file)
                if status != 200 or len(json.loads(body)["value"]) != 10:
                    print(f"error: {name} answered {status}: {body[:300]!r}", file=sys.stderr)
                    return 1
                targets.append(target)
            results = h.measure_rounds(targets, args, generator)
            fired = sum(rule["fired"] for rule in control.faults())
        finally:
            for server in reversed(servers):
                server.stop()
    by_name = {r.name: r for r in results}
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "fault_matching",
                    "duration_seconds": args.duration,
                    "connections": args.connections,
                    "threads": args.threads,
                    "rounds": args.rounds,
                    "load_average_1min_before": load_before,
                    "rules": len(RULES),
                    "rules_fired": fired,
                    "results": {r.name: r.as_dict() for r in results},
                    "ratios": [ratio.as_dict(by_name) for ratio in RATIOS],
                },
                indent=2,
            )
        )
    else:
        h.print_table(
            results,
            RATIOS,
            header=[
                f"GET {PATH} with a valid token, HTTPS; {len(RULES)} fault rules that match none of these requests",
                f"load generator: {results[0].generator}; {args.connections} connections; "
                f"{args.duration:g} s per target after {args.warmup:g} s warm-up; "
                f"{os.cpu_count()} CPUs shared with the load",
                f"figures are comparable only within this run (1-min load average before the run: {load_before:.2f})",
                "",
            ],
        )
        print(f"rules that acted during the load: {fired} (must be 0)")
    return 1 if fired or any(r.non_2xx for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
