"""Token endpoint throughput: the emulator next to "the limit" and a peer, measured in one run.

    python benchmarks/tokens.py [--duration 8] [--connections 8] [--json]

Three targets, all loaded the same way (POST, client credentials with client_secret in the form body,
scope https://graph.microsoft.com/.default):

- emulator: `m365-mock serve` on the demo tenant (HTTPS), started with `m365_mock.tools.process.start_emulator`;
  POST /{tenant}/oauth2/v2.0/token.
- limit: a bare Flask route served the same way (granian via `m365_mock.server.serve`, same TLS leaf,
  same threads) that only signs an RS256 JWT with the same 2048-bit key and claims of the same shape.
- peer: axa-group's `oauth2-mock-server` (npm, Node), installed into benchmarks/peer/, POST /token over
  HTTPS with the same certificate (plain HTTP only if HTTPS fails; the output says so).

Goals: emulator >= 1.0 x limit, emulator >= 1.0 x peer. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as `python benchmarks/tokens.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h

if TYPE_CHECKING:
    from flask import Flask

PEER_DIR = Path(__file__).resolve().parent / "peer"
PEER_PACKAGE = "oauth2-mock-server"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
FORM_TYPE = "application/x-www-form-urlencoded"
GOAL_VS_LIMIT = 1.0
GOAL_VS_PEER = 1.0
RATIOS = [
    h.Ratio("emulator / limit", "emulator", "limit", GOAL_VS_LIMIT),
    h.Ratio("emulator / peer", "emulator", "peer", GOAL_VS_PEER),
    h.Ratio("emulator / limit, by server CPU per request", "emulator", "limit", GOAL_VS_LIMIT, by_cpu=True),
    h.Ratio("emulator / peer, by server CPU per request", "emulator", "peer", GOAL_VS_PEER, by_cpu=True),
]


# ---------------------------------------------------------------- the limit: a bare signing route


def _b64url_random(size: int) -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(size)).rstrip(b"=").decode("ascii")


def limit_claims_template() -> dict[str, Any]:
    """Claims shaped and sized like the emulator's app-only Graph token (fixed values, no time claims)."""
    tenant, principal = str(uuid.uuid4()), str(uuid.uuid4())
    issuer = f"https://sts.windows.net/{tenant}/"
    return {
        "aud": "https://graph.microsoft.com",
        "iss": issuer,
        "aio": _b64url_random(48),
        "app_displayname": "Contact Center Connector",
        "appid": str(uuid.uuid4()),
        "appidacr": "1",
        "idp": issuer,
        "idtyp": "app",
        "oid": principal,
        "rh": "0." + _b64url_random(40) + ".",
        "sub": principal,
        "tid": tenant,
        "uti": _b64url_random(16),
        "ver": "1.0",
        "roles": ["Mail.ReadWrite", "Mail.Send"],
    }


def limit_app(state_dir: Path) -> Flask:
    """The limit: one Flask route that signs an RS256 JWT with the emulator's signing key and returns it as JSON.

    Served by `benchmarks._harness.start_flask_app` exactly as the emulator is served. It reads no form,
    checks no credentials and looks nothing up: what is left is Flask, PyJWT and the server.
    """
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from flask import Flask, Response

    key = load_pem_private_key((state_dir / "signing-key.pem").read_bytes(), password=None)
    kid = _b64url_random(20)  # the size of a base64url SHA-1 thumbprint, as the emulator's kid
    headers = {"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid}
    template = limit_claims_template()
    lifetime = 3599
    app = Flask("benchmark_limit")

    @app.post("/<tenant>/oauth2/v2.0/token")
    def token(tenant: str) -> Response:
        now = int(time.time())
        claims = {**template, "iat": now, "nbf": now, "exp": now + lifetime}
        access_token = jwt.encode(claims, key, algorithm="RS256", headers=headers)  # type: ignore[arg-type]
        body = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }
        return Response(json.dumps(body, separators=(",", ":")), content_type="application/json; charset=utf-8")

    return app


# ---------------------------------------------------------------- running the comparison


def _form(client_id: str, client_secret: str) -> bytes:
    return urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": GRAPH_SCOPE,
        }
    ).encode("ascii")


def _token_summary(target: h.Target, ca_file: str | None) -> str:
    """Fetch one token from `target` and describe it (JWT alg and size); raises RuntimeError if it is wrong."""
    problem = h.check_json_field(target, "access_token", ca_file)
    if problem:
        raise RuntimeError(problem)
    _, body = h.send(target, ca_file)
    token = json.loads(body)["access_token"]
    try:
        import jwt

        header = jwt.get_unverified_header(token)
    except Exception as exc:
        raise RuntimeError(f"{target.name}: access_token is not a JWT: {exc!r}") from None
    if header.get("alg") != "RS256":
        raise RuntimeError(f"{target.name}: access_token is signed with {header.get('alg')!r}, not RS256")
    return f"RS256, {len(token)} chars"


def _start_peer(tls_key: Path, tls_cert: Path, log_dir: Path | None = None) -> tuple[h.ChildServer | None, str]:
    """(server, note) for oauth2-mock-server over HTTPS, or over plain HTTP when HTTPS fails; (None, why) if skipped."""
    problem = h.ensure_npm_install(PEER_DIR, PEER_PACKAGE)
    if problem:
        return None, problem
    script = PEER_DIR / "start-peer.mjs"
    base = ["--host", "127.0.0.1", "--port", "0"]
    try:
        tls_args = ["--key", str(tls_key), "--cert", str(tls_cert)]
        server = h.start_node_server(script, [*base, *tls_args], name="peer", log_dir=log_dir)
        protocol = "HTTPS"
    except h.ServerStartError as exc:
        h.log(f"peer: HTTPS start failed, trying plain HTTP: {exc}")
        try:
            server = h.start_node_server(script, base, name="peer", log_dir=log_dir)
        except h.ServerStartError as again:
            return None, f"oauth2-mock-server did not start: {again}"
        protocol = "plain HTTP (HTTPS did not start)"
    info = server.info
    return server, f"{PEER_PACKAGE} {info.get('version', '?')} on Node {info.get('node', '?')}, {protocol}"


def build_parser() -> argparse.ArgumentParser:
    """The command line of this benchmark."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/tokens.py",
        description="Token endpoint req/s: the emulator vs a bare signing route (the limit) vs oauth2-mock-server.",
    )
    h.add_load_arguments(parser, "request threads of the emulator and the limit")
    parser.add_argument("--no-peer", action="store_true", help="skip oauth2-mock-server")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the three servers, check each issues a token, load each in turn, print the figures and ratios."""
    args = build_parser().parse_args(argv)
    from m365_mock.identity.keys import SigningKey, ensure_tls_files
    from m365_mock.tools.process import EmulatorStartError, start_emulator

    generator = h.choose_generator(args.generator)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    generator_text = "wrk -t2 (LuaJIT script)" if generator[0] == "wrk" else "python threads (wrk not found)"
    servers: list[Any] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="m365-bench-") as tmp:
        state = Path(tmp)
        tls = ensure_tls_files(state)
        SigningKey.load_or_create(state)  # made here so the emulator and the limit sign with the same key
        ca_file = str(tls.ca_cert)
        try:
            h.log("starting the emulator ...")
            try:
                emulator = start_emulator(state, "--threads", str(args.threads))
            except EmulatorStartError as exc:
                print(f"error: the emulator did not start: {exc}", file=sys.stderr)
                return 1
            servers.append(emulator)
            h.limits_out_of_reach(emulator)
            h.log("starting the limit (bare signing route) ...")
            try:
                limit = h.start_flask_app("benchmarks.tokens:limit_app", state, threads=args.threads, name="limit")
            except h.ServerStartError as exc:
                print(f"error: the limit server did not start: {exc}", file=sys.stderr)
                return 1
            servers.append(limit)
            peer: h.ChildServer | None = None
            peer_note = "--no-peer given"
            if not args.no_peer:
                h.log("starting the peer (oauth2-mock-server) ...")
                peer, peer_note = _start_peer(tls.leaf_key, tls.leaf_cert, log_dir=state)
            if peer is None:
                skipped["peer"] = peer_note
                h.log(f"peer skipped: {peer_note}")
            else:
                servers.append(peer)

            app = next((a for a in emulator.facts["apps"] if a.get("client_secret")), None)
            if app is None:
                print("error: the emulator's demo tenant has no app with a valid secret", file=sys.stderr)
                return 1
            body = _form(app["app_id"], app["client_secret"])
            headers = {"Content-Type": FORM_TYPE}
            tenant = emulator.tenant["id"]
            path = f"/{tenant}/oauth2/v2.0/token"
            targets = [
                h.Target(
                    "emulator", emulator.base_url + path, body=body, headers=headers, server_pid=emulator.process.pid
                ),
                h.Target("limit", limit.base_url + path, body=body, headers=headers, server_pid=limit.process.pid),
            ]
            if peer is not None:
                targets.append(
                    h.Target("peer", peer.base_url + "/token", body=body, headers=headers, server_pid=peer.process.pid)
                )
            notes = {
                "emulator": f"m365-mock, demo tenant, granian {args.threads} threads, HTTPS",
                "limit": f"Flask route + PyJWT RS256 only, granian {args.threads} threads, HTTPS",
                "peer": peer_note,
            }
            for target in targets:
                try:
                    summary = _token_summary(target, ca_file if target.scheme == "https" else None)
                except RuntimeError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 1
                target.note = f"{notes[target.name]}; token {summary}"
                h.log(f"{target.name}: 200 with an access_token ({summary}) at {target.url}")

            results = h.measure_rounds(targets, args, generator)
        finally:
            for server in reversed(servers):
                server.stop()

    by_name = {r.name: r for r in results}
    if args.json:
        report = {
            "benchmark": "tokens",
            "generator": results[0].generator if results else generator[0],
            "duration_seconds": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "load_average_1min_before": load_before,
            "results": {r.name: r.as_dict() for r in results},
            "skipped": skipped,
            "ratios": [ratio.as_dict(by_name) for ratio in RATIOS],
        }
        print(json.dumps(report, indent=2))
    else:
        header = [
            "Token endpoint, client credentials (client_secret in the form), scope https://graph.microsoft.com/.default",
            f"load generator: {generator_text}; {args.connections} connections; {args.duration:g} s per target "
            f"after {args.warmup:g} s warm-up; {args.rounds} round(s); {os.cpu_count()} CPUs shared with the load",
            "figures are comparable only within this run",
            "",
        ]
        h.print_table(results, RATIOS, skipped=skipped, header=header)
    failed = [r.name for r in results if r.non_2xx]
    if failed:
        print(f"error: non-2xx responses under load from {', '.join(failed)}: figures are not valid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
