"""The dashboard's Access page: which app may read or send as which mailbox, why, and the rules behind it.

Each cell of the matrix is THE access decision (`state/access.decide`) asked exactly as the Graph gate asks it:
the app's granted roles as a token issued now carries them, the emulator's clock and the nested-group setting;
so the matrix and the request log say the same, in the same words. A decision that a rule still propagating
will change is shown as pending, with the instant it changes: the decision asked at that instant. The page's
forms change the rules through the control API itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import abort, request, url_for

from m365_mock.clock import iso_z
from m365_mock.graph.errors import AccessDenied
from m365_mock.state.access import Decision, Operation, decide
from m365_mock.state.directory import Application, Mailbox, Tenant
from m365_mock.state.policies import ACCESS_RIGHTS, RBAC_ROLES
from m365_mock.state.rules import AccessPolicy, Lifetime, RoleAssignment
from m365_mock.state.tenantfile import dump_scope, dump_service_principal
from m365_mock.ui.base import page, quoted, takes, ui
from m365_mock.web import current_emulator

MATRIX_OPERATIONS = (Operation.READ_BASIC, Operation.SEND)
MAILBOXES_PER_PAGE = 100


def utc_text(moment: float) -> str:
    return iso_z(datetime.fromtimestamp(moment, UTC))


def _verdict(allowed: bool) -> str:
    return "granted" if allowed else "denied"


@dataclass(frozen=True)
class Change:
    """A decision a rule still propagating brings, and the instant it starts to count."""

    at: float
    decision: Decision

    @property
    def when(self) -> str:
        return utc_text(self.at)


@dataclass(frozen=True)
class Cell:
    """One app, one mailbox, one operation: the decision now and the changes already on their way."""

    app: Application
    mailbox: Mailbox
    decision: Decision
    changes: tuple[Change, ...]

    @property
    def verdict(self) -> str:
        return _verdict(self.decision.allowed)

    @property
    def css(self) -> str:
        return "cell-pending" if self.changes else f"cell-{self.verdict}"

    @property
    def label(self) -> str:
        if not self.changes:
            return self.verdict
        coming = self.changes[0]
        return f"{self.verdict} now; {_verdict(coming.decision.allowed)} from {coming.when}"

    @property
    def title(self) -> str:
        """The request log's text for this decision, then each change to come."""
        lines = [self.decision.describe()]
        lines += [f"from {change.when}: {change.decision.describe()}" for change in self.changes]
        return "\n".join(lines)

    @property
    def answer(self) -> str:
        """What Graph answers the app's request."""
        if not self.decision.allowed:
            return f"{AccessDenied.status} {AccessDenied.code}: {self.decision.message}"
        if self.decision.operation is Operation.READ_BASIC and not self.decision.content_visible:
            return "200, basic properties only (no body: the app holds no Mail.Read)"
        return "200"


def rule_instants(tenant: Tenant, now: float) -> list[float]:
    """The instants after `now` at which a policy or role assignment starts or stops counting, in order."""
    lifetimes = [*(p.lifetime for p in tenant.rules.policies), *(a.lifetime for a in tenant.rules.assignments)]
    moments = {m for lt in lifetimes for m in (lt.effective_at, lt.removed_at) if m is not None and m > now}
    return sorted(moments)


def cell(
    tenant: Tenant, app: Application, mailbox: Mailbox, operation: Operation, *, now: float, later: list[float]
) -> Cell:
    """The decision for a token the app would get now, as the Graph gate asks it; then at each instant in
    `later`, keeping those where the answer turns."""
    nested = current_emulator().settings.nested_group_membership
    roles = app.granted_roles()

    def at(moment: float) -> Decision:
        return decide(tenant, app.app_id, roles, mailbox, operation, now=moment, nested_groups=nested)

    decision = at(now)
    changes: list[Change] = []
    allowed = decision.allowed
    for moment in later:
        then = at(moment)
        if then.allowed != allowed:
            changes.append(Change(moment, then))
            allowed = then.allowed
    return Cell(app, mailbox, decision, tuple(changes))


@dataclass(frozen=True)
class Row:
    mailbox: Mailbox
    cells: list[Cell]


# ---------------------------------------------------------------- the rules behind the matrix


def rule_state(lifetime: Lifetime, now: float) -> tuple[str, str]:
    """(css class, words) of when a policy or role assignment counts, as its `in_force`, `effective_from` and
    `removed_from` in the control API say."""
    until = f" until {utc_text(lifetime.removed_at)}" if lifetime.removed_at is not None else ""
    if lifetime.active(now):
        return ("pending" if until else "granted"), f"in force{until}"
    return "pending", f"pending: in force from {utc_text(lifetime.effective_at)}{until}"


def _shown(lifetime: Lifetime, now: float) -> bool:
    """Configured, or removed but counting until its removal has propagated."""
    return lifetime.removed_at is None or lifetime.removed_at > now


def _app_name(tenant: Tenant, app_id: str) -> str:
    if app_id == "*":
        return "every app (*)"
    app = tenant.application(app_id)
    return app.display_name if app else app_id


@dataclass(frozen=True)
class PolicyRow:
    policy: AccessPolicy
    apps: list[str]
    scope: str
    members: list[str]
    state: tuple[str, str]
    delete_control: str | None


@dataclass(frozen=True)
class AssignmentRow:
    assignment: RoleAssignment
    app: str
    permissions: tuple[str, ...]
    state: tuple[str, str]


def _scope_of(tenant: Tenant, policy: AccessPolicy) -> tuple[str, list[str]]:
    """The policy's scope (address) and the mailboxes in it; a policy whose removal is still propagating may
    outlive its scope, which then holds nothing."""
    if policy.scope_kind == "mailbox":
        mailbox = tenant.mailboxes.get(policy.scope_id)
        return (mailbox.address, [mailbox.address]) if mailbox else ("deleted", [])
    group = tenant.groups.get(policy.scope_id)
    if group is None:
        return "deleted", []
    ids = tenant.group_members(group, nested=current_emulator().settings.nested_group_membership)
    return group.address, [m.address for m in tenant.mailboxes.values() if m.id in ids]


def policy_rows(tenant: Tenant, now: float) -> list[PolicyRow]:
    """The policies that count now or will: those Get-ApplicationAccessPolicy lists, and removals on their way
    (which cannot be removed again)."""
    rows = []
    for policy in tenant.rules.policies:
        if not _shown(policy.lifetime, now):
            continue
        scope, members = _scope_of(tenant, policy)
        delete = f"DELETE /_m365/tenants/{quoted(tenant.id)}/accessPolicies/{quoted(policy.identity)}"
        rows.append(
            PolicyRow(
                policy,
                [_app_name(tenant, app_id) for app_id in policy.app_ids],
                scope,
                members,
                rule_state(policy.lifetime, now),
                delete if policy.lifetime.configured else None,
            )
        )
    return rows


def assignment_rows(tenant: Tenant, now: float) -> list[AssignmentRow]:
    return [
        AssignmentRow(a, _app_name(tenant, a.app_id), RBAC_ROLES[a.role], rule_state(a.lifetime, now))
        for a in tenant.rules.assignments
        if _shown(a.lifetime, now)
    ]


# ---------------------------------------------------------------- the page


def _chosen_tenant(tenants: list[Tenant]) -> Tenant:
    key = request.args.get("tenant")
    if key is None:
        if not tenants:
            abort(404, "This emulator has no tenants.")
        return tenants[0]
    found = current_emulator().directory.tenant(key)
    if found is None:
        abort(404, f"This emulator has no tenant '{key}'.")
    return found


def _page_number(pages: int) -> int:
    text = request.args.get("page", "1")
    number = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= number <= pages:
        abort(400, f"There is no page '{text}' of mailboxes: pages run from 1 to {pages}.")
    return number


@ui.get("/access")
@takes("tenant", "page")
def access() -> str:
    emulator = current_emulator()
    tenants = emulator.directory.tenants
    tenant = _chosen_tenant(tenants)
    now = emulator.clock.now()
    later = rule_instants(tenant, now)
    apps = list(tenant.applications.values())
    mailboxes = list(tenant.mailboxes.values())
    pages = max(1, -(-len(mailboxes) // MAILBOXES_PER_PAGE))
    number = _page_number(pages)
    shown = mailboxes[(number - 1) * MAILBOXES_PER_PAGE : number * MAILBOXES_PER_PAGE]
    rows = [
        Row(mailbox, [cell(tenant, a, mailbox, op, now=now, later=later) for a in apps for op in MATRIX_OPERATIONS])
        for mailbox in shown
    ]
    policies_url = f"/_m365/tenants/{quoted(tenant.id)}/accessPolicies"
    return page(
        "access.html",
        tenants=tenants,
        tenant=tenant,
        now=utc_text(now),
        frozen=emulator.clock.frozen,
        settings=emulator.settings,
        apps=apps,
        operations=MATRIX_OPERATIONS,
        rows=rows,
        pages=pages,
        number=number,
        page_url=lambda n: url_for("ui.access", tenant=tenant.id, page=n),
        tenant_url=lambda t: url_for("ui.access", tenant=t.id),
        policies=policy_rows(tenant, now),
        add_control=f"POST {policies_url}",
        access_rights=ACCESS_RIGHTS,
        groups=list(tenant.groups.values()),
        users=[m for m in mailboxes if m.kind == "user"],
        service_principals=[dump_service_principal(sp) for sp in tenant.rules.service_principals],
        scopes=[dump_scope(x) for x in tenant.rules.scopes],
        assignments=assignment_rows(tenant, now),
    )
