"""The emulator a run acts on, and how to reach it: its base URL, the control API's admin key, its CA.

The scenarios reach its control API with the typed control client (`EmulatorTarget.client`), which checks every
answer and raises ControlError (or ControlUnavailable when the emulator cannot be reached).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from m365_mock.tools.control_client import ControlClient, ControlError, ControlUnavailable

CONTROL_TIMEOUT = 120.0  # one admin action on a machine busy with a run (bulk work has the client's longer one)


@dataclass
class EmulatorTarget:
    """A running emulator: its base URL, the control API's admin key, and the CA that signed its certificate."""

    base_url: str
    admin_key: str
    ca_file: str | None = None
    client: ControlClient = field(init=False, repr=False, compare=False)  # acting on the emulator's first tenant

    def __post_init__(self) -> None:
        self.client = ControlClient(self.base_url, self.admin_key, ca_file=self.ca_file, timeout=CONTROL_TIMEOUT)

    @classmethod
    def from_connection(cls, facts: dict[str, Any]) -> EmulatorTarget:
        return cls(facts["base_url"].rstrip("/"), facts["admin_key"], facts.get("ca_file"))

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
            self.client.settings()
        except ControlError as exc:
            if exc.status in (401, 403):
                return "its control API refuses the admin key (give --admin-key or M365_MOCK_ADMIN_KEY)"
        except (ControlUnavailable, ValueError) as exc:
            return f"its control API cannot be reached ({exc})"
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
