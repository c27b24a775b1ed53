"""The emulator a run acts on, and how to reach it: its base URL, the control API's admin key, its CA.

Every call the scenarios make to the control API goes through `EmulatorTarget`: one method per admin action and
`call` for the `control:` action, with the status handled in `call` only. How the control API is reached is
decided here and nowhere else.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import requests

from m365_mock.tools.control_client import ControlClient, control_request

CONTROL_TIMEOUT = 120.0


class ControlError(Exception):
    """The control API did not answer an admin action as it should: `METHOD /_m365/path answered 400: ...`."""

    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        super().__init__(f"{method} /_m365{path} answered {status}: {text[:300]}")
        self.status, self.text = status, text


@dataclass
class EmulatorTarget:
    """A running emulator: its base URL, the control API's admin key, and the CA that signed its certificate."""

    base_url: str
    admin_key: str
    ca_file: str | None = None

    @classmethod
    def from_connection(cls, facts: dict[str, Any]) -> EmulatorTarget:
        return cls(facts["base_url"].rstrip("/"), facts["admin_key"], facts.get("ca_file"))

    def control(self, method: str, path: str, body: Any = None) -> requests.Response:
        """`method /_m365<path>`: the raw answer, whatever its status."""
        return control_request(
            self.base_url, self.admin_key, method, path, body, ca_file=self.ca_file, timeout=CONTROL_TIMEOUT
        )

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        """`method /_m365<path>`: the JSON answer (None when empty); ControlError unless the answer has `status`
        (default: any 2xx)."""
        response = self.control(method, path, body)
        ok = response.status_code == status if status else response.status_code < 300
        if not ok:
            raise ControlError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    # ------------------------------------------------------------ one method per admin action

    def load(self, world: dict[str, Any]) -> None:
        """Import a tenant file's data: it replaces the emulator's world."""
        self.call("POST", "/import", world)

    def reset(self) -> None:
        """Back to the tenant the emulator was started with, its start-up mail, and real time."""
        self.call("POST", "/reset")

    def real_time(self) -> None:
        self.call("POST", "/time", {"reset": True})

    def advance(self, seconds: float) -> None:
        self.call("POST", "/time", {"advance": seconds})

    def change_settings(self, changes: dict[str, Any]) -> None:
        self.call("PATCH", "/settings", changes)

    def tenants(self) -> list[dict[str, Any]]:
        return self.call("GET", "/tenants")["value"]

    def applications(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/tenants/{tenant_id}/applications")["value"]

    def add_certificate(self, tenant_id: str, app_id: str, pem: str, display_name: str) -> None:
        path = f"/tenants/{tenant_id}/applications/{app_id}/certificates"
        self.call("POST", path, {"pem": pem, "display_name": display_name})

    def deliver(self, mailbox: str, messages: dict[str, Any]) -> None:
        """One message (Graph message fields) or `{"count", "unreadRatio"}` generated ones."""
        self.call("POST", f"/mailboxes/{quote(mailbox)}/messages", messages)

    def log(self, **query: str) -> list[dict[str, Any]]:
        """The request log's records matching `query` (mailbox, outcome, app)."""
        return self.call("GET", "/log?" + urlencode(query))["value"]

    def exo_client(self, tenant_id: str) -> ControlClient:
        """The control client the cmdlet shell runs on, acting on one tenant."""
        return ControlClient(self.base_url, self.admin_key, ca_file=self.ca_file, tenant=tenant_id)

    # ------------------------------------------------------------ whether it can be used

    def health_problem(self, timeout: float = 3.0) -> str | None:
        """Why it cannot be used (no answer to its health check, or the admin key refused), or None."""
        try:
            response = requests.get(
                f"{self.base_url}/_m365/health", verify=self.ca_file or True, timeout=timeout, allow_redirects=False
            )
        except requests.exceptions.SSLError:
            return "its TLS certificate is not trusted (give its CA file with --ca-file or M365_MOCK_CA_FILE)"
        except (OSError, ValueError) as exc:  # requests' exceptions are OSErrors; a bad URL is a ValueError
            return f"it cannot be reached ({type(exc).__name__})"
        if response.status_code != 200:
            return f"its health check answered HTTP {response.status_code}"
        try:
            refused = self.control("GET", "/settings").status_code in (401, 403)
        except (OSError, ValueError) as exc:
            return f"its control API cannot be reached ({type(exc).__name__})"
        if refused:
            return "its control API refuses the admin key (give --admin-key or M365_MOCK_ADMIN_KEY)"
        return None


@contextmanager
def local_emulator() -> Iterator[EmulatorTarget]:
    """A private emulator for the length of a run: `m365-mock serve` (the production server) on a free port of
    127.0.0.1, with its CA, keys and access log in a temporary state folder; stopped and removed afterwards."""
    from m365_mock.tools.process import start_emulator

    with (
        tempfile.TemporaryDirectory(prefix="m365-mock-run-", ignore_cleanup_errors=True) as tmp,
        start_emulator(Path(tmp) / "state") as running,
    ):
        yield EmulatorTarget.from_connection(running.facts)
