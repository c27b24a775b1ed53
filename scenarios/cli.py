"""`m365-mock scenario run`: run scenario files (or the built-in library) and report each step.

Which emulator a run uses, first found wins: `--connection FILE` or `--url`, then `$M365_MOCK_BASE_URL`, then the
running emulator of `<state dir>/connection.json` if it answers its health check, else a private emulator started
for the run (`--local` asks for that one outright). The admin key and CA file are found as `m365-mock exo` and
`m365-mock log` find them: options, then M365_MOCK_* variables, then connection.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from m365_mock.scenarios.target import EmulatorTarget

PROG = "m365-mock scenario run"
RESET_NOTE = "; reset to its own tenant afterwards"


def default_state_dir() -> Path:
    return Path(os.environ.get("M365_MOCK_STATE_DIR") or Path.home() / ".m365-mock")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="scenario_command", required=True)
    run = verbs.add_parser(
        "run",
        help="run scenarios against a running emulator or a private one",
        description=__doc__.split("\n", 2)[2].strip(),
    )
    run.add_argument("files", nargs="*", type=Path, help="scenario files (YAML or JSON)")
    run.add_argument("--builtin", action="store_true", help="run the built-in library (scenarios/library)")
    run.add_argument("--url", help="a running emulator's base URL (default: $M365_MOCK_BASE_URL, then connection.json)")
    run.add_argument("--admin-key", help="its control API key (default: $M365_MOCK_ADMIN_KEY, then connection.json)")
    run.add_argument(
        "--ca-file", help="the CA that signed its certificate (default: $M365_MOCK_CA_FILE, then connection.json)"
    )
    run.add_argument(
        "--connection", type=Path, help="a running emulator's connection.json (instead of --url/--admin-key/--ca-file)"
    )
    run.add_argument(
        "--local", action="store_true", help="always start a private emulator for the run, even if one is running"
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where a running emulator's connection.json is (default: $M365_MOCK_STATE_DIR or ~/.m365-mock)",
    )
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    run.add_argument("--json", action="store_true", help="print results as JSON")
    listing = verbs.add_parser("list", help="list the built-in scenarios")
    listing.set_defaults(files=[])


class Unusable(Exception):
    """The emulator named cannot be used: exit status 2."""


@contextmanager
def chosen_emulator(args: argparse.Namespace) -> Iterator[tuple[EmulatorTarget, str, bool]]:
    """(target, one line saying which emulator the run uses, whether it is shared and so reset afterwards)."""
    from m365_mock.scenarios.target import EmulatorTarget, local_emulator
    from m365_mock.tools.control_client import SetupError, client_from_args

    if not args.local:
        if args.connection:
            try:
                target = EmulatorTarget.from_connection(json.loads(args.connection.read_text()))
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                raise Unusable(f"cannot use {args.connection}: {exc}") from None
            _check(target)
            yield target, f"the emulator at {target.base_url} (from {args.connection}){RESET_NOTE}", True
            return
        explicit = args.url or os.environ.get("M365_MOCK_BASE_URL")
        connection = Path(args.state_dir).expanduser() / "connection.json"
        why = f"no emulator is running: {connection} does not exist"
        if explicit or connection.exists():
            try:
                found = client_from_args(argparse.Namespace(**vars(args), tenant=None))
            except SetupError as exc:
                if explicit:
                    raise Unusable(str(exc)) from None
                found, why = None, str(exc)
            if found is not None:
                target = EmulatorTarget(found.base_url, found.admin_key, found.ca_file)
                if explicit:
                    _check(target)
                    source = "--url" if args.url else "$M365_MOCK_BASE_URL"
                    yield target, f"the emulator at {target.base_url} (from {source}){RESET_NOTE}", True
                    return
                problem = target.health_problem()
                if problem is None:
                    yield target, f"the running emulator at {target.base_url} (from {connection}){RESET_NOTE}", True
                    return
                why = f"the emulator of {connection} at {target.base_url}: {problem}"
    else:
        why = "--local"
    with local_emulator() as target:
        yield target, f"a private emulator at {target.base_url}, started for this run ({why})", False


def _check(target) -> None:
    problem = target.health_problem()
    if problem:
        raise Unusable(f"cannot use the emulator at {target.base_url}: {problem}")


def main(args: argparse.Namespace) -> int:
    """0 when every scenario passed, 1 when one failed, 2 when the input or the emulator could not be used."""
    from m365_mock.scenarios.model import ScenarioError, builtin_scenarios, load_scenario

    if args.scenario_command == "list":
        for path in builtin_scenarios():
            scenario = load_scenario(path)
            print(f"{path.stem:<32} {scenario.name}")
        return 0
    paths = list(args.files) + (builtin_scenarios() if args.builtin else [])
    if not paths:
        print(f"{PROG}: give scenario files or --builtin", file=sys.stderr)
        return 2
    scenarios, refused = [], []
    for path in paths:
        try:
            scenarios.append(load_scenario(path))
        except ScenarioError as exc:
            refused.append((path, str(exc)))
    if refused:
        for _, problem in refused:
            print(f"{PROG}: {problem}", file=sys.stderr)
        print(f"{PROG}: nothing was run: fix the file(s) above", file=sys.stderr)
        _write_failures(args, [(path.stem, str(path), f"refused: {problem}") for path, problem in refused])
        return 2
    try:
        with _terminate_as_interrupt():
            return _run(args, scenarios)
    except Unusable as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        _write_failures(args, [(s.name, str(s.source), f"not run: {exc}") for s in scenarios])
        return 2
    except KeyboardInterrupt as exc:
        print(f"\n{PROG}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled), handled like Ctrl+C so that the run cleans up after itself."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, scenarios: list) -> int:
    from m365_mock.scenarios.report import console, dumps, junit
    from m365_mock.scenarios.runner import run_scenario
    from m365_mock.tools.control_client import ControlError, ControlUnavailable
    from m365_mock.tools.process import EmulatorStartError

    try:
        with chosen_emulator(args) as (target, which, shared):
            print(f"{PROG}: using {which}", file=sys.stderr, flush=True)
            try:
                results = [run_scenario(target, s) for s in scenarios]
            finally:
                if shared:
                    # Scenarios imported their own tenants; put the emulator back on the one it was started with.
                    with suppress(ControlError, ControlUnavailable):
                        target.client.reset()
    except EmulatorStartError as exc:
        raise Unusable(f"the private emulator did not start: {exc}") from None
    if args.json:
        print(dumps(results))
    else:
        print(console(results, color=sys.stdout.isatty()))
    if args.junit:
        junit(results, args.junit)
    return 0 if all(r.passed for r in results) else 1


def _write_failures(args: argparse.Namespace, failures: list[tuple[str, str, str]]) -> None:
    """With --junit, a failed test case for each (name, source, reason), so CI shows why nothing ran."""
    if not args.junit:
        return
    from m365_mock.scenarios.report import junit
    from m365_mock.scenarios.results import ScenarioResult

    junit([ScenarioResult(name, source, error=reason) for name, source, reason in failures], args.junit)
