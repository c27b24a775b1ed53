"""Tenants, applications with their credentials and permissions, mailboxes and mail-enabled groups.

The world is published in versions. A reader takes a tenant from the current snapshot and sees it whole and
unchanging: nothing published is ever changed. A writer changes a private copy of one tenant under the
directory's lock (`Directory.edit`) and publishes it in one step, or not at all when the change fails, so no
reader ever sees half a change and no request needs a lock to read.
"""

from __future__ import annotations

import bisect
import dataclasses
import hmac
import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from cryptography import x509

from m365_mock.identity import keys
from m365_mock.state.errors import AlreadyExists, DirectoryError
from m365_mock.state.rules import AccessRules

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"

# Graph application permissions (app roles) the emulator knows, with their real ids.
GRAPH_APP_ROLES: dict[str, str] = {
    "Mail.ReadBasic.All": "693c5e45-0940-467d-9b8a-1022fb9d42ef",
    "Mail.ReadBasic": "6be147d2-ea4f-4b5a-a3fa-3eab6f3c140a",
    "Mail.Read": "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
    "Mail.ReadWrite": "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
    "MailboxSettings.Read": "40f97065-369a-49f4-947c-6a255697ae91",
    "MailboxSettings.ReadWrite": "6931bccd-447a-43d1-b442-00a195474933",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadBasic.All": "97235f07-e226-4f63-ace3-39588e11d3a1",
}
_ROLE_BY_LOWER = {name.lower(): name for name in GRAPH_APP_ROLES}

MAILBOX_KINDS = ("user", "shared")


__all__ = ["DirectoryError"]  # re-exported: callers catch the tenant world's refusals from here

T = TypeVar("T")
_MISSING = object()


def canonical_permission(name: str) -> str:
    """The permission's real spelling; DirectoryError for names Graph does not define."""
    try:
        return _ROLE_BY_LOWER[str(name).strip().lower()]
    except KeyError:
        known = ", ".join(sorted(GRAPH_APP_ROLES))
        raise DirectoryError(f"unknown Graph application permission {name!r}; known: {known}") from None


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ClientSecret:
    """A client secret: its id (what the portal calls "Secret ID"), its value and its validity window."""

    key_id: str
    value: str
    start: datetime
    end: datetime
    display_name: str = ""

    @property
    def hint(self) -> str:
        return self.value[:3]

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self.value.encode("utf-8"), candidate.encode("utf-8"))


@dataclass(frozen=True)
class Certificate:
    """A certificate credential: the public certificate an admin uploaded to the app registration."""

    key_id: str
    certificate: x509.Certificate
    display_name: str = ""

    @property
    def sha1(self) -> bytes:
        return keys.thumbprint_sha1(self.certificate)

    @property
    def sha256(self) -> bytes:
        return keys.thumbprint_sha256(self.certificate)

    @property
    def thumbprint(self) -> str:
        """Upper-case hex SHA-1, as the portal shows it."""
        return self.sha1.hex().upper()

    @property
    def start(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def end(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def pem(self) -> str:
        return keys.certificate_pem(self.certificate)


@dataclass
class Application:
    """An app registration and its service principal in one tenant."""

    app_id: str
    display_name: str
    object_id: str = field(default_factory=new_guid)
    service_principal_id: str = field(default_factory=new_guid)
    secrets: list[ClientSecret] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    consent_granted: bool = True
    enabled: bool = True

    def granted_roles(self) -> list[str]:
        """The Graph app roles a token carries: the configured permissions, once an admin consented."""
        return list(self.permissions) if self.consent_granted else []

    def certificate_by_thumbprint(self, sha1: bytes | None, sha256: bytes | None) -> Certificate | None:
        for cert in self.certificates:
            if (sha1 is not None and cert.sha1 == sha1) or (sha256 is not None and cert.sha256 == sha256):
                return cert
        return None

    def clone(self) -> Application:
        return dataclasses.replace(
            self, secrets=list(self.secrets), certificates=list(self.certificates), permissions=list(self.permissions)
        )


@dataclass
class Mailbox:
    """A user or shared mailbox; `address` is its primary SMTP address and user principal name.

    `tenant_id` is set when the mailbox joins a tenant: a mailbox's mail is kept per (tenant, mailbox id).
    """

    id: str
    address: str
    display_name: str
    kind: str = "user"
    aliases: list[str] = field(default_factory=list)
    custom_attributes: dict[int, str] = field(default_factory=dict)
    tenant_id: str = ""

    @property
    def recipient_type_details(self) -> str:
        """Exchange's RecipientTypeDetails: `UserMailbox` or `SharedMailbox`."""
        return "SharedMailbox" if self.kind == "shared" else "UserMailbox"

    @property
    def store_key(self) -> tuple[str, str]:
        """What the mail store files this mailbox's mail under."""
        return (self.tenant_id, self.id)

    def addresses(self) -> list[str]:
        return [self.address, *self.aliases]

    def clone(self) -> Mailbox:
        return dataclasses.replace(self, aliases=list(self.aliases), custom_attributes=dict(self.custom_attributes))


@dataclass
class Group:
    """A mail-enabled security group; members name mailboxes or other groups by address or id."""

    id: str
    display_name: str
    address: str
    members: list[str] = field(default_factory=list)

    def clone(self) -> Group:
        return dataclasses.replace(self, members=list(self.members))


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def not_accepted(domain: str) -> DirectoryError:
    """Exchange's refusal of an address outside the organisation's accepted domains."""
    return DirectoryError(
        f"You can't use the domain {domain} because it's not an accepted domain for your organization."
    )


@dataclass
class Tenant:
    """One Entra tenant with its Exchange Online organisation.

    Published versions (those a `Directory` hands out) are never changed; `Directory.edit` gives a copy to
    change. `version` is set at publication and grows with every change of the tenant world.
    """

    id: str
    domains: list[str]
    display_name: str = ""
    applications: dict[str, Application] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    rules: AccessRules = field(default_factory=AccessRules)
    version: int = 0
    _by_address: dict[str, Mailbox] = field(default_factory=dict, repr=False)
    _group_by_key: dict[str, Group] = field(default_factory=dict, repr=False)
    _published: bool = field(default=False, repr=False)
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.id = self.id.strip().lower()
        self.domains = [d.strip().lower() for d in self.domains]

    @property
    def default_domain(self) -> str:
        return self.domains[0]

    # ------------------------------------------------------------ lookups

    def application(self, app_id: str) -> Application | None:
        return self.applications.get(app_id.strip().lower())

    def mailbox(self, key: str) -> Mailbox | None:
        """A mailbox by id, primary address or alias, ignoring case."""
        key = key.strip().lower()
        return self.mailboxes.get(key) or self._by_address.get(key)

    def group(self, key: str) -> Group | None:
        """A group by id, address or display name, ignoring case."""
        return self._group_by_key.get(key.strip().lower())

    def recipient(self, key: str) -> Mailbox | Group | None:
        """A mailbox or, failing that, a group."""
        return self.mailbox(key) or self.group(key)

    def accepts(self, address: str) -> bool:
        """Whether the address is in one of the tenant's accepted (verified) domains."""
        return domain_of(address) in self.domains

    def remember(self, key: Any, compute: Callable[[], T]) -> T:
        """`compute()`, remembered under `key` for this published version (a draft computes every time).

        A published version never changes, so whatever follows from it alone may be kept with it.
        """
        if not self._published:
            return compute()
        value = self._memo.get(key, _MISSING)
        if value is _MISSING:
            value = self._memo[key] = compute()
        return value

    def rule_period(self, now: float) -> int:
        """Which stretch of time `now` falls in, between the instants a rule starts or stops counting.

        Within one period of one version, every access decision is the same whatever `now` is; so decisions
        are remembered per period, and a propagation delay or a moved clock ends one exactly when it should.
        """
        return bisect.bisect_right(self.remember("rule instants", self._rule_instants), now)

    def _rule_instants(self) -> list[float]:
        instants: set[float] = set()
        for lifetime in [*(p.lifetime for p in self.rules.policies), *(a.lifetime for a in self.rules.assignments)]:
            instants.add(lifetime.effective_at)
            if lifetime.removed_at is not None:
                instants.add(lifetime.removed_at)
        return sorted(instants)

    def group_members(self, group: Group, *, nested: bool) -> frozenset[str]:
        """Ids of the mailboxes in `group`, directly or (with `nested`) through member groups.

        Remembered per published version, so an access decision resolves membership from an index.
        """
        key = ("members", group.id, nested)
        members = self._memo.get(key) if self._published else None
        if members is None:
            members = self._resolve_members(group, nested)
            if self._published:
                self._memo[key] = members
        return members

    def member_groups(self, group: Group, *, nested: bool) -> frozenset[str]:
        """Ids of the groups in `group`: its direct member groups, or (with `nested`) all below it."""
        key = ("groups", group.id, nested)
        found = self._memo.get(key) if self._published else None
        if found is None:
            inner: set[str] = set()
            pending = [group]
            while pending:
                for member in pending.pop().members:
                    child = self.group(member) if self.mailbox(member) is None else None
                    if child is not None and child.id not in inner and child.id != group.id:
                        inner.add(child.id)
                        if nested:
                            pending.append(child)
            found = frozenset(inner)
            if self._published:
                self._memo[key] = found
        return found

    def _resolve_members(self, group: Group, nested: bool) -> frozenset[str]:
        found: set[str] = set()
        pending, seen = [group], {group.id}
        while pending:
            for member in pending.pop().members:
                mailbox = self.mailbox(member)
                if mailbox is not None:
                    found.add(mailbox.id)
                    continue
                inner = self.group(member) if nested else None
                if inner is not None and inner.id not in seen:
                    seen.add(inner.id)
                    pending.append(inner)
        return frozenset(found)

    # ------------------------------------------------------------ changes (on a copy from Directory.edit)

    def _check_addresses(self, addresses: list[str], what: str) -> None:
        for address in addresses:
            if "@" not in address or address.startswith("@") or address.endswith("@"):
                raise DirectoryError(f"{what} address {address!r} is not an email address")
            if not self.accepts(address):
                raise not_accepted(domain_of(address))

    def _check_new_id(self, object_id: str, address: str) -> None:
        if object_id in self.mailboxes or object_id in self.groups:
            raise AlreadyExists(f"{address}: the id {object_id} is already used by another mailbox or group")

    def add_application(self, app: Application) -> Application:
        app.app_id = app.app_id.lower()
        if app.app_id in self.applications:
            raise AlreadyExists(f"application {app.app_id} already exists in tenant {self.id}")
        self.applications[app.app_id] = app
        return app

    def remove_application(self, app: Application) -> None:
        self.applications.pop(app.app_id, None)

    def add_mailbox(self, mailbox: Mailbox) -> Mailbox:
        if mailbox.kind not in MAILBOX_KINDS:
            raise DirectoryError(f"mailbox kind must be one of {MAILBOX_KINDS}, not {mailbox.kind!r}")
        self._check_addresses(mailbox.addresses(), "mailbox")
        mailbox.id = mailbox.id.lower()
        taken = [a for a in mailbox.addresses() if self.recipient(a) is not None]
        if taken:
            raise AlreadyExists(f"mailbox {mailbox.address} clashes with an existing id or address {taken}")
        self._check_new_id(mailbox.id, mailbox.address)
        mailbox.tenant_id = self.id
        self.mailboxes[mailbox.id] = mailbox
        for address in mailbox.addresses():
            self._by_address[address.lower()] = mailbox
        return mailbox

    def replace_mailbox(self, mailbox: Mailbox) -> None:
        """Put a changed copy of a mailbox (same id and addresses) in place of the old one."""
        self.mailboxes[mailbox.id] = mailbox
        for address in mailbox.addresses():
            self._by_address[address.lower()] = mailbox

    def remove_mailbox(self, mailbox: Mailbox) -> None:
        self.mailboxes.pop(mailbox.id, None)
        for address in mailbox.addresses():
            self._by_address.pop(address.lower(), None)
        self._drop_dangling_members()

    def add_group(self, group: Group) -> Group:
        group.id = group.id.lower()
        self._check_addresses([group.address], "group")
        if group.id in self.groups or self.group(group.address) is not None:
            raise AlreadyExists(f"group {group.address} already exists")
        if self.mailbox(group.address) is not None:
            raise AlreadyExists(f"group address {group.address} is already a mailbox's address")
        self._check_new_id(group.id, group.address)
        for member in group.members:
            if self.recipient(member) is None:
                raise DirectoryError(f"group {group.address}: member {member!r} is not a mailbox or group")
        self.groups[group.id] = group
        self._index_groups()
        return group

    def remove_group(self, group: Group) -> None:
        self.groups.pop(group.id, None)
        self._index_groups()
        self._drop_dangling_members()

    def _drop_dangling_members(self) -> None:
        for group in self.groups.values():
            group.members = [m for m in group.members if self.recipient(m) is not None]

    def _index_groups(self) -> None:
        index: dict[str, Group] = {}
        for group in self.groups.values():
            index.setdefault(group.id, group)
        for group in self.groups.values():
            index.setdefault(group.address.lower(), group)
        for group in self.groups.values():
            index.setdefault(group.display_name.lower(), group)
        self._group_by_key = index

    # ------------------------------------------------------------ versions

    def clone(self) -> Tenant:
        """An unpublished copy to change: every mutable part copied, frozen values shared."""
        copy = Tenant(id=self.id, domains=list(self.domains), display_name=self.display_name)
        copy.applications = {key: app.clone() for key, app in self.applications.items()}
        copy.mailboxes = {key: mailbox.clone() for key, mailbox in self.mailboxes.items()}
        copy._by_address = {
            address.lower(): mailbox for mailbox in copy.mailboxes.values() for address in mailbox.addresses()
        }
        copy.groups = {key: group.clone() for key, group in self.groups.items()}
        copy._index_groups()
        copy.rules = self.rules.clone()
        return copy

    def _publish(self, version: int) -> None:
        self.version = version
        self._memo = {}
        for mailbox in self.mailboxes.values():
            mailbox.tenant_id = self.id
        self._published = True

    def object_ids(self) -> Iterator[tuple[str, str]]:
        """(id, what it is) of the directory objects whose ids are unique across every tenant."""
        for mailbox in self.mailboxes.values():
            yield mailbox.id, f"mailbox {mailbox.address}"
        for group in self.groups.values():
            yield group.id, f"group {group.address}"


@dataclass(frozen=True)
class _Snapshot:
    tenants: dict[str, Tenant]
    by_name: dict[str, Tenant]


class Directory:
    """All tenants of one emulator; lookups by tenant GUID or any verified domain, ignoring case.

    Readers get published tenants from one snapshot; `edit` and the other changes publish a new snapshot
    under `_lock`, checked first (tenant ids and domains, and mailbox and group ids, unique across tenants).
    """

    def __init__(self, tenants: Iterable[Tenant] = ()) -> None:
        self._lock = threading.RLock()
        self._versions = itertools.count(1)
        self._snapshot = _Snapshot({}, {})
        for tenant in tenants:
            self.add_tenant(tenant)

    @property
    def tenants(self) -> list[Tenant]:
        return list(self._snapshot.tenants.values())

    def tenant(self, key: str) -> Tenant | None:
        """A tenant by GUID or domain name (`contoso.onmicrosoft.com`), ignoring case."""
        return self._snapshot.by_name.get(key.strip().lower())

    def add_tenant(self, tenant: Tenant) -> Tenant:
        with self._lock:
            if not tenant.domains:
                raise DirectoryError(f"tenant {tenant.id} needs at least one domain")
            self._publish([*self._snapshot.tenants.values(), tenant])
            return tenant

    def remove_tenant(self, tenant: Tenant) -> None:
        with self._lock:
            self._publish([t for t in self._snapshot.tenants.values() if t.id != tenant.id])

    def replace_with(self, other: Directory) -> None:
        """Take over copies of `other`'s tenants (reset and import keep this object, which others hold)."""
        with self._lock:
            self._publish([tenant.clone() for tenant in other.tenants])

    @contextmanager
    def edit(self, tenant: Tenant | str) -> Iterator[Tenant]:
        """A copy of the tenant's current version to change; published when the block ends without error."""
        key = tenant.id if isinstance(tenant, Tenant) else tenant
        with self._lock:
            current = self.tenant(key)
            if current is None:
                raise DirectoryError(f"This emulator has no tenant '{key}'.")
            draft = current.clone()
            yield draft
            self._publish([draft if t.id == current.id else t for t in self._snapshot.tenants.values()])

    def _publish(self, tenants: list[Tenant]) -> None:
        by_id: dict[str, Tenant] = {}
        by_name: dict[str, Tenant] = {}
        owners: dict[str, tuple[Tenant, str]] = {}
        for tenant in tenants:
            clash = [k for k in [tenant.id, *tenant.domains] if k in by_name]
            if clash:
                raise AlreadyExists(f"tenant id or domain already in use: {', '.join(clash)}")
            for object_id, what in tenant.object_ids():
                owner = owners.get(object_id)
                if owner is not None and owner[0] is not tenant:
                    raise AlreadyExists(
                        f"{what}: the id {object_id} is already the id of {owner[1]} in tenant {owner[0].id}; "
                        "directory object ids are unique across tenants"
                    )
                owners[object_id] = (tenant, what)
            by_id[tenant.id] = tenant
            for name in [tenant.id, *tenant.domains]:
                by_name[name] = tenant
        for tenant in tenants:
            if not tenant._published or tenant.version == 0:
                tenant._publish(next(self._versions))
        self._snapshot = _Snapshot(by_id, by_name)
