"""The `m365-mock` command: serve the emulator, show where its CA lives."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mock_server import __version__
from mock_server.state.config import ConfigError, LoadedWorld, load_demo_world, load_tenant_file

DEFAULT_STATE_DIR = Path(os.environ.get("M365_MOCK_STATE_DIR", Path.home() / ".m365-mock"))


def default_threads() -> int:
    return max(4, min(8, 2 * (os.cpu_count() or 1) + 1))


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="folder for the CA, TLS and signing keys and connection files "
        "(default: $M365_MOCK_STATE_DIR or ~/.m365-mock)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="m365-mock", description=__doc__)
    parser.add_argument("--version", action="version", version=f"m365-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the emulator (HTTPS by default) on a tenant file or the demo tenant")
    serve.add_argument("--config", type=Path, help="tenant file (YAML or JSON); default: the built-in demo tenant")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on; 0 picks a free one (default 8443)")
    serve.add_argument(
        "--http", action="store_true", help="plain HTTP instead of HTTPS (MSAL and azure-identity refuse it)"
    )
    serve.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="extra name for the TLS certificate and the advertised URL (repeatable)",
    )
    serve.add_argument(
        "--admin-key",
        default=os.environ.get("M365_MOCK_ADMIN_KEY"),
        help="key for the control API under /_m365 (default: $M365_MOCK_ADMIN_KEY or a random one)",
    )
    serve.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help=f"request threads (default {default_threads()}: twice the cores plus one, 4 to 8)",
    )
    _add_state_dir(serve)

    ca_path = commands.add_parser("ca-path", help="print the path of the emulator's CA certificate (made if missing)")
    _add_state_dir(ca_path)

    from mock_server.control_client import add_exo_arguments
    from mock_server.logview import add_arguments as add_log_arguments

    exo = commands.add_parser("exo", help="run Exchange Online PowerShell cmdlets against a running emulator")
    add_exo_arguments(exo)
    _add_state_dir(exo)

    log = commands.add_parser("log", help="show a running emulator's request log with each access decision")
    add_log_arguments(log)
    _add_state_dir(log)

    client = commands.add_parser(
        "client", help="the reference client: token, folders, fetch, send", add_help=False, prefix_chars="\0"
    )
    client.add_argument("client_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    from scenarios.cli import add_arguments as add_scenario_arguments

    scenario = commands.add_parser("scenario", help="run scenario files or the built-in library")
    add_scenario_arguments(scenario)

    demo = commands.add_parser(
        "demo", help="serve the demo tenant, run the built-in scenarios against it, then keep serving"
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks a free one)")
    demo.add_argument("--no-serve", action="store_true", help="stop after the scenarios (exit 1 if one failed)")
    _add_state_dir(demo)
    return parser


def _load_world(config: Path | None) -> LoadedWorld:
    return load_tenant_file(config) if config else load_demo_world()


def connection_facts(world: LoadedWorld, base_url: str, ca_file: Path | None, admin_key: str) -> dict[str, Any]:
    """What a client needs to reach this emulator, for the banner and the connection files."""
    now = datetime.now(UTC)
    tenants, apps = [], []
    for tenant in world.directory.tenants:
        tenants.append(
            {
                "id": tenant.id,
                "domains": list(tenant.domains),
                "authority": f"{base_url}/{tenant.id}",
                "token_endpoint": f"{base_url}/{tenant.id}/oauth2/v2.0/token",
            }
        )
        for app in tenant.applications.values():
            valid = [s for s in app.secrets if s.start <= now < s.end]
            apps.append(
                {
                    "tenant_id": tenant.id,
                    "app_id": app.app_id,
                    "display_name": app.display_name,
                    "client_secret": valid[0].value if valid else None,
                    "secrets": [
                        {"id": s.key_id, "value": s.value, "expires": s.end.strftime("%Y-%m-%dT%H:%M:%SZ")}
                        for s in app.secrets
                    ],
                    "certificate_thumbprints": [c.thumbprint for c in app.certificates],
                    "permissions": app.granted_roles(),
                }
            )
    return {
        "base_url": base_url,
        "graph_url": f"{base_url}/v1.0",
        "ca_file": str(ca_file) if ca_file else None,
        "tenants": tenants,
        "apps": apps,
        "admin_key": admin_key,
        "control_url": f"{base_url}/_m365",
        "pid": os.getpid(),
    }


def banner(facts: dict[str, Any], world: LoadedWorld, started: float, source: str) -> str:
    base, ca = facts["base_url"], facts["ca_file"]
    tenant = facts["tenants"][0]
    app = next((a for a in facts["apps"] if a["client_secret"]), facts["apps"][0] if facts["apps"] else None)
    lines = [
        f"m365-mock {__version__} is serving {source} at {base} (ready in {time.monotonic() - started:.2f} s)",
        "",
        f"  Graph:        {facts['graph_url']}",
        f"  CA file:      {ca or '(plain HTTP: no TLS)'}",
        f"  Tenant:       {tenant['id']}  ({', '.join(tenant['domains'])})",
    ]
    if app:
        lines += [
            f"  App:          {app['display_name']}",
            f"  Client id:    {app['app_id']}",
            f"  Secret:       {app['client_secret'] or '(none valid)'}",
        ]
    for secret in world.generated_secrets:
        lines.append(f"  Generated secret for {secret.app_name} ({secret.app_id}): {secret.value}  (shown once)")
    state = Path(facts["ca_file"]).parent if ca else None
    lines.append(f"  Control API:  {facts['control_url']}  (header X-M365-Admin-Key: {facts['admin_key']})")
    if state:
        lines.append(f"  Connection:   {state / 'connection.json'} and connection.env")
    if app:
        trust = f'os.environ["REQUESTS_CA_BUNDLE"] = "{ca}"\n    ' if ca else ""
        lines += [
            "",
            "MSAL (Python):",
            f'    {trust}app = msal.ConfidentialClientApplication("{app["app_id"]}",',
            f'        client_credential="{app["client_secret"]}",',
            f'        authority="{tenant["authority"]}", instance_discovery=False)',
            '    app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])',
            "",
            "azure-identity:",
            f'    ClientSecretCredential("{tenant["id"]}", "{app["app_id"]}", "{app["client_secret"]}",',
            f'        authority="{base}", disable_instance_discovery=True'
            + (f', connection_verify="{ca}")' if ca else ")"),
            "",
            "curl:",
            f"    curl{' --cacert ' + ca if ca else ''} -d grant_type=client_credentials \\",
            f"      -d client_id={app['app_id']} \\",
            f"      --data-urlencode client_secret='{app['client_secret']}' \\",
            f"      -d scope=https://graph.microsoft.com/.default {tenant['token_endpoint']}",
        ]
    lines += ["", "Press Ctrl+C to stop."]
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace) -> int:
    from mock_server.app import create_app
    from mock_server.identity.keys import SigningKey, ensure_tls_files
    from mock_server.server import ServeOptions, check_port_free, free_port, serve, write_connection_files

    started = time.monotonic()
    try:
        world = _load_world(args.config)
    except ConfigError as exc:
        print(f"m365-mock: {exc}", file=sys.stderr)
        return 2
    state_dir: Path = args.state_dir.expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port(args.host)
    try:
        check_port_free(args.host, port)
    except OSError as exc:
        print(f"m365-mock: cannot listen on {args.host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    options = ServeOptions(
        host=args.host,
        port=port,
        use_tls=not args.http,
        threads=args.threads,
        state_dir=state_dir,
        advertised_host=args.hostname[0] if args.hostname else None,
    )
    if options.use_tls:
        tls = ensure_tls_files(state_dir, args.hostname)
        options.cert_file, options.key_file, options.ca_file = tls.leaf_cert, tls.leaf_key, tls.ca_cert
    admin_key = args.admin_key or secrets.token_urlsafe(24)
    app = create_app(world, signing_key=SigningKey.load_or_create(state_dir), admin_key=admin_key)
    facts = connection_facts(world, options.base_url, options.ca_file, admin_key)
    source = f"tenant file {args.config}" if args.config else "the built-in demo tenant"

    def on_ready() -> None:
        write_connection_files(state_dir, facts)
        print(banner(facts, world, started, source), flush=True)

    serve(app, options, on_ready)
    return 0


def cmd_ca_path(args: argparse.Namespace) -> int:
    from mock_server.identity.keys import ensure_tls_files

    print(ensure_tls_files(args.state_dir.expanduser().resolve()).ca_cert)
    return 0


def cmd_exo(args: argparse.Namespace) -> int:
    from mock_server.exo import main as exo_main

    return exo_main(args)


def cmd_log(args: argparse.Namespace) -> int:
    from mock_server.logview import main as log_main

    return log_main(args)


def cmd_client(args: argparse.Namespace) -> int:
    """The reference client's own command line (its parser loads only when it is used)."""
    from client.cli import add_arguments
    from client.cli import main as client_main

    parser = argparse.ArgumentParser(prog="m365-mock client")
    add_arguments(parser)
    return client_main(parser.parse_args(args.client_args))


def cmd_scenario(args: argparse.Namespace) -> int:
    from scenarios.cli import main as scenario_main

    return scenario_main(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from mock_server.demo import main as demo_main

    return demo_main(args)


COMMANDS = {
    "serve": cmd_serve,
    "ca-path": cmd_ca_path,
    "exo": cmd_exo,
    "log": cmd_log,
    "scenario": cmd_scenario,
    "client": cmd_client,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
