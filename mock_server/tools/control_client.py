"""The control API client: how the command line reaches a running emulator's /_m365 routes.

Used by `m365-mock exo` and `m365-mock log`. Kept apart from the cmdlet shell so that commands which only need
a connection do not pay for importing the shell.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ADMIN_HEADER = "X-M365-Admin-Key"


def control_request(
    base_url: str,
    admin_key: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    ca_file: str | None = None,
    timeout: float = 30.0,
    session: Any = None,
) -> Any:
    """`method <base_url>/_m365<path>` with the admin key and `body` as JSON; the raw `requests` response.

    Every caller of the control API goes through here. `verify` is passed per request because
    REQUESTS_CA_BUNDLE overrides a session-level setting; `session` defaults to `requests` itself.
    """
    if session is None:
        import requests as session
    return session.request(
        method,
        f"{base_url.rstrip('/')}/_m365{path}",
        json=body,
        headers={ADMIN_HEADER: admin_key},
        verify=ca_file or True,
        timeout=timeout,
    )


class CmdletError(Exception):
    """A failed statement, reported as `<Cmdlet> : <message>`."""

    def __init__(self, message: str, cmdlet: str | None = None) -> None:
        super().__init__(message)
        self.message, self.cmdlet = message, cmdlet


class ControlUnavailable(Exception):
    """The emulator could not be reached at all (the rest of the input is not run)."""


class ControlClient:
    """Calls the control API of one emulator for one tenant (default: its first).

    `session` is anything with `requests.Session.request`'s signature (tests pass an adapter over Flask's test
    client); `verify` is passed per request because REQUESTS_CA_BUNDLE overrides a session-level setting.
    """

    def __init__(
        self,
        base_url: str,
        admin_key: str,
        *,
        ca_file: str | None = None,
        tenant: str | None = None,
        session: Any = None,
        timeout: float = 30.0,
    ) -> None:
        if session is None:
            import requests

            session = requests.Session()
        self.base_url, self.admin_key, self.ca_file = base_url.rstrip("/"), admin_key, ca_file
        self.tenant_key, self.session, self.timeout = tenant, session, timeout
        self.trace: Callable[[str], None] | None = None
        self._tenant: dict[str, Any] | None = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """`method /_m365<path>`; the JSON answer, None for 204; CmdletError with the API's message."""
        if self.trace:
            self.trace(f"{method} /_m365{path}")
        try:
            response = control_request(
                self.base_url,
                self.admin_key,
                method,
                path,
                body,
                ca_file=self.ca_file,
                timeout=self.timeout,
                session=self.session,
            )
        except OSError as exc:  # requests' exceptions are OSErrors
            raise ControlUnavailable(f"Cannot reach the emulator at {self.base_url}: {_reason(exc)}") from None
        if response.status_code == 204:
            return None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict) and error.get("message"):
                raise CmdletError(str(error["message"]))
            raise CmdletError(f"The control API answered HTTP {response.status_code} to {method} /_m365{path}.")
        return payload

    @property
    def tenant(self) -> dict[str, Any]:
        """`{"id", "name", "domains"}` of the tenant the cmdlets act on."""
        if self._tenant is None:
            tenants = self.request("GET", "/tenants")["value"]
            if not tenants:
                raise CmdletError("This emulator has no tenants.")
            key = (self.tenant_key or tenants[0]["id"]).strip().lower()
            found = [t for t in tenants if key == t["id"].lower() or key in (d.lower() for d in t["domains"])]
            if not found:
                known = ", ".join(t["domains"][0] for t in tenants)
                raise CmdletError(f"This emulator has no tenant '{self.tenant_key}'; it has: {known}.")
            self._tenant = found[0]
        return self._tenant

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A request under this tenant: `path` like `/mailboxes`."""
        return self.request(method, f"/tenants/{quote(self.tenant['id'], safe='')}{path}", body)


def _reason(exc: OSError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "its TLS certificate is not trusted (give its CA file with --ca-file or M365_MOCK_CA_FILE)"
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return match.group(1).strip() if match else text


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """How a command finds a running emulator's control API (also used by `m365-mock log`)."""
    parser.add_argument("--url", help="the emulator's base URL (default: $M365_MOCK_BASE_URL or connection.json)")
    parser.add_argument("--admin-key", help="the control API key (default: $M365_MOCK_ADMIN_KEY or connection.json)")
    parser.add_argument("--ca-file", help="CA file to trust (default: $M365_MOCK_CA_FILE or connection.json)")
    parser.add_argument("--tenant", help="tenant id or domain to act on (default: the emulator's first tenant)")


class SetupError(Exception):
    """No way to reach an emulator: exit status 2."""


def client_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> ControlClient:
    """Options first, then M365_MOCK_* environment variables, then connection.json in the state folder."""
    environ = dict(os.environ if environ is None else environ)
    path = Path(args.state_dir).expanduser() / "connection.json"
    facts: dict[str, Any] = {}
    if path.exists():
        try:
            facts = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SetupError(f"cannot read {path}: {exc}") from None
    url = args.url or environ.get("M365_MOCK_BASE_URL") or facts.get("base_url")
    key = args.admin_key or environ.get("M365_MOCK_ADMIN_KEY") or facts.get("admin_key")
    ca_file = args.ca_file or environ.get("M365_MOCK_CA_FILE") or facts.get("ca_file")
    if not url:
        raise SetupError(
            f"no emulator to talk to: {path} does not exist (start `m365-mock serve`), "
            "and neither --url nor M365_MOCK_BASE_URL is given"
        )
    if not key:
        raise SetupError("the control API needs the admin key: give --admin-key or M365_MOCK_ADMIN_KEY")
    return ControlClient(url, key, ca_file=ca_file, tenant=args.tenant)


def add_exo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `m365-mock exo` (the CLI adds --state-dir)."""
    parser.description = (
        "Run Exchange Online PowerShell cmdlets (New-ApplicationAccessPolicy, Test-ApplicationAccessPolicy, "
        "New-Mailbox, New-DistributionGroup, New-ManagementRoleAssignment, ...) against a running emulator. "
        "Reads -c, -f or standard input (a PS> prompt on a terminal)."
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "-c", "--command", dest="text", help="PowerShell lines to run (statements separated by ; or newlines)"
    )
    source.add_argument("-f", "--file", help="a script file to run (- for standard input)")
    add_connection_arguments(parser)
