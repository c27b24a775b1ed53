"""Start-up time: from launching `m365-mock serve` to its first answered request, over several starts.

    python benchmarks/startup.py [--runs 5]

Each run starts the real CLI in a fresh process on a free port (first run: a new state folder, so the CA, TLS
leaf and signing key are made; later runs reuse them, as a developer's second start does) and stops once
connection.json is written, which the CLI does right after its health check answered. Goal: under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/startup.py", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    from m365_mock.tools.process import start_emulator

    timings = []
    with tempfile.TemporaryDirectory(prefix="m365-startup-") as tmp:
        for run in range(args.runs):
            started = time.perf_counter()
            emulator = start_emulator(Path(tmp))
            timings.append(time.perf_counter() - started)
            emulator.stop()
            print(f"run {run + 1}: {timings[-1]:.2f} s{' (first start: makes CA, TLS leaf, keys)' if run == 0 else ''}")
    later = timings[1:] or timings
    print(
        f"first start {timings[0]:.2f} s; later starts median {statistics.median(later):.2f} s "
        f"(goal < 1 s: {'met' if max(timings) < 1 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
