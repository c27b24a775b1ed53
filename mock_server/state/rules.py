"""The data of a tenant's Exchange rules: application access policies, service principals, management scopes and
role assignments. Evaluation and the changes admins make live in `policies.py`; these are plain values.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from m365_mock.state.errors import not_found

if TYPE_CHECKING:
    from m365_mock.state.directory import Mailbox, Tenant


def scope_sid(object_id: str) -> str:
    """A stable, SID-shaped identifier for a directory object."""
    parts = uuid.UUID(object_id).int
    sub = [(parts >> shift) & 0xFFFFFFFF for shift in (96, 64, 32, 0)]
    return "S-1-5-21-" + "-".join(str(v) for v in sub)


@dataclass
class Lifetime:
    """When a rule counts: from `effective_at` until `removed_at` (clock seconds; None = still configured)."""

    effective_at: float = 0.0
    removed_at: float | None = None

    def active(self, now: float) -> bool:
        return self.effective_at <= now and (self.removed_at is None or now < self.removed_at)

    @property
    def configured(self) -> bool:
        return self.removed_at is None


@dataclass
class AccessPolicy:
    identity: str
    app_ids: list[str]
    access_right: str
    scope_kind: str  # "group" or "mailbox"
    scope_id: str
    scope_name: str
    description: str
    lifetime: Lifetime = field(default_factory=Lifetime)

    def applies_to(self, app_id: str) -> bool:
        return "*" in self.app_ids or app_id.lower() in self.app_ids

    @property
    def display_identity(self) -> str:
        """`<guid>\\<AppId>:<scope SID>;<scope object id>` as Get-ApplicationAccessPolicy shows it."""
        return f"{self.identity}\\{','.join(self.app_ids)}:{scope_sid(self.scope_id)};{self.scope_id}"

    def clone(self) -> AccessPolicy:
        return dataclasses.replace(self, app_ids=list(self.app_ids), lifetime=dataclasses.replace(self.lifetime))


@dataclass(frozen=True)
class ServicePrincipal:
    """Exchange's pointer to an Entra service principal (`New-ServicePrincipal`)."""

    identity: str
    app_id: str
    object_id: str
    display_name: str


@dataclass(frozen=True)
class ManagementScope:
    name: str
    filter_text: str
    matches: Callable[[Tenant, Mailbox], bool] = field(repr=False, compare=False)
    identity: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class RoleAssignment:
    name: str
    role: str
    app_id: str
    scope_name: str | None  # None: the whole organisation
    lifetime: Lifetime = field(default_factory=Lifetime)

    def clone(self) -> RoleAssignment:
        return dataclasses.replace(self, lifetime=dataclasses.replace(self.lifetime))


@dataclass
class AccessRules:
    """A tenant's policies, service principals, management scopes and role assignments."""

    policies: list[AccessPolicy] = field(default_factory=list)
    service_principals: list[ServicePrincipal] = field(default_factory=list)
    scopes: list[ManagementScope] = field(default_factory=list)
    assignments: list[RoleAssignment] = field(default_factory=list)

    def clone(self) -> AccessRules:
        """A copy whose changes leave this one untouched (frozen values are shared)."""
        return AccessRules(
            policies=[p.clone() for p in self.policies],
            service_principals=list(self.service_principals),
            scopes=list(self.scopes),
            assignments=[a.clone() for a in self.assignments],
        )

    def configured_policies(self) -> list[AccessPolicy]:
        return [p for p in self.policies if p.lifetime.configured]

    def configured_assignments(self) -> list[RoleAssignment]:
        return [a for a in self.assignments if a.lifetime.configured]

    def policy(self, identity: str) -> AccessPolicy:
        key = identity.strip().lower()
        for policy in self.configured_policies():
            if key in (policy.identity.lower(), policy.display_identity.lower()):
                return policy
        raise not_found(identity)

    def scope(self, name: str) -> ManagementScope:
        for scope in self.scopes:
            if name.strip().lower() in (scope.name.lower(), scope.identity):
                return scope
        raise not_found(name)

    def service_principal(self, key: str) -> ServicePrincipal:
        key = key.strip().lower()
        for sp in self.service_principals:
            if key in (sp.app_id, sp.object_id, sp.identity, sp.display_name.lower()):
                return sp
        raise not_found(key)
