"""m365-mock: an offline Entra ID token endpoint and Microsoft Graph mail v1.0, and the tools around it.

Serve the emulator on a tenant file or the demo tenant, drive it with Exchange Online cmdlets, the reference
client or scenarios, and read its request log with each access decision.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from m365_mock import __version__
from m365_mock.clock import iso_z
from m365_mock.state.tenantfile import ConfigError, LoadedWorld, load_demo_world, load_tenant_file

DEFAULT_STATE_DIR = Path(os.environ.get("M365_MOCK_STATE_DIR", Path.home() / ".m365-mock"))


MAX_THREADS = 64
MAX_BODY_TIMEOUT = 3600.0


def default_threads() -> int:
    return max(4, min(8, 2 * (os.cpu_count() or 1) + 1))


def fail(message: str) -> int:
    """One line on stderr for a start-up error the user can fix; exit status 2."""
    print(f"m365-mock: {message}", file=sys.stderr, flush=True)
    return 2


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="folder for the CA, TLS and signing keys and connection files "
        "(default: $M365_MOCK_STATE_DIR or ~/.m365-mock)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m365-mock", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"m365-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=kwargs.pop("description", summary), **kwargs)

    serve = command("serve", "run the emulator (HTTPS by default) on a tenant file or the demo tenant")
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
        help=f"threads running the app, 1 to {MAX_THREADS} "
        f"(default {default_threads()}: twice the cores plus one, 4 to 8)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="answer 408 when a request body stalls this long between two parts (default 10)",
    )
    serve.add_argument(
        "--persist",
        action="store_true",
        default=None,
        help="keep the world, mail included, in the state folder (world.sqlite) and restore it on the next start "
        "(default: $M365_MOCK_PERSIST, or the tenant file's settings.persist)",
    )
    serve.add_argument(
        "--fresh",
        action="store_true",
        help="with --persist: start from the tenant file (or the demo), replacing the kept world",
    )
    _add_state_dir(serve)

    ca_path = command("ca-path", "print the path of the emulator's CA certificate (made if missing)")
    _add_state_dir(ca_path)

    from m365_mock.tools.control_client import add_exo_arguments
    from m365_mock.tools.logview import add_arguments as add_log_arguments

    exo = command("exo", "run Exchange Online PowerShell cmdlets against a running emulator", description=None)
    add_exo_arguments(exo)
    _add_state_dir(exo)

    log = command("log", "show a running emulator's request log with each access decision", description=None)
    add_log_arguments(log)
    _add_state_dir(log)

    from m365_mock.tools.behaviourview import add_arguments as add_report_arguments

    behaviour = command("report", "judge an app's requests in a running emulator's log against Microsoft's guidance")
    add_report_arguments(behaviour)
    _add_state_dir(behaviour)

    client = command("client", "the reference client: token, folders, fetch, send", add_help=False, prefix_chars="\0")
    client.add_argument("client_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    from m365_mock.scenarios.cli import add_arguments as add_scenario_arguments

    scenario = command("scenario", "run scenario files or the built-in library")
    add_scenario_arguments(scenario)

    demo = command("demo", "serve the demo tenant, run the built-in scenarios against it, then keep serving")
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
                    "secrets": [{"id": s.key_id, "value": s.value, "expires": iso_z(s.end)} for s in app.secrets],
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
        "dashboard_url": f"{base_url}/_m365/ui/",
        "pid": os.getpid(),
    }


def banner(
    facts: dict[str, Any], world: LoadedWorld, started: float, source: str, *, kept_in: Path | None = None
) -> str:
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
    lines.append(f"  Dashboard:    {facts['dashboard_url']}  (log in with the admin key {facts['admin_key']})")
    if state:
        lines.append(f"  Connection:   {state / 'connection.json'} and connection.env")
    if kept_in is not None:
        lines.append(f"  Kept in:      {kept_in} (the world survives restarts; --fresh starts over)")
    if app:
        lines += ["", *client_snippets(facts, app)]
    lines += ["", "Press Ctrl+C to stop."]
    return "\n".join(lines)


def client_snippets(facts: dict[str, Any], app: dict[str, Any]) -> list[str]:
    """MSAL, azure-identity and curl, each runnable as pasted (msal and azure-identity are not dependencies)."""
    base, ca = facts["base_url"], facts["ca_file"]
    tenant = facts["tenants"][0]
    client_id, secret = app["app_id"], app["client_secret"]
    scope = "https://graph.microsoft.com/.default"
    msal = ["import msal"]
    if ca:
        msal = ["import os, msal", f'os.environ["REQUESTS_CA_BUNDLE"] = "{ca}"']
    verify = f', connection_verify="{ca}"' if ca else ""
    return [
        "MSAL for Python (pip install msal):",
        *msal,
        f'app = msal.ConfidentialClientApplication("{client_id}", client_credential="{secret}",',
        f'    authority="{tenant["authority"]}", instance_discovery=False)',
        f'print(app.acquire_token_for_client(scopes=["{scope}"])["token_type"])',
        "",
        "azure-identity (pip install azure-identity):",
        "from azure.identity import ClientSecretCredential",
        f'credential = ClientSecretCredential("{tenant["id"]}", "{client_id}", "{secret}",',
        f'    authority="{base}", disable_instance_discovery=True{verify})',
        f'print(credential.get_token("{scope}").expires_on)',
        "",
        "curl:",
        f"curl{' --cacert ' + ca if ca else ''} -d grant_type=client_credentials \\",
        f"  -d client_id={client_id} \\",
        f"  --data-urlencode client_secret='{secret}' \\",
        f"  -d scope={scope} {tenant['token_endpoint']}",
    ]


PERSIST_VALUES = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
    "": False,
}


def serve_argument_problem(args: argparse.Namespace, environ: dict[str, str] | None = None) -> str | None:
    """What is wrong with `serve`'s options, in one line; None when nothing is. `--persist` left out takes
    $M365_MOCK_PERSIST, which must be a yes or a no (a value read as neither is refused, not taken as no)."""
    if args.persist is None:
        value = (os.environ if environ is None else environ).get("M365_MOCK_PERSIST", "")
        if value.strip().lower() not in PERSIST_VALUES:
            return f"M365_MOCK_PERSIST must be 1, true, yes, on or 0, false, no, off (got {value!r})"
        args.persist = PERSIST_VALUES[value.strip().lower()]
    if not 0 <= args.port <= 65535:
        return f"--port must be between 0 and 65535 (got {args.port})"
    if not 1 <= args.threads <= MAX_THREADS:
        return f"--threads must be between 1 and {MAX_THREADS} (got {args.threads})"
    if not 0 < args.body_timeout <= MAX_BODY_TIMEOUT:
        return (
            f"--body-timeout must be more than 0 and at most {MAX_BODY_TIMEOUT:g} seconds (got {args.body_timeout:g})"
        )
    return None


def prepare_state_dir(state_dir: Path) -> str | None:
    """Make the state folder if needed and check that it takes files; a one-line problem, or None."""
    if state_dir.exists() and not state_dir.is_dir():
        return f"the state folder {state_dir} is a file, not a folder (choose another with --state-dir)"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot make the state folder {state_dir}: {exc.strerror or exc}"
    try:
        with tempfile.TemporaryFile(dir=state_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        return f"cannot write in the state folder {state_dir}: {exc.strerror or exc} (choose another with --state-dir)"
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    from m365_mock.app import create_app
    from m365_mock.emulator import new_admin_key
    from m365_mock.identity.keys import SigningKey, StateFileError, ensure_tls_files
    from m365_mock.server import (
        PERSISTING_SHUTDOWN_GRACE_SECONDS,
        ServeError,
        ServeOptions,
        check_port_free,
        free_port,
        serve,
        write_connection_files,
    )
    from m365_mock.state.persistence import WORLD_FILE, PersistenceError, WorldKeeper, read_kept_world

    started = time.monotonic()
    problem = serve_argument_problem(args)
    if problem:
        return fail(problem)
    try:
        world = _load_world(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    state_dir: Path = args.state_dir.expanduser().resolve()
    problem = prepare_state_dir(state_dir)
    if problem:
        return fail(problem)
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
        body_timeout=args.body_timeout,
        state_dir=state_dir,
        advertised_host=args.hostname[0] if args.hostname else None,
    )
    try:
        if options.use_tls:
            tls = ensure_tls_files(state_dir, args.hostname)
            options.cert_file, options.key_file, options.ca_file = tls.leaf_cert, tls.leaf_key, tls.ca_cert
        signing_key = SigningKey.load_or_create(state_dir)
    except StateFileError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot write in the state folder {state_dir}: {exc}")
    source = f"tenant file {args.config}" if args.config else "the built-in demo tenant"
    world_file = state_dir / WORLD_FILE if args.persist or world.settings.persist else None
    kept = None
    if world_file is not None and not args.fresh:
        try:
            kept = read_kept_world(world_file)
        except (ConfigError, PersistenceError) as exc:
            return fail(f"cannot restore the world kept in {world_file}: {exc}; --fresh starts from {source}")
    admin_key = args.admin_key or new_admin_key()
    app = create_app(world, signing_key=signing_key, admin_key=admin_key)
    emulator = app.extensions["m365"]
    emulator.ca_file = options.ca_file
    if kept is not None:
        emulator.load(kept)
        source = f"the world kept in {world_file} (first loaded from {source})"
    current = LoadedWorld(emulator.directory, emulator.settings, world.generated_secrets if kept is None else [])
    facts = connection_facts(current, options.base_url, options.ca_file, admin_key)
    keeper = None
    if world_file is not None:
        restored = kept is not None
        keeper = WorldKeeper(
            emulator.directory, emulator.settings, emulator.mail, world_file, restored=restored, faults=emulator.faults
        )
        if not restored:
            try:
                keeper.write_now()  # the file holds the world before the first answer
            except PersistenceError as exc:
                return fail(str(exc))
        options.shutdown_grace = PERSISTING_SHUTDOWN_GRACE_SECONDS

    def on_ready() -> None:
        # The banner first: whoever waits for connection.json (start_emulator, tests) then finds it in the log.
        print(banner(facts, current, started, source, kept_in=world_file), flush=True)
        write_connection_files(state_dir, facts)

    try:
        serve(
            app,
            options,
            on_ready,
            worker_started=keeper.start if keeper else None,
            worker_stopping=keeper.stop if keeper else None,
        )
    except ServeError as exc:
        print(f"m365-mock: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def cmd_ca_path(args: argparse.Namespace) -> int:
    from m365_mock.identity.keys import StateFileError, ensure_tls_files

    state_dir = args.state_dir.expanduser().resolve()
    problem = prepare_state_dir(state_dir)
    if problem:
        return fail(problem)
    try:
        print(ensure_tls_files(state_dir).ca_cert)
    except StateFileError as exc:
        return fail(str(exc))
    return 0


def cmd_exo(args: argparse.Namespace) -> int:
    from m365_mock.tools.exo import main as exo_main

    return exo_main(args)


def cmd_log(args: argparse.Namespace) -> int:
    from m365_mock.tools.logview import main as log_main

    return log_main(args)


def cmd_report(args: argparse.Namespace) -> int:
    from m365_mock.tools.behaviourview import main as report_main

    return report_main(args)


def cmd_client(args: argparse.Namespace) -> int:
    """The reference client's own command line (its parser loads only when it is used)."""
    from m365_mock.client.cli import add_arguments
    from m365_mock.client.cli import main as client_main

    parser = argparse.ArgumentParser(prog="m365-mock client")
    add_arguments(parser)
    return client_main(parser.parse_args(args.client_args))


def cmd_scenario(args: argparse.Namespace) -> int:
    from m365_mock.scenarios.cli import main as scenario_main

    return scenario_main(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from m365_mock.tools.demo import main as demo_main

    return demo_main(args)


COMMANDS = {
    "serve": cmd_serve,
    "ca-path": cmd_ca_path,
    "exo": cmd_exo,
    "log": cmd_log,
    "report": cmd_report,
    "scenario": cmd_scenario,
    "client": cmd_client,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `m365-mock ... | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
