"""The world of one scenario: the tenant it imported, that tenant's apps and their credentials, the daemons acting
as them, and the files the scenario makes (in a temporary folder the runner removes when the scenario ends)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from m365_mock.client import MailClient, TokenProvider
    from m365_mock.scenarios.daemons import DaemonRun
    from m365_mock.scenarios.model import Scenario
    from m365_mock.scenarios.target import EmulatorTarget
    from m365_mock.tools.control_client import ControlClient

_PLACEHOLDER = re.compile(r"\{(tenant|domain|app_id|here|workdir)(?::([^{}]+))?\}")


class ScenarioFailure(Exception):
    """Something a scenario needs that is not there or did not happen; the setup or the step stops there."""


class Daemon(NamedTuple):
    """The reference client acting as one app with one credential."""

    tokens: TokenProvider
    mail: MailClient


@dataclass
class World:
    """What the steps act on: the tenant as imported, its apps with their credentials, made certificates."""

    target: EmulatorTarget
    tenant_id: str
    domain: str
    apps: list[dict[str, Any]]
    certificates: dict[str, str] = field(default_factory=dict)  # app id -> the file with its key and certificate
    clients: dict[tuple[str, str], Daemon] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    workdir: Path | None = None  # for files the scenario makes; run_scenario gives a temporary folder
    admin: ControlClient = field(init=False, repr=False)  # the control API, acting on this tenant
    # Attachment name -> SHA-256 of the bytes the scenario put into mail (delivered or sent), for `download`.
    attachment_hashes: dict[str, str] = field(default_factory=dict)
    # (app id, mailbox, folder) -> the deltaLink the last `sync` step of that app ended with.
    delta_links: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # The team's own daemons the scenario started (`start`, or a named `run`), by name; the runner stops those still
    # running, and `behaviour` judges the requests of each from its first_seq to its last_seq.
    daemons: dict[str, DaemonRun] = field(default_factory=dict)
    first_seq: int = 0  # the request log's last seq when the scenario began (its tenant imported)

    def __post_init__(self) -> None:
        self.admin = self.target.client.for_tenant(self.tenant_id)

    def app(self, key: str | None) -> dict[str, Any]:
        """The app with this display name or id (the tenant's first app for None)."""
        if key is None:
            return self.apps[0]
        for app in self.apps:
            if key.lower() in (app["app_id"], app["display_name"].lower()):
                return app
        raise ScenarioFailure(f"the tenant has no app '{key}'")

    def fill(self, value: Any) -> Any:
        """Replace {tenant}, {domain}, {app_id}, {app_id:Display Name}, {here} (the scenario file's folder) and
        {workdir} (the scenario's temporary folder, removed when it ends) in strings, lists and mappings.

        What replaces a placeholder holds no braces, so filling twice gives what filling once gave."""
        if isinstance(value, str):

            def one(match: re.Match[str]) -> str:
                kind, arg = match.group(1), match.group(2)
                if kind == "tenant":
                    return self.tenant_id
                if kind == "domain":
                    return self.domain
                if kind == "here":
                    return str(self.base_dir)
                if kind == "workdir":
                    return str(self.workdir or self.base_dir)
                return self.app(arg)["app_id"]

            return _PLACEHOLDER.sub(one, value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def refresh_apps(self) -> None:
        """Read the apps again, after an admin action that may have added one or changed its credentials."""
        self.apps = self.admin.applications()

    def file(self, name: str) -> Path:
        """A file a step names (an attachment): absolute, or relative to the scenario file."""
        return Path(name) if Path(name).is_absolute() else self.base_dir / name

    def attachment(self, spec: str | dict[str, Any]) -> tuple[str, bytes, str]:
        """(name, bytes, content type) of an attachment a scenario names: a file (relative to the scenario file),
        or `{name, size, content_type}`, bytes made from the name and size (the same every run). Its hash is
        kept, so a later `download` can tell whether what came back is what went in."""
        import hashlib
        import mimetypes
        import random

        if isinstance(spec, str):
            path = self.file(spec)
            name, content = path.name, path.read_bytes()
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        else:
            name, size = spec["name"], int(spec["size"])
            content = random.Random(f"{name}:{size}").randbytes(size)
            content_type = spec.get("content_type") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.attachment_hashes[name] = hashlib.sha256(content).hexdigest()
        return name, content, content_type

    # ------------------------------------------------------------ credentials and the daemons using them

    def daemon(self, options: dict[str, Any]) -> Daemon:
        """The daemon for a step's app (`as`) and `credential`; kept for the scenario, so that its token is reused
        as a real daemon's is."""
        app = self.app(options.get("as"))
        credential = options.get("credential", "secret")
        key = (app["app_id"], credential)
        if key not in self.clients:
            self.clients[key] = self._new_daemon(app, credential)
        return self.clients[key]

    def _new_daemon(self, app: dict[str, Any], credential: str) -> Daemon:
        from m365_mock.client import ClientSettings, MailClient, TokenProvider

        settings = ClientSettings(
            tenant=self.tenant_id,
            client_id=app["app_id"],
            login_url=self.target.base_url,
            graph_url=f"{self.target.base_url}/v1.0",
            ca_file=self.target.ca_file,
            max_retries=1,
            max_retry_wait=5,
        )
        if credential == "certificate":
            if app["app_id"] not in self.certificates:
                raise ScenarioFailure(f"no certificate was made for {app['display_name']} (add a `certificate` setup)")
            settings.certificate_file = self.certificates[app["app_id"]]
        else:
            if not app["secrets"]:
                raise ScenarioFailure(f"{app['display_name']} has no client secret")
            newest = app["secrets"][-1]
            settings.client_secret = newest["id"] if credential == "secret_id" else newest["value"]
        tokens = TokenProvider(settings)
        return Daemon(tokens, MailClient(settings, tokens=tokens))

    def make_certificate(self, app: dict[str, Any]) -> Path:
        """A new key and self-signed certificate for `app`: the certificate uploaded, both kept in the scenario's
        folder for steps with `credential: certificate`."""
        from m365_mock.identity.keys import certificate_pem, new_rsa_key, private_key_pem, self_signed_certificate

        key = new_rsa_key()
        cert = self_signed_certificate(key, app["display_name"])
        self.admin.add_certificate(app["app_id"], certificate_pem(cert), display_name="scenario")
        if self.workdir is None:
            raise ScenarioFailure("no folder to keep the certificate's private key in")
        path = self.workdir / f"{app['app_id']}.pem"
        path.write_bytes(private_key_pem(key) + certificate_pem(cert).encode())
        self.certificates[app["app_id"]] = str(path)
        return path


def prepare(target: EmulatorTarget, scenario: Scenario, workdir: Path | None = None) -> World:
    """Import the scenario's tenant (demo, file or inline; certificate files read here, as the control API reads
    no files) in real time, and read back its apps and their secrets."""
    from m365_mock.scenarios.tenant import tenant_data
    from m365_mock.state.tenantfile import ConfigError
    from m365_mock.tools.control_client import ControlError

    try:
        data = tenant_data(scenario)
    except ConfigError as exc:
        raise ScenarioFailure(str(exc)) from None
    target.client.reset_time()
    try:
        target.client.import_world(data)
    except ControlError as exc:
        raise ScenarioFailure(f"the tenant could not be loaded: {exc.describe()}") from None
    first = target.client.tenants()[0]
    world = World(target, first["id"], first["domains"][0], [], base_dir=scenario.base_dir, workdir=workdir)
    world.refresh_apps()
    newest = world.admin.log(limit=1)
    world.first_seq = newest[0]["seq"] if newest else 0  # importing empties the log; its numbers go on
    return world
