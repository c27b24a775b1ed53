"""THE access decision for every Graph request that touches a mailbox.

A decision needs the app's permissions (token roles) for the operation; application access policies and RBAC
for Applications (issue 4) then narrow or widen it per mailbox. The decision carries its reason, which the
request log keeps and the 403 explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from m365_mock.state.directory import Mailbox, Tenant
from m365_mock.state.policies import evaluate_policies, rbac_grants


class Operation(Enum):
    """What a request does to a mailbox, with the permissions that allow it, least privileged first."""

    READ_BASIC = ("read", ("Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"))
    READ = ("read content", ("Mail.Read", "Mail.ReadWrite"))
    WRITE = ("write", ("Mail.ReadWrite",))
    SEND = ("send", ("Mail.Send",))
    READ_DIRECTORY = ("read directory", ("User.ReadBasic.All", "User.Read.All"))

    def __init__(self, label: str, permissions: tuple[str, ...]) -> None:
        self.label = label
        self.permissions = permissions


FULL_READ = frozenset({"Mail.Read", "Mail.ReadWrite"})
FULL_DIRECTORY_READ = frozenset({"User.Read.All"})
ACCESS_DENIED = "Access is denied. Check credentials and try again."
POLICY_BLOCKED = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."


@dataclass(frozen=True)
class Decision:
    """Whether an app may do `operation` on `mailbox`, and why."""

    allowed: bool
    operation: Operation
    app_id: str
    mailbox: str
    reason: str
    permission: str | None = None
    content_visible: bool = True
    message: str = ACCESS_DENIED

    def describe(self) -> str:
        return f"{'granted' if self.allowed else 'denied'}: {self.reason}"


def decide(
    tenant: Tenant,
    app_id: str,
    roles: tuple[str, ...] | list[str],
    mailbox: Mailbox,
    operation: Operation,
    *,
    now: float,
    nested_groups: bool = True,
) -> Decision:
    """Decide one request.

    Entra permissions are the token's `roles`; application access policies constrain only those. RBAC for
    Applications grants add to them, each within its management scope, and policies do not constrain them.

    The decision depends only on the tenant's version, the rule period `now` falls in and the arguments, so it
    is remembered under exactly those: any change to the tenant world, a propagation delay running out or a
    moved clock gives a new key.
    """
    roles = tuple(roles)
    key = ("decision", tenant.rule_period(now), app_id, roles, mailbox.id, operation, nested_groups)
    return tenant.remember(key, lambda: _decide(tenant, app_id, roles, mailbox, operation, now, nested_groups))


def _decide(
    tenant: Tenant,
    app_id: str,
    roles: tuple[str, ...],
    mailbox: Mailbox,
    operation: Operation,
    now: float,
    nested_groups: bool,
) -> Decision:
    verdict = evaluate_policies(tenant, tenant.rules, app_id, mailbox, now=now, nested=nested_groups)
    entra = set(roles) if verdict.allowed is not False else set()
    grants = {g.permission: g for g in rbac_grants(tenant, tenant.rules, app_id, mailbox, now=now)}
    held = entra | set(grants)
    permission = next((p for p in operation.permissions if p in held), None)
    if permission is None:
        entra_had_it = any(p in roles for p in operation.permissions)
        if entra_had_it and verdict.allowed is False:
            return Decision(False, operation, app_id, mailbox.address, verdict.reason, message=POLICY_BLOCKED)
        missing = " or ".join(operation.permissions)
        reason = "the token has no roles (no admin consent?)" if not roles and not grants else f"missing {missing}"
        return Decision(False, operation, app_id, mailbox.address, reason)
    if permission in entra:
        source = f"{permission} (Entra-consented); {verdict.reason}"
    else:
        grant = grants[permission]
        where = f"scope '{grant.assignment.scope_name}'" if grant.assignment.scope_name else "the organisation"
        source = f"{permission} by RBAC role '{grant.assignment.role}' ({grant.assignment.name}) over {where}"
    return Decision(
        True, operation, app_id, mailbox.address, source, permission, content_visible=bool(held & FULL_READ)
    )


def decide_directory(app_id: str, roles: tuple[str, ...] | list[str], operation: Operation) -> Decision:
    """Decide a read of the directory (users): the token's roles alone.

    Application access policies and RBAC for Applications scope Exchange mailboxes only, so they play no part.
    `content_visible` says whether the app reads every property (User.Read.All) or the basic profile only.
    """
    held = set(roles)
    permission = next((p for p in reversed(operation.permissions) if p in held), None)  # what decides the view
    if permission is None:
        missing = " or ".join(operation.permissions)
        reason = "the token has no roles (no admin consent?)" if not held else f"missing {missing}"
        return Decision(False, operation, app_id, "", reason, message=INSUFFICIENT_PRIVILEGES)
    source = f"{permission} (Entra-consented); directory reads are not scoped by Exchange access policies"
    return Decision(True, operation, app_id, "", source, permission, content_visible=bool(held & FULL_DIRECTORY_READ))
