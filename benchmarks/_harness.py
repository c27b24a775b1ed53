"""Shared benchmark helpers: start servers in child processes, drive a load at them, print the results.

Servers:
- `start_flask_app`: any Flask app factory served by `m365_mock.server.serve` (granian, one worker, the
  same TLS and threads as the emulator) in a child process; the child is this module run with `serve-flask`.
- `start_node_server`: a Node script that prints one JSON line (`{"ready": true, "url": ...}`) when listening.
- `ensure_npm_install`: `npm install` into a folder once, or say why it cannot.

Load: `run_load` drives one `Target` with wrk (`-t2 -c<connections>` and a Lua script for the method, body
and headers) when it is installed, otherwise with Python threads on keep-alive `http.client` connections.

Results: `LoadResult` per target; `print_table` shows them with ratios against goals.
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import json
import os
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
WRK_CANDIDATES = ("/usr/bin/wrk", "/usr/local/bin/wrk")
WRK_MARKER = "@@wrk-summary@@"
START_TIMEOUT_SECONDS = 30.0
OTHER_LOAD_WARNING = 0.2  # cores used by other processes during a measurement before the table warns


def log(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the results (table or JSON)."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- targets and results


@dataclass
class Target:
    """One endpoint to load: `url` is the full URL (scheme, host, port, path)."""

    name: str
    url: str
    method: str = "POST"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    note: str = ""
    server_pid: int | None = None  # when set, the CPU time of this process and its descendants is measured

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme


@dataclass
class LoadResult:
    """What one load run measured; `requests_per_second` counts every completed response."""

    name: str
    generator: str
    duration: float
    connections: int
    requests: int
    requests_per_second: float
    non_2xx: int = 0
    socket_errors: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    server_cpu_us_per_request: float | None = None
    other_load_cores: float | None = None  # CPU used meanwhile by processes other than server and load generator
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Ratio:
    """`numerator / denominator` (by name) with the goal it should meet; `value` None when one is missing.

    By default the ratio of requests per second. With `by_cpu`, the same ratio estimated from the servers'
    CPU time per request (denominator's / numerator's): less sensitive to other load on the machine.
    """

    label: str
    numerator: str
    denominator: str
    goal: float
    by_cpu: bool = False

    def value(self, results: dict[str, LoadResult]) -> float | None:
        top, bottom = results.get(self.numerator), results.get(self.denominator)
        if top is None or bottom is None:
            return None
        if self.by_cpu:
            if not top.server_cpu_us_per_request or not bottom.server_cpu_us_per_request:
                return None
            return bottom.server_cpu_us_per_request / top.server_cpu_us_per_request
        if bottom.requests_per_second <= 0:
            return None
        return top.requests_per_second / bottom.requests_per_second

    def as_dict(self, results: dict[str, LoadResult]) -> dict[str, Any]:
        value = self.value(results)
        return {
            "label": self.label,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "measure": "server_cpu_per_request" if self.by_cpu else "requests_per_second",
            "value": None if value is None else round(value, 3),
            "goal": self.goal,
            "met": None if value is None else value >= self.goal,
        }


# ---------------------------------------------------------------- HTTP helpers


def open_connection(url: str, timeout: float = 10.0, ca_file: str | None = None) -> http.client.HTTPConnection:
    """A connection to `url`'s host; HTTPS verifies against `ca_file` when given, otherwise not at all."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl._create_unverified_context()
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def send(target: Target, ca_file: str | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request to `target` on a fresh connection: (status, body)."""
    conn = open_connection(target.url, timeout, ca_file)
    try:
        conn.request(target.method, _path(target.url), body=target.body, headers=target.headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def check_json_field(target: Target, field_name: str, ca_file: str | None = None) -> str | None:
    """None when `target` answers 200 with a JSON object holding a non-empty `field_name`; else the problem."""
    try:
        status, body = send(target, ca_file)
    except (OSError, http.client.HTTPException) as exc:
        return f"{target.name}: request to {target.url} failed: {exc!r}"
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict) or not data.get(field_name):
        return f"{target.name}: {target.url} answered {status} without {field_name!r}: {body[:300]!r}"
    return None


# ---------------------------------------------------------------- child servers


@dataclass
class ChildServer:
    """A server running in a child process (its own process group), reachable at `base_url`."""

    name: str
    process: subprocess.Popen
    base_url: str
    log_path: Path
    info: dict[str, Any] = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child's process group (the child and the workers it forked), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> ChildServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerStartError(RuntimeError):
    """A child server exited or did not become ready; the message carries its output."""


def _child_env() -> dict[str, str]:
    """The environment for Python children: this repository first on the import path."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else "")}


def start_flask_app(
    factory: str,
    state_dir: Path,
    *,
    threads: int,
    use_tls: bool = True,
    name: str | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> ChildServer:
    """Serve `factory` ("module:function", called with `state_dir`, returning a Flask app) like the emulator.

    The child runs `m365_mock.server.serve` (granian RSGI and the emulator's front, one worker, `threads` app
    threads, TLS 1.2+ with the emulator's leaf certificate from `state_dir`, made there if missing) on a free
    port of 127.0.0.1.
    """
    from m365_mock.server import free_port

    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ready = state_dir / f"ready-{port}.json"
    ready.unlink(missing_ok=True)
    log_path = state_dir / f"serve-{port}.log"
    command = [
        sys.executable,
        "-m",
        "benchmarks._harness",
        "serve-flask",
        factory,
        "--state-dir",
        str(state_dir),
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--ready-file",
        str(ready),
    ]
    if not use_tls:
        command.append("--http")
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_child_env(), cwd=REPO_ROOT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{factory} exited with {process.returncode}:\n{log_path.read_text()}")
        if ready.exists():
            info = json.loads(ready.read_text())
            return ChildServer(name or factory, process, info["base_url"], log_path, info)
        time.sleep(0.02)
    ChildServer(name or factory, process, "", log_path).stop()
    raise ServerStartError(f"{factory} did not answer within {timeout:.0f} s:\n{log_path.read_text()}")


def serve_flask_child(args: argparse.Namespace) -> int:
    """Build the app from the factory and serve it with `m365_mock.server.serve` until terminated."""
    from flask import Flask

    from m365_mock.identity.keys import atomic_write, ensure_tls_files
    from m365_mock.server import ServeOptions, serve

    module_name, _, attribute = args.factory.partition(":")
    factory: Callable[[Path], Flask] = getattr(importlib.import_module(module_name), attribute)
    state_dir = Path(args.state_dir)
    app = factory(state_dir)
    if not any(rule.rule == "/_m365/health" for rule in app.url_map.iter_rules()):
        # serve() reports ready once this answers 200.
        app.add_url_rule("/_m365/health", "_benchmark_health", lambda: {"status": "ok"})
    options = ServeOptions(port=args.port, use_tls=not args.http, threads=args.threads, state_dir=state_dir)
    if options.use_tls:
        tls = ensure_tls_files(state_dir)
        options.cert_file, options.key_file, options.ca_file = tls.leaf_cert, tls.leaf_key, tls.ca_cert
    facts = {
        "base_url": options.base_url,
        "ca_file": str(options.ca_file) if options.ca_file else None,
        "threads": options.threads,
        "pid": os.getpid(),
    }
    serve(app, options, lambda: atomic_write(Path(args.ready_file), json.dumps(facts)))
    return 0


def ensure_npm_install(folder: Path, package: str, timeout: float = 300.0) -> str | None:
    """`npm install` in `folder` unless `package` is already there; None on success, else why not."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node or npm is not installed"
    if (folder / "node_modules" / package / "package.json").exists():
        return None
    log(f"installing {package} with npm into {folder} ...")
    try:
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npm install failed: {exc!r}"
    if done.returncode != 0 or not (folder / "node_modules" / package / "package.json").exists():
        return f"npm install failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}"
    return None


def start_node_server(
    script: Path,
    args: list[str],
    *,
    name: str,
    log_dir: Path | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> ChildServer:
    """Run `node script *args`; it must print one JSON line with `"ready": true` and `"url"` when listening.

    Its stderr goes to `<log_dir>/<name>-*.log` (log_dir: the system's temporary folder unless given).
    """
    handle, log_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=log_dir)
    os.close(handle)
    log_path = Path(log_name)
    with open(log_path, "wb") as stderr:
        process = subprocess.Popen(
            ["node", str(script), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=script.parent,
            start_new_session=True,
            text=True,
        )
    found: dict[str, Any] = {}

    def read_ready_line() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("ready"):
                found.update(data)
                break
        # Keep draining so the child never blocks on a full pipe.
        for _ in process.stdout:
            pass

    threading.Thread(target=read_ready_line, name=f"{name}-stdout", daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found:
            return ChildServer(name, process, found["url"], log_path, found)
        if process.poll() is not None:
            time.sleep(0.1)
            raise ServerStartError(f"{name} exited with {process.returncode}:\n{log_path.read_text()}")
        time.sleep(0.02)
    ChildServer(name, process, "", log_path).stop()
    raise ServerStartError(f"{name} did not report ready within {timeout:.0f} s:\n{log_path.read_text()}")


# ---------------------------------------------------------------- load generators


def find_wrk() -> str | None:
    """The wrk binary, if installed."""
    for candidate in WRK_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("wrk")


def _lua_string(text: str | bytes) -> str:
    """`text` as a double-quoted Lua string literal (bytes outside printable ASCII as decimal escapes)."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    out = []
    for byte in raw:
        if byte in b'"\\':
            out.append("\\" + chr(byte))
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def wrk_script(target: Target) -> str:
    """A wrk Lua script sending `target`'s method, body and headers, printing a JSON summary when done."""
    lines = [f"wrk.method = {_lua_string(target.method)}"]
    if target.body:
        lines.append(f"wrk.body = {_lua_string(target.body)}")
    for key, value in target.headers.items():
        lines.append(f"wrk.headers[{_lua_string(key)}] = {_lua_string(value)}")
    lines.append(
        f"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{WRK_MARKER}{{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,'
    .. '"timeout":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
    )
    return "\n".join(lines)


def run_wrk(target: Target, duration: float, connections: int, wrk: str, threads: int = 2) -> LoadResult:
    """Load `target` with wrk for `duration` seconds over `connections` keep-alive connections."""
    threads = max(1, min(threads, connections))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(target))
    try:
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            target.url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(script.name)
    summary = next(
        (json.loads(line[len(WRK_MARKER) :]) for line in done.stdout.splitlines() if line.startswith(WRK_MARKER)),
        None,
    )
    if done.returncode != 0 or summary is None:
        raise RuntimeError(f"wrk failed ({done.returncode}) on {target.url}:\n{done.stdout}\n{done.stderr}")
    seconds = summary["duration_us"] / 1e6
    return LoadResult(
        name=target.name,
        generator=f"wrk -t{threads} -c{connections}",
        duration=round(seconds, 2),
        connections=connections,
        requests=summary["requests"],
        requests_per_second=summary["requests"] / seconds if seconds else 0.0,
        non_2xx=summary["status"],
        socket_errors=summary["connect"] + summary["read"] + summary["write"] + summary["timeout"],
        latency_p50_ms=summary["p50_us"] / 1000,
        latency_p99_ms=summary["p99_us"] / 1000,
        note=target.note,
    )


def run_python_load(target: Target, duration: float, connections: int) -> LoadResult:
    """Load `target` from `connections` Python threads, each on one keep-alive connection (slower than wrk)."""
    path = _path(target.url)
    deadline = [0.0]
    lock = threading.Lock()
    totals = {"requests": 0, "non_2xx": 0, "errors": 0}
    latencies: list[float] = []
    start_line = threading.Barrier(connections + 1)

    def worker() -> None:
        ok = bad = errors = 0
        mine: list[float] = []
        conn = open_connection(target.url)
        start_line.wait()
        while True:
            began = time.perf_counter()
            if began >= deadline[0]:
                break
            try:
                conn.request(target.method, path, body=target.body, headers=target.headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = open_connection(target.url)
                continue
            mine.append(time.perf_counter() - began)
            if 200 <= response.status < 400:
                ok += 1
            else:
                bad += 1
        conn.close()
        with lock:
            totals["requests"] += ok + bad
            totals["non_2xx"] += bad
            totals["errors"] += errors
            latencies.extend(mine)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in workers:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    start_line.wait()
    for thread in workers:
        thread.join(duration + 30)
    seconds = time.perf_counter() - began
    latencies.sort()

    def percentile(p: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else None

    return LoadResult(
        name=target.name,
        generator=f"python threads x{connections}",
        duration=round(seconds, 2),
        connections=connections,
        requests=totals["requests"],
        requests_per_second=totals["requests"] / seconds if seconds else 0.0,
        non_2xx=totals["non_2xx"],
        socket_errors=totals["errors"],
        latency_p50_ms=percentile(0.50),
        latency_p99_ms=percentile(0.99),
        note=target.note,
    )


def choose_generator(requested: str = "auto") -> tuple[str, str | None]:
    """("wrk", path) when wrk is wanted and installed, else ("python", None); raises if wrk is demanded but absent."""
    wrk = find_wrk()
    if requested == "python" or (requested == "auto" and wrk is None):
        return "python", None
    if wrk is None:
        raise RuntimeError("wrk was requested but is not installed")
    return "wrk", wrk


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and all its descendants so far (Linux /proc); None elsewhere."""
    if not os.path.isdir("/proc"):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    children = _proc_children()
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (Linux /proc/stat); None elsewhere."""
    try:
        with open("/proc/stat", "rb") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of its waited-for children (wrk runs as one)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_load(target: Target, duration: float, connections: int, generator: tuple[str, str | None]) -> LoadResult:
    """Load `target` with the generator from `choose_generator`.

    Besides the load generator's figures, measures (Linux) the server's CPU time per request, when
    `target.server_pid` is set, and how many cores other processes kept busy meanwhile (`other_load_cores`).
    """
    kind, wrk = generator
    server_before = process_tree_cpu_seconds(target.server_pid) if target.server_pid else None
    busy_before, own_before = machine_busy_seconds(), _own_cpu_seconds()
    started = time.monotonic()
    if kind == "wrk" and wrk:
        result = run_wrk(target, duration, connections, wrk)
    else:
        result = run_python_load(target, duration, connections)
    elapsed = time.monotonic() - started
    busy_after, own_after = machine_busy_seconds(), _own_cpu_seconds()
    server_after = process_tree_cpu_seconds(target.server_pid) if target.server_pid else None
    server_cpu = None if server_before is None or server_after is None else server_after - server_before
    if server_cpu is not None and result.requests:
        result.server_cpu_us_per_request = server_cpu / result.requests * 1e6
    if busy_before is not None and busy_after is not None and server_cpu is not None and elapsed > 0:
        other = (busy_after - busy_before) - server_cpu - (own_after - own_before)
        result.other_load_cores = max(0.0, other / elapsed)
    return result


def warm_up(target: Target, generator: tuple[str, str | None], connections: int, seconds: float = 1.0) -> None:
    """A short load whose figures are thrown away: lets threads start, JITs warm up, TLS sessions settle."""
    if seconds > 0:
        run_load(target, seconds, connections, generator)


def add_load_arguments(parser: argparse.ArgumentParser, threads_help: str) -> None:
    """The load options every throughput benchmark takes: duration, connections, threads, warm-up, rounds."""
    from m365_mock.cli import default_threads

    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per target (default 8)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help=f"{threads_help} (default {default_threads()}, as `m365-mock serve`)",
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of discarded load before each target (default 2)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="measure each target N times, report the median")
    parser.add_argument(
        "--generator", choices=["auto", "wrk", "python"], default="auto", help="load generator (default: wrk if any)"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable results instead of a table")


def measure_rounds(
    targets: list[Target], args: argparse.Namespace, generator: tuple[str, str | None]
) -> list[LoadResult]:
    """Load every target `args.rounds` times, in rotating order; per target the median run (see `median_result`)."""
    runs: dict[str, list[LoadResult]] = {t.name: [] for t in targets}
    for round_index in range(max(1, args.rounds)):
        shift = round_index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            log(f"loading {target.name} for {args.duration:g} s ({args.connections} connections) ...")
            warm_up(target, generator, args.connections, args.warmup)
            result = run_load(target, args.duration, args.connections, generator)
            log(f"  {result.requests_per_second:,.0f} req/s")
            runs[target.name].append(result)
    return [median_result(runs[t.name]) for t in targets]


def median_result(runs: list[LoadResult]) -> LoadResult:
    """One result for several runs of a target: median req/s and CPU per request, the worst other load."""
    ordered = sorted(runs, key=lambda r: r.requests_per_second)
    chosen = ordered[len(ordered) // 2]
    if len(runs) > 1:
        figures = ", ".join(f"{r.requests_per_second:,.0f}" for r in runs)
        chosen.note += f" [median of {len(runs)}: {figures}]"
        chosen.requests_per_second = statistics.median(r.requests_per_second for r in runs)
        cpu = [r.server_cpu_us_per_request for r in runs if r.server_cpu_us_per_request is not None]
        chosen.server_cpu_us_per_request = statistics.median(cpu) if cpu else None
        other = [r.other_load_cores for r in runs if r.other_load_cores is not None]
        chosen.other_load_cores = max(other) if other else None
    return chosen


# ---------------------------------------------------------------- reporting


def format_table(
    results: list[LoadResult],
    ratios: list[Ratio],
    *,
    skipped: dict[str, str] | None = None,
    header: list[str] | None = None,
) -> str:
    """Results as an aligned text table, then each ratio with its goal and whether it is met."""
    lines = list(header or [])
    rows = [("target", "req/s", "p50 ms", "p99 ms", "server CPU us/req", "other load", "non-2xx", "errors", "note")]
    for r in results:
        rows.append(
            (
                r.name,
                f"{r.requests_per_second:,.0f}",
                "-" if r.latency_p50_ms is None else f"{r.latency_p50_ms:.2f}",
                "-" if r.latency_p99_ms is None else f"{r.latency_p99_ms:.2f}",
                "-" if r.server_cpu_us_per_request is None else f"{r.server_cpu_us_per_request:,.0f}",
                "-" if r.other_load_cores is None else f"{r.other_load_cores:.2f}",
                str(r.non_2xx),
                str(r.socket_errors),
                r.note,
            )
        )
    for name, why in (skipped or {}).items():
        rows.append((name, "skipped", "", "", "", "", "", "", why))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:], strict=True)
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    by_name = {r.name: r for r in results}
    if ratios:
        lines.append("")
    width = max((len(ratio.label) for ratio in ratios), default=0) + 2
    for ratio in ratios:
        value = ratio.value(by_name)
        if value is None:
            lines.append(f"{ratio.label:<{width}} n/a    (goal >= {ratio.goal:.2f}; a figure is missing)")
        else:
            verdict = "met" if value >= ratio.goal else "NOT met"
            lines.append(f"{ratio.label:<{width}} {value:.2f}   (goal >= {ratio.goal:.2f}: {verdict})")
    problems = [r for r in results if r.non_2xx or r.socket_errors]
    for r in problems:
        lines.append(f"WARNING: {r.name}: {r.non_2xx} non-2xx responses, {r.socket_errors} socket errors")
    busy = [r for r in results if (r.other_load_cores or 0) > OTHER_LOAD_WARNING]
    if busy:
        named = ", ".join(f"{r.name} ({r.other_load_cores:.2f} cores)" for r in busy)
        lines.append(
            f"WARNING: other processes kept the CPUs busy while measuring {named}: the req/s figures are disturbed;"
            " the CPU-based ratios are steadier; rerun on a quiet machine or with --rounds 3"
        )
    return "\n".join(lines)


def print_table(
    results: list[LoadResult],
    ratios: list[Ratio],
    *,
    skipped: dict[str, str] | None = None,
    header: list[str] | None = None,
) -> None:
    """Print `format_table` to stdout."""
    print(format_table(results, ratios, skipped=skipped, header=header), flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks._harness serve-flask module:factory ...`: the child side of `start_flask_app`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks._harness")
    commands = parser.add_subparsers(dest="command", required=True)
    child = commands.add_parser("serve-flask", help="serve a Flask app factory like the emulator (internal)")
    child.add_argument("factory", help="module:function taking the state folder and returning a Flask app")
    child.add_argument("--state-dir", required=True)
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--threads", type=int, required=True)
    child.add_argument("--ready-file", required=True)
    child.add_argument("--http", action="store_true")
    args = parser.parse_args(argv)
    return serve_flask_child(args)


if __name__ == "__main__":
    raise SystemExit(main())


# Throttling on, every limit counted but out of reach: a benchmark loads one mailbox and one app far beyond
# Outlook's and Entra's limits; their cost stays in its figures, their 429s do not (throttling_cost.py weighs it).
OUT_OF_REACH = {
    "enabled": True,
    "mailboxRequests": 10**9,
    "uploadBytes": 10**12,
    "mailboxConcurrency": 1000,
    "appRequestsPerSecond": 10**9,
    "tokenRequests": 10**9,
}


def limits_out_of_reach(emulator: Any) -> None:
    """Set a started emulator's throttling limits OUT_OF_REACH through its control API."""
    from m365_mock.tools.control_client import ControlClient

    control = ControlClient(emulator.base_url, emulator.facts["admin_key"], ca_file=emulator.ca_file)
    control.request("PATCH", "/settings", {"throttling": OUT_OF_REACH})
