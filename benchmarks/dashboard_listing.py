"""Does the dashboard's mailbox view get slower as a mailbox grows? Served time by mailbox size, as ratios.

    python benchmarks/dashboard_listing.py [--sizes 100,100000] [--requests 100] [--json]

One `m365-mock serve` (granian, HTTPS). Each mailbox is filled with generated mail through the control API
(`{"count": N}`, seed 365), then each page below is fetched one request at a time on one keep-alive connection
with a dashboard session: `--requests` per page and size in all, in five rounds that take the sizes in turn
(3 unmeasured requests before each run), so that whatever else the machine does falls on every size alike.
Measured: the time from sending the request to having read the whole page. Printed per page and size: p50 and
p99, and the ratio of the p50 at the largest size to the p50 at the smallest, all from the same run.

| page    | what                                                         | goal                          |
|---------|--------------------------------------------------------------|-------------------------------|
| list    | the mailbox view: folder tree, the Inbox's first 50 messages | ratio <= 1.5                  |
| next    | the same, page 2                                             | ratio <= 1.5                  |
| message | the newest message's view (headers, body, raw MIME)          | ratio <= 1.5                  |
| search  | the Inbox searched for "serious" (Graph's KQL), first page   | shown beside Graph's `$search` |
| graph   | GET .../mailFolders/inbox/messages?$search="serious"&$top=50 | (the same search through Graph) |

The search reads the same indexes as Graph's `$search` (`kql.SearchExpr.select`), so it may grow as Graph's
does: its ratio is reported next to Graph's own ratio from the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

if __package__ in (None, ""):  # run as `python benchmarks/dashboard_listing.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h

GOAL = 1.5
ROUNDS = 5
SEARCH = '"serious"'  # a word in some generated bodies (as benchmarks/mailbox_scale.py searches)
PAGES = ("list", "next", "message", "search", "graph")
FLAT = ("list", "next", "message")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def timed(fetch: Callable[[], tuple[int, bytes]], count: int, warmup: int = 3) -> list[float]:
    """Latencies in ms of `count` sequential requests (after `warmup` unmeasured ones); each must answer 200."""
    samples = []
    for index in range(count + warmup):
        started = time.perf_counter()
        status, body = fetch()
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"answered {status}: {body[:300]!r}")
        if index >= warmup:
            samples.append(elapsed)
    return samples


def measure(sizes: list[int], requests: int) -> list[dict[str, Any]]:
    from benchmarks.graph_throughput import fetch_token
    from m365_mock.tools.control_client import ControlClient
    from m365_mock.tools.process import start_emulator

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        emulator = start_emulator(Path(tmp))
        try:
            h.limits_out_of_reach(emulator)
            tenant = emulator.tenant["domains"][0]
            tenant_id = emulator.tenant["id"]
            parts = urlsplit(emulator.base_url)
            context = ssl.create_default_context(cafile=emulator.ca_file)
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=900)
            token = {"Authorization": f"Bearer {fetch_token(emulator)}"}

            def send(method: str, path: str, body: bytes | None = None, **headers: str) -> http.client.HTTPResponse:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                return response

            login = send(
                "POST",
                "/_m365/ui/login",
                urlencode({"key": emulator.facts["admin_key"]}).encode(),
                **{"Content-Type": "application/x-www-form-urlencoded"},
            )
            cookie = (login.getheader("Set-Cookie") or "").split(";", 1)[0]
            if login.status != 303 or not cookie:
                raise RuntimeError(f"the dashboard login answered {login.status}")

            def get(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()

            admin = ControlClient(
                emulator.base_url, emulator.facts["admin_key"], ca_file=emulator.ca_file, tenant=tenant
            )
            session = {"Cookie": cookie}
            targets: dict[int, dict[str, tuple[str, dict[str, str]]]] = {}
            for size in sizes:
                address = f"dash{size}@{tenant}"
                admin.add_mailbox(address)
                admin.add_member("cctr_sec_group", address)
                h.log(f"filling {address} with {size:,} messages ...")
                admin.generate(address, size, timeout=900)
                view = f"/_m365/ui/mailboxes/{tenant_id}/{quote(address, safe='@')}"
                status, body = get(view, session)
                newest = re.search(rb'/messages/([^"/?]+)"', body)
                if status != 200 or newest is None:
                    raise RuntimeError(f"the mailbox view answered {status}: {body[:300]!r}")
                targets[size] = {
                    "list": (view, session),
                    "next": (f"{view}?page=2", session),
                    "message": (f"{view}/messages/{newest.group(1).decode()}", session),
                    "search": (f"{view}/folders/inbox?search={quote(SEARCH)}", session),
                    "graph": (
                        f"/v1.0/users/{address}/mailFolders/inbox/messages?$search={quote(SEARCH)}&$top=50",
                        token,
                    ),
                }
            # Every size is measured in each of ROUNDS rounds, in turn (the order rotating), so that what else the
            # machine does falls on all sizes alike.
            samples: dict[tuple[int, str], list[float]] = {(size, name): [] for size in sizes for name in PAGES}
            per_round = max(1, requests // ROUNDS)
            for round_number in range(ROUNDS):
                h.log(f"round {round_number + 1} of {ROUNDS} ...")
                turn = sizes[round_number % len(sizes) :] + sizes[: round_number % len(sizes)]
                for name in PAGES:
                    for size in turn:
                        path, headers = targets[size][name]
                        samples[size, name] += timed(lambda p=path, hd=headers: get(p, hd), per_round)
            for (size, name), taken in samples.items():
                p50, p99 = percentiles(taken)
                rows.append({"size": size, "page": name, "p50_ms": p50, "p99_ms": p99})
            connection.close()
        finally:
            emulator.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/dashboard_listing.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,100000", help="mailbox sizes (default 100,100000)")
    parser.add_argument("--requests", type=int, default=100, help="measured requests per page and size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    smallest, largest = min(sizes), max(sizes)

    rows = measure(sizes, args.requests)
    base = {r["page"]: r["p50_ms"] for r in rows if r["size"] == smallest}
    for row in rows:
        row["ratio_to_smallest"] = row["p50_ms"] / base[row["page"]]
    ratio = {r["page"]: r["ratio_to_smallest"] for r in rows if r["size"] == largest}
    verdicts = [
        f"{name}: p50 x{ratio[name]:.2f} at {largest:,} ({'met' if ratio[name] <= GOAL else 'NOT met'}, goal {GOAL})"
        for name in FLAT
    ]
    verdicts.append(
        f"search: p50 x{ratio['search']:.2f} at {largest:,}; Graph's $search in the same run: x{ratio['graph']:.2f}"
    )

    if args.json:
        print(json.dumps({"benchmark": "dashboard_listing", "rows": rows, "goal_ratio_at_most": GOAL,
                          "verdicts": verdicts}, indent=2))  # fmt: skip
        return 0
    print(f"Dashboard pages by mailbox size, one keep-alive HTTPS connection, {args.requests} requests each "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    print(f"{'page':<8} {'size':>8}  {'p50 ms':>8}  {'p99 ms':>8}  {'x smallest':>10}")
    for name in PAGES:
        for row in (r for r in rows if r["page"] == name):
            print(
                f"{name:<8} {row['size']:>8,}  {row['p50_ms']:>8.2f}  {row['p99_ms']:>8.2f}  "
                f"{row['ratio_to_smallest']:>10.2f}"
            )
    print()
    for verdict in verdicts:
        print(verdict)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
