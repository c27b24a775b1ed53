"""Do a daemon's queries get slower as a mailbox grows? Latency by mailbox size, garbage-collection pauses, memory.

    python benchmarks/mailbox_scale.py [--sizes 100,10000,100000] [--requests 200] [--json]
                                       [--no-served] [--no-inprocess] [--only page,search,...]

Served part (the real server, granian, HTTPS): for each size one mailbox is filled with generated mail (control
API), then each query below is timed one request at a time on one keep-alive connection with a valid token.
Printed: p50 and p99 latency per query and size, and the ratio of each p50 at the largest size to the smallest
(goal: at most 1.5, i.e. the query does not get slower as the mailbox grows; `$search` has its own goal: p50
under 50 ms at 100,000 messages; queries marked "no goal" are shown for information). Also the emulator
worker's resident memory growth per 10,000 messages.

In-process part (the same app, Flask's test client, no server), for each size:
- memory: bytes per message held after filling the mailbox, and after every message was read once (rendered
  JSON kept for the next reader), from tracemalloc; container objects the garbage collector tracks per message;
- garbage collection: every collection's pause (gc.callbacks: the time from its start to its stop) while the
  queries run and mail is delivered through sendMail (mail that arrives after start-up). Goal: no pause over
  10 ms. Then one full collection, forced and timed: what a full collection costs at that point.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h

GOAL = 1.5
SEARCH_GOAL_MS = 50.0
GC_PAUSE_GOAL_MS = 10.0
SEED = 365  # the control API's default seed: the senders below are the generated mail's


@dataclass(frozen=True)
class Query:
    name: str
    template: str  # {since} {lo} {hi}: times before the newest message; {sender}: one of the generated senders
    goal: str = "ratio"  # "ratio" (p50 largest / smallest <= 1.5), "search" (p50 < 50 ms at 100k) or "none"


QUERIES = [
    Query("page", "$top=10"),
    Query("unread", "$filter=isRead eq false&$top=10"),
    Query("newest", "$orderby=receivedDateTime desc&$top=10"),
    Query("oldest", "$orderby=receivedDateTime asc&$top=10"),
    Query("since", "$filter=receivedDateTime ge {since}&$orderby=receivedDateTime desc&$top=10"),
    Query("range", "$filter=receivedDateTime ge {lo} and receivedDateTime lt {hi}&$top=10"),
    Query("from", "$filter=from/emailAddress/address eq '{sender}'&$top=10"),
    Query("attached", "$filter=hasAttachments eq true&$top=10"),
    Query("subject", "$filter=subject eq 'No such subject'&$top=10"),
    Query("search", '$search="serious"&$top=10', goal="search"),
    Query("by-subject", "$orderby=subject&$top=10", goal="none"),
]


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


def query_values(newest: datetime) -> dict[str, str]:
    """Values for the query templates, relative to the newest generated message (found in every size)."""
    from m365_mock.state.content import pools

    def z(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "since": z(newest - timedelta(hours=3)),
        "lo": z(newest - timedelta(hours=6)),
        "hi": z(newest - timedelta(hours=3)),
        "sender": pools(SEED).senders[0][1],
    }


def query_path(address: str, query: Query, values: dict[str, str]) -> str:
    return f"/v1.0/users/{address}/messages?{quote(query.template.format(**values), safe='$=&')}"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def timed(fetch: Callable[[], tuple[int, bytes]], count: int, warmup: int) -> list[float]:
    """Latencies in ms of `count` sequential requests (after `warmup` unmeasured ones)."""
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


# ---------------------------------------------------------------- served


def served(sizes: list[int], queries: list[Query], requests: int) -> tuple[list[dict[str, Any]], float]:
    from benchmarks.graph_throughput import fetch_token
    from m365_mock.tools.control_client import ControlClient
    from m365_mock.tools.process import start_emulator

    rows: list[dict[str, Any]] = []
    memory_growth: list[tuple[int, int]] = []
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        emulator = start_emulator(Path(tmp))
        try:
            h.limits_out_of_reach(emulator)
            tenant = emulator.tenant["domains"][0]
            headers = {"Authorization": f"Bearer {fetch_token(emulator)}"}
            parts = urlsplit(emulator.base_url)
            context = ssl.create_default_context(cafile=emulator.ca_file)
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=900)

            def get(path: str) -> tuple[int, bytes]:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()

            admin = ControlClient(
                emulator.base_url, emulator.facts["admin_key"], ca_file=emulator.ca_file, tenant=tenant
            )
            for size in sizes:
                address = f"scale{size}@{tenant}"
                admin.add_mailbox(address)
                admin.add_member("cctr_sec_group", address)
                before = rss_kib(emulator.process.pid)
                h.log(f"served: filling {address} with {size:,} messages ...")
                started = time.monotonic()
                admin.generate(address, size, timeout=900)
                h.log(f"  filled in {time.monotonic() - started:.1f} s")
                memory_growth.append((size, rss_kib(emulator.process.pid) - before))
                _, body = get(f"/v1.0/users/{address}/messages?$top=1")
                newest = datetime.fromisoformat(json.loads(body)["value"][0]["receivedDateTime"].replace("Z", "+00:00"))
                values = query_values(newest)
                for query in queries:
                    path = query_path(address, query, values)
                    samples = timed(lambda path=path: get(path), requests, warmup=3)
                    p50, p99 = percentiles(samples)
                    rows.append({"size": size, "query": query.name, "goal": query.goal, "p50_ms": p50, "p99_ms": p99})
                    h.log(f"  {query.name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            connection.close()
        finally:
            emulator.stop()
    largest, growth = max(memory_growth)
    per_10k_mib = growth / 1024 / (largest / 10_000) if largest else 0.0
    return rows, per_10k_mib


# ---------------------------------------------------------------- in process


class PauseRecorder:
    """Every garbage collection's pause, by generation, through gc.callbacks."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._started) * 1000)

    def __enter__(self) -> PauseRecorder:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def in_process(size: int, queries: list[Query], rounds: int, deliveries: int) -> dict[str, Any]:
    from m365_mock.app import create_app
    from m365_mock.state.directory import GRAPH_RESOURCE
    from m365_mock.state.tenantfile import load_demo_world

    admin_key = "bench-admin-key"
    app = create_app(load_demo_world(), admin_key=admin_key)
    emulator = app.extensions["m365"]
    tenant = emulator.directory.tenants[0]
    domain = tenant.domains[0] if hasattr(tenant, "domains") else "contoso.onmicrosoft.com"
    client = app.test_client()
    admin = {"X-M365-Admin-Key": admin_key}
    address, sender = f"scale{size}@{domain}", f"sender{size}@{domain}"
    for box in (address, sender):
        client.post(f"/_m365/tenants/{domain}/mailboxes", json={"address": box, "type": "user"}, headers=admin)
        client.post(f"/_m365/tenants/{domain}/groups/cctr_sec_group/members", json={"member": box}, headers=admin)
    demo_app = next(a for a in tenant.applications.values() if a.consent_granted)
    token = {"Authorization": f"Bearer {emulator.issuer.issue(tenant, demo_app, GRAPH_RESOURCE, '1').access_token}"}

    def get(path: str) -> tuple[int, bytes]:
        response = client.get(path, headers=token, base_url="https://bench.test")
        return response.status_code, response.get_data()

    gc.collect()
    gc.freeze()  # as `m365-mock serve` does once the world is built
    h.log(f"in-process: filling {address} with {size:,} messages (tracemalloc on) ...")
    tracked = len(gc.get_objects()) + gc.get_freeze_count()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    response = client.post(f"/_m365/mailboxes/{address}/messages", json={"count": size}, headers=admin)
    assert response.status_code == 201, response.get_data()
    filled = tracemalloc.get_traced_memory()[0]
    gc.collect()  # container objects the collector tracks (frozen or not) per message, once settled
    containers = (len(gc.get_objects()) + gc.get_freeze_count() - tracked) / size
    url: str | None = f"/v1.0/users/{address}/messages?$top=1000"
    while url:
        status, body = get(url)
        assert status == 200, body[:300]
        url = json.loads(body).get("@odata.nextLink")
    read = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    _, body = get(f"/v1.0/users/{address}/messages?$top=1")
    newest = datetime.fromisoformat(json.loads(body)["value"][0]["receivedDateTime"].replace("Z", "+00:00"))
    values = query_values(newest)
    paths = [query_path(address, q, values) for q in queries]
    mail = {"message": {"subject": "delivered later", "body": {"contentType": "text", "content": "hello"},
                        "toRecipients": [{"emailAddress": {"address": address}}]}}  # fmt: skip
    send_path = f"/v1.0/users/{sender}/sendMail"
    h.log(f"  {rounds} rounds of {len(paths)} queries and {deliveries:,} deliveries, timing every collection ...")
    gc.collect()
    per_round = max(1, deliveries // max(rounds, 1))
    started = time.perf_counter()
    with PauseRecorder() as recorder:
        for _ in range(rounds):
            for path in paths:
                get(path)
            for _ in range(per_round):
                response = client.post(send_path, json=mail, headers=token, base_url="https://bench.test")
                assert response.status_code == 202, response.get_data()
    elapsed = time.perf_counter() - started
    everything = [p for pauses in recorder.pauses.values() for p in pauses]
    started = time.perf_counter()
    gc.collect()  # what a full collection would cost now: it walks every container object not frozen
    forced_ms = (time.perf_counter() - started) * 1000
    result = {
        "size": size,
        "bytes_per_message": (filled - base) / size,
        "rendered_bytes_per_message": (read - filled) / size,
        "containers_per_message": containers,
        "gc_seconds": elapsed,
        "gc_collections": {str(g): len(p) for g, p in recorder.pauses.items()},
        "gc_max_ms": {str(g): max(p, default=0.0) for g, p in recorder.pauses.items()},
        "gc_p99_ms": percentiles(everything)[1] if everything else 0.0,
        "gc_worst_ms": max(everything, default=0.0),
        "full_collection_ms": forced_ms,
    }
    del app, emulator
    gc.unfreeze()
    gc.collect()
    return result


# ---------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/mailbox_scale.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="mailbox sizes (default 100,10000,100000)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per query and size")
    parser.add_argument("--only", default="", help="comma-separated query names (default: all)")
    parser.add_argument("--rounds", type=int, default=40, help="in-process: rounds of the queries while timing GC")
    parser.add_argument("--deliveries", type=int, default=3000, help="in-process: messages delivered while timing GC")
    parser.add_argument("--no-served", action="store_true", help="leave out the served part")
    parser.add_argument("--no-inprocess", action="store_true", help="leave out the in-process part (memory, GC)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = {name for name in args.only.split(",") if name}
    queries = [q for q in QUERIES if not wanted or q.name in wanted]

    rows: list[dict[str, Any]] = []
    per_10k_mib = None
    if not args.no_served:
        rows, per_10k_mib = served(sizes, queries, args.requests)
        base = {r["query"]: r["p50_ms"] for r in rows if r["size"] == sizes[0]}
        for row in rows:
            row["ratio_to_smallest"] = row["p50_ms"] / base[row["query"]]
    memory: list[dict[str, Any]] = []
    if not args.no_inprocess:
        memory = [in_process(size, queries, args.rounds, args.deliveries) for size in sizes]

    verdicts: list[str] = []
    largest = max(sizes)
    for query in queries:
        mine = [r for r in rows if r["query"] == query.name]
        if not mine:
            continue
        top = next(r for r in mine if r["size"] == largest)
        if query.goal == "ratio":
            ok = top["ratio_to_smallest"] <= GOAL
            verdicts.append(
                f"{query.name}: p50 x{top['ratio_to_smallest']:.2f} at {largest:,} ({'met' if ok else 'NOT met'})"
            )
        elif query.goal == "search" and largest >= 100_000:
            ok = top["p50_ms"] < SEARCH_GOAL_MS
            verdicts.append(f"{query.name}: p50 {top['p50_ms']:.1f} ms at {largest:,} ({'met' if ok else 'NOT met'})")
    if memory:
        worst = max(m["gc_worst_ms"] for m in memory)
        verdicts.append(f"gc: longest pause {worst:.1f} ms ({'met' if worst <= GC_PAUSE_GOAL_MS else 'NOT met'})")

    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "mailbox_scale",
                    "rows": rows,
                    "memory_and_gc": memory,
                    "goal_ratio_at_most": GOAL,
                    "search_goal_ms": SEARCH_GOAL_MS,
                    "gc_pause_goal_ms": GC_PAUSE_GOAL_MS,
                    "rss_growth_mib_per_10k_messages": None if per_10k_mib is None else round(per_10k_mib, 1),
                    "verdicts": verdicts,
                },
                indent=2,
            )
        )
        return 0
    if rows:
        print(
            f"Latency by mailbox size, one keep-alive HTTPS connection, {args.requests} requests each "
            f"({os.cpu_count()} CPUs)"
        )
        print(f"{'query':<11} {'size':>8}  {'p50 ms':>8}  {'p99 ms':>8}  {'x smallest':>10}  goal")
        for query in queries:
            for row in (r for r in rows if r["query"] == query.name):
                goal = {"ratio": f"x <= {GOAL}", "search": f"p50 < {SEARCH_GOAL_MS:.0f} ms at 100k"}.get(
                    query.goal, "no goal"
                )
                print(
                    f"{query.name:<11} {row['size']:>8,}  {row['p50_ms']:>8.2f}  {row['p99_ms']:>8.2f}  "
                    f"{row['ratio_to_smallest']:>10.2f}  {goal if row['size'] == largest else ''}"
                )
        print(f"\nresident memory of the emulator per 10,000 messages (largest mailbox): {per_10k_mib:.1f} MiB")
    if memory:
        print(
            "\nIn process: memory (tracemalloc) and garbage-collection pauses (gc.callbacks), querying and delivering"
        )
        print(
            f"{'size':>8}  {'B/message':>9}  {'+ read once':>11}  {'containers':>10}  {'collections g0/g1/g2':>20}  "
            f"{'max ms g0/g1/g2':>22}  {'p99 ms':>7}  {'full gc ms':>10}"
        )
        for m in memory:
            counts = "/".join(str(m["gc_collections"][g]) for g in "012")
            worst = "/".join(f"{m['gc_max_ms'][g]:.1f}" for g in "012")
            print(
                f"{m['size']:>8,}  {m['bytes_per_message']:>9,.0f}  {m['rendered_bytes_per_message']:>11,.0f}  "
                f"{m['containers_per_message']:>10.2f}  {counts:>20}  {worst:>22}  {m['gc_p99_ms']:>7.2f}  "
                f"{m['full_collection_ms']:>10.1f}"
            )
    print()
    for verdict in verdicts:
        print(verdict)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
