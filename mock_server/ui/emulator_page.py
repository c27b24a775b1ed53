"""The dashboard's Emulator page: the clock, the settings, the fault rules and throttling windows, what a client
needs to connect, and the CA certificate to download.

The page reads state directly; every change it offers is a form posted to the control API's own route
(`/_m365/time`, `/_m365/settings`, `/_m365/faults`), so the control API's rules and refusals apply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, abort

from m365_mock.clock import iso_exact
from m365_mock.control.api import ADMIN_HEADER
from m365_mock.control.faults import fault_json
from m365_mock.control.routes import THROTTLING_FIELDS, throttling_windows, time_json
from m365_mock.emulator import Emulator
from m365_mock.state.directory import Application, Tenant
from m365_mock.state.faults.rules import OPERATIONS, PRESETS, FaultRule
from m365_mock.state.throttling import CONCURRENCY_SCOPES
from m365_mock.ui.base import UI_PREFIX, page, quoted, ui
from m365_mock.web import current_emulator, request_origin

CA_DOWNLOAD_NAME = "m365-mock-ca.pem"
# The throttling limits the settings form offers, by the control API's names, with their labels.
THROTTLING_LABELS = {
    "mailboxRequests": "Requests per mailbox window",
    "mailboxWindow": "Mailbox window (s)",
    "uploadBytes": "Upload bytes per window",
    "uploadWindow": "Upload window (s)",
    "mailboxConcurrency": "Requests in flight per mailbox",
    "appRequestsPerSecond": "App requests per second",
    "tokenRequests": "Token requests per window",
    "tokenWindow": "Token window (s)",
}
CRITERIA = ("method", "path", "path_regex", "app", "mailbox", "operation")
# A rule's schedule in words, by key (docs/faults.md, "When it acts").
SCHEDULE = {
    "nth": "from matching request no. {}",
    "every": "one in every {}",
    "probability": "with probability {}",
    "seed": "seed {}",
    "times": "at most {} times",
}


def _listed(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def fault_row(rule: FaultRule) -> dict[str, Any]:
    """A rule as the control API lists it, with its criteria and schedule in words and the times it has left."""
    listed = fault_json(rule)
    criteria = [f"{key} {_listed(listed[key])}" for key in CRITERIA if key in listed]
    schedule = [words.format(listed[key]) for key, words in SCHEDULE.items() if key in listed]
    return {
        "id": rule.id,
        "criteria": "; ".join(criteria) or "every request",
        "schedule": "; ".join(schedule) or "every matching request",
        "action": listed["action"],
        "matched": listed["matched"],
        "fired": listed["fired"],
        "spent": listed["spent"],
        "remaining": "until removed" if rule.times is None else max(0, rule.times - listed["fired"]),
    }


def throttling_rows(emulator: Emulator) -> list[dict[str, Any]]:
    """Each (app, mailbox) window as `GET /_m365/throttling` reports it, with the app's name."""
    rows = throttling_windows()
    for row in rows:
        tenant = emulator.directory.tenant(row["tenant_id"])
        app = tenant.application(row["app_id"]) if tenant else None
        row["app"] = app.display_name if app else ""
    return rows


def _app_facts(app: Application, now: datetime) -> dict[str, Any]:
    """An app's client id and credentials: its secrets (hint, expiry, and the value to copy, as the control API
    and connection.json give it) and its certificates' thumbprints."""
    return {
        "name": app.display_name,
        "app_id": app.app_id,
        "secrets": [
            {
                "id": s.key_id,
                "hint": s.hint,
                "value": s.value,
                "expires": iso_exact(s.end),
                "valid": s.start <= now < s.end,
            }
            for s in app.secrets
        ],
        "thumbprints": [c.thumbprint for c in app.certificates],
    }


def connection(emulator: Emulator) -> dict[str, Any]:
    """The facts `m365-mock serve` prints and writes to connection.json, for the origin this page was reached on."""
    base = request_origin()
    now = emulator.clock.now_datetime()
    tenants = []
    for tenant in emulator.directory.tenants:
        tenants.append(_tenant_facts(tenant, base, now))
    return {
        "base_url": base,
        "graph_url": f"{base}/v1.0",
        "control_url": f"{base}/_m365",
        "dashboard_url": f"{base}{UI_PREFIX}/",
        "admin_header": ADMIN_HEADER,
        "tenants": tenants,
        "ca_file": str(emulator.ca_file) if emulator.ca_file else None,
    }


def _tenant_facts(tenant: Tenant, base: str, now: datetime) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "domains": list(tenant.domains),
        "authority": f"{base}/{tenant.id}",
        "token_endpoint": f"{base}/{tenant.id}/oauth2/v2.0/token",
        "apps": [_app_facts(app, now) for app in tenant.applications.values()],
    }


def _settings(emulator: Emulator) -> dict[str, Any]:
    settings = emulator.settings
    limits = settings.throttling
    return {
        "token_lifetime": settings.token_lifetime,
        "propagation_delay": settings.propagation_delay,
        "nested_group_membership": settings.nested_group_membership,
        "throttling_enabled": limits.enabled,
        "concurrency_scope": limits.concurrency_scope,
        "limits": [
            {"name": name, "label": label, "value": getattr(limits, THROTTLING_FIELDS[name])}
            for name, label in THROTTLING_LABELS.items()
        ],
    }


@ui.get("/emulator")
def emulator() -> str:
    current = current_emulator()
    clock = time_json()
    return page(
        "emulator.html",
        now=clock["now"],
        frozen=clock["frozen"],
        settings=_settings(current),
        scopes=CONCURRENCY_SCOPES,
        faults=[fault_row(rule) for rule in current.faults.rules],
        presets=[(name, f"{name} ({p.status} {p.code})") for name, p in PRESETS.items()],
        operations=OPERATIONS,
        windows=throttling_rows(current),
        connection=connection(current),
        quoted=quoted,
    )


@ui.get("/emulator/ca.pem")
def emulator_ca() -> Response:
    """The CA certificate the served emulator's TLS certificate chains to, as a download."""
    ca_file = current_emulator().ca_file
    if ca_file is None:
        abort(404, "This emulator serves plain HTTP: it has no CA certificate.")
    try:
        data = ca_file.read_bytes()
    except OSError as exc:
        abort(404, f"The CA certificate {ca_file} cannot be read: {exc.strerror or exc}.")
    response = Response(data, content_type="application/x-pem-file")
    response.headers["Content-Disposition"] = f"attachment; filename={CA_DOWNLOAD_NAME}"
    return response
