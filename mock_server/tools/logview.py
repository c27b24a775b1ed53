"""`m365-mock log`: the request log of a running emulator, with each access decision and its reason."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from m365_mock.tools.control_client import (
    ControlError,
    ControlUnavailable,
    SetupError,
    add_connection_arguments,
    client_from_args,
)

COLUMNS = ("time", "status", "outcome", "app_id", "mailbox", "method", "path", "decision")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show the Graph requests a running emulator answered, why each was allowed or denied, and the fault rule "
        "that acted on it (if any)."
    )
    parser.add_argument("--app", help="only this app id")
    parser.add_argument("--mailbox", help="only this mailbox address")
    parser.add_argument(
        "--outcome",
        choices=["granted", "denied", "error", "issued", "refused"],
        help="only this outcome (a token request is issued or refused)",
    )
    parser.add_argument("--kind", choices=["graph", "token", "other"], help="only Graph requests, or token requests")
    parser.add_argument("--limit", type=int, default=50, help="the newest N records (default 50; 0 for all)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON lines")
    add_connection_arguments(parser)


def format_records(records: list[dict[str, Any]]) -> str:
    """One line a record: time, status (--- for no answer), outcome, app, mailbox, request; then the fault rule
    that acted on it and the decision's reason."""
    lines = []
    for r in records:
        when = r["time"][11:19]
        who = (r.get("app_id") or "-")[:8]
        lines.append(
            f"{when}  {r['status'] or '---'}  {r['outcome']:<7}  {who:<8}  {r.get('mailbox') or '-':<34}  "
            f"{r['method']} {r['path']}"
            + (f"  (in $batch {r['batch_request_id']})" if r.get("batch_request_id") else "")
            + (f"  (Retry-After {r['retry_after']})" if r.get("retry_after") is not None else "")
        )
        if r.get("fault"):
            lines.append(f"          fault {r['fault']}: {r.get('fault_action') or ''}")
        if r.get("decision"):
            lines.append(f"          {r['decision']}")
        elif r.get("error_code"):
            lines.append(f"          {r['error_code']}")
    return "\n".join(lines)


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        client = client_from_args(args)
        records = client.log(
            app=args.app, mailbox=args.mailbox, outcome=args.outcome, kind=args.kind, limit=args.limit or None
        )
    except SetupError as exc:
        print(f"m365-mock log: {exc}", file=err)
        return 2
    except (ControlError, ControlUnavailable) as exc:
        print(f"m365-mock log: {exc}", file=err)
        return 1
    if args.json:
        for record in records:
            print(json.dumps(record), file=out)
    elif records:
        print(format_records(records), file=out)
    else:
        print("no requests logged (yet) for this filter", file=out)
    return 0
