"""The control API client: the one way the tools reach a running emulator's /_m365 routes.

`control_request` sends one request; `ControlClient` checks its answer (`ControlError` with the status, the API's
error code and message when refused) and has a typed method for each admin action the pytest plugin, the scenario
setup and the cmdlets share. `FlaskSession` runs the same client in-process over Flask's test client.
Kept apart from the cmdlet shell so that commands which only need a connection do not pay for importing the shell.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

ADMIN_HEADER = "X-M365-Admin-Key"
DEFAULT_TIMEOUT = 30.0  # one admin action
BULK_TIMEOUT = 600.0  # generating, importing or exporting a large world
# Requests after which the tenant a client acts on may be another one.
_WORLD_REPLACED = frozenset({("POST", "/reset"), ("POST", "/import")})

# An app, everywhere a method takes one: the dict the API answers for it, its app id, or its display name.
AppRef = Mapping[str, Any] | str


def control_request(
    base_url: str,
    admin_key: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    ca_file: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
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


class ControlError(CmdletError):
    """The control API refused a request: its HTTP `status`, the API's error `code` and `message` (and `details`,
    one per wrong place, when a body was refused for several reasons).

    `str()` is the API's message, as a person reads it; `describe()` adds the request and the status. It is a
    CmdletError, so the cmdlet shell reports it as the failing cmdlet's error. `status` is 0 (and `code` empty)
    for a refusal the client itself makes (no such tenant, no such app).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        details: list[dict[str, str]] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.details = status, code, details or []
        self.method, self.path = method, path

    def describe(self) -> str:
        if not self.status:
            return self.message
        answer = f"{self.status} {self.code}" if self.code else str(self.status)
        return f"{self.method} /_m365{self.path} answered {answer}: {self.message}"


class ControlUnavailable(Exception):
    """The emulator could not be reached at all (the rest of the input is not run)."""


def app_key(app: AppRef) -> str:
    """The app id or display name an app reference stands for."""
    if isinstance(app, Mapping):
        for field in ("app_id", "appId", "display_name", "displayName"):
            if app.get(field):
                return str(app[field])
        raise ValueError(f"{dict(app)!r} is not an app: it has no app_id or display_name")
    if isinstance(app, str):
        return app
    raise TypeError(f"an app is an app dict, an app id or a display name, not {type(app).__name__}")


def _segment(value: str) -> str:
    """One path segment, percent-encoded (`/` included)."""
    return quote(value, safe="")


class ControlClient:
    """Calls the control API of one emulator, acting on one tenant (default: its first) where a route needs one.

    `session` is anything with `requests.Session.request`'s signature (`FlaskSession` runs it in-process);
    `timeout` is the default for every request, and methods that may move a lot of data take their own.
    Refusals raise `error` (ControlError or a subclass of it).
    """

    def __init__(
        self,
        base_url: str,
        admin_key: str,
        *,
        ca_file: str | None = None,
        tenant: str | None = None,
        session: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        error: type[ControlError] = ControlError,
    ) -> None:
        if session is None:
            import requests

            session = requests.Session()
        self.base_url, self.admin_key, self.ca_file = base_url.rstrip("/"), admin_key, ca_file
        self.tenant_key, self.session, self.timeout, self.error = tenant, session, timeout, error
        self.trace: Callable[[str], None] | None = None
        self._tenant: dict[str, Any] | None = None

    def for_tenant(self, tenant: str) -> ControlClient:
        """The same emulator, connection and settings, acting on another tenant (id or domain)."""
        return ControlClient(
            self.base_url,
            self.admin_key,
            ca_file=self.ca_file,
            tenant=tenant,
            session=self.session,
            timeout=self.timeout,
            error=self.error,
        )

    # ------------------------------------------------------------ requests

    def response(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """`method /_m365<path>` as it was answered, whatever its status; ControlUnavailable when unreachable."""
        given = {k: v for k, v in (query or {}).items() if v is not None}
        if given:
            path = f"{path}{'&' if '?' in path else '?'}{urlencode(given)}"
        if self.trace:
            self.trace(f"{method} /_m365{path}")
        try:
            answer = control_request(
                self.base_url,
                self.admin_key,
                method,
                path,
                body,
                ca_file=self.ca_file,
                timeout=self.timeout if timeout is None else timeout,
                session=self.session,
            )
        except OSError as exc:  # requests' exceptions are OSErrors
            raise ControlUnavailable(f"Cannot reach the emulator at {self.base_url}: {_reason(exc)}") from None
        if (method.upper(), path) in _WORLD_REPLACED:
            self._tenant = None
        return answer

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        expect: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """`method /_m365<path>`; the JSON answer (None when it has no body). `error` unless the status is below
        300, or is `expect` when that is given."""
        answer = self.response(method, path, body, query=query, timeout=timeout)
        status = answer.status_code
        text = answer.text
        try:
            payload = json.loads(text) if text.strip() else None
        except ValueError:
            payload = None
        if status == expect if expect is not None else status < 300:
            return payload
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and error.get("message"):
            raise self.error(
                str(error["message"]),
                status=status,
                code=str(error.get("code") or ""),
                details=error.get("details") if isinstance(error.get("details"), list) else None,
                method=method,
                path=path,
            )
        wanted = f", not {expect}" if expect is not None else ""
        raise self.error(
            f"The control API answered HTTP {status}{wanted} to {method} /_m365{path}.",
            status=status,
            method=method,
            path=path,
        )

    @property
    def tenant(self) -> dict[str, Any]:
        """`{"id", "name", "domains"}` of the tenant this client acts on."""
        if self._tenant is None:
            tenants = self.tenants()
            if not tenants:
                raise self.error("This emulator has no tenants.")
            key = (self.tenant_key or tenants[0]["id"]).strip().lower()
            found = [t for t in tenants if key == t["id"].lower() or key in (d.lower() for d in t["domains"])]
            if not found:
                known = ", ".join(t["domains"][0] for t in tenants)
                raise self.error(f"This emulator has no tenant '{self.tenant_key}'; it has: {known}.")
            self._tenant = found[0]
        return self._tenant

    @property
    def tenant_id(self) -> str:
        return self.tenant["id"]

    def tenant_path(self, path: str) -> str:
        """`path` (like `/mailboxes`) under this client's tenant."""
        return f"/tenants/{_segment(self.tenant_id)}{path}"

    def call(self, method: str, path: str, body: Any = None, **options: Any) -> Any:
        """A request under this client's tenant: `path` like `/mailboxes`."""
        return self.request(method, self.tenant_path(path), body, **options)

    # ------------------------------------------------------------ the emulator

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    def openapi(self) -> dict[str, Any]:
        """The control API's OpenAPI document."""
        return self.request("GET", "/openapi.json")

    def tenants(self) -> list[dict[str, Any]]:
        return self.request("GET", "/tenants")["value"]

    # ------------------------------------------------------------ applications

    def applications(self) -> list[dict[str, Any]]:
        """The tenant's app registrations, with their secrets' values."""
        return self.call("GET", "/applications")["value"]

    def application(self, app: AppRef) -> dict[str, Any]:
        return self.call("GET", f"/applications/{_segment(app_key(app))}")

    def add_application(
        self,
        display_name: str,
        permissions: Iterable[str] = (),
        *,
        consent: bool = True,
        secrets: int = 1,
        **fields: Any,
    ) -> dict[str, Any]:
        """A new app registration with `secrets` generated secrets (their values are in the answer); `fields` are
        further tenant-file fields (`app_id`, `enabled`, `certificates`, ...)."""
        body = {
            "display_name": display_name,
            "permissions": list(permissions),
            "admin_consent": consent,
            "secrets": [{} for _ in range(secrets)],
            **fields,
        }
        return self.call("POST", "/applications", body)

    def update_application(self, app: AppRef, **changes: Any) -> dict[str, Any]:
        """Change `permissions`, `admin_consent`, `enabled` or `display_name`."""
        return self.call("PATCH", f"/applications/{_segment(app_key(app))}", changes)

    def remove_application(self, app: AppRef) -> None:
        self.call("DELETE", f"/applications/{_segment(app_key(app))}")

    def add_secret(self, app: AppRef, **fields: Any) -> dict[str, Any]:
        """A new client secret (`value`, `expires` or `expires_in_days`, `starts`, `display_name`), with its value."""
        return self.call("POST", f"/applications/{_segment(app_key(app))}/secrets", fields)

    def remove_secret(self, app: AppRef, secret_id: str) -> None:
        self.call("DELETE", f"/applications/{_segment(app_key(app))}/secrets/{_segment(secret_id)}")

    def add_certificate(self, app: AppRef, pem: str, *, display_name: str | None = None) -> dict[str, Any]:
        body = {"pem": pem} | ({"display_name": display_name} if display_name is not None else {})
        return self.call("POST", f"/applications/{_segment(app_key(app))}/certificates", body)

    def remove_certificate(self, app: AppRef, certificate: str) -> None:
        """By key id or thumbprint."""
        self.call("DELETE", f"/applications/{_segment(app_key(app))}/certificates/{_segment(certificate)}")

    # ------------------------------------------------------------ mailboxes

    def mailboxes(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The tenant's mailboxes; `kind` "user" or "shared" for only those."""
        return self.call("GET", "/mailboxes", query={"type": kind})["value"]

    def mailbox(self, key: str) -> dict[str, Any]:
        """By address, alias or id."""
        return self.call("GET", f"/mailboxes/{_segment(key)}")

    def add_mailbox(
        self, address: str, *, kind: str = "user", display_name: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """New-Mailbox (kind "shared": -Shared); `fields` are more tenant-file fields (`aliases`, `generate`, ...)."""
        body = {"address": address, "type": kind, **fields}
        if display_name is not None:
            body["display_name"] = display_name
        return self.call("POST", "/mailboxes", body)

    def update_mailbox(self, key: str, **changes: Any) -> dict[str, Any]:
        """Change `display_name` or `custom_attributes` (merged; an empty string clears one)."""
        return self.call("PATCH", f"/mailboxes/{_segment(key)}", changes)

    def remove_mailbox(self, key: str) -> None:
        self.call("DELETE", f"/mailboxes/{_segment(key)}")

    # ------------------------------------------------------------ groups

    def groups(self) -> list[dict[str, Any]]:
        return self.call("GET", "/groups")["value"]

    def group(self, key: str) -> dict[str, Any]:
        return self.call("GET", f"/groups/{_segment(key)}")

    def add_group(
        self, address: str, members: Iterable[str] = (), *, display_name: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A mail-enabled security group (New-DistributionGroup -Type Security)."""
        body = {"address": address, "members": list(members), **fields}
        if display_name is not None:
            body["display_name"] = display_name
        return self.call("POST", "/groups", body)

    def remove_group(self, key: str) -> None:
        self.call("DELETE", f"/groups/{_segment(key)}")

    def add_member(self, group: str, member: str) -> dict[str, Any]:
        """Add-DistributionGroupMember; the group as it is now."""
        return self.call("POST", f"/groups/{_segment(group)}/members", {"member": member})

    def remove_member(self, group: str, member: str) -> None:
        self.call("DELETE", f"/groups/{_segment(group)}/members/{_segment(member)}")

    # ------------------------------------------------------------ application access policies

    def access_policies(self) -> list[dict[str, Any]]:
        return self.call("GET", "/accessPolicies")["value"]

    def access_policy(self, identity: str) -> dict[str, Any]:
        return self.call("GET", f"/accessPolicies/{_segment(identity)}")

    def add_access_policy(
        self,
        app: AppRef | list[str],
        scope: str,
        access_right: str = "RestrictAccess",
        *,
        description: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """New-ApplicationAccessPolicy: `app` an app (dict, id, display name), a list of app ids, or `*`; `scope` a
        mail-enabled security group or a user mailbox."""
        body = {
            "app_id": list(app) if isinstance(app, list) else app_key(app),
            "scope": scope,
            "access_right": access_right,
            **fields,
        }
        if description is not None:
            body["description"] = description
        return self.call("POST", "/accessPolicies", body)

    def set_access_policy(self, identity: str, description: str) -> dict[str, Any]:
        """Set-ApplicationAccessPolicy: only the description can change."""
        return self.call("PATCH", f"/accessPolicies/{_segment(identity)}", {"description": description})

    def remove_access_policy(self, identity: str) -> None:
        self.call("DELETE", f"/accessPolicies/{_segment(identity)}")

    def test_access_policy(self, app: AppRef, recipient: str) -> dict[str, Any]:
        """Test-ApplicationAccessPolicy: `recipient` a mailbox or a mail-enabled security group."""
        return self.call("POST", "/accessPolicies/test", {"app_id": app_key(app), "recipient": recipient})

    # ------------------------------------------------------------ RBAC for Applications

    def service_principals(self) -> list[dict[str, Any]]:
        return self.call("GET", "/servicePrincipals")["value"]

    def add_service_principal(
        self, app: AppRef, *, object_id: str | None = None, display_name: str | None = None
    ) -> dict[str, Any]:
        """New-ServicePrincipal (default object id: the app's service principal)."""
        body = {"app_id": app_key(app), "object_id": object_id, "display_name": display_name}
        return self.call("POST", "/servicePrincipals", {k: v for k, v in body.items() if v is not None})

    def remove_service_principal(self, principal: str) -> None:
        self.call("DELETE", f"/servicePrincipals/{_segment(principal)}")

    def test_authorization(self, principal: str, resource: str | None = None) -> list[dict[str, Any]]:
        """Test-ServicePrincipalAuthorization [-Resource <mailbox>]: one row per role assignment."""
        body = {"resource": resource} if resource is not None else {}
        return self.call("POST", f"/servicePrincipals/{_segment(principal)}/testAuthorization", body)["value"]

    def management_scopes(self) -> list[dict[str, Any]]:
        return self.call("GET", "/managementScopes")["value"]

    def add_management_scope(self, name: str, recipient_filter: str) -> dict[str, Any]:
        """New-ManagementScope -RecipientRestrictionFilter."""
        return self.call("POST", "/managementScopes", {"name": name, "filter": recipient_filter})

    def remove_management_scope(self, name: str) -> None:
        self.call("DELETE", f"/managementScopes/{_segment(name)}")

    def role_assignments(self) -> list[dict[str, Any]]:
        return self.call("GET", "/roleAssignments")["value"]

    def add_role_assignment(
        self, role: str, app: AppRef, *, scope: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """New-ManagementRoleAssignment -App (no scope: the whole organisation)."""
        body = {"role": role, "app_id": app_key(app), "scope": scope, "name": name}
        return self.call("POST", "/roleAssignments", {k: v for k, v in body.items() if v is not None})

    def remove_role_assignment(self, name: str) -> None:
        self.call("DELETE", f"/roleAssignments/{_segment(name)}")

    # ------------------------------------------------------------ mail

    def deliver(self, mailbox: str, message: Mapping[str, Any], *, folder: str | None = None) -> str:
        """One message (Graph message properties, `receivedDateTime`) arriving from outside; its id."""
        body = dict(message) | ({"folder": folder} if folder is not None else {})
        return self.request("POST", f"/mailboxes/{_segment(mailbox)}/messages", body)["ids"][0]

    def deliver_mime(self, mailbox: str, mime: bytes, *, folder: str | None = None) -> str:
        """One message given as RFC 5322 bytes (headers, body, attachments) arriving from outside; its id."""
        body = {"mime": base64.b64encode(mime).decode("ascii")} | ({"folder": folder} if folder is not None else {})
        return self.request("POST", f"/mailboxes/{_segment(mailbox)}/messages", body)["ids"][0]

    def generate(
        self,
        mailbox: str,
        count: int,
        *,
        unread_ratio: float | None = None,
        seed: int | None = None,
        folder: str | None = None,
        timeout: float = BULK_TIMEOUT,
    ) -> dict[str, Any]:
        """`count` generated messages (Faker; the same seed gives the same mail); `{"created", "ids"}`."""
        body = {"count": count, "unreadRatio": unread_ratio, "seed": seed, "folder": folder}
        body = {k: v for k, v in body.items() if v is not None}
        return self.request("POST", f"/mailboxes/{_segment(mailbox)}/messages", body, timeout=timeout)

    def messages(self, mailbox: str, *, folder: str | None = None, top: int | None = None) -> dict[str, Any]:
        """What a mailbox holds, read without a Graph token: `{"folders": [counts, path], "total", "value": the
        newest `top` (default 100) as summaries}`, of one folder (well-known name, id, display name or path) or of
        the whole mailbox."""
        return self.request("GET", f"/mailboxes/{_segment(mailbox)}/messages", query={"folder": folder, "top": top})

    def outbound(self) -> list[dict[str, Any]]:
        """Mail sent to addresses outside every tenant, oldest first."""
        return self.request("GET", "/outbound")["value"]

    # ------------------------------------------------------------ the request log

    def log(
        self,
        *,
        app: str | None = None,
        mailbox: str | None = None,
        outcome: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Graph and token requests with their decisions, oldest first (`app` an app id; `kind` graph, token or
        other; `limit` the newest N)."""
        query = {"app": app, "mailbox": mailbox, "outcome": outcome, "kind": kind, "limit": limit or None}
        return self.request("GET", "/log", query=query)["value"]

    # ------------------------------------------------------------ fault rules

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules in force, in the order added, with their counters (`matched`, `fired`, `spent`)."""
        return self.request("GET", "/faults")["value"]

    def fault(self, rule_id: str) -> dict[str, Any]:
        return self.request("GET", f"/faults/{_segment(rule_id)}")

    def add_fault(self, preset: str | None = None, **fields: Any) -> dict[str, Any]:
        """A fault rule (docs/faults.md): a `preset` or an action of its own (`status`, `close`, `truncate`,
        `invalid_json`, `trickle`, `latency`), its criteria (`method`, `path`, `app` (an app dict, id or display
        name), `mailbox`, `operation`) and schedule (`nth`, `every`, `probability`, `seed`, `times`); the rule as
        added, with its id."""
        body = ({"preset": preset} if preset is not None else {}) | fields
        if "app" in body and not isinstance(body["app"], str):
            body["app"] = app_key(body["app"])
        return self.request("POST", "/faults", body)

    def remove_fault(self, rule_id: str) -> None:
        self.request("DELETE", f"/faults/{_segment(rule_id)}")

    def remove_faults(self) -> None:
        self.request("DELETE", "/faults")

    # ------------------------------------------------------------ time, settings, the world

    def time(self) -> dict[str, Any]:
        """`{"now", "frozen"}`."""
        return self.request("GET", "/time")

    def advance(self, seconds: float) -> dict[str, Any]:
        return self.request("POST", "/time", {"advance": seconds})

    def freeze(self, at: str | None = None) -> dict[str, Any]:
        """Stop the clock now, or at `at` (ISO 8601)."""
        return self.request("POST", "/time", {"freeze": at if at is not None else True})

    def resume(self) -> dict[str, Any]:
        return self.request("POST", "/time", {"resume": True})

    def reset_time(self) -> dict[str, Any]:
        """Back to real time."""
        return self.request("POST", "/time", {"reset": True})

    def settings(self) -> dict[str, Any]:
        return self.request("GET", "/settings")

    def update_settings(self, **values: Any) -> dict[str, Any]:
        """`tokenLifetime`, `propagationDelay`, `nestedGroupMembership`; all settings as they are now."""
        return self.request("PATCH", "/settings", values)

    def reset(self) -> None:
        """Back to the world loaded at start-up, in real time, with empty log and outbound mail."""
        self.request("POST", "/reset")

    def export(self, *, timeout: float = BULK_TIMEOUT) -> dict[str, Any]:
        """The whole world, mail included, as tenant-file data."""
        return self.request("GET", "/export", timeout=timeout)

    def import_world(self, data: Mapping[str, Any], *, timeout: float = BULK_TIMEOUT) -> list[str]:
        """Replace the world with tenant-file data; the ids of its tenants."""
        return self.request("POST", "/import", dict(data), timeout=timeout)["tenants"]


def _reason(exc: OSError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "its TLS certificate is not trusted (give its CA file with --ca-file or M365_MOCK_CA_FILE)"
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return match.group(1).strip() if match else text


# ---------------------------------------------------------------- in-process, over Flask's test client


class TestClientResponse:
    """A Flask test response with the parts of `requests.Response` the client reads (`status_code`, `headers`,
    `content`, `text`, `json()`); Flask's own methods (`get_json`, `get_data`) still work."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, response: Any) -> None:
        self.flask_response = response
        self.status_code: int = response.status_code
        self.headers = response.headers
        self.content: bytes = response.get_data()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.flask_response, name)


class FlaskSession:
    """`requests.Session.request` over Flask's test client (`app.test_client()`), so that a ControlClient runs
    in-process: `ControlClient("https://localhost", key, session=FlaskSession(app.test_client()))`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def request(
        self, method: str, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None, **_: Any
    ) -> TestClientResponse:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "http://localhost"
        response = self.client.open(target, method=method, json=json, headers=dict(headers or {}), base_url=base)
        return TestClientResponse(response)


# ---------------------------------------------------------------- the command line


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
