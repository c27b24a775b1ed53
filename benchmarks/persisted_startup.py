"""Start-up with a persisted world: `serve --persist` restoring N messages, next to a start with nothing kept.

    python benchmarks/persisted_startup.py [--messages 100000] [--runs 3]

The script makes a state folder, starts `m365-mock serve --persist`, fills support@ with N generated messages
through the control API, waits until the world file holds them all and stops the emulator cleanly. Then it
times, in the same run, starts that restore that world and starts of a fresh state folder with `--persist`
(nothing kept yet): from launching the CLI to its first answered request (connection.json written). It also
reports the world file's size, the bytes per message, and the time the first page of the restored mailbox
takes, which must not grow with the mailbox.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

SUPPORT = "support@contoso.onmicrosoft.com"


def kept_messages(world: Path) -> int:
    db = sqlite3.connect(world)
    try:
        return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def timed_start(state: Path) -> tuple[float, object]:
    from m365_mock.tools.process import start_emulator

    started = time.perf_counter()
    emulator = start_emulator(state, "--persist", timeout=300)
    return time.perf_counter() - started, emulator


def first_page_ms(emulator, rounds: int = 20) -> float:
    app, tenant = emulator.app, emulator.tenant
    token = requests.post(
        tenant["token_endpoint"],
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=emulator.ca_file,
        timeout=30,
    ).json()["access_token"]
    session = requests.Session()
    url = f"{emulator.base_url}/v1.0/users/{SUPPORT}/messages?$top=10"
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = session.get(url, headers={"Authorization": f"Bearer {token}"}, verify=emulator.ca_file, timeout=30)
        timings.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return statistics.median(timings)


def stop_cleanly(emulator) -> None:
    emulator.process.send_signal(signal.SIGTERM)
    emulator.process.wait(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/persisted_startup.py", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="m365-persisted-") as tmp:
        kept = Path(tmp) / "kept"
        _, emulator = timed_start(kept)
        facts = emulator.facts
        started = time.perf_counter()
        made = requests.post(
            f"{facts['control_url']}/mailboxes/{SUPPORT}/messages",
            json={"count": args.messages},
            headers={"X-M365-Admin-Key": facts["admin_key"]},
            verify=facts["ca_file"],
            timeout=600,
        )
        assert made.status_code == 201, made.text
        generated = time.perf_counter() - started
        world = kept / "world.sqlite"
        while kept_messages(world) < args.messages:
            time.sleep(0.2)
        written = time.perf_counter() - started
        stop_cleanly(emulator)
        size = world.stat().st_size
        print(
            f"made {args.messages} messages in {generated:.1f} s; all written to {world.name} after {written:.1f} s; "
            f"{size / 1e6:.0f} MB ({size / args.messages:.0f} bytes per message)"
        )

        restored, fresh, pages = [], [], []
        for run in range(args.runs):
            seconds, emulator = timed_start(kept)
            restored.append(seconds)
            pages.append(first_page_ms(emulator))
            stop_cleanly(emulator)
            seconds, emulator = timed_start(Path(tmp) / f"fresh-{run}")
            fresh.append(seconds)
            stop_cleanly(emulator)
            print(f"run {run + 1}: restoring {restored[-1]:.2f} s, nothing kept {fresh[-1]:.2f} s")
        result = {
            "messages": args.messages,
            "restore_start_median_s": round(statistics.median(restored), 2),
            "fresh_start_median_s": round(statistics.median(fresh), 2),
            "ratio": round(statistics.median(restored) / statistics.median(fresh), 1),
            "first_page_after_restore_ms": round(statistics.median(pages), 2),
            "world_file_bytes_per_message": round(size / args.messages),
        }
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
