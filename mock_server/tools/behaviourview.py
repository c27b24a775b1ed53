"""`m365-mock report`: the behaviour report of a running emulator's request log, one app at a time.

The log is read through the control API (as `m365-mock log` reads it) and judged by scenarios/behaviour.py: the
requests grouped by operation, and the anti-patterns Microsoft's guidance names, each explained.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from m365_mock.scenarios.behaviour import BehaviourReport, report
from m365_mock.tools.control_client import (
    ControlError,
    ControlUnavailable,
    SetupError,
    add_connection_arguments,
    client_from_args,
)

PROG = "m365-mock report"


def _sequence_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a log sequence number (0 or more), got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Judge what an app did against a running emulator, from its request log: its requests grouped by "
        "operation, and each anti-pattern Microsoft's guidance names (token not cached, retries without backoff or "
        "before Retry-After, repeated 403s, full listings where delta would do, no $select, refused "
        "$filter+$orderby, no page size, mailboxes outside its policy, no client-request-id), explained."
    )
    parser.add_argument("--app", help="only this app id (default: a report for each app in the log)")
    parser.add_argument(
        "--since",
        type=_sequence_number,
        default=0,
        metavar="SEQ",
        help="only records after this sequence number (`m365-mock log --json` shows each record's seq)",
    )
    parser.add_argument("--json", action="store_true", help="print the reports as a JSON list")
    add_connection_arguments(parser)  # --tenant: only that tenant's requests


def reports(
    records: list[dict[str, Any]], token_lifetime: float | None, names: dict[str, str] | None = None
) -> list[BehaviourReport]:
    """One report per app (named by `names`, app id -> display name, when known), in the order each app first
    appears; requests without an app (no valid token) last."""
    names = names or {}
    by_app: dict[str | None, list[dict[str, Any]]] = {}
    for record in records:
        if record.get("kind") in ("graph", "token"):
            by_app.setdefault((record.get("app_id") or "").lower() or None, []).append(record)
    ordered = sorted(by_app.items(), key=lambda item: item[0] is None)
    nobody = "requests without an app (no valid token)"
    return [
        report(found, subject=_app_subject(app, names) if app else nobody, token_lifetime=token_lifetime)
        for app, found in ordered
    ]


def _app_subject(app_id: str, names: dict[str, str]) -> str:
    name = names.get(app_id)
    return f"app {app_id} ({name})" if name else f"app {app_id}"


def _app_names(client: Any) -> dict[str, str]:
    """Every tenant's apps, id -> display name (an app deleted since keeps its id alone)."""
    names: dict[str, str] = {}
    for tenant in client.tenants():
        for app in client.for_tenant(tenant["id"]).applications():
            names[app["app_id"].lower()] = app["display_name"]
    return names


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """0 when the reports were made (whatever they found), 1 when the emulator refused or did not answer, 2 when
    there is no emulator to ask."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        client = client_from_args(args)
        records = [r for r in client.log(app=args.app) if r["seq"] > args.since]
        if args.tenant:
            tenant = client.tenant_id.lower()
            records = [r for r in records if (r.get("tenant_id") or "").lower() == tenant]
        lifetime = client.settings().get("tokenLifetime")
        names = _app_names(client)
    except SetupError as exc:
        print(f"{PROG}: {exc}", file=err)
        return 2
    except (ControlError, ControlUnavailable) as exc:
        print(f"{PROG}: {exc}", file=err)
        return 1
    made = reports(records, float(lifetime) if lifetime else None, names)
    if args.json:
        print(json.dumps([r.to_json() for r in made], indent=2), file=out)
    elif made:
        print("\n\n".join(r.text() for r in made), file=out)
    else:
        since = f" after #{args.since}" if args.since else ""
        print(f"no requests logged{since}{f' for app {args.app}' if args.app else ''}", file=out)
    return 0
