"""`m365-mock demo`: serve the demo tenant, prove it works with the built-in scenarios, then keep serving."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path


def main(args: argparse.Namespace) -> int:
    """0 when every built-in scenario passed (and, unless --no-serve, the emulator was then stopped cleanly)."""
    from m365_mock.scenarios.model import builtin_scenarios, load_scenario
    from m365_mock.scenarios.report import console
    from m365_mock.scenarios.runner import EmulatorTarget, run_scenario
    from m365_mock.tools.process import EmulatorStartError, start_emulator

    state_dir = Path(args.state_dir).expanduser().resolve()
    extra = ["--port", str(args.port), "--host", args.host]
    try:
        emulator = start_emulator(state_dir, *extra)
    except EmulatorStartError as exc:
        print(f"m365-mock demo: the emulator did not start: {exc}", file=sys.stderr)
        return 1
    try:
        target = EmulatorTarget.from_connection(emulator.facts)
        print(f"m365-mock demo: running the built-in scenarios against {emulator.base_url} ...", flush=True)
        results = [run_scenario(target, load_scenario(path)) for path in builtin_scenarios()]
        print(console(results, color=sys.stdout.isatty()), flush=True)
        target.client.reset()
        passed = all(r.passed for r in results)
        if not passed:
            print("m365-mock demo: some scenarios FAILED (above); the emulator keeps serving anyway.", flush=True)
        if args.no_serve:
            return 0 if passed else 1
        print("\nThe emulator is back on the fresh demo tenant and keeps serving:\n", flush=True)
        print(emulator.state_dir.joinpath("serve.log").read_text().strip(), flush=True)

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        with contextlib.suppress(KeyboardInterrupt):
            emulator.process.wait()
        return 0 if passed else 1
    finally:
        emulator.stop()
