"""Exchange Online application access policies and RBAC for Applications: the rules and their evaluation.

Each change records when it takes effect (now + the propagation delay), so a test can reproduce the real
"it can take an hour" window by advancing the clock. `Test-*` answers use the configured rules at once, as the
real cmdlets do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from mock_server.state.directory import Group, Mailbox, Tenant
from mock_server.state.errors import RuleError, not_found
from mock_server.state.rules import (
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


def policy_covers(tenant: Tenant, policy: AccessPolicy, mailbox: Mailbox, *, nested: bool) -> bool:
    if policy.scope_kind == "mailbox":
        return policy.scope_id == mailbox.id
    group = tenant.groups.get(policy.scope_id)
    return group is not None and is_member(tenant, group, mailbox, nested=nested)


@dataclass(frozen=True)
class PolicyVerdict:
    """What application access policies say about one app and mailbox; `allowed` None = no policy applies."""

    allowed: bool | None
    reason: str
    policy: AccessPolicy | None = None


def evaluate_policies(
    tenant: Tenant, rules: AccessRules, app_id: str, mailbox: Mailbox, *, now: float | None, nested: bool
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
    grants = []
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


# ---------------------------------------------------------------- recipient filters (OPATH subset)

_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<op>-(?:and|or|not|eq|ne|like|notlike)\b)"
    r"|'(?P<squote>(?:[^']|'')*)'|\"(?P<dquote>(?:[^\"]|\"\")*)\"|(?P<word>[A-Za-z][A-Za-z0-9]*))",
    re.IGNORECASE,
)
FILTER_PROPERTIES = {f"customattribute{i}": f"CustomAttribute{i}" for i in range(1, 16)} | {
    "memberofgroup": "MemberOfGroup",
    "primarysmtpaddress": "PrimarySmtpAddress",
    "recipienttypedetails": "RecipientTypeDetails",
    "emailaddresses": "EmailAddresses",
    "displayname": "DisplayName",
    "alias": "Alias",
}


def _value(tenant: Tenant, mailbox: Mailbox, prop: str) -> list[str]:
    if prop.startswith("CustomAttribute"):
        return [mailbox.custom_attributes.get(int(prop[len("CustomAttribute") :]), "")]
    if prop == "PrimarySmtpAddress":
        return [mailbox.address]
    if prop == "EmailAddresses":
        return [f"smtp:{a}" for a in mailbox.addresses()] + mailbox.addresses()
    if prop == "RecipientTypeDetails":
        return [mailbox.recipient_type_details]
    if prop == "DisplayName":
        return [mailbox.display_name]
    if prop == "Alias":
        return [mailbox.address.split("@")[0]]
    return []


def _like(pattern: str, value: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.lower().split("*")) + "$"
    return re.match(regex, value.lower()) is not None


def parse_recipient_filter(text: str) -> Callable[[Tenant, Mailbox], bool]:
    """Compile a RecipientRestrictionFilter such as `MemberOfGroup -eq 'cctr_sec_group' -and -not(...)`.

    Supported: CustomAttribute1..15, PrimarySmtpAddress, EmailAddresses, RecipientTypeDetails, DisplayName,
    Alias, MemberOfGroup (direct members only, as Exchange documents); -eq -ne -like -notlike; -and -or -not;
    parentheses. RuleError with the position of anything else.
    """
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _FILTER_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise RuleError(f'Invalid filter syntax. "{text}" at position {position + 1}.')
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "squote":
            value = value.replace("''", "'")
        elif kind == "dquote":
            value, kind = value.replace('""', '"'), "squote"
        tokens.append((kind, value, match.start(kind) if kind != "squote" else match.start()))
        position = match.end()
    stream = _FilterStream(text, tokens)
    predicate = stream.expression()
    if not stream.done():
        stream.fail()
    return predicate


class _FilterStream:
    def __init__(self, text: str, tokens: list[tuple[str, str, int]]) -> None:
        self.text, self.tokens, self.index = text, tokens, 0

    def done(self) -> bool:
        return self.index >= len(self.tokens)

    def fail(self) -> None:
        at = self.tokens[self.index][2] + 1 if not self.done() else len(self.text) + 1
        raise RuleError(f'Invalid filter syntax. "{self.text}" at position {at}.')

    def peek(self, kind: str, value: str | None = None) -> bool:
        if self.done():
            return False
        k, v, _ = self.tokens[self.index]
        return k == kind and (value is None or v.lower() == value)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(kind, value):
            self.fail()
        self.index += 1
        return self.tokens[self.index - 1][1]

    def expression(self) -> Callable[[Tenant, Mailbox], bool]:
        left = self.conjunction()
        while self.peek("op", "-or"):
            self.take("op")
            right = self.conjunction()
            left = (lambda a, b: lambda t, m: a(t, m) or b(t, m))(left, right)
        return left

    def conjunction(self) -> Callable[[Tenant, Mailbox], bool]:
        left = self.unary()
        while self.peek("op", "-and"):
            self.take("op")
            right = self.unary()
            left = (lambda a, b: lambda t, m: a(t, m) and b(t, m))(left, right)
        return left

    def unary(self) -> Callable[[Tenant, Mailbox], bool]:
        if self.peek("op", "-not"):
            self.take("op")
            inner = self.unary()
            return lambda t, m: not inner(t, m)
        if self.peek("lparen"):
            self.take("lparen")
            inner = self.expression()
            self.take("rparen")
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[Tenant, Mailbox], bool]:
        name = self.take("word")
        prop = FILTER_PROPERTIES.get(name.lower())
        if prop is None:
            raise RuleError(f"The property '{name}' can't be used in a recipient restriction filter.")
        if not self.peek("op") or self.tokens[self.index][1].lower() not in ("-eq", "-ne", "-like", "-notlike"):
            self.fail()
        op = self.take("op").lower()
        value = self.take("squote") if self.peek("squote") else self.take("word")
        if prop == "MemberOfGroup":

            def member(t: Tenant, m: Mailbox) -> bool:
                group = t.group(_group_key(value))
                return group is not None and is_member(t, group, m, nested=False)

            return member if op == "-eq" else (lambda t, m: not member(t, m))

        def test(t: Tenant, m: Mailbox) -> bool:
            values = _value(t, m, prop)
            if op in ("-like", "-notlike"):
                hit = any(_like(value, v) for v in values)
            else:
                hit = any(v.lower() == value.lower() for v in values)
            return hit if op in ("-eq", "-like") else not hit

        return test


def _group_key(value: str) -> str:
    """A group named by distinguished name (`CN=cctr_sec_group,OU=...`), address, name or id."""
    match = re.match(r"^CN=([^,]+),", value, re.IGNORECASE)
    return match.group(1) if match else value


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
        raise RuleError(f"An application access policy with the identity '{identity}' already exists.")
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
        raise RuleError(f"A service principal with AppId '{app_key}' already exists.")
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
        raise RuleError(f"The management scope '{name}' already exists.")
    scope = ManagementScope(name.strip(), recipient_filter, parse_recipient_filter(recipient_filter))
    tenant.rules.scopes.append(scope)
    return scope


def remove_management_scope(tenant: Tenant, name: str) -> ManagementScope:
    scope = tenant.rules.scope(name)
    users = [a.name for a in tenant.rules.configured_assignments() if a.scope_name == scope.name]
    if users:
        raise RuleError(f"The management scope '{scope.name}' is used by role assignments: {', '.join(users)}.")
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
