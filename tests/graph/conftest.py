"""Fixtures for Graph route tests: tokens for apps with chosen permissions, and mail put straight into a store."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mock_server.app import Emulator
from mock_server.state.directory import GRAPH_RESOURCE, Application, Tenant
from mock_server.state.mailstore import Message, recipient

BASE = "https://graph.emu.test"


@dataclass
class GraphClient:
    """The Flask test client with a bearer token, speaking to /v1.0 on an https origin."""

    client: Any
    token: str | None

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any):
        all_headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        all_headers.update(headers or {})
        url = path if path.startswith("http") else f"/v1.0{path}"
        return self.client.open(url, method=method, headers=all_headers, base_url=BASE, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.request("DELETE", path, **kwargs)


def issue_token(
    emulator: Emulator, tenant: Tenant, permissions: list[str], *, consent: bool = True, name: str | None = None
) -> str:
    app = Application(
        app_id=str(uuid.uuid4()),
        display_name=name or f"app {'+'.join(permissions) or 'none'}",
        permissions=list(permissions),
        consent_granted=consent,
    )
    tenant.add_application(app)
    return emulator.issuer.issue(tenant, app, GRAPH_RESOURCE, "1").access_token


@pytest.fixture
def token_for(emulator, tenant) -> Callable[..., str]:
    """A token for a new app in the demo tenant holding exactly `permissions`."""
    return lambda *permissions, consent=True: issue_token(emulator, tenant, list(permissions), consent=consent)


@pytest.fixture
def graph(client, emulator, tenant, demo_app) -> GraphClient:
    """Graph as the demo app (Mail.ReadWrite + Mail.Send)."""
    return GraphClient(client, emulator.issuer.issue(tenant, demo_app, GRAPH_RESOURCE, "1").access_token)


@pytest.fixture
def graph_as(client, token_for) -> Callable[..., GraphClient]:
    return lambda *permissions, consent=True: GraphClient(client, token_for(*permissions, consent=consent))


@pytest.fixture
def deliver(emulator, tenant) -> Callable[..., Message]:
    """Put a received message into a mailbox folder directly, as if mail had arrived from outside."""

    def put(address: str, folder: str = "inbox", **fields: Any) -> Message:
        mailbox = tenant.mailbox(address)
        store = emulator.mail.store(mailbox)
        fields.setdefault("subject", "Hello")
        fields.setdefault("body_type", "html")
        fields.setdefault("body_content", "<html><body><p>Hi there</p></body></html>")
        sender = fields.pop("sender_address", "customer@example.org")
        fields.setdefault("from_", recipient(sender, "A Customer"))
        fields.setdefault("sender", recipient(sender, "A Customer"))
        fields.setdefault("to", [recipient(mailbox.address, mailbox.display_name)])
        fields.setdefault("sent", emulator.mail.now())
        return store.add_message(store.folder(folder), **fields)

    return put


def error_of(response) -> tuple[int, str, str]:
    body = response.get_json()
    return response.status_code, body["error"]["code"], body["error"]["message"]
