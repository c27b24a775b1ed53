"""The example daemons run unmodified against a served emulator (`m365-mock serve`, HTTPS), configured by their
environment only; what they did is read back through the control API (the world export, the outbound mail, the
request log), never through a Graph token of their own."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from m365_mock.state.tenantfile.reader import read_source
from m365_mock.tools.control_client import ControlClient
from m365_mock.tools.process import RunningEmulator, start_emulator

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CONTACT_CENTRE = EXAMPLES / "contact_centre"
QUEUE = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
CONNECTOR = "Contact Center Connector"


@pytest.fixture(scope="session")
def examples_emulator(tmp_path_factory) -> Iterator[RunningEmulator]:
    """A served emulator of the examples' own: each test imports the examples' tenant into it."""
    with start_emulator(tmp_path_factory.mktemp("examples-state")) as running:
        yield running


@dataclass
class ContactCentre:
    """The examples' tenant (examples/contact_centre/tenant.yaml), freshly imported, in real time."""

    running: RunningEmulator
    admin: ControlClient

    def app(self, name: str = CONNECTOR) -> dict[str, Any]:
        return next(a for a in self.admin.applications() if a["display_name"] == name)

    def env(self, app: str = CONNECTOR, **settings: str) -> dict[str, str]:
        """What a daemon acting as `app` is given: the connection facts under the documented names, the CA for
        every stack, and its own settings; none of this process's M365_MOCK_* (no admin key)."""
        ca, base, tenant = self.running.ca_file or "", self.running.base_url, self.admin.tenant_id
        own = {k: v for k, v in os.environ.items() if not k.startswith("M365_MOCK_")}
        facts = {
            "M365_MOCK_AUTHORITY": f"{base}/{tenant}",
            "M365_MOCK_GRAPH_URL": f"{base}/v1.0",
            "M365_MOCK_CLIENT_ID": self.app(app)["app_id"],
            "M365_MOCK_CLIENT_SECRET": self.app(app)["secrets"][-1]["value"],
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "CURL_CA_BUNDLE": ca,
            "NODE_EXTRA_CA_CERTS": ca,
        }
        return {**own, **facts, **settings}

    def deliver(self, mailbox: str, subject: str, sender: str = "ann.lee@example.org", **files: bytes) -> None:
        """A customer's mail, with `files` (name=bytes; dots as `__`) as file attachments."""
        attachments = [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": name.replace("__", "."),
                "contentBytes": base64.b64encode(content).decode(),
            }
            for name, content in files.items()
        ]
        message = {
            "subject": subject,
            "from": {"emailAddress": {"address": sender}},
            "body": {"contentType": "text", "content": f"About: {subject}"},
            "attachments": attachments,
        }
        self.admin.deliver(mailbox, message)

    def mail(self, mailbox: str, *, sent: bool = False) -> list[tuple[str, str, bool]]:
        """(folder name, subject, read) of the messages of `mailbox`, from the world export; Sent Items only with
        `sent`."""
        [tenant] = self.admin.export()["tenants"]
        [box] = [m for m in tenant["mailboxes"] if m["address"] == mailbox]
        folders = {f["id"]: f["display_name"] for f in box["mail"]["folders"]}
        found = [(folders[m["folder"]], m["subject"], m.get("read", False)) for m in box["mail"]["messages"]]
        return sorted(m for m in found if sent or m[0] != "Sent Items")

    def log(self, **query: Any) -> list[dict[str, Any]]:
        return self.admin.log(**query)


@pytest.fixture
def contact_centre(examples_emulator: RunningEmulator) -> ContactCentre:
    client = ControlClient(
        examples_emulator.base_url, examples_emulator.facts["admin_key"], ca_file=examples_emulator.ca_file
    )
    client.reset_time()
    client.import_world(read_source(CONTACT_CENTRE / "tenant.yaml").data)
    return ContactCentre(examples_emulator, client.for_tenant(client.tenants()[0]["id"]))


def run(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def python_daemon(name: str = "daemon.py") -> list[str]:
    return [sys.executable, str(CONTACT_CENTRE / name)]


def until(condition: Callable[[], Any], timeout: float = 20, what: str = "the condition") -> Any:
    """Poll `condition` until it returns something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)
    return result
