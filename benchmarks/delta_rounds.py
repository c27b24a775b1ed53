"""Does a message delta round cost more in a bigger folder? Round latency at each folder size, 10 changes a round.

    python benchmarks/delta_rounds.py [--sizes 100,100000] [--rounds 60] [--changes 10] [--json]
                                      [--no-served] [--no-inprocess]

For each size one mailbox's Inbox is filled with generated mail, a first delta round is paged through (timed,
for information: it reads the whole folder), and then, `--rounds` times: `--changes` changes are made to the
Inbox (every third a new message delivered through the control API, every third a message marked read, the rest
moved to the Archive or deleted in turn; each makes one item of the next round) and the next round is read from
the previous round's deltaLink, timed from its first request to its deltaLink. Printed per size: p50 and p99 of
a round and the items it gave, and the ratio of the p50 at the largest size to the smallest (goal: at most 1.5,
i.e. a round costs what its changes cost, not what the folder holds).

Served part: the real server (granian, HTTPS), one keep-alive connection, a token from the token endpoint.
In-process part: the same app through Flask's test client, without server and TLS (steadier figures).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h

GOAL = 1.5
PAGE = 1000  # the first round's page size (Prefer: odata.maxpagesize)

Get = Callable[[str, dict[str, str]], tuple[int, bytes]]
Send = Callable[[str, str, Any], Any]  # method, path, JSON body -> the answer's JSON (None when empty)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def read_round(get: Get, url: str, headers: dict[str, str]) -> tuple[str, int, int]:
    """Page through one round from `url`: (its deltaLink's path and query, items, pages)."""
    items = pages = 0
    while True:
        status, body = get(url, headers)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}: {body[:300]!r}")
        page = json.loads(body)
        items, pages = items + len(page["value"]), pages + 1
        link = page.get("@odata.deltaLink") or page["@odata.nextLink"]
        parts = urlsplit(link)
        url = f"{parts.path}?{parts.query}"
        if "@odata.deltaLink" in page:
            return url, items, pages


def measure(get: Get, send: Send, address: str, ids: list[str], rounds: int, changes: int) -> dict[str, Any]:
    """The first round (timed once), then `rounds` rounds of `changes` changes each, timed."""
    mailbox = quote(address, safe="@")
    first = f"/v1.0/users/{mailbox}/mailFolders/inbox/messages/delta?$select=subject,isRead"
    started = time.perf_counter()
    link, first_items, first_pages = read_round(get, first, {"Prefer": f"odata.maxpagesize={PAGE}"})
    first_ms = (time.perf_counter() - started) * 1000
    patchable = ids[: len(ids) // 2]
    removable = list(ids[len(ids) // 2 :])  # and, from the second round on, the messages delivered before
    samples: list[float] = []
    told: list[int] = []
    for number in range(rounds):
        delivered = []
        for change in range(changes):
            kind = change % 3
            if kind == 0:
                answer = send("POST", f"/_m365/mailboxes/{mailbox}/messages", {"subject": f"round {number}"})
                delivered.append(answer["ids"][0])
            elif kind == 1:
                target = patchable[(number * changes + change) % len(patchable)]
                send("PATCH", f"/v1.0/users/{mailbox}/messages/{target}", {"isRead": True})
            elif change % 2:
                send("POST", f"/v1.0/users/{mailbox}/messages/{removable.pop()}/move", {"destinationId": "archive"})
            else:
                send("DELETE", f"/v1.0/users/{mailbox}/messages/{removable.pop()}", None)
        removable += delivered
        started = time.perf_counter()
        link, items, _ = read_round(get, link, {})
        samples.append((time.perf_counter() - started) * 1000)
        told.append(items)
    p50, p99 = percentiles(samples)
    return {
        "first_round_ms": first_ms,
        "first_round_items": first_items,
        "first_round_pages": first_pages,
        "p50_ms": p50,
        "p99_ms": p99,
        "items_per_round": statistics.median(told),
    }


def check_items(result: dict[str, Any], size: int, changes: int) -> None:
    if result["first_round_items"] != size or result["items_per_round"] != changes:
        raise RuntimeError(f"size {size}: unexpected items {result}")


# ---------------------------------------------------------------- served


def served(sizes: list[int], rounds: int, changes: int) -> list[dict[str, Any]]:
    from benchmarks.graph_throughput import fetch_token
    from m365_mock.tools.control_client import ControlClient
    from m365_mock.tools.process import start_emulator

    rows = []
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        emulator = start_emulator(Path(tmp))
        try:
            h.limits_out_of_reach(emulator)
            tenant = emulator.tenant["domains"][0]
            token = {"Authorization": f"Bearer {fetch_token(emulator)}"}
            admin_key = {"X-M365-Admin-Key": emulator.facts["admin_key"]}
            parts = urlsplit(emulator.base_url)
            context = ssl.create_default_context(cafile=emulator.ca_file)
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=900)

            def get(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
                connection.request("GET", path, headers={**token, **headers})
                response = connection.getresponse()
                return response.status, response.read()

            def send(method: str, path: str, body: Any) -> Any:
                headers = {**(admin_key if path.startswith("/_m365/") else token), "Content-Type": "application/json"}
                connection.request(method, path, body=b"" if body is None else json.dumps(body), headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.status >= 300:
                    raise RuntimeError(f"{method} {path} answered {response.status}: {data[:200]!r}")
                return json.loads(data) if data else None

            admin = ControlClient(
                emulator.base_url, emulator.facts["admin_key"], ca_file=emulator.ca_file, tenant=tenant
            )
            for size in sizes:
                address = f"delta{size}@{tenant}"
                admin.add_mailbox(address)
                admin.add_member("cctr_sec_group", address)
                h.log(f"served: filling {address} with {size:,} messages ...")
                ids = admin.generate(address, size, timeout=900)["ids"]
                result = measure(get, send, address, ids, rounds, changes)
                check_items(result, size, changes)
                rows.append({"part": "served", "size": size, **result})
                h.log(f"  first round {result['first_round_ms']:.0f} ms; a round p50 {result['p50_ms']:.2f} ms")
            connection.close()
        finally:
            emulator.stop()
    return rows


# ---------------------------------------------------------------- in process


def in_process(sizes: list[int], rounds: int, changes: int) -> list[dict[str, Any]]:
    from m365_mock.app import create_app
    from m365_mock.state.directory import GRAPH_RESOURCE
    from m365_mock.state.tenantfile import load_demo_world

    admin_key = "bench-admin-key"
    app = create_app(load_demo_world(), admin_key=admin_key)
    emulator = app.extensions["m365"]
    tenant = emulator.directory.tenants[0]
    domain = tenant.domains[0]
    client = app.test_client()
    admin = {"X-M365-Admin-Key": admin_key}
    demo_app = next(a for a in tenant.applications.values() if a.consent_granted)
    token = {"Authorization": f"Bearer {emulator.issuer.issue(tenant, demo_app, GRAPH_RESOURCE, '1').access_token}"}

    def get(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        response = client.get(path, headers={**token, **headers}, base_url="https://bench.test")
        return response.status_code, response.get_data()

    def send(method: str, path: str, body: Any) -> Any:
        headers = admin if path.startswith("/_m365/") else token
        response = client.open(path, method=method, json=body, headers=headers, base_url="https://bench.test")
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.get_data()[:200]!r}")
        return response.get_json(silent=True)

    rows = []
    for size in sizes:
        address = f"delta{size}@{domain}"
        send("POST", f"/_m365/tenants/{domain}/mailboxes", {"address": address, "type": "user"})
        send("POST", f"/_m365/tenants/{domain}/groups/cctr_sec_group/members", {"member": address})
        h.log(f"in-process: filling {address} with {size:,} messages ...")
        response = client.post(f"/_m365/mailboxes/{address}/messages", json={"count": size}, headers=admin)
        result = measure(get, send, address, response.get_json()["ids"], rounds, changes)
        check_items(result, size, changes)
        rows.append({"part": "in-process", "size": size, **result})
        h.log(f"  first round {result['first_round_ms']:.0f} ms; a round p50 {result['p50_ms']:.2f} ms")
    return rows


# ---------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/delta_rounds.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,100000", help="folder sizes (default 100,100000)")
    parser.add_argument("--rounds", type=int, default=60, help="timed rounds per size (default 60)")
    parser.add_argument("--changes", type=int, default=10, help="changes before each round (default 10)")
    parser.add_argument("--no-served", action="store_true", help="leave out the served part")
    parser.add_argument("--no-inprocess", action="store_true", help="leave out the in-process part")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if min(sizes) < 4 * args.changes:
        parser.error("the smallest folder needs at least 4 messages per change of a round")

    rows: list[dict[str, Any]] = []
    if not args.no_served:
        rows += served(sizes, args.rounds, args.changes)
    if not args.no_inprocess:
        rows += in_process(sizes, args.rounds, args.changes)
    verdicts = []
    for part in ("served", "in-process"):
        mine = [r for r in rows if r["part"] == part]
        if not mine:
            continue
        smallest = min(mine, key=lambda r: r["size"])
        for row in mine:
            row["ratio_to_smallest"] = row["p50_ms"] / smallest["p50_ms"]
        largest = max(mine, key=lambda r: r["size"])
        met = largest["ratio_to_smallest"] <= GOAL
        verdicts.append(
            f"{part}: a round's p50 x{largest['ratio_to_smallest']:.2f} at {largest['size']:,} messages against "
            f"{smallest['size']:,} (goal <= {GOAL}: {'met' if met else 'NOT met'})"
        )

    if args.json:
        print(json.dumps({"benchmark": "delta_rounds", "rows": rows, "goal_ratio_at_most": GOAL,
                          "verdicts": verdicts}, indent=2))  # fmt: skip
        return 0
    print(
        f"A delta round after {args.changes} changes, {args.rounds} rounds per size, one connection "
        f"({os.cpu_count()} CPUs)"
    )
    print(
        f"{'part':<11} {'size':>8}  {'round p50 ms':>12}  {'p99 ms':>8}  {'items':>5}  {'x smallest':>10}  "
        f"{'first round ms':>14}  {'pages':>5}"
    )
    for row in rows:
        print(
            f"{row['part']:<11} {row['size']:>8,}  {row['p50_ms']:>12.2f}  {row['p99_ms']:>8.2f}  "
            f"{row['items_per_round']:>5.0f}  {row['ratio_to_smallest']:>10.2f}  {row['first_round_ms']:>14,.0f}  "
            f"{row['first_round_pages']:>5}"
        )
    print()
    for verdict in verdicts:
        print(verdict)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
