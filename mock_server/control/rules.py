"""Control API: application access policies, service principals, management scopes and role assignments.

New rules take effect after the `propagationDelay` setting (default 0); the `test` routes answer from the
configured rules at once, as Test-ApplicationAccessPolicy and Test-ServicePrincipalAuthorization do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response

from m365_mock.app import current_emulator, json_response
from m365_mock.control.directory import created, mailbox_for, no_content, read, reader
from m365_mock.control.routes import ControlError, body_object, control, entry_body, tenant_for, text_field
from m365_mock.state import policies
from m365_mock.state.directory import Group, Mailbox, Tenant
from m365_mock.state.errors import not_found
from m365_mock.state.rules import AccessPolicy, AccessRules, RoleAssignment, scope_sid
from m365_mock.state.tenantfile import dump_assignment, dump_policy, dump_scope, dump_service_principal


def _when(moment: float | None) -> str | None:
    """A rule's start or end as UTC text; None when it has none (rules loaded at start-up start at 0)."""
    if not moment:
        return None
    try:
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return None


def policy_json(tenant: Tenant, policy: AccessPolicy) -> dict[str, Any]:
    """The tenant-file fields plus what Get-ApplicationAccessPolicy shows."""
    now = current_emulator().clock.now()
    sid = scope_sid(policy.scope_id)
    return {
        **dump_policy(tenant, policy),
        "identity": policy.display_identity,
        "scope_name": policy.scope_name,
        "scope_identity": policy.scope_name,
        "scope_identity_raw": f"{sid};{policy.scope_id}",
        "shard_type": "All",
        "is_valid": True,
        "object_state": "Unchanged",
        "in_force": policy.lifetime.active(now),
        "effective_from": _when(policy.lifetime.effective_at),
        "removed_from": _when(policy.lifetime.removed_at),
    }


def assignment_json(assignment: RoleAssignment) -> dict[str, Any]:
    now = current_emulator().clock.now()
    return {
        **dump_assignment(assignment),
        "in_force": assignment.lifetime.active(now),
        "effective_from": _when(assignment.lifetime.effective_at),
        "removed_from": _when(assignment.lifetime.removed_at),
    }


def _timing() -> tuple[float, float]:
    emulator = current_emulator()
    return emulator.clock.now(), float(emulator.settings.propagation_delay)


# ---------------------------------------------------------------- application access policies


@control.get("/tenants/<tenant_key>/accessPolicies")
def list_policies(tenant_key: str) -> Response:
    tenant = tenant_for(tenant_key)
    return json_response({"value": [policy_json(tenant, p) for p in tenant.rules.configured_policies()]})


@control.post("/tenants/<tenant_key>/accessPolicies")
def create_policy(tenant_key: str) -> Response:
    """New-ApplicationAccessPolicy: `app_id` (id, list, display name or *), `scope`, `access_right`, `description`."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("accessPolicy")
    now, delay = _timing()
    try:
        payload["id"] = str(uuid.UUID(str(payload.get("id") or uuid.uuid4())))
    except ValueError:
        raise ControlError(400, "InvalidField", f"'id' {payload['id']!r} is not a GUID.") from None
    with current_emulator().directory.edit(tenant) as draft:
        if any(p.identity == payload["id"] for p in draft.rules.policies):
            raise ControlError(409, "PolicyExists", f"Policy {payload['id']} already exists.")
        policy = read(lambda: reader().access_policy(payload, draft, "policy", now=now, delay=delay))
    return created(policy_json(draft, policy))


@control.get("/tenants/<tenant_key>/accessPolicies/<identity>")
def get_policy(tenant_key: str, identity: str) -> Response:
    tenant = tenant_for(tenant_key)
    return json_response(policy_json(tenant, tenant.rules.policy(identity)))


@control.patch("/tenants/<tenant_key>/accessPolicies/<identity>")
def update_policy(tenant_key: str, identity: str) -> Response:
    """Set-ApplicationAccessPolicy: only the description can change."""
    tenant = tenant_for(tenant_key)
    payload = body_object()
    if set(payload) - {"description"}:
        raise ControlError(400, "UnknownField", "Only 'description' can change on an application access policy.")
    with current_emulator().directory.edit(tenant) as draft:
        policy = draft.rules.policy(identity)
        policy.description = text_field(payload, "description") or ""
    return json_response(policy_json(draft, policy))


@control.delete("/tenants/<tenant_key>/accessPolicies/<identity>")
def delete_policy(tenant_key: str, identity: str) -> Response:
    tenant = tenant_for(tenant_key)
    now, delay = _timing()
    with current_emulator().directory.edit(tenant) as draft:
        policies.remove_access_policy(draft, identity, now=now, delay=delay)
    return no_content()


@control.post("/tenants/<tenant_key>/accessPolicies/test")
def test_policy(tenant_key: str) -> Response:
    """Test-ApplicationAccessPolicy -Identity <recipient> -AppId <app>, from the configured rules.

    The recipient is `mailbox` (a mailbox) or `recipient` (a mailbox or a mail-enabled security group, as the
    cmdlet's -Identity takes either).
    """
    tenant = tenant_for(tenant_key)
    payload = body_object()
    if "recipient" in payload:
        key = text_field(payload, "recipient") or ""
        target: Mailbox | Group | None = tenant.recipient(key)
        if target is None:
            raise not_found(key)
    else:
        target = mailbox_for(tenant, text_field(payload, "mailbox") or "")
    app_id = read(lambda: reader()._app_key(tenant, text_field(payload, "app_id"), "app_id"))
    verdict = policies.evaluate_policies(
        tenant, tenant.rules, app_id, target, now=None, nested=current_emulator().settings.nested_group_membership
    )
    return json_response(
        {
            "app_id": app_id,
            "mailbox": target.address.split("@")[0],
            "mailbox_id": target.id,
            "mailbox_sid": scope_sid(target.id),
            "access_check_result": "Denied" if verdict.allowed is False else "Granted",
            "reason": verdict.reason,
        }
    )


# ---------------------------------------------------------------- RBAC for Applications


@control.get("/tenants/<tenant_key>/servicePrincipals")
def list_service_principals(tenant_key: str) -> Response:
    tenant = tenant_for(tenant_key)
    return json_response(
        {"value": [dump_service_principal(sp) | {"identity": sp.identity} for sp in tenant.rules.service_principals]}
    )


@control.post("/tenants/<tenant_key>/servicePrincipals")
def create_service_principal(tenant_key: str) -> Response:
    """New-ServicePrincipal: `app_id`, `object_id` (default: the app's service principal), `display_name`."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("servicePrincipal")
    with current_emulator().directory.edit(tenant) as draft:
        sp = read(lambda: reader().service_principal(payload, draft, "service_principal"))
    return created(dump_service_principal(sp) | {"identity": sp.identity})


@control.delete("/tenants/<tenant_key>/servicePrincipals/<key>")
def delete_service_principal(tenant_key: str, key: str) -> Response:
    tenant = tenant_for(tenant_key)
    with current_emulator().directory.edit(tenant) as draft:
        sp = draft.rules.service_principal(key)
        if any(a.app_id == sp.app_id for a in draft.rules.configured_assignments()):
            raise ControlError(409, "ServicePrincipalInUse", f"{sp.display_name} still has role assignments.")
        draft.rules.service_principals.remove(sp)
    return no_content()


@control.post("/tenants/<tenant_key>/servicePrincipals/<key>/testAuthorization")
def test_authorization(tenant_key: str, key: str) -> Response:
    """Test-ServicePrincipalAuthorization [-Resource <mailbox>]: RBAC grants only, from the configured rules."""
    tenant = tenant_for(tenant_key)
    payload = body_object()
    sp = tenant.rules.service_principal(key)
    resource = text_field(payload, "resource", required=False)
    mailbox = mailbox_for(tenant, resource) if resource else None
    rows = []
    for assignment in tenant.rules.configured_assignments():
        if assignment.app_id != sp.app_id:
            continue
        scope_type = "CustomRecipientScope" if assignment.scope_name else "Organization"
        in_scope: bool | str = "Not Run"
        if mailbox is not None:
            in_scope = bool(policies.rbac_grants(tenant, _only(tenant, assignment), sp.app_id, mailbox, now=None))
        rows.append(
            {
                "role_name": assignment.role,
                "granted_permissions": list(policies.RBAC_ROLES[assignment.role]),
                "allowed_resource_scope": assignment.scope_name or "Organization",
                "scope_type": scope_type,
                "in_scope": in_scope,
            }
        )
    return json_response({"value": rows})


def _only(tenant: Tenant, assignment: RoleAssignment) -> AccessRules:
    return AccessRules(scopes=tenant.rules.scopes, assignments=[assignment])


@control.get("/tenants/<tenant_key>/managementScopes")
def list_scopes(tenant_key: str) -> Response:
    return json_response({"value": [dump_scope(s) for s in tenant_for(tenant_key).rules.scopes]})


@control.post("/tenants/<tenant_key>/managementScopes")
def create_scope(tenant_key: str) -> Response:
    """New-ManagementScope: `name`, `filter` (a RecipientRestrictionFilter)."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("managementScope")
    with current_emulator().directory.edit(tenant) as draft:
        scope = read(lambda: reader().management_scope(payload, draft, "management_scope"))
    return created(dump_scope(scope))


@control.delete("/tenants/<tenant_key>/managementScopes/<name>")
def delete_scope(tenant_key: str, name: str) -> Response:
    tenant = tenant_for(tenant_key)
    with current_emulator().directory.edit(tenant) as draft:
        policies.remove_management_scope(draft, name)
    return no_content()


@control.get("/tenants/<tenant_key>/roleAssignments")
def list_assignments(tenant_key: str) -> Response:
    tenant = tenant_for(tenant_key)
    return json_response({"value": [assignment_json(a) for a in tenant.rules.configured_assignments()]})


@control.post("/tenants/<tenant_key>/roleAssignments")
def create_assignment(tenant_key: str) -> Response:
    """New-ManagementRoleAssignment -App: `role`, `app_id` (service principal), `scope` (omit: organisation)."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("roleAssignment")
    now, delay = _timing()
    with current_emulator().directory.edit(tenant) as draft:
        assignment = read(lambda: reader().role_assignment(payload, draft, "role_assignment", now=now, delay=delay))
    return created(assignment_json(assignment))


@control.delete("/tenants/<tenant_key>/roleAssignments/<name>")
def delete_assignment(tenant_key: str, name: str) -> Response:
    tenant = tenant_for(tenant_key)
    now, delay = _timing()
    with current_emulator().directory.edit(tenant) as draft:
        policies.remove_role_assignment(draft, name, now=now, delay=delay)
    return no_content()
