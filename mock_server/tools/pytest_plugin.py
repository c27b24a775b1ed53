"""pytest plugin: an emulator for the test session and an `m365` handle, reset for every test.

Installed with the package (entry point `pytest11`). Fixtures:

- `m365_emulator` (session): `m365-mock serve` on a free port over HTTPS, with its own CA; the tenant is the
  demo, or the file given by `--m365-tenant` / the `m365_tenant` ini option.
- `m365` (function): a handle on that emulator, reset to its tenant before the test, with helpers to add
  mailboxes, groups, policies, apps and mail, to read the request log and outbound mail, to move the clock, to
  run cmdlets, and to configure the reference client, MSAL or azure-identity.
- `m365_trust` (function): points REQUESTS_CA_BUNDLE and SSL_CERT_FILE at a bundle holding the emulator's CA
  (plus the system bundle) for the test, since requests lets those variables override a session's `verify`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from m365_mock.tools.control_client import control_request
from m365_mock.tools.process import RunningEmulator, start_emulator

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# How a test names an app, everywhere a helper takes one: the dict that `add_app()`, `app()` and `apps()` return,
# an app id, or a display name (any case).
AppRef = Mapping[str, Any] | str
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("m365-mock")
    group.addoption("--m365-tenant", default=None, help="tenant file for the m365-mock emulator (default: the demo)")
    parser.addini("m365_tenant", "tenant file for the m365-mock emulator (default: the demo tenant)", default="")


class M365Error(AssertionError):
    """A control-API call the test relied on did not succeed; the message holds the emulator's answer."""


def app_key(app: AppRef) -> str:
    """The app id or display name an app reference stands for."""
    if isinstance(app, Mapping):
        for field in ("app_id", "appId", "display_name", "displayName"):
            if app.get(field):
                return str(app[field])
        raise M365Error(f"{dict(app)!r} is not an app: it has no app_id or display_name")
    if isinstance(app, str):
        return app
    raise TypeError(f"an app is an app dict, an app id or a display name, not {type(app).__name__}")


class M365:
    """The emulator as a test sees it. Every helper goes through the control API, as an admin would."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.emulator = emulator
        self.facts = emulator.facts

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
        return self.tenants()[0]["id"]

    @property
    def domain(self) -> str:
        return self.tenants()[0]["domains"][0]

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    # ------------------------------------------------------------ the control API

    def control(self, method: str, path: str, body: Any = None, *, expect: int | None = None) -> Any:
        """`method /_m365<path>`; the JSON answer (None for 204). M365Error when it is not the expected status."""
        response = control_request(
            self.base_url, self.facts["admin_key"], method, path, body, ca_file=self.ca_file, timeout=60
        )
        ok = response.status_code == expect if expect is not None else response.status_code < 300
        if not ok:
            raise M365Error(f"{method} /_m365{path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def tenant_path(self, path: str) -> str:
        return f"/tenants/{self.tenant_id}{path}"

    def reset(self) -> None:
        """Back to the tenant the emulator was started with, in real time, with empty log and outbound mail."""
        self.control("POST", "/reset")

    def tenants(self) -> list[dict[str, Any]]:
        return self.control("GET", "/tenants")["value"]

    # ------------------------------------------------------------ the world

    def apps(self) -> list[dict[str, Any]]:
        return self.control("GET", self.tenant_path("/applications"))["value"]

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
        return self.control(
            "POST",
            self.tenant_path("/applications"),
            {"display_name": display_name, "permissions": permissions, "admin_consent": consent, "secrets": [{}]},
        )

    def add_mailbox(self, address: str, *, shared: bool = True, display_name: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"address": address, "type": "shared" if shared else "user"}
        if display_name:
            body["display_name"] = display_name
        return self.control("POST", self.tenant_path("/mailboxes"), body)

    def add_group(self, address: str, members: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        return self.control("POST", self.tenant_path("/groups"), {"address": address, "members": list(members)})

    def add_to_group(self, group: str, member: str) -> None:
        self.control("POST", self.tenant_path(f"/groups/{quote(group)}/members"), {"member": member})

    def add_policy(self, app: AppRef, scope: str, access_right: str = "RestrictAccess") -> dict[str, Any]:
        """New-ApplicationAccessPolicy: `app` is an app dict, app id, display name or `*`; `scope` a security group
        or user."""
        return self.control(
            "POST",
            self.tenant_path("/accessPolicies"),
            {"app_id": app_key(app), "scope": scope, "access_right": access_right},
        )

    def remove_policies(self) -> None:
        for policy in self.control("GET", self.tenant_path("/accessPolicies"))["value"]:
            self.control("DELETE", self.tenant_path(f"/accessPolicies/{policy['id']}"))

    def deliver(
        self,
        mailbox: str,
        *,
        subject: str = "Hello",
        body: str = "",
        sender: str = "customer@example.org",
        folder: str = "inbox",
        **fields: Any,
    ) -> str:
        """One message arriving from outside; returns its id."""
        message = {
            "subject": subject,
            "body": {"contentType": "text", "content": body},
            "from": {"emailAddress": {"address": sender}},
            "folder": folder,
            **fields,
        }
        return self.control("POST", f"/mailboxes/{quote(mailbox)}/messages", message)["ids"][0]

    def deliver_many(self, mailbox: str, count: int, *, unread_ratio: float = 0.3, seed: int = 365) -> None:
        """`count` generated messages (Faker, fixed seed) in the mailbox's Inbox."""
        self.control(
            "POST", f"/mailboxes/{quote(mailbox)}/messages", {"count": count, "unreadRatio": unread_ratio, "seed": seed}
        )

    def exo(self, text: str) -> str:
        """Run Exchange Online PowerShell lines; their output. M365Error with the errors when one fails."""
        import io

        from m365_mock.tools.control_client import ControlClient
        from m365_mock.tools.exo import run

        out, err = io.StringIO(), io.StringIO()
        client = ControlClient(self.base_url, self.facts["admin_key"], ca_file=self.ca_file, tenant=self.tenant_id)
        if run(text, client, out, err) != 0:
            raise M365Error(err.getvalue())
        return out.getvalue()

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (tokens, secrets and propagation delays see it)."""
        self.control("POST", "/time", {"advance": seconds})

    def settings(self, **values: Any) -> dict[str, Any]:
        """Change settings (`tokenLifetime`, `propagationDelay`, `nestedGroupMembership`)."""
        return self.control("PATCH", "/settings", values)

    # ------------------------------------------------------------ what happened

    def log(self, **filters: Any) -> list[dict[str, Any]]:
        """The request log (filters: app, mailbox, outcome, limit), oldest first; `app` as elsewhere (dict, id or
        display name)."""
        if filters.get("app") is not None:
            filters["app"] = self._app_id(filters["app"])
        query = urlencode({k: v for k, v in filters.items() if v is not None})
        return self.control("GET", "/log" + (f"?{query}" if query else ""))["value"]

    def _app_id(self, app: AppRef) -> str:
        """The id of a registered app; an unknown id as given (the log keeps requests of deleted apps)."""
        try:
            return self.app(app)["app_id"]
        except M365Error:
            return app_key(app)

    def outbound(self) -> list[dict[str, Any]]:
        """Mail sent to addresses outside the tenants."""
        return self.control("GET", "/outbound")["value"]

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
def m365(m365_emulator: RunningEmulator) -> M365:
    """The session's emulator, reset to its tenant for this test."""
    handle = M365(m365_emulator)
    handle.reset()
    return handle


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
