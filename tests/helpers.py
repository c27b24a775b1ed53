"""Helpers shared by the tests: a Graph client over the Flask test client, tokens for chosen permissions,
the control API as the admin, and the demo tenant's names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from m365_mock.emulator import Emulator
from m365_mock.state.directory import GRAPH_RESOURCE, Application, Tenant

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
    """The control API, with the admin key, for the demo tenant."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        url = path if path.startswith("/_m365/") else f"/_m365/tenants/{TENANT}/{path}"
        response = self.client.open(url, method=method, json=body, headers={"X-M365-Admin-Key": ADMIN_KEY})
        if expect is not None:
            assert response.status_code == expect, response.get_data(as_text=True)
        return response

    def policy(self, app_id: str | list[str], scope: str, right: str = "RestrictAccess") -> dict[str, Any]:
        return self.call(
            "POST", "accessPolicies", {"app_id": app_id, "scope": scope, "access_right": right}, expect=201
        ).get_json()

    def advance(self, seconds: float) -> None:
        self.call("POST", "/_m365/time", {"advance": seconds}, expect=200)


def status_of(response) -> tuple[int, str | None, str | None]:
    if response.status_code < 400:
        return response.status_code, None, None
    error = response.get_json()["error"]
    return response.status_code, error["code"], error["message"]


def can_read(graph, mailbox: str) -> tuple[int, str | None, str | None]:
    return status_of(graph.get(f"/users/{mailbox}/messages"))
