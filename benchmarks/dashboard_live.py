"""What open live logs cost the Graph routes: the same served emulator with 5 dashboards' live logs open, and none.

    python benchmarks/dashboard_live.py [--duration 8] [--connections 4] [--rounds 3] [--streams 5] [--json]

One `m365-mock serve` on the demo tenant; GET /v1.0/users/support@.../messages?$top=10 with a valid token, loaded
in turn with `--streams` live logs open (each a logged-in session reading /_m365/ui/log/events to the end, as a
dashboard's EventSource does: every request of the load arrives on every stream) and with none, round after
round. Goal: with the streams open >= 0.9 x without (req/s). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/dashboard_live.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h
from benchmarks.graph_throughput import PATH, fetch_token

GOAL = 0.9


class LiveLogs:
    """`count` live logs read to the end in threads, as long as they are open; how many events they received."""

    def __init__(self, emulator: Any, count: int) -> None:
        import requests

        self.sessions = [requests.Session() for _ in range(count)]
        self.received = [0] * count
        self.streams = []
        ui = emulator.base_url + "/_m365/ui"
        for session in self.sessions:
            login = session.post(
                ui + "/login", data={"key": emulator.facts["admin_key"]}, allow_redirects=False, verify=emulator.ca_file
            )
            login.raise_for_status()
            stream = session.get(ui + "/log/events", stream=True, timeout=60, verify=emulator.ca_file)
            stream.raise_for_status()
            self.streams.append(stream)
        self.threads = [threading.Thread(target=self._read, args=(n,), daemon=True) for n in range(count)]
        for thread in self.threads:
            thread.start()

    def _read(self, number: int) -> None:
        try:
            for chunk in self.streams[number].iter_content(chunk_size=None):
                self.received[number] += chunk.count(b"\nevent: record\n")
        except Exception:  # closed by close()
            return

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        for session in self.sessions:
            session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/dashboard_live.py", description=__doc__.splitlines()[0])
    h.add_load_arguments(parser, "request threads of the server")
    parser.add_argument("--streams", type=int, default=5, help="live logs open in the loaded runs (default 5)")
    args = parser.parse_args(argv)
    from m365_mock.tools.process import start_emulator

    generator = h.choose_generator(args.generator)
    results: dict[str, list[h.LoadResult]] = {"open": [], "none": []}
    delivered: list[float] = []
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        emulator = start_emulator(Path(tmp), "--threads", str(args.threads))
        try:
            h.limits_out_of_reach(emulator)
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
                for mode in ("open", "none"):
                    logs = LiveLogs(emulator, args.streams) if mode == "open" else None
                    try:
                        result = h.run_load(target, args.duration, args.connections, generator)
                    finally:
                        if logs is not None:
                            logs.close()
                    if result.non_2xx:
                        print(f"error: {result.non_2xx} answers were not 2xx ({mode})", file=sys.stderr)
                        return 1
                    if logs is not None and result.requests:
                        delivered.append(min(logs.received) / result.requests)
                    results[mode].append(result)
        finally:
            emulator.stop()
    opened, none = h.median_result(results["open"]), h.median_result(results["none"])
    ratio = opened.requests_per_second / none.requests_per_second
    summary: dict[str, Any] = {
        "benchmark": "dashboard_live",
        "streams": args.streams,
        "open": opened.as_dict(),
        "none": none.as_dict(),
        "ratio_open_none": ratio,
        "events_per_request_least": min(delivered) if delivered else None,
        "goal": GOAL,
        "met": ratio >= GOAL,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name, result in ((f"{args.streams} live logs open", opened), ("no live log open", none)):
            print(
                f"{name:40} {result.requests_per_second:9.1f} req/s   p50 {result.latency_p50_ms} ms   "
                f"server CPU {result.server_cpu_us_per_request or 0:.0f} us/request   "
                f"other load {result.other_load_cores or 0:.2f} cores"
            )
        if delivered:
            print(f"events received per request, the least of any stream: {min(delivered):.3f}")
        print(f"open / none: {ratio:.3f}   goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
