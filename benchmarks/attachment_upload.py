"""Attachment upload through an upload session: throughput against a bare route storing the same bytes, and the
memory a 150 MB upload holds beyond the attachment itself.

Both run in this process, each chunk a WSGI call with a fresh environ (no test-client objects, which keep each
request body alive in a reference cycle until the collector runs), so the ratio compares what the emulator does
per chunk (session lookup, HMAC check, the access decision, the range checks, the write into the buffer) with a
route that only writes the chunk into a buffer.

    python benchmarks/attachment_upload.py [--size-mb 150] [--chunk-mb 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.test import EnvironBuilder, run_wsgi_app

from m365_mock.app import create_app
from m365_mock.identity.keys import SigningKey
from m365_mock.state.directory import GRAPH_RESOURCE
from m365_mock.state.tenantfile import load_demo_world

SUPPORT = "support@contoso.onmicrosoft.com"
MB = 2**20


def emulator_client():
    world = load_demo_world()
    world.mail = []
    for tenant in world.directory.tenants:
        tenant.rules.policies.clear()
    app = create_app(world, signing_key=SigningKey.generate())
    emulator = app.extensions["m365"]
    tenant = emulator.directory.tenants[0]
    demo = next(iter(tenant.applications.values()))
    token = emulator.issuer.issue(tenant, demo, GRAPH_RESOURCE, "1").access_token
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def bare_client(size: int):
    app = Flask("bare")
    store = {"buffer": bytearray(size)}

    @app.put("/upload")
    def upload():
        start, end = (int(x) for x in request.headers["Content-Range"].split()[1].split("/")[0].split("-"))
        store["buffer"][start : end + 1] = request.get_data(cache=False)
        return {"nextExpectedRanges": [str(end + 1)]}

    return app.test_client()


def put(app, url: str, data: bytes, content_range: str) -> int:
    """One PUT straight through the app's WSGI callable; the status code."""
    environ = EnvironBuilder(url, method="PUT", data=data, headers={"Content-Range": content_range}).get_environ()
    body, status, _ = run_wsgi_app(app, environ)
    b"".join(body)
    return int(status.split()[0])


def upload_session(client, auth: dict[str, str], content: bytes, chunk: int) -> float:
    draft = client.post(f"/v1.0/users/{SUPPORT}/messages", json={"subject": "big"}, headers=auth).get_json()
    session = client.post(
        f"/v1.0/users/{SUPPORT}/messages/{draft['id']}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": len(content)}},
        headers=auth,
    ).get_json()
    parts = urlsplit(session["uploadUrl"])
    url = f"{parts.path}?{parts.query}"
    started = time.perf_counter()
    for start in range(0, len(content), chunk):
        piece = content[start : start + chunk]
        status = put(client.application, url, piece, f"bytes {start}-{start + len(piece) - 1}/{len(content)}")
        assert status in (200, 201), status
    return time.perf_counter() - started


def bare_upload(client, content: bytes, chunk: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(content), chunk):
        piece = content[start : start + chunk]
        put(client.application, "/upload", piece, f"bytes {start}-{start + len(piece) - 1}/{len(content)}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=150)
    parser.add_argument("--chunk-mb", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size, chunk = args.size_mb * MB, args.chunk_mb * MB
    content = bytes(range(256)) * (size // 256)
    emulator_times, bare_times = [], []
    for _ in range(args.rounds):
        client, auth = emulator_client()
        emulator_times.append(upload_session(client, auth, content, chunk))
        bare_times.append(bare_upload(bare_client(size), content, chunk))
    emulator_s, bare_s = statistics.median(emulator_times), statistics.median(bare_times)
    print(f"upload of {args.size_mb} MB in {args.chunk_mb} MB chunks (median of {args.rounds})")
    print(f"  emulator upload session: {args.size_mb / emulator_s:8.1f} MB/s")
    print(f"  bare route, same bytes:  {args.size_mb / bare_s:8.1f} MB/s")
    print(f"  emulator / bare (throughput): {bare_s / emulator_s:.2f}")

    client, auth = emulator_client()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    upload_session(client, auth, content, chunk)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held = peak - baseline
    print(
        f"memory during the upload: peak {held / MB:.1f} MB over {args.size_mb} MB of attachment, "
        f"{(held - size) / MB:.1f} MB beyond it ({(held - size) / chunk:.1f} chunks); "
        f"after: {(current - baseline) / MB:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
