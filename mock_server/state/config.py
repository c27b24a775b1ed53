"""Tenant files (YAML or JSON) in and out, and the built-in demo tenant.

The format is documented in docs/tenant-file.md. Ids left out of a file are derived from names, so the same
file gives the same ids on every start; secret values left out are generated and reported once.
"""

from __future__ import annotations

import json
import random
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from mock_server.identity import keys
from mock_server.state.directory import (
    Application,
    Certificate,
    ClientSecret,
    Directory,
    DirectoryError,
    Group,
    Mailbox,
    Tenant,
    canonical_permission,
)

ID_NAMESPACE = uuid.UUID("6d1f3a52-8c1e-4a4f-9b57-0d3f6e2b9a10")
SECRET_ALPHABET = string.ascii_letters + string.digits + "_-.~"
DEFAULT_SECRET_DAYS = 730
DEFAULT_TOKEN_LIFETIME = 3599


class ConfigError(ValueError):
    """A tenant file that cannot be loaded; the message names the place in the file."""


@dataclass
class Settings:
    """Emulator-wide settings a tenant file may carry under `settings:`."""

    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    max_body_bytes: int = 4 * 1024 * 1024
    propagation_delay: int = 0
    nested_group_membership: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_lifetime": self.token_lifetime,
            "max_body_bytes": self.max_body_bytes,
            "propagation_delay": self.propagation_delay,
            "nested_group_membership": self.nested_group_membership,
        }


@dataclass
class GeneratedSecret:
    """A secret whose value the tenant file left out; shown to the user once at start-up."""

    tenant_id: str
    app_id: str
    app_name: str
    key_id: str
    value: str


@dataclass
class LoadedWorld:
    directory: Directory
    settings: Settings
    generated_secrets: list[GeneratedSecret] = field(default_factory=list)
    mail: list[MailboxContent] = field(default_factory=list)


@dataclass
class SeedMessage:
    """A message a tenant file puts into a mailbox at start-up."""

    folder: str
    subject: str
    body: str
    body_type: str
    sender: tuple[str, str]
    to: list[str]
    received: datetime | None
    is_read: bool
    importance: str
    categories: list[str]


@dataclass
class MailboxContent:
    """Mail a tenant file asks for in one mailbox: explicit messages and a number of generated ones."""

    mailbox: Mailbox
    messages: list[SeedMessage]
    generate: int = 0


def stable_guid(*parts: str) -> str:
    """A GUID that depends only on `parts`: the same names give the same ids on every start."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(p.lower() for p in parts)))


def new_secret_value(rng: random.Random | None = None) -> str:
    """A value shaped like an Entra client secret: 40 characters with `8Q~` after the hint."""
    rng = rng or random.SystemRandom()
    head = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(3))
    return head + "8Q~" + "".join(rng.choice(SECRET_ALPHABET) for _ in range(34))


# ---------------------------------------------------------------- reading


def read_tenant_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or JSON tenant file into plain data; ConfigError with the reason if it cannot."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read tenant file: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with a 'tenants' list")
    return data


def load_world(
    data: dict[str, Any],
    *,
    now: datetime | None = None,
    base_dir: Path | None = None,
    secret_rng: random.Random | None = None,
) -> LoadedWorld:
    """Build the directory from tenant-file data; ConfigError naming the offending entry."""
    now = now or datetime.now(UTC)
    reader = TenantFileReader(now, base_dir or Path.cwd(), secret_rng)
    settings = reader.settings(data.get("settings") or {})
    tenants_data = data.get("tenants")
    if not isinstance(tenants_data, list) or not tenants_data:
        raise ConfigError("tenants: a non-empty list of tenants is required")
    directory = Directory()
    for i, item in enumerate(tenants_data):
        where = f"tenants[{i}]"
        tenant = reader.tenant(item, where)
        try:
            directory.add_tenant(tenant)
        except DirectoryError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return LoadedWorld(directory, settings, reader.generated, reader.mail)


def load_tenant_file(path: str | Path, *, now: datetime | None = None) -> LoadedWorld:
    path = Path(path)
    return load_world(read_tenant_file(path), now=now, base_dir=path.parent)


class TenantFileReader:
    def __init__(self, now: datetime, base_dir: Path, secret_rng: random.Random | None) -> None:
        self.now = now
        self.base_dir = base_dir
        self.secret_rng = secret_rng
        self.generated: list[GeneratedSecret] = []
        self.mail: list[MailboxContent] = []

    @staticmethod
    def _mapping(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return value

    @staticmethod
    def _list(value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return value

    @staticmethod
    def _text(item: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = item.get(key, default)
        if value is None:
            raise ConfigError(f"{where}.{key}: required")
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
            raise ConfigError(f"{where}.{key}: expected a non-empty string")
        return str(value).strip()

    @staticmethod
    def _bool(item: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = item.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}: expected true or false")
        return value

    @staticmethod
    def _guid(value: str, where: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a GUID") from None

    def _date(self, value: Any, where: str) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not an ISO 8601 date-time") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise ConfigError(f"{where}: expected an ISO 8601 date-time")

    def settings(self, data: Any) -> Settings:
        data = self._mapping(data, "settings")
        settings = Settings()
        for key in ("token_lifetime", "max_body_bytes"):
            if key in data:
                value = data[key]
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    raise ConfigError(f"settings.{key}: expected a positive whole number")
                setattr(settings, key, value)
        if "propagation_delay" in data:
            value = data["propagation_delay"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError("settings.propagation_delay: expected a whole number of seconds, 0 or more")
            settings.propagation_delay = value
        settings.nested_group_membership = self._bool(data, "nested_group_membership", "settings", True)
        unknown = set(data) - set(Settings().to_dict())
        if unknown:
            raise ConfigError(f"settings: unknown keys {sorted(unknown)}")
        return settings

    def tenant(self, item: Any, where: str) -> Tenant:
        item = self._mapping(item, where)
        domains = [str(d).strip().lower() for d in self._list(item.get("domains"), f"{where}.domains")]
        if not domains or any("." not in d for d in domains):
            raise ConfigError(f"{where}.domains: at least one domain name such as contoso.onmicrosoft.com")
        tid = self._guid(self._text(item, "id", where, stable_guid("tenant", domains[0])), f"{where}.id")
        tenant = Tenant(id=tid, domains=domains, display_name=str(item.get("name") or domains[0].split(".")[0]))
        for i, entry in enumerate(self._list(item.get("mailboxes"), f"{where}.mailboxes")):
            self._add(
                tenant.add_mailbox, self.mailbox(entry, tenant, f"{where}.mailboxes[{i}]"), f"{where}.mailboxes[{i}]"
            )
        for i, entry in enumerate(self._list(item.get("groups"), f"{where}.groups")):
            self._add(tenant.add_group, self.group(entry, tenant, f"{where}.groups[{i}]"), f"{where}.groups[{i}]")
        for i, entry in enumerate(self._list(item.get("applications"), f"{where}.applications")):
            app_where = f"{where}.applications[{i}]"
            self._add(tenant.add_application, self.application(entry, tenant, app_where), app_where)
        self.rules(item, tenant, where)
        return tenant

    def _app_key(self, tenant: Tenant, value: Any, where: str) -> str:
        """An app named by id or display name in a rule; `*` passes through."""
        text = str(value).strip()
        if text == "*":
            return text
        for app in tenant.applications.values():
            if text.lower() in (app.app_id, app.display_name.lower()):
                return app.app_id
        if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", text):
            raise ConfigError(f"{where}: The AppId '{text}' isn't valid: give application ids (GUIDs) or *.")
        return text.lower()

    def rules(self, item: dict[str, Any], tenant: Tenant, where: str) -> None:
        """Access policies, service principals, management scopes and role assignments (in force at start)."""
        readers = (
            ("access_policies", self.access_policy),
            ("service_principals", self.service_principal),
            ("management_scopes", self.management_scope),
            ("role_assignments", self.role_assignment),
        )
        for key, reader in readers:
            for i, entry in enumerate(self._list(item.get(key), f"{where}.{key}")):
                reader(entry, tenant, f"{where}.{key}[{i}]")

    def _rule(self, where: str, change: Any) -> Any:
        try:
            return change()
        except DirectoryError as exc:
            raise ConfigError(f"{where}: {exc}") from exc

    def access_policy(self, entry: Any, tenant: Tenant, where: str, *, now: float = 0.0, delay: float = 0.0):
        from mock_server.state import policies

        entry = self._mapping(entry, where)
        apps = entry.get("app_id", entry.get("app"))
        apps = apps if isinstance(apps, list) else [apps]
        identity = self._guid(self._text(entry, "id", where, stable_guid(tenant.id, "policy", where)), f"{where}.id")
        app_ids = [self._app_key(tenant, a, f"{where}.app_id") for a in apps if a is not None]
        description = entry.get("description")
        if description is not None and not isinstance(description, str):
            raise ConfigError(f"{where}.description: expected a string")
        return self._rule(
            where,
            lambda: policies.new_access_policy(
                tenant,
                app_ids=app_ids,
                scope=self._text(entry, "scope", where),
                access_right=self._text(entry, "access_right", where),
                description=description,
                now=now,
                delay=delay,
                identity=identity,
            ),
        )

    def service_principal(self, entry: Any, tenant: Tenant, where: str):
        from mock_server.state import policies

        entry = self._mapping(entry, where)
        app_id = self._app_key(tenant, self._text(entry, "app_id", where), f"{where}.app_id")
        return self._rule(
            where,
            lambda: policies.new_service_principal(
                tenant, app_id=app_id, object_id=entry.get("object_id"), display_name=entry.get("display_name")
            ),
        )

    def management_scope(self, entry: Any, tenant: Tenant, where: str):
        from mock_server.state import policies

        entry = self._mapping(entry, where)
        return self._rule(
            where,
            lambda: policies.new_management_scope(
                tenant, name=self._text(entry, "name", where), recipient_filter=self._text(entry, "filter", where)
            ),
        )

    def role_assignment(self, entry: Any, tenant: Tenant, where: str, *, now: float = 0.0, delay: float = 0.0):
        from mock_server.state import policies

        entry = self._mapping(entry, where)
        scope = entry.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise ConfigError(f"{where}.scope: expected the name of a management scope")
        return self._rule(
            where,
            lambda: policies.new_role_assignment(
                tenant,
                role=self._text(entry, "role", where),
                app=self._text(entry, "app_id", where),
                scope_name=scope,
                name=entry.get("name"),
                now=now,
                delay=delay,
            ),
        )

    @staticmethod
    def _add(adder, value, where: str) -> None:
        try:
            adder(value)
        except DirectoryError as exc:
            raise ConfigError(f"{where}: {exc}") from exc

    def mailbox(self, item: Any, tenant: Tenant, where: str) -> Mailbox:
        item = self._mapping(item, where)
        address = self._text(item, "address", where).lower()
        local = address.split("@")[0]
        mailbox = self._mailbox_only(item, tenant, where, address, local)
        generate = item.get("generate", 0)
        if not isinstance(generate, int) or isinstance(generate, bool) or not 0 <= generate <= 200_000:
            raise ConfigError(f"{where}.generate: expected a whole number of messages from 0 to 200000")
        messages = [
            self.seed_message(m, f"{where}.messages[{i}]", address)
            for i, m in enumerate(self._list(item.get("messages"), f"{where}.messages"))
        ]
        if messages or generate:
            self.mail.append(MailboxContent(mailbox, messages, generate))
        return mailbox

    def seed_message(self, item: Any, where: str, owner: str) -> SeedMessage:
        item = self._mapping(item, where)
        known = {"folder", "subject", "body", "body_type", "from", "to", "received", "read", "importance", "categories"}
        unknown = set(item) - known
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        sender = self._text(item, "from", where, "sender@external.example")
        name, _, address = sender.rpartition("<")
        address = address.rstrip(">").strip() if "<" in sender else sender
        if "@" not in address:
            raise ConfigError(f"{where}.from: {sender!r} is not an email address (or 'Name <address>')")
        body_type = self._text(item, "body_type", where, "text").lower()
        if body_type not in ("text", "html"):
            raise ConfigError(f"{where}.body_type: expected text or html")
        importance = self._text(item, "importance", where, "normal").lower()
        if importance not in ("low", "normal", "high"):
            raise ConfigError(f"{where}.importance: expected low, normal or high")
        return SeedMessage(
            folder=self._text(item, "folder", where, "inbox"),
            subject=str(item.get("subject", "")),
            body=str(item.get("body", "")),
            body_type=body_type,
            sender=(name.strip().strip('"') or address, address),
            to=[str(a) for a in self._list(item.get("to"), f"{where}.to")] or [owner],
            received=self._date(item["received"], f"{where}.received") if "received" in item else None,
            is_read=self._bool(item, "read", where, False),
            importance=importance,
            categories=[str(c) for c in self._list(item.get("categories"), f"{where}.categories")],
        )

    def _mailbox_only(self, item: dict[str, Any], tenant: Tenant, where: str, address: str, local: str) -> Mailbox:
        return Mailbox(
            id=self._guid(self._text(item, "id", where, stable_guid(tenant.id, "mailbox", address)), f"{where}.id"),
            address=address,
            display_name=self._text(item, "display_name", where, local.replace(".", " ").title()),
            kind=self._text(item, "type", where, "user").lower(),
            aliases=[str(a).strip().lower() for a in self._list(item.get("aliases"), f"{where}.aliases")],
            custom_attributes=self._custom_attributes(item.get("custom_attributes"), f"{where}.custom_attributes"),
        )

    def _custom_attributes(self, value: Any, where: str) -> dict[int, str]:
        if value is None:
            return {}
        attributes = {}
        for key, text in self._mapping(value, where).items():
            number = str(key).lower().removeprefix("customattribute")
            if not number.isdigit() or not 1 <= int(number) <= 15:
                raise ConfigError(f"{where}: {key!r} is not CustomAttribute1..15 (or 1..15)")
            attributes[int(number)] = str(text)
        return attributes

    def group(self, item: Any, tenant: Tenant, where: str) -> Group:
        item = self._mapping(item, where)
        address = self._text(item, "address", where).lower()
        return Group(
            id=self._guid(self._text(item, "id", where, stable_guid(tenant.id, "group", address)), f"{where}.id"),
            display_name=self._text(item, "display_name", where, address.split("@")[0]),
            address=address,
            members=[str(m).strip() for m in self._list(item.get("members"), f"{where}.members")],
        )

    def application(self, item: Any, tenant: Tenant, where: str) -> Application:
        item = self._mapping(item, where)
        name = self._text(item, "display_name", where)
        app_id = self._guid(self._text(item, "app_id", where, stable_guid(tenant.id, "app", name)), f"{where}.app_id")
        try:
            permissions = [canonical_permission(p) for p in self._list(item.get("permissions"), f"{where}.permissions")]
        except DirectoryError as exc:
            raise ConfigError(f"{where}.permissions: {exc}") from exc
        app = Application(
            app_id=app_id,
            display_name=name,
            object_id=self._guid(
                self._text(item, "object_id", where, stable_guid(app_id, "object")), f"{where}.object_id"
            ),
            service_principal_id=self._guid(
                self._text(item, "service_principal_id", where, stable_guid(tenant.id, app_id, "sp")),
                f"{where}.service_principal_id",
            ),
            permissions=list(dict.fromkeys(permissions)),
            consent_granted=self._bool(item, "admin_consent", where, True),
            enabled=self._bool(item, "enabled", where, True),
        )
        for i, entry in enumerate(self._list(item.get("secrets"), f"{where}.secrets")):
            app.secrets.append(self.secret(entry, tenant, app, f"{where}.secrets[{i}]"))
        for i, entry in enumerate(self._list(item.get("certificates"), f"{where}.certificates")):
            app.certificates.append(self.certificate(entry, app, f"{where}.certificates[{i}]"))
        return app

    def secret(self, item: Any, tenant: Tenant, app: Application, where: str) -> ClientSecret:
        item = self._mapping(item or {}, where)
        index = len(app.secrets)
        key_id = self._guid(self._text(item, "id", where, stable_guid(app.app_id, "secret", str(index))), f"{where}.id")
        start = self._date(item["starts"], f"{where}.starts") if "starts" in item else self.now
        if "expires" in item:
            end = self._date(item["expires"], f"{where}.expires")
        else:
            days = item.get("expires_in_days", DEFAULT_SECRET_DAYS)
            if not isinstance(days, int | float) or isinstance(days, bool) or not -36500 <= days <= 36500:
                raise ConfigError(f"{where}.expires_in_days: expected a number of days (at most 36500 either way)")
            end = self.now + timedelta(days=days)
        if "value" in item:
            value = self._text(item, "value", where)
        else:
            value = new_secret_value(self.secret_rng)
            self.generated.append(GeneratedSecret(tenant.id, app.app_id, app.display_name, key_id, value))
        return ClientSecret(
            key_id=key_id, value=value, start=start, end=end, display_name=str(item.get("display_name") or "")
        )

    def certificate(self, item: Any, app: Application, where: str) -> Certificate:
        item = self._mapping(item, where)
        if "pem" in item:
            pem = self._text(item, "pem", where)
        elif "file" in item:
            path = self.base_dir / self._text(item, "file", where)
            try:
                pem = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise ConfigError(f"{where}.file: cannot read {path}: {exc}") from exc
        else:
            raise ConfigError(f"{where}: give the public certificate as 'pem' or 'file'")
        try:
            cert = keys.load_certificate(pem)
        except ValueError as exc:
            raise ConfigError(f"{where}: not a PEM certificate: {exc}") from exc
        key_id = self._guid(
            self._text(item, "id", where, stable_guid(app.app_id, "cert", keys.b64url(keys.thumbprint_sha1(cert)))),
            f"{where}.id",
        )
        return Certificate(key_id=key_id, certificate=cert, display_name=str(item.get("display_name") or ""))


# ---------------------------------------------------------------- writing


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump_world(directory: Directory, settings: Settings) -> dict[str, Any]:
    """The whole directory as tenant-file data; `load_world(dump_world(...))` rebuilds the same world."""
    tenants = [dump_tenant(tenant) for tenant in directory.tenants]
    return {"settings": settings.to_dict(), "tenants": tenants}


def dump_tenant(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.display_name,
        "domains": list(tenant.domains),
        "mailboxes": [dump_mailbox(m) for m in tenant.mailboxes.values()],
        "groups": [dump_group(g) for g in tenant.groups.values()],
        "applications": [dump_application(a) for a in tenant.applications.values()],
        **dump_rules(tenant),
    }


def dump_mailbox(mailbox: Mailbox) -> dict[str, Any]:
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


# ---------------------------------------------------------------- the demo tenant

DEMO_DOMAINS = ["contoso.onmicrosoft.com", "contoso.com"]
DEMO_APP_NAME = "Contact Center Connector"
DEMO_SEED = 365
DEMO_MAIL: dict[str, dict[str, Any]] = {
    "support": {
        "generate": 12,
        "messages": [
            {
                "subject": "Order #10423 arrived damaged",
                "from": "Adele Vance <adele.vance@fabrikam.example>",
                "body": "Hello, the parcel arrived with a broken lid. Can you send a replacement? Adele",
            }
        ],
    },
    "sales": {"generate": 5},
    "billing": {"generate": 3},
}


def demo_tenant_data() -> dict[str, Any]:
    """The built-in tenant: the setup an admin performs for a contact-centre mail connector.

    Deterministic: the same ids, names and secret on every start (Faker and the secret use a fixed seed).
    """
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(DEMO_SEED)
    domain = DEMO_DOMAINS[0]
    users = []
    for _ in range(4):
        first, last = fake.unique.first_name(), fake.unique.last_name()
        local = f"{first}.{last}".lower()
        users.append(
            {
                "address": f"{local}@{domain}",
                "display_name": f"{first} {last}",
                "type": "user",
                "aliases": [f"{local}@{DEMO_DOMAINS[1]}"],
            }
        )
    shared = [
        ("support", "Customer Support"),
        ("sales", "Sales"),
        ("billing", "Billing"),
    ]
    return {
        "tenants": [
            {
                "name": "Contoso",
                "domains": list(DEMO_DOMAINS),
                "mailboxes": [
                    {
                        "address": f"{local}@{domain}",
                        "display_name": name,
                        "type": "shared",
                        "aliases": [f"{local}@{DEMO_DOMAINS[1]}"],
                        **DEMO_MAIL.get(local, {}),
                    }
                    for local, name in shared
                ]
                + users,
                "groups": [
                    {
                        "address": f"cctr_sec_group@{domain}",
                        "display_name": "cctr_sec_group",
                        "members": [f"support@{domain}", f"billing@{domain}"],
                    }
                ],
                "applications": [
                    {
                        "display_name": DEMO_APP_NAME,
                        "permissions": ["Mail.ReadWrite", "Mail.Send"],
                        "admin_consent": True,
                        "secrets": [{"display_name": "demo", "value": new_secret_value(random.Random(DEMO_SEED))}],
                    }
                ],
                "access_policies": [
                    {
                        "app_id": DEMO_APP_NAME,
                        "scope": f"cctr_sec_group@{domain}",
                        "access_right": "RestrictAccess",
                        "description": "Restrict this app to members of distribution group cctr_sec_group",
                    }
                ],
            }
        ],
    }


def load_demo_world(now: datetime | None = None) -> LoadedWorld:
    return load_world(demo_tenant_data(), now=now)
