"""What throttling costs a request that it admits: the same served emulator, limits on (set out of reach) and off.

    python benchmarks/throttling_cost.py [--duration 8] [--connections 4] [--rounds 3] [--json]

One `m365-mock serve` on the demo tenant; GET /v1.0/users/support@.../messages?$top=10 with a valid token, loaded
in turn with throttling on (every limit counted, none reached: 10^9 requests a window, 1,000 at once) and with
throttling off (`enabled: false`), switched through the control API between runs, round after round.
Goal: on >= 0.9 x off (req/s). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/throttling_cost.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h
from benchmarks._harness import OUT_OF_REACH
from benchmarks.graph_throughput import PATH, fetch_token

GOAL = 0.9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/throttling_cost.py", description=__doc__.splitlines()[0])
    h.add_load_arguments(parser, "request threads of the server")
    args = parser.parse_args(argv)
    from m365_mock.tools.control_client import ControlClient
    from m365_mock.tools.process import start_emulator

    generator = h.choose_generator(args.generator)
    results: dict[str, list[h.LoadResult]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        emulator = start_emulator(Path(tmp), "--threads", str(args.threads))
        try:
            control = ControlClient(emulator.base_url, emulator.facts["admin_key"], ca_file=emulator.ca_file)
            token = fetch_token(emulator)
            target = h.Target(
                "emulator",
                emulator.base_url + PATH,
                method="GET",
                headers={"Authorization": f"Bearer {token}"},
                server_pid=emulator.process.pid,
            )
            h.warm_up(target, generator, args.connections)
            for _ in range(args.rounds):
                for mode, throttling in (("on", OUT_OF_REACH), ("off", {"enabled": False})):
                    control.request("PATCH", "/settings", {"throttling": throttling})
                    result = h.run_load(target, args.duration, args.connections, generator)
                    if result.non_2xx:
                        print(f"error: {result.non_2xx} answers were not 2xx with throttling {mode}", file=sys.stderr)
                        return 1
                    results[mode].append(result)
        finally:
            emulator.stop()
    on, off = h.median_result(results["on"]), h.median_result(results["off"])
    ratio = on.requests_per_second / off.requests_per_second
    summary: dict[str, Any] = {
        "benchmark": "throttling_cost",
        "on": on.as_dict(),
        "off": off.as_dict(),
        "ratio_on_off": ratio,
        "goal": GOAL,
        "met": ratio >= GOAL,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name, result in (("throttling on (limits out of reach)", on), ("throttling off", off)):
            print(f"{name:40} {result.requests_per_second:9.1f} req/s   p50 {result.latency_p50_ms} ms")
        print(f"on / off: {ratio:.3f}   goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
