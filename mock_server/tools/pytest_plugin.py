"""pytest plugin: an emulator for the test session and an `m365` handle, reset for every test.

Installed with the package (entry point `pytest11`). Fixtures:

- `m365_emulator` (session): `m365-mock serve` on a free port over HTTPS, with its own CA; the tenant is the
  demo, or the file given by `--m365-tenant` / the `m365_tenant` ini option.
- `m365` (function): a handle on that emulator, reset to its tenant before the test, with helpers to add
  mailboxes, groups, policies, apps and mail, to put fault rules in force (`m365.fault(...)`, a context manager),
  to read the request log and outbound mail, to move the clock, to run cmdlets, to configure the reference
  client, MSAL or azure-identity, and to run your own daemon against it (`start_daemon`, `wait_until`, `check`,
  `behaviour`); the daemons a test started are stopped when it ends.
- `m365_trust` (function): points REQUESTS_CA_BUNDLE and SSL_CERT_FILE at a bundle holding the emulator's CA
  (plus the system bundle) for the test, since requests lets those variables override a session's `verify`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from m365_mock.client.mail import Attachment, file_attachment
from m365_mock.tools import control_client
from m365_mock.tools.control_client import AppRef, ControlClient, ControlError
from m365_mock.tools.plugin_daemons import DaemonBench
from m365_mock.tools.process import RunningEmulator, start_emulator

if TYPE_CHECKING:
    from m365_mock.scenarios.behaviour import BehaviourReport
    from m365_mock.scenarios.daemons import DaemonRun

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("m365-mock")
    group.addoption("--m365-tenant", default=None, help="tenant file for the m365-mock emulator (default: the demo)")
    parser.addini("m365_tenant", "tenant file for the m365-mock emulator (default: the demo tenant)", default="")


class M365Error(ControlError, AssertionError):
    """A control-API call the test relied on did not succeed (`status`, `code`, `message` as the emulator answered),
    or a helper could not do what it was asked; the test fails with the request and the answer."""

    def __str__(self) -> str:
        return self.describe()


class Fault:
    """A fault rule in force on the emulator (`m365.fault(...)`): as a context manager, removed on exit.

    `id` and `rule` are the rule as added; `state()` reads it again, with its counters (`matched`, `fired`,
    `spent`).
    """

    def __init__(self, api: ControlClient, rule: dict[str, Any]) -> None:
        self.api, self.rule, self.id = api, rule, rule["id"]

    def state(self) -> dict[str, Any]:
        return self.api.fault(self.id)

    @property
    def fired(self) -> int:
        """How many times the rule has acted so far."""
        return self.state()["fired"]

    def remove(self) -> None:
        """Take the rule out of force (a rule already gone, by a reset or an import, is fine)."""
        try:
            self.api.remove_fault(self.id)
        except ControlError as exc:
            if exc.status != 404:
                raise

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def app_key(app: AppRef) -> str:
    """The app id or display name an app reference stands for: the dict that `add_app()`, `app()` and `apps()`
    return, an app id, or a display name (any case)."""
    try:
        return control_client.app_key(app)
    except ValueError as exc:
        raise M365Error(str(exc)) from None


class M365:
    """The emulator as a test sees it. Every helper goes through the control API, as an admin would: `api` is the
    typed control client (acting on the emulator's first tenant), raising M365Error when refused."""

    def __init__(self, emulator: RunningEmulator, workdir: Path | None = None) -> None:
        self.emulator = emulator
        self.facts = emulator.facts
        self.api = ControlClient(
            emulator.base_url, self.facts["admin_key"], ca_file=emulator.ca_file, timeout=60, error=M365Error
        )
        self.workdir = workdir
        self._bench: DaemonBench | None = None

    # ------------------------------------------------------------ where things are

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def ca_file(self) -> str | None:
        return self.emulator.ca_file

    @property
    def tenant_id(self) -> str:
        return self.api.tenant_id

    @property
    def domain(self) -> str:
        return self.api.tenant["domains"][0]

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    # ------------------------------------------------------------ the control API

    def control(self, method: str, path: str, body: Any = None, *, expect: int | None = None) -> Any:
        """`method /_m365<path>`; the JSON answer (None for 204). M365Error when it is not the expected status."""
        return self.api.request(method, path, body, expect=expect)

    def tenant_path(self, path: str) -> str:
        return self.api.tenant_path(path)

    def reset(self) -> None:
        """Back to the tenant the emulator was started with, in real time, with empty log and outbound mail."""
        self.api.reset()

    def tenants(self) -> list[dict[str, Any]]:
        return self.api.tenants()

    # ------------------------------------------------------------ the world

    def apps(self) -> list[dict[str, Any]]:
        return self.api.applications()

    def app(self, name: AppRef | None = None) -> dict[str, Any]:
        """An app registration as it is now, with its secrets' values (default: the tenant's first app).

        `name`: an app dict (as `add_app()` returns), an app id or a display name.
        """
        apps = self.apps()
        if name is None:
            return apps[0]
        key = app_key(name).lower()
        for app in apps:
            if key in (app["app_id"].lower(), app["display_name"].lower()):
                return app
        raise M365Error(f"no app {key!r}; the tenant has {[a['display_name'] for a in apps]}")

    def add_app(self, display_name: str, permissions: list[str], *, consent: bool = True) -> dict[str, Any]:
        """A new app with a generated secret (its value is in `app["secrets"][0]["value"]`)."""
        return self.api.add_application(display_name, permissions, consent=consent)

    def add_mailbox(self, address: str, *, shared: bool = True, display_name: str | None = None) -> dict[str, Any]:
        return self.api.add_mailbox(address, kind="shared" if shared else "user", display_name=display_name or None)

    def add_group(self, address: str, members: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        return self.api.add_group(address, members)

    def add_to_group(self, group: str, member: str) -> None:
        self.api.add_member(group, member)

    def add_policy(self, app: AppRef, scope: str, access_right: str = "RestrictAccess") -> dict[str, Any]:
        """New-ApplicationAccessPolicy: `app` is an app dict, app id, display name or `*`; `scope` a security group
        or user."""
        return self.api.add_access_policy(app_key(app), scope, access_right)

    def remove_policies(self) -> None:
        for policy in self.api.access_policies():
            self.api.remove_access_policy(policy["id"])

    def deliver(
        self,
        mailbox: str,
        *,
        subject: str = "Hello",
        body: str = "",
        sender: str = "customer@example.org",
        folder: str = "inbox",
        attachments: Iterable[Attachment | dict[str, Any]] = (),
        **fields: Any,
    ) -> str:
        """One message arriving from outside; returns its id.

        `attachments`: file paths, `(name, bytes[, content type])` tuples, or Graph attachment objects (with
        their `@odata.type`), each arriving in the message byte for byte.
        """
        message = {
            "subject": subject,
            "body": {"contentType": "text", "content": body},
            "from": {"emailAddress": {"address": sender}},
            **fields,
        }
        if attachments:
            message["attachments"] = [a if isinstance(a, dict) else file_attachment(a) for a in attachments]
        return self.api.deliver(mailbox, message, folder=folder)

    def deliver_mime(self, mailbox: str, mime: bytes, *, folder: str = "inbox") -> str:
        """One message given as RFC 5322 bytes (an .eml file's content) arriving from outside; returns its id."""
        return self.api.deliver_mime(mailbox, mime, folder=folder)

    def deliver_many(self, mailbox: str, count: int, *, unread_ratio: float = 0.3, seed: int = 365) -> None:
        """`count` generated messages (Faker, fixed seed) in the mailbox's Inbox."""
        self.api.generate(mailbox, count, unread_ratio=unread_ratio, seed=seed)

    def exo(self, text: str) -> str:
        """Run Exchange Online PowerShell lines; their output. M365Error with the errors when one fails."""
        import io

        from m365_mock.tools.exo import run

        out, err = io.StringIO(), io.StringIO()
        client = ControlClient(
            self.base_url,
            self.facts["admin_key"],
            ca_file=self.ca_file,
            tenant=self.tenant_id,
            session=self.api.session,
        )
        if run(text, client, out, err) != 0:
            raise M365Error(err.getvalue())
        return out.getvalue()

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (tokens, secrets and propagation delays see it)."""
        self.api.advance(seconds)

    def settings(self, **values: Any) -> dict[str, Any]:
        """Change settings (`tokenLifetime`, `propagationDelay`, `nestedGroupMembership`, `throttling`)."""
        return self.api.update_settings(**values)

    def throttle(self, **limits: Any) -> dict[str, Any]:
        """Change throttling limits, e.g. `m365.throttle(mailboxRequests=20, mailboxWindow=60)`; the test's reset
        puts the defaults back. Returns the limits now in force."""
        return self.api.update_settings(throttling=limits)["throttling"]

    def fault(self, preset: str | None = None, **fields: Any) -> Fault:
        """Put a fault rule in force now (docs/faults.md); use it as a context manager to remove it on exit.

        `m365.fault("throttle", mailbox=..., times=2)`, `m365.fault(status=503, path="/v1.0/users/*/messages")`,
        `m365.fault(close="after", operation="send")`, `m365.fault(latency=2, operation="token")`; `app` may be
        an app dict, id or display name. Refused (M365Error) for an unknown preset, field or combination.
        """
        return Fault(self.api, self.api.add_fault(preset, **fields))

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules in force, with their counters."""
        return self.api.faults()

    # ------------------------------------------------------------ what happened

    def log(self, **filters: Any) -> list[dict[str, Any]]:
        """The request log (filters: app, mailbox, outcome, kind, limit), oldest first; `app` as elsewhere (dict, id or
        display name)."""
        if filters.get("app") is not None:
            filters["app"] = self._app_id(filters["app"])
        return self.api.log(**filters)

    def _app_id(self, app: AppRef) -> str:
        """The id of a registered app; an unknown id as given (the log keeps requests of deleted apps)."""
        try:
            return self.app(app)["app_id"]
        except M365Error:
            return app_key(app)

    def outbound(self) -> list[dict[str, Any]]:
        """Mail sent to addresses outside the tenants."""
        return self.api.outbound()

    def token(self, app: AppRef | None = None) -> str:
        """An access token for the app (client credentials with its secret)."""
        entry = self.app(app)
        response = requests.post(
            f"{self.authority}/oauth2/v2.0/token",
            timeout=30,
            verify=self.ca_file,
            data={
                "client_id": entry["app_id"],
                "client_secret": entry["secrets"][0]["value"],
                "grant_type": "client_credentials",
                "scope": GRAPH_SCOPE,
            },
        )
        if response.status_code != 200:
            raise M365Error(f"token for {entry['display_name']}: {response.text[:300]}")
        return response.json()["access_token"]

    def messages(self, mailbox: str, folder: str = "inbox", app: AppRef | None = None) -> list[dict[str, Any]]:
        """A folder's messages through Graph, as the app (default: the first) sees them."""
        response = requests.get(
            f"{self.graph_url}/users/{mailbox}/mailFolders/{folder}/messages?$top=1000",
            headers={"Authorization": f"Bearer {self.token(app)}"},
            timeout=30,
            verify=self.ca_file,
        )
        if response.status_code != 200:
            raise M365Error(f"messages of {mailbox}: {response.status_code} {response.text[:300]}")
        return response.json()["value"]

    # ------------------------------------------------------------ clients configured for the emulator

    def client_settings(self, app: AppRef | None = None):
        """`client.ClientSettings` for the app, pointed at this emulator."""
        from m365_mock.client import ClientSettings

        entry = self.app(app)
        return ClientSettings(
            tenant=self.tenant_id,
            client_id=entry["app_id"],
            client_secret=entry["secrets"][0]["value"],
            login_url=self.base_url,
            graph_url=self.graph_url,
            ca_file=self.ca_file,
        )

    def mail_client(self, app: AppRef | None = None):
        """The reference `client.MailClient` for the app."""
        from m365_mock.client import MailClient

        return MailClient(self.client_settings(app))

    def msal_kwargs(self, app: AppRef | None = None) -> dict[str, Any]:
        """Arguments for `msal.ConfidentialClientApplication` (use with the `m365_trust` fixture)."""
        entry = self.app(app)
        return {
            "client_id": entry["app_id"],
            "client_credential": entry["secrets"][0]["value"],
            "authority": self.authority,
            "instance_discovery": False,
        }

    def azure_identity_kwargs(self, app: AppRef | None = None) -> dict[str, Any]:
        """Arguments for `azure.identity.ClientSecretCredential` (sync or aio)."""
        entry = self.app(app)
        return {
            "tenant_id": self.tenant_id,
            "client_id": entry["app_id"],
            "client_secret": entry["secrets"][0]["value"],
            "authority": self.base_url,
            "disable_instance_discovery": True,
            "connection_verify": self.ca_file,
        }

    # ------------------------------------------------------------ your own daemon (docs/pytest.md)

    def _daemons(self) -> DaemonBench:
        if self._bench is None:
            import tempfile

            workdir = self.workdir or Path(tempfile.mkdtemp(prefix="m365-daemons-"))
            self._bench = DaemonBench(self.emulator, self.tenant_id, self.domain, workdir)
        return self._bench

    def start_daemon(
        self,
        command: str | list[str],
        *,
        app: AppRef | None = None,
        env: dict[str, Any] | None = None,
        name: str = "daemon",
        credential: str = "secret",
    ) -> DaemonRun:
        """Start your daemon in the background against this emulator, with the connection facts in its
        environment under the documented names (docs/scenarios.md, "The daemon's environment"), acting as `app`
        (default: the tenant's first). A string is run with `sh -c`. Stopped when the test ends."""
        return self._daemons().start(
            command, app=app_key(app) if app is not None else None, env=env, name=name, credential=credential
        )

    def stop_daemon(self, name: str = "daemon") -> DaemonRun:
        """Stop it (SIGTERM, SIGKILL after 5 s); its `exit_code`, `stdout()` and `stderr()`."""
        return self._daemons().stop(name)

    def stop_daemons(self) -> None:
        """Stop every daemon the test started and left running."""
        if self._bench is not None:
            self._bench.stop_all()

    def wait_until(self, timeout: float = 10.0, **conditions: Any) -> None:
        """Wait until the world conditions hold (the keys of a scenario's `wait.until`: folder, message,
        no_message, outbound, log, no_duplicates); AssertionError saying what the world looked like when not."""
        self._daemons().wait_until(timeout, conditions)

    def check(self, **conditions: Any) -> None:
        """The world conditions hold now, or AssertionError saying what the world looks like."""
        self._daemons().check(conditions)

    def behaviour(self, daemon: str | None = None, app: AppRef | None = None) -> BehaviourReport:
        """The behaviour report of a started daemon's requests (`daemon`), or of an app's since the test began:
        its requests by operation and the findings of each rule (`.rules_found`, `.findings`, `.text()`)."""
        return self._daemons().behaviour(daemon, app_key(app) if app is not None else None)


def _tenant_file(config: pytest.Config) -> str | None:
    value = config.getoption("--m365-tenant") or config.getini("m365_tenant")
    return str(Path(config.rootpath, value)) if value else None


@pytest.fixture(scope="session")
def m365_emulator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEmulator]:
    """`m365-mock serve` for the whole test session (HTTPS, free port, its own state folder)."""
    tenant = _tenant_file(request.config)
    args = ["--config", tenant] if tenant else []
    with start_emulator(tmp_path_factory.mktemp("m365-mock"), *args) as emulator:
        yield emulator


@pytest.fixture
def m365(m365_emulator: RunningEmulator, tmp_path: Path) -> Iterator[M365]:
    """The session's emulator, reset to its tenant for this test; the daemons the test started are stopped."""
    handle = M365(m365_emulator, workdir=tmp_path / "m365-daemons")
    handle.reset()
    yield handle
    handle.stop_daemons()


@pytest.fixture
def m365_trust(m365_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """REQUESTS_CA_BUNDLE and SSL_CERT_FILE pointed at system CAs + the emulator's CA for this test; the path."""
    bundle = tmp_path / "m365-ca-bundle.pem"
    parts = [Path(p).read_text() for p in SYSTEM_BUNDLES if os.path.exists(p)][:1]
    parts.append(Path(m365_emulator.ca_file or "").read_text() if m365_emulator.ca_file else "")
    bundle.write_text("\n".join(parts))
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(bundle))
    return str(bundle)
