"""Tenants, applications with their credentials and permissions, mailboxes and mail-enabled groups."""

from __future__ import annotations

import hmac
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509

from mock_server.identity import keys

if TYPE_CHECKING:
    from mock_server.state.policies import AccessRules

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


class DirectoryError(ValueError):
    """A directory change or lookup that the rules refuse; the message says which rule."""


def canonical_permission(name: str) -> str:
    """The permission's real spelling; DirectoryError for names Graph does not define."""
    try:
        return _ROLE_BY_LOWER[str(name).strip().lower()]
    except KeyError:
        known = ", ".join(sorted(GRAPH_APP_ROLES))
        raise DirectoryError(f"unknown Graph application permission {name!r}; known: {known}") from None


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass
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


@dataclass
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


@dataclass
class Mailbox:
    """A user or shared mailbox; `address` is its primary SMTP address and user principal name."""

    id: str
    address: str
    display_name: str
    kind: str = "user"
    aliases: list[str] = field(default_factory=list)
    custom_attributes: dict[int, str] = field(default_factory=dict)

    @property
    def recipient_type_details(self) -> str:
        """Exchange's RecipientTypeDetails: `UserMailbox` or `SharedMailbox`."""
        return "SharedMailbox" if self.kind == "shared" else "UserMailbox"

    def addresses(self) -> list[str]:
        return [self.address, *self.aliases]


@dataclass
class Group:
    """A mail-enabled security group; members name mailboxes or other groups by address or id."""

    id: str
    display_name: str
    address: str
    members: list[str] = field(default_factory=list)


@dataclass
class Tenant:
    """One Entra tenant with its Exchange Online organisation."""

    id: str
    domains: list[str]
    display_name: str = ""
    applications: dict[str, Application] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    rules: AccessRules = field(default_factory=lambda: _new_rules())
    _by_address: dict[str, Mailbox] = field(default_factory=dict, repr=False)

    @property
    def default_domain(self) -> str:
        return self.domains[0]

    def application(self, app_id: str) -> Application | None:
        return self.applications.get(app_id.strip().lower())

    def mailbox(self, key: str) -> Mailbox | None:
        """A mailbox by id, primary address or alias, ignoring case."""
        key = key.strip().lower()
        return self.mailboxes.get(key) or self._by_address.get(key)

    def group(self, key: str) -> Group | None:
        """A group by id, address or display name, ignoring case."""
        key = key.strip().lower()
        if key in self.groups:
            return self.groups[key]
        for group in self.groups.values():
            if key in (group.address.lower(), group.display_name.lower()):
                return group
        return None

    def add_application(self, app: Application) -> Application:
        app.app_id = app.app_id.lower()
        if app.app_id in self.applications:
            raise DirectoryError(f"application {app.app_id} already exists in tenant {self.id}")
        self.applications[app.app_id] = app
        return app

    def add_mailbox(self, mailbox: Mailbox) -> Mailbox:
        if mailbox.kind not in MAILBOX_KINDS:
            raise DirectoryError(f"mailbox kind must be one of {MAILBOX_KINDS}, not {mailbox.kind!r}")
        if "@" not in mailbox.address:
            raise DirectoryError(f"mailbox address {mailbox.address!r} is not an email address")
        mailbox.id = mailbox.id.lower()
        taken = [a for a in mailbox.addresses() if a.lower() in self._by_address]
        if mailbox.id in self.mailboxes or taken:
            raise DirectoryError(f"mailbox {mailbox.address} clashes with an existing id or address {taken}")
        self.mailboxes[mailbox.id] = mailbox
        for address in mailbox.addresses():
            self._by_address[address.lower()] = mailbox
        return mailbox

    def remove_mailbox(self, mailbox: Mailbox) -> None:
        self.mailboxes.pop(mailbox.id, None)
        for address in mailbox.addresses():
            self._by_address.pop(address.lower(), None)
        for group in self.groups.values():
            group.members = [m for m in group.members if self.mailbox(m) is not None or self.group(m) is not None]

    def add_group(self, group: Group) -> Group:
        group.id = group.id.lower()
        if group.id in self.groups or self.group(group.address) is not None:
            raise DirectoryError(f"group {group.address} already exists")
        if self.mailbox(group.address) is not None:
            raise DirectoryError(f"group address {group.address} is already a mailbox's address")
        for member in group.members:
            if self.mailbox(member) is None and self.group(member) is None:
                raise DirectoryError(f"group {group.address}: member {member!r} is not a mailbox or group")
        self.groups[group.id] = group
        return group


def _new_rules() -> AccessRules:
    from mock_server.state.policies import AccessRules

    return AccessRules()


class Directory:
    """All tenants of one emulator; lookups by tenant GUID or any verified domain, ignoring case.

    `lock` guards every change to the world (tenants and what they hold); readers of single objects
    may read without it because changes replace whole values.
    """

    def __init__(self, tenants: Iterable[Tenant] = ()) -> None:
        self.lock = threading.RLock()
        self._tenants: dict[str, Tenant] = {}
        self._by_name: dict[str, Tenant] = {}
        for tenant in tenants:
            self.add_tenant(tenant)

    @property
    def tenants(self) -> list[Tenant]:
        return list(self._tenants.values())

    def replace_with(self, other: Directory) -> None:
        """Take over `other`'s tenants in place (reset and import keep this object, which others hold)."""
        with self.lock:
            self._tenants, self._by_name = dict(other._tenants), dict(other._by_name)

    def remove_tenant(self, tenant: Tenant) -> None:
        with self.lock:
            self._tenants.pop(tenant.id, None)
            self._by_name = {k: v for k, v in self._by_name.items() if v is not tenant}

    def add_tenant(self, tenant: Tenant) -> Tenant:
        with self.lock:
            tenant.id = tenant.id.lower()
            tenant.domains = [d.lower() for d in tenant.domains]
            if not tenant.domains:
                raise DirectoryError(f"tenant {tenant.id} needs at least one domain")
            clash = [k for k in [tenant.id, *tenant.domains] if k in self._by_name]
            if clash:
                raise DirectoryError(f"tenant id or domain already in use: {', '.join(clash)}")
            self._tenants[tenant.id] = tenant
            for key in [tenant.id, *tenant.domains]:
                self._by_name[key] = tenant
            return tenant

    def tenant(self, key: str) -> Tenant | None:
        """A tenant by GUID or domain name (`contoso.onmicrosoft.com`), ignoring case."""
        return self._by_name.get(key.strip().lower())
