"""Does listing get slower as a mailbox grows? Median latency by mailbox size, through the real server.

    python benchmarks/mailbox_scale.py [--sizes 100,10000,100000] [--requests 300] [--json]

For each size one shared mailbox is filled with generated mail (control API), then, on one keep-alive HTTPS
connection with a valid token, measured one at a time:

- page:   GET /v1.0/users/{m}/messages?$top=10                            (default order, receivedDateTime desc)
- unread: GET /v1.0/users/{m}/messages?$filter=isRead eq false&$top=10

Printed: the median and p90 latency per size and the ratio of each median to the smallest size's (goal: at
most 1.5), and the emulator worker's resident memory growth per 10,000 messages.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h

QUERIES = {"page": "$top=10", "unread": "$filter=isRead eq false&$top=10"}
GOAL = 1.5


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its descendants (the granian worker holds the state), in KiB."""
    children = h._proc_children()
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def control(emulator: Any, method: str, path: str, body: Any = None) -> Any:
    from m365_mock.tools.control_client import control_request

    admin_key = emulator.facts["admin_key"]
    response = control_request(emulator.base_url, admin_key, method, path, body, ca_file=emulator.ca_file, timeout=600)
    response.raise_for_status()
    return response.json() if response.content else None


def measure(connection: http.client.HTTPSConnection, path: str, headers: dict[str, str], count: int) -> list[float]:
    """Latencies in ms of `count` sequential GETs on one keep-alive connection (after 20 unmeasured)."""
    samples = []
    for index in range(count + 20):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:200]!r}")
        if index >= 20:
            samples.append(elapsed)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/mailbox_scale.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="mailbox sizes (default 100,10000,100000)")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per query and size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    from benchmarks.graph_throughput import fetch_token
    from m365_mock.tools.process import start_emulator

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        emulator = start_emulator(Path(tmp))
        try:
            tenant = emulator.tenant["domains"][0]
            token = fetch_token(emulator)
            headers = {"Authorization": f"Bearer {token}"}
            parts = urlsplit(emulator.base_url)
            context = ssl.create_default_context(cafile=emulator.ca_file)
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=60)
            memory_growth: list[tuple[int, int]] = []
            for size in sizes:
                address = f"scale{size}@{tenant}"
                control(emulator, "POST", f"/tenants/{tenant}/mailboxes", {"address": address, "type": "user"})
                control(emulator, "POST", f"/tenants/{tenant}/groups/cctr_sec_group/members", {"member": address})
                before = rss_kib(emulator.process.pid)
                h.log(f"filling {address} with {size:,} messages ...")
                started = time.monotonic()
                control(emulator, "POST", f"/mailboxes/{address}/messages", {"count": size})
                h.log(f"  filled in {time.monotonic() - started:.1f} s")
                memory_growth.append((size, rss_kib(emulator.process.pid) - before))
                for name, query in QUERIES.items():
                    path = f"/v1.0/users/{address}/messages?{quote(query, safe='$=&')}"
                    samples = measure(connection, path, headers, args.requests)
                    rows.append(
                        {
                            "size": size,
                            "query": name,
                            "median_ms": statistics.median(samples),
                            "p90_ms": statistics.quantiles(samples, n=10)[-1],
                        }
                    )
                    h.log(f"  {name}: median {rows[-1]['median_ms']:.2f} ms")
            connection.close()
        finally:
            emulator.stop()
    base = {r["query"]: r["median_ms"] for r in rows if r["size"] == sizes[0]}
    for row in rows:
        row["ratio_to_smallest"] = row["median_ms"] / base[row["query"]]
    largest, growth = max(memory_growth)
    per_10k_mib = growth / 1024 / (largest / 10_000) if largest else 0.0
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "mailbox_scale",
                    "rows": rows,
                    "goal_ratio_at_most": GOAL,
                    "rss_growth_mib_per_10k_messages": round(per_10k_mib, 1),
                },
                indent=2,
            )
        )
        return 0
    print(
        f"Listing latency by mailbox size, one keep-alive HTTPS connection, {args.requests} requests each "
        f"({os.cpu_count()} CPUs)"
    )
    print(f"{'size':>8}  {'query':<6}  {'median ms':>9}  {'p90 ms':>7}  {'x smallest':>10}")
    for row in rows:
        verdict = "" if row["ratio_to_smallest"] <= GOAL else "  (goal <= 1.5 NOT met)"
        print(
            f"{row['size']:>8,}  {row['query']:<6}  {row['median_ms']:>9.2f}  {row['p90_ms']:>7.2f}  "
            f"{row['ratio_to_smallest']:>10.2f}{verdict}"
        )
    print(f"\nresident memory of the emulator per 10,000 messages (largest mailbox): {per_10k_mib:.1f} MiB")
    worst = max(r["ratio_to_smallest"] for r in rows)
    print(f"worst ratio to the smallest mailbox: {worst:.2f} (goal <= {GOAL}: {'met' if worst <= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
