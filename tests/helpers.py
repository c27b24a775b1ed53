"""Helpers shared by the tests: a Graph client over the Flask test client, tokens for chosen permissions,
the control API as the admin, and the demo tenant's names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from m365_mock.emulator import Emulator
from m365_mock.state.directory import GRAPH_RESOURCE, Application, Tenant
from m365_mock.tools.control_client import ControlClient, FlaskSession, TestClientResponse

BASE = "https://graph.emu.test"
ADMIN_KEY = "test-admin-key"
TENANT = "contoso.onmicrosoft.com"
SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"
BILLING = "billing@contoso.onmicrosoft.com"
GROUP = "cctr_sec_group@contoso.onmicrosoft.com"
RAOP = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
DENIED = "Access is denied. Check credentials and try again."


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


def error_of(response) -> tuple[int, str, str]:
    body = response.get_json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


class Admin:
    """The control API, with the admin key, for the demo tenant, over the Flask test client.

    `call` answers the response whatever its status (for tests of refusals); `api` is the typed control client,
    which raises ControlError when refused.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.api = ControlClient(BASE, ADMIN_KEY, tenant=TENANT, session=FlaskSession(client))

    def call(self, method: str, path: str, body: Any = None, expect: int | None = None) -> TestClientResponse:
        """`path` under /_m365/ as given, or (without that prefix) under the demo tenant."""
        path = path.removeprefix("/_m365") if path.startswith("/_m365/") else f"/tenants/{TENANT}/{path}"
        response = self.api.response(method, path, body)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def policy(self, app_id: str | list[str], scope: str, right: str = "RestrictAccess") -> dict[str, Any]:
        return self.api.add_access_policy(app_id, scope, right)

    def advance(self, seconds: float) -> None:
        self.api.advance(seconds)


def status_of(response) -> tuple[int, str | None, str | None]:
    if response.status_code < 400:
        return response.status_code, None, None
    error = response.get_json()["error"]
    return response.status_code, error["code"], error["message"]


def can_read(graph, mailbox: str) -> tuple[int, str | None, str | None]:
    return status_of(graph.get(f"/users/{mailbox}/messages"))
