"""Exchange Online application access policies and RBAC for Applications: the rules and their evaluation.

Each change records when it takes effect (now + the propagation delay), so a test can reproduce the real
"it can take an hour" window by advancing the clock. `Test-*` answers use the configured rules at once, as the
real cmdlets do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from m365_mock.state.directory import Group, Mailbox, Tenant
from m365_mock.state.errors import AlreadyExists, InUse, RuleError, not_found
from m365_mock.state.recipientfilter import parse_recipient_filter
from m365_mock.state.rules import (
    AccessPolicy,
    AccessRules,
    Lifetime,
    ManagementScope,
    RoleAssignment,
    ServicePrincipal,
    scope_sid,
)

__all__ = ["AccessRules", "RuleError", "scope_sid"]  # re-exported for callers of the rules' evaluation

ACCESS_RIGHTS = ("RestrictAccess", "DenyAccess")
NOT_A_SECURITY_PRINCIPAL = "The identity of the policy scope is not a security principal."

# RBAC for Applications roles and the Graph permissions each grants.
RBAC_ROLES: dict[str, tuple[str, ...]] = {
    "Application Mail.Read": ("Mail.Read",),
    "Application Mail.ReadBasic": ("Mail.ReadBasic",),
    "Application Mail.ReadWrite": ("Mail.ReadWrite",),
    "Application Mail.Send": ("Mail.Send",),
    "Application MailboxSettings.Read": ("MailboxSettings.Read",),
    "Application MailboxSettings.ReadWrite": ("MailboxSettings.ReadWrite",),
    "Application Mail Full Access": ("Mail.ReadWrite", "Mail.Send"),
    "Application Exchange Full Access": ("Mail.ReadWrite", "Mail.Send", "MailboxSettings.ReadWrite"),
}
_ROLE_BY_LOWER = {name.lower(): name for name in RBAC_ROLES}


def canonical_role(name: str) -> str:
    try:
        return _ROLE_BY_LOWER[name.strip().lower()]
    except KeyError:
        raise RuleError(f"The role '{name}' isn't an application role; known: {', '.join(RBAC_ROLES)}.") from None


# ---------------------------------------------------------------- group membership


def is_member(tenant: Tenant, group: Group, mailbox: Mailbox, *, nested: bool) -> bool:
    """Whether `mailbox` is in `group`, directly or (with `nested`) through member groups."""
    return mailbox.id in tenant.group_members(group, nested=nested)


def resolve_policy_scope(tenant: Tenant, identity: str) -> tuple[str, str, str]:
    """(kind, id, name) of a PolicyScopeGroupId: a mail-enabled security group or a user mailbox."""
    group = tenant.group(identity)
    if group is not None:
        return "group", group.id, group.display_name
    mailbox = tenant.mailbox(identity)
    if mailbox is None:
        raise not_found(identity)
    if mailbox.kind != "user":
        raise RuleError(NOT_A_SECURITY_PRINCIPAL)
    return "mailbox", mailbox.id, mailbox.display_name


def policy_covers(tenant: Tenant, policy: AccessPolicy, target: Mailbox | Group, *, nested: bool) -> bool:
    """Whether the policy's scope holds `target`: a mailbox (directly or through groups) or a group itself.

    A group is covered by a policy scoped to it or to a group holding it (deeper only with `nested`); a policy
    scoped to a mailbox never covers a group.
    """
    if policy.scope_kind == "mailbox":
        return isinstance(target, Mailbox) and policy.scope_id == target.id
    group = tenant.groups.get(policy.scope_id)
    if group is None:
        return False
    if isinstance(target, Group):
        return group.id == target.id or target.id in tenant.member_groups(group, nested=nested)
    return is_member(tenant, group, target, nested=nested)


@dataclass(frozen=True)
class PolicyVerdict:
    """What application access policies say about one app and mailbox; `allowed` None = no policy applies."""

    allowed: bool | None
    reason: str
    policy: AccessPolicy | None = None


def evaluate_policies(
    tenant: Tenant, rules: AccessRules, app_id: str, mailbox: Mailbox | Group, *, now: float | None, nested: bool
) -> PolicyVerdict:
    """Exchange's evaluation order: a matching Deny wins; a matching Restrict grants; an app that has Restrict
    policies is denied every mailbox outside all of them; an app with no policy is unaffected.

    `now` None evaluates the configured rules, ignoring propagation (what Test-ApplicationAccessPolicy does).
    """
    candidates = [
        p
        for p in rules.policies
        if p.applies_to(app_id) and (p.lifetime.configured if now is None else p.lifetime.active(now))
    ]
    if not candidates:
        return PolicyVerdict(None, "no application access policy applies to the app")
    for policy in candidates:
        if policy.access_right == "DenyAccess" and policy_covers(tenant, policy, mailbox, nested=nested):
            return PolicyVerdict(False, f"DenyAccess policy {policy.identity} matches via {policy.scope_name}", policy)
    restricts = [p for p in candidates if p.access_right == "RestrictAccess"]
    for policy in restricts:
        if policy_covers(tenant, policy, mailbox, nested=nested):
            return PolicyVerdict(
                True, f"RestrictAccess policy {policy.identity} matches via {policy.scope_name}", policy
            )
    if restricts:
        names = ", ".join(p.scope_name for p in restricts)
        return PolicyVerdict(False, f"RestrictAccess policies limit the app to {names}; {mailbox.address} is in none")
    return PolicyVerdict(True, "no DenyAccess policy covers the mailbox")


# ---------------------------------------------------------------- RBAC for Applications


@dataclass(frozen=True)
class RbacGrant:
    permission: str
    assignment: RoleAssignment
    scope_type: str  # CustomRecipientScope or Organization


def rbac_grants(
    tenant: Tenant, rules: AccessRules, app_id: str, mailbox: Mailbox | None, *, now: float | None
) -> list[RbacGrant]:
    """Permissions RBAC assignments give the app over `mailbox` (None: every assignment, scope not checked)."""
    grants: list[RbacGrant] = []
    for assignment in rules.assignments:
        live = assignment.lifetime.configured if now is None else assignment.lifetime.active(now)
        if not live or assignment.app_id != app_id.lower():
            continue
        scope_type = "Organization"
        if assignment.scope_name is not None:
            scope_type = "CustomRecipientScope"
            if mailbox is not None:
                try:
                    scope = rules.scope(assignment.scope_name)
                except RuleError:
                    continue
                if not scope.matches(tenant, mailbox):
                    continue
        grants.extend(RbacGrant(p, assignment, scope_type) for p in RBAC_ROLES[assignment.role])
    return grants


# ------------------------------------------------ changes (shared by tenant files, the control API and cmdlets)


def _app_ids(values: list[str]) -> list[str]:
    ids = []
    for value in values:
        text = str(value).strip().lower()
        if text != "*":
            try:
                text = str(uuid.UUID(text))
            except ValueError:
                raise RuleError(f"The AppId '{value}' isn't valid: give application ids (GUIDs) or *.") from None
        if text not in ids:
            ids.append(text)
    if not ids:
        raise RuleError("The AppId parameter needs at least one application id or *.")
    return ids


def new_access_policy(
    tenant: Tenant,
    *,
    app_ids: list[str],
    scope: str,
    access_right: str,
    description: str | None,
    now: float,
    delay: float,
    identity: str | None = None,
) -> AccessPolicy:
    """New-ApplicationAccessPolicy."""
    right = next((r for r in ACCESS_RIGHTS if r.lower() == str(access_right).strip().lower()), None)
    if right is None:
        raise RuleError(f"The AccessRight '{access_right}' isn't valid: use RestrictAccess or DenyAccess.")
    apps = _app_ids(app_ids)
    kind, scope_id, scope_name = resolve_policy_scope(tenant, scope)
    identity = identity or str(uuid.uuid4())
    if any(p.identity == identity for p in tenant.rules.policies):
        raise AlreadyExists(f"An application access policy with the identity '{identity}' already exists.")
    if description is None:
        description = (
            f"AppId: {','.join(apps)}; ScopeIdentitySid: {scope_sid(scope_id)}; ScopeIdentityOid: "
            f"{scope_id}; AccessRight: {right}; ShardType: All"
        )
    policy = AccessPolicy(identity, apps, right, kind, scope_id, scope_name, description, Lifetime(now + delay))
    tenant.rules.policies.append(policy)
    return policy


def remove_access_policy(tenant: Tenant, identity: str, *, now: float, delay: float) -> AccessPolicy:
    """Remove-ApplicationAccessPolicy: the policy stops counting once the propagation delay has passed."""
    policy = tenant.rules.policy(identity)
    policy.lifetime.removed_at = now + delay
    if policy.lifetime.removed_at <= policy.lifetime.effective_at:
        tenant.rules.policies.remove(policy)
    return policy


def new_service_principal(
    tenant: Tenant, *, app_id: str, object_id: str | None, display_name: str | None
) -> ServicePrincipal:
    """New-ServicePrincipal: Exchange's pointer to an Entra app's service principal."""
    (app_key,) = _app_ids([app_id]) if app_id != "*" else ("*",)
    if app_key == "*":
        raise RuleError("The AppId parameter needs an application id (GUID).")
    if any(sp.app_id == app_key for sp in tenant.rules.service_principals):
        raise AlreadyExists(f"A service principal with AppId '{app_key}' already exists.")
    app = tenant.application(app_key)
    object_id = (object_id or (app.service_principal_id if app else "")).strip().lower()
    try:
        object_id = str(uuid.UUID(object_id))
    except ValueError:
        raise RuleError(
            f"The ObjectId '{object_id}' isn't valid: give the Enterprise application's object id."
        ) from None
    name = display_name or (app.display_name if app else app_key)
    sp = ServicePrincipal(str(uuid.uuid4()), app_key, object_id, name)
    tenant.rules.service_principals.append(sp)
    return sp


def new_management_scope(tenant: Tenant, *, name: str, recipient_filter: str) -> ManagementScope:
    """New-ManagementScope -RecipientRestrictionFilter."""
    if not name.strip():
        raise RuleError("The Name parameter can't be empty.")
    if any(s.name.lower() == name.strip().lower() for s in tenant.rules.scopes):
        raise AlreadyExists(f"The management scope '{name}' already exists.")
    scope = ManagementScope(name.strip(), recipient_filter, parse_recipient_filter(recipient_filter, is_member))
    tenant.rules.scopes.append(scope)
    return scope


def remove_management_scope(tenant: Tenant, name: str) -> ManagementScope:
    scope = tenant.rules.scope(name)
    users = [a.name for a in tenant.rules.configured_assignments() if a.scope_name == scope.name]
    if users:
        raise InUse(f"The management scope '{scope.name}' is used by role assignments: {', '.join(users)}.")
    tenant.rules.scopes.remove(scope)
    return scope


def new_role_assignment(
    tenant: Tenant, *, role: str, app: str, scope_name: str | None, name: str | None, now: float, delay: float
) -> RoleAssignment:
    """New-ManagementRoleAssignment -App -Role [-CustomResourceScope]; the app needs a service principal."""
    canonical = canonical_role(role)
    sp = tenant.rules.service_principal(app)
    if scope_name is not None:
        scope_name = tenant.rules.scope(scope_name).name
    name = name or f"{canonical}-{sp.display_name}"[:64]
    if any(a.name.lower() == name.lower() for a in tenant.rules.configured_assignments()):
        name = f"{name}-{uuid.uuid4().hex[:6]}"
    assignment = RoleAssignment(name, canonical, sp.app_id, scope_name, Lifetime(now + delay))
    tenant.rules.assignments.append(assignment)
    return assignment


def remove_role_assignment(tenant: Tenant, name: str, *, now: float, delay: float) -> RoleAssignment:
    for assignment in tenant.rules.configured_assignments():
        if assignment.name.lower() == name.strip().lower():
            assignment.lifetime.removed_at = now + delay
            if assignment.lifetime.removed_at <= assignment.lifetime.effective_at:
                tenant.rules.assignments.remove(assignment)
            return assignment
    raise not_found(name)
