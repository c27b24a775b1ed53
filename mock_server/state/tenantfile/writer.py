"""Tenant files out: the world as tenant-file data (what GET /_m365/export answers), and files written atomically.

`load_world(dump_world(...))` rebuilds the same world; the data written obeys the schema in schema.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from m365_mock.clock import iso_z
from m365_mock.identity import keys
from m365_mock.state.directory import Application, Certificate, ClientSecret, Directory, Group, Mailbox, Tenant
from m365_mock.state.mailstate import dump_mail, outbound_record
from m365_mock.state.mailstore import MailStore
from m365_mock.state.tenantfile.reader import Settings

if TYPE_CHECKING:
    from m365_mock.state.faults import FaultRule


def _iso(moment: datetime) -> str:
    return iso_z(moment)


def dump_world(
    directory: Directory,
    settings: Settings,
    mail: MailStore | None = None,
    faults: Iterable[FaultRule] = (),
) -> dict[str, Any]:
    """The whole world as tenant-file data; `load_world(dump_world(...))` rebuilds the same world.

    With `mail`, each mailbox that has any carries its exact `mail` and the outbound log comes along: the same
    world, mail and all, written again gives the same data. `faults` are written as they were given (their
    counters are not part of the world).
    """
    tenants = [dump_tenant(tenant, mail) for tenant in directory.tenants]
    data: dict[str, Any] = {"settings": settings.to_dict(), "tenants": tenants}
    if mail is not None:
        caught = mail.outbound()
        if caught:
            data["outbound"] = [outbound_record(m) for m in caught]
    rules = [rule.spec for rule in faults]
    if rules:
        data["faults"] = rules
    return data


def dump_tenant(tenant: Tenant, mail: MailStore | None = None) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.display_name,
        "domains": list(tenant.domains),
        "mailboxes": [dump_mailbox(m, mail) for m in tenant.mailboxes.values()],
        "groups": [dump_group(g) for g in tenant.groups.values()],
        "applications": [dump_application(a) for a in tenant.applications.values()],
        **dump_rules(tenant),
    }


def dump_mailbox(mailbox: Mailbox, mail: MailStore | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": mailbox.id,
        "address": mailbox.address,
        "display_name": mailbox.display_name,
        "type": mailbox.kind,
    }
    if mailbox.aliases:
        out["aliases"] = list(mailbox.aliases)
    if mailbox.custom_attributes:
        out["custom_attributes"] = dict(sorted(mailbox.custom_attributes.items()))
    store = mail.existing(mailbox) if mail is not None else None
    if store is not None:
        out["mail"] = dump_mail(store)
    return out


def dump_group(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "address": group.address,
        "display_name": group.display_name,
        "members": list(group.members),
    }


def dump_secret(secret: ClientSecret) -> dict[str, Any]:
    return {
        "id": secret.key_id,
        "value": secret.value,
        "display_name": secret.display_name,
        "starts": _iso(secret.start),
        "expires": _iso(secret.end),
    }


def dump_certificate(cert: Certificate) -> dict[str, Any]:
    return {"id": cert.key_id, "display_name": cert.display_name, "pem": cert.pem}


def dump_application(app: Application) -> dict[str, Any]:
    return {
        "app_id": app.app_id,
        "display_name": app.display_name,
        "object_id": app.object_id,
        "service_principal_id": app.service_principal_id,
        "permissions": list(app.permissions),
        "admin_consent": app.consent_granted,
        "enabled": app.enabled,
        "secrets": [dump_secret(s) for s in app.secrets],
        "certificates": [dump_certificate(c) for c in app.certificates],
    }


def dump_rules(tenant: Tenant) -> dict[str, Any]:
    """The tenant's configured rules in tenant-file form (pending removals are left out)."""
    rules = tenant.rules
    return {
        "access_policies": [dump_policy(tenant, p) for p in rules.configured_policies()],
        "service_principals": [dump_service_principal(sp) for sp in rules.service_principals],
        "management_scopes": [dump_scope(sc) for sc in rules.scopes],
        "role_assignments": [dump_assignment(a) for a in rules.configured_assignments()],
    }


def dump_policy(tenant: Tenant, policy: Any) -> dict[str, Any]:
    scope = (
        tenant.groups[policy.scope_id].address
        if policy.scope_kind == "group"
        else tenant.mailboxes[policy.scope_id].address
    )
    return {
        "id": policy.identity,
        "app_id": list(policy.app_ids),
        "scope": scope,
        "access_right": policy.access_right,
        "description": policy.description,
    }


def dump_service_principal(sp: Any) -> dict[str, Any]:
    return {"app_id": sp.app_id, "object_id": sp.object_id, "display_name": sp.display_name}


def dump_scope(scope: Any) -> dict[str, Any]:
    return {"name": scope.name, "filter": scope.filter_text}


def dump_assignment(assignment: Any) -> dict[str, Any]:
    out = {"name": assignment.name, "role": assignment.role, "app_id": assignment.app_id}
    if assignment.scope_name:
        out["scope"] = assignment.scope_name
    return out


def write_tenant_file(path: str | Path, data: dict[str, Any]) -> None:
    """Write tenant-file data atomically, as JSON for `.json` and YAML otherwise."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    keys.atomic_write(path, text)
