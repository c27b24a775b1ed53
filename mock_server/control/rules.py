"""Control API: application access policies, service principals, management scopes and role assignments.

New rules take effect after the `propagationDelay` setting (default 0); the `test` routes answer from the
configured rules at once, as Test-ApplicationAccessPolicy and Test-ServicePrincipalAuthorization do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response

from m365_mock.control import errors
from m365_mock.control import schemas as s
from m365_mock.control.api import route
from m365_mock.control.directory import NO_CONTENT, created, mailbox_for, no_content, read, reader
from m365_mock.control.fields import entry_body, json_object, tenant_for, text_field
from m365_mock.state import policies
from m365_mock.state.directory import Group, Mailbox, Tenant
from m365_mock.state.errors import not_found
from m365_mock.state.rules import AccessPolicy, AccessRules, RoleAssignment, scope_sid
from m365_mock.state.tenantfile import dump_assignment, dump_policy, dump_scope, dump_service_principal
from m365_mock.web import current_emulator, json_response


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


@route(
    "GET",
    "/tenants/{tenant}/accessPolicies",
    summary="Application access policies (Get-ApplicationAccessPolicy)",
    tag="access policies",
    answers={200: s.listing(s.ref("AccessPolicy"))},
)
def list_policies(tenant: str) -> Response:
    target = tenant_for(tenant)
    return json_response({"value": [policy_json(target, p) for p in target.rules.configured_policies()]})


@route(
    "POST",
    "/tenants/{tenant}/accessPolicies",
    summary="New-ApplicationAccessPolicy",
    tag="access policies",
    body=s.ref("accessPolicy"),
    body_required=True,
    answers={201: s.ref("AccessPolicy")},
    refusals=(errors.InvalidField, errors.ObjectNotFound, errors.PolicyExists, errors.ObjectExists),
)
def create_policy(tenant: str) -> Response:
    """`app_id` (an id, a display name, a list of those, or *), `scope` (a group or a user mailbox),
    `access_right`, `description`. In force after the `propagationDelay` setting."""
    target = tenant_for(tenant)
    payload = entry_body("accessPolicy")
    now, delay = _timing()
    try:
        payload["id"] = str(uuid.UUID(str(payload.get("id") or uuid.uuid4())))
    except ValueError:
        raise errors.InvalidField(f"'id' {payload['id']!r} is not a GUID.") from None
    with current_emulator().directory.edit(target) as draft:
        if any(p.identity == payload["id"] for p in draft.rules.policies):
            raise errors.PolicyExists(f"Policy {payload['id']} already exists.")
        policy = read(lambda: reader().access_policy(payload, draft, "policy", now=now, delay=delay))
    return created(policy_json(draft, policy))


@route(
    "GET",
    "/tenants/{tenant}/accessPolicies/{policy}",
    summary="One application access policy",
    tag="access policies",
    answers={200: s.ref("AccessPolicy")},
)
def get_policy(tenant: str, policy: str) -> Response:
    target = tenant_for(tenant)
    return json_response(policy_json(target, target.rules.policy(policy)))


@route(
    "PATCH",
    "/tenants/{tenant}/accessPolicies/{policy}",
    summary="Set-ApplicationAccessPolicy: only the description can change",
    tag="access policies",
    body=s.POLICY_CHANGE,
    body_required=True,
    answers={200: s.ref("AccessPolicy")},
    refusals=(errors.UnknownField, errors.MissingField, errors.InvalidField),
)
def update_policy(tenant: str, policy: str) -> Response:
    target = tenant_for(tenant)
    payload = json_object()
    if set(payload) - {"description"}:
        raise errors.UnknownField("Only 'description' can change on an application access policy.")
    with current_emulator().directory.edit(target) as draft:
        entry = draft.rules.policy(policy)
        entry.description = text_field(payload, "description") or ""
    return json_response(policy_json(draft, entry))


@route(
    "DELETE",
    "/tenants/{tenant}/accessPolicies/{policy}",
    summary="Remove-ApplicationAccessPolicy",
    tag="access policies",
    answers=NO_CONTENT,
)
def delete_policy(tenant: str, policy: str) -> Response:
    """Out of force after the `propagationDelay` setting."""
    target = tenant_for(tenant)
    now, delay = _timing()
    with current_emulator().directory.edit(target) as draft:
        policies.remove_access_policy(draft, policy, now=now, delay=delay)
    return no_content()


@route(
    "POST",
    "/tenants/{tenant}/accessPolicies/test",
    summary="Test-ApplicationAccessPolicy, from the configured rules",
    tag="access policies",
    body=s.POLICY_TEST_BODY,
    body_required=True,
    answers={200: s.ref("PolicyTest")},
    refusals=(errors.MissingField, errors.InvalidField, errors.MailboxNotFound),
)
def test_policy(tenant: str) -> Response:
    """-Identity <recipient> -AppId <app>. The recipient is `mailbox` (a mailbox) or `recipient` (a mailbox or a
    mail-enabled security group, as the cmdlet's -Identity takes either)."""
    target_tenant = tenant_for(tenant)
    payload = json_object()
    if "recipient" in payload:
        key = text_field(payload, "recipient") or ""
        target: Mailbox | Group | None = target_tenant.recipient(key)
        if target is None:
            raise not_found(key)
    else:
        target = mailbox_for(target_tenant, text_field(payload, "mailbox") or "")
    app_id = read(lambda: reader()._app_key(target_tenant, text_field(payload, "app_id"), "app_id"))
    verdict = policies.evaluate_policies(
        target_tenant,
        target_tenant.rules,
        app_id,
        target,
        now=None,
        nested=current_emulator().settings.nested_group_membership,
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


@route(
    "GET",
    "/tenants/{tenant}/servicePrincipals",
    summary="Exchange service principals (Get-ServicePrincipal)",
    tag="RBAC for Applications",
    answers={200: s.listing(s.ref("ServicePrincipal"))},
)
def list_service_principals(tenant: str) -> Response:
    target = tenant_for(tenant)
    return json_response(
        {"value": [dump_service_principal(sp) | {"identity": sp.identity} for sp in target.rules.service_principals]}
    )


@route(
    "POST",
    "/tenants/{tenant}/servicePrincipals",
    summary="New-ServicePrincipal",
    tag="RBAC for Applications",
    body=s.ref("servicePrincipal"),
    body_required=True,
    answers={201: s.ref("ServicePrincipal")},
    refusals=(errors.InvalidField, errors.ObjectNotFound, errors.ObjectExists),
)
def create_service_principal(tenant: str) -> Response:
    """`app_id`, `object_id` (default: the app's service principal), `display_name`."""
    target = tenant_for(tenant)
    payload = entry_body("servicePrincipal")
    with current_emulator().directory.edit(target) as draft:
        sp = read(lambda: reader().service_principal(payload, draft, "service_principal"))
    return created(dump_service_principal(sp) | {"identity": sp.identity})


@route(
    "DELETE",
    "/tenants/{tenant}/servicePrincipals/{principal}",
    summary="Remove-ServicePrincipal",
    tag="RBAC for Applications",
    answers=NO_CONTENT,
    refusals=(errors.ServicePrincipalInUse,),
)
def delete_service_principal(tenant: str, principal: str) -> Response:
    with current_emulator().directory.edit(tenant_for(tenant)) as draft:
        sp = draft.rules.service_principal(principal)
        if any(a.app_id == sp.app_id for a in draft.rules.configured_assignments()):
            raise errors.ServicePrincipalInUse(f"{sp.display_name} still has role assignments.")
        draft.rules.service_principals.remove(sp)
    return no_content()


@route(
    "POST",
    "/tenants/{tenant}/servicePrincipals/{principal}/testAuthorization",
    summary="Test-ServicePrincipalAuthorization, from the configured rules",
    tag="RBAC for Applications",
    body=s.AUTHORIZATION_TEST_BODY,
    answers={200: s.ref("AuthorizationTest")},
    refusals=(errors.InvalidField, errors.MailboxNotFound),
)
def test_authorization(tenant: str, principal: str) -> Response:
    """[-Resource <mailbox>]: RBAC grants only."""
    target = tenant_for(tenant)
    payload = json_object()
    sp = target.rules.service_principal(principal)
    resource = text_field(payload, "resource", required=False)
    mailbox = mailbox_for(target, resource) if resource else None
    rows = []
    for assignment in target.rules.configured_assignments():
        if assignment.app_id != sp.app_id:
            continue
        scope_type = "CustomRecipientScope" if assignment.scope_name else "Organization"
        in_scope: bool | str = "Not Run"
        if mailbox is not None:
            in_scope = bool(policies.rbac_grants(target, _only(target, assignment), sp.app_id, mailbox, now=None))
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


@route(
    "GET",
    "/tenants/{tenant}/managementScopes",
    summary="Management scopes (Get-ManagementScope)",
    tag="RBAC for Applications",
    answers={200: s.listing(s.ref("ManagementScope"))},
)
def list_scopes(tenant: str) -> Response:
    return json_response({"value": [dump_scope(x) for x in tenant_for(tenant).rules.scopes]})


@route(
    "POST",
    "/tenants/{tenant}/managementScopes",
    summary="New-ManagementScope",
    tag="RBAC for Applications",
    body=s.ref("managementScope"),
    body_required=True,
    answers={201: s.ref("ManagementScope")},
    refusals=(errors.InvalidField, errors.ObjectExists),
)
def create_scope(tenant: str) -> Response:
    """`name`, `filter` (a RecipientRestrictionFilter)."""
    target = tenant_for(tenant)
    payload = entry_body("managementScope")
    with current_emulator().directory.edit(target) as draft:
        scope = read(lambda: reader().management_scope(payload, draft, "management_scope"))
    return created(dump_scope(scope))


@route(
    "DELETE",
    "/tenants/{tenant}/managementScopes/{scope}",
    summary="Remove-ManagementScope",
    tag="RBAC for Applications",
    answers=NO_CONTENT,
    refusals=(errors.InvalidOperation, errors.ObjectInUse),
)
def delete_scope(tenant: str, scope: str) -> Response:
    with current_emulator().directory.edit(tenant_for(tenant)) as draft:
        policies.remove_management_scope(draft, scope)
    return no_content()


@route(
    "GET",
    "/tenants/{tenant}/roleAssignments",
    summary="RBAC role assignments (Get-ManagementRoleAssignment)",
    tag="RBAC for Applications",
    answers={200: s.listing(s.ref("RoleAssignment"))},
)
def list_assignments(tenant: str) -> Response:
    target = tenant_for(tenant)
    return json_response({"value": [assignment_json(a) for a in target.rules.configured_assignments()]})


@route(
    "POST",
    "/tenants/{tenant}/roleAssignments",
    summary="New-ManagementRoleAssignment -App",
    tag="RBAC for Applications",
    body=s.ref("roleAssignment"),
    body_required=True,
    answers={201: s.ref("RoleAssignment")},
    refusals=(errors.InvalidField, errors.ObjectNotFound, errors.ObjectExists),
)
def create_assignment(tenant: str) -> Response:
    """`role`, `app_id` (a service principal), `scope` (omitted: the whole organisation). In force after the
    `propagationDelay` setting."""
    target = tenant_for(tenant)
    payload = entry_body("roleAssignment")
    now, delay = _timing()
    with current_emulator().directory.edit(target) as draft:
        assignment = read(lambda: reader().role_assignment(payload, draft, "role_assignment", now=now, delay=delay))
    return created(assignment_json(assignment))


@route(
    "DELETE",
    "/tenants/{tenant}/roleAssignments/{assignment}",
    summary="Remove-ManagementRoleAssignment",
    tag="RBAC for Applications",
    answers=NO_CONTENT,
)
def delete_assignment(tenant: str, assignment: str) -> Response:
    target = tenant_for(tenant)
    now, delay = _timing()
    with current_emulator().directory.edit(target) as draft:
        policies.remove_role_assignment(draft, assignment, now=now, delay=delay)
    return no_content()
