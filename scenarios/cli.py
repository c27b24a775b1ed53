"""`m365-mock scenario run`: run scenario files (or the built-in library) and report each step."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="scenario_command", required=True)
    run = verbs.add_parser("run", help="run scenarios against a fresh in-process emulator or a running one")
    run.add_argument("files", nargs="*", type=Path, help="scenario files (YAML or JSON)")
    run.add_argument("--builtin", action="store_true", help="run the built-in library (scenarios/library)")
    run.add_argument("--url", help="a running emulator's base URL (default: start one in this process)")
    run.add_argument(
        "--admin-key",
        default=os.environ.get("M365_MOCK_ADMIN_KEY"),
        help="its control API key (default: $M365_MOCK_ADMIN_KEY)",
    )
    run.add_argument(
        "--ca-file", default=os.environ.get("M365_MOCK_CA_FILE"), help="the CA that signed its certificate"
    )
    run.add_argument(
        "--connection", type=Path, help="a running emulator's connection.json (instead of --url/--admin-key/--ca-file)"
    )
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    run.add_argument("--json", action="store_true", help="print results as JSON")
    listing = verbs.add_parser("list", help="list the built-in scenarios")
    listing.set_defaults(files=[])


def main(args: argparse.Namespace) -> int:
    """0 when every scenario passed, 1 when one failed, 2 when the input or the emulator could not be used."""
    from scenarios.model import ScenarioError, builtin_scenarios, load_scenario
    from scenarios.report import console, junit
    from scenarios.runner import EmulatorTarget, dumps, local_emulator, run_scenario

    if args.scenario_command == "list":
        for path in builtin_scenarios():
            scenario = load_scenario(path)
            print(f"{path.stem:<32} {scenario.name}")
        return 0
    paths = list(args.files) + (builtin_scenarios() if args.builtin else [])
    if not paths:
        print("m365-mock scenario run: give scenario files or --builtin", file=sys.stderr)
        return 2
    try:
        scenarios = [load_scenario(p) for p in paths]
    except ScenarioError as exc:
        print(f"m365-mock scenario run: {exc}", file=sys.stderr)
        return 2
    if args.connection:
        try:
            target = EmulatorTarget.from_connection(json.loads(args.connection.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            print(f"m365-mock scenario run: cannot use {args.connection}: {exc}", file=sys.stderr)
            return 2
        results = [run_scenario(target, s) for s in scenarios]
    elif args.url:
        if not args.admin_key:
            print("m365-mock scenario run: --url needs --admin-key (or M365_MOCK_ADMIN_KEY)", file=sys.stderr)
            return 2
        target = EmulatorTarget(args.url.rstrip("/"), args.admin_key, args.ca_file)
        results = [run_scenario(target, s) for s in scenarios]
    else:
        with local_emulator() as target:
            results = [run_scenario(target, s) for s in scenarios]
    if args.json:
        print(dumps(results))
    else:
        print(console(results, color=sys.stdout.isatty()))
    if args.junit:
        junit(results, args.junit)
    return 0 if all(r.passed for r in results) else 1
