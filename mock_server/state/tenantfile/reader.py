"""Tenant files in: read the text, check it against the schema, build the tenant world.

The format is documented in docs/tenant-file.md; its JSON Schema is in schema.py. Ids left out of a file are
derived from names, so the same file gives the same ids on every start; secret values left out are generated and
reported once. The schema judges the shape of the data (keys, types, enumerations) before anything is built; the
reader checks what it cannot: GUIDs, date-times, permission names, domains, and Exchange's rules.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from m365_mock.identity import keys
from m365_mock.state.directory import (
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
from m365_mock.state.faults import FaultRule, RuleRefused, read_rules
from m365_mock.state.mailstate import MailStateError, outbound_from_record, restore_mail
from m365_mock.state.mailstore import MailboxStore, OutboundMail
from m365_mock.state.tenantfile.problems import ConfigError, dotted, from_message, refusal
from m365_mock.state.tenantfile.source import Source, decode, find_places, one_line, parse
from m365_mock.state.tenantfile.validate import NO_FILES, problems
from m365_mock.state.throttling import ThrottlingSettings

ID_NAMESPACE = uuid.UUID("6d1f3a52-8c1e-4a4f-9b57-0d3f6e2b9a10")
SECRET_ALPHABET = string.ascii_letters + string.digits + "_-.~"
DEFAULT_SECRET_DAYS = 730
DEFAULT_TOKEN_LIFETIME = 3599
NOT_A_MAPPING = "the top level must be a mapping with a 'tenants' list"


def utc_now_seconds() -> datetime:
    """Restored stores' clock until the emulator's mail store adopts them."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Settings:
    """Emulator-wide settings a tenant file may carry under `settings:`."""

    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    max_body_bytes: int = 4 * 1024 * 1024
    propagation_delay: int = 0
    nested_group_membership: bool = True
    persist: bool = False
    throttling: ThrottlingSettings = field(default_factory=ThrottlingSettings)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "token_lifetime": self.token_lifetime,
            "max_body_bytes": self.max_body_bytes,
            "propagation_delay": self.propagation_delay,
            "nested_group_membership": self.nested_group_membership,
            "persist": self.persist,
        }
        if self.throttling != ThrottlingSettings():
            data["throttling"] = self.throttling.to_dict()
        return data


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
    outbound: list[OutboundMail] = field(default_factory=list)
    faults: list[FaultRule] = field(default_factory=list)


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
    """Mail a tenant file asks for in one mailbox: explicit messages and a number of generated ones, or
    (`state`) the exact mail an export wrote, restored once into `store` when the world is loaded."""

    mailbox: Mailbox
    messages: list[SeedMessage]
    generate: int = 0
    state: dict[str, Any] | None = None
    store: MailboxStore | None = field(default=None, repr=False)
    where: str = ""


def stable_guid(*parts: str) -> str:
    """A GUID that depends only on `parts`: the same names give the same ids on every start."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(p.lower() for p in parts)))


def new_secret_value(rng: random.Random | None = None) -> str:
    """A value shaped like an Entra client secret: 40 characters with `8Q~` after the hint."""
    rng = rng or random.SystemRandom()
    head = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(3))
    return head + "8Q~" + "".join(rng.choice(SECRET_ALPHABET) for _ in range(34))


# ---------------------------------------------------------------- reading


def read_source(path: str | Path) -> Source:
    """A tenant file parsed and checked against the schema: ConfigError naming the file, and the line, column
    and key path of every problem (all of them, in file order)."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read tenant file: {exc.strerror or exc}") from exc
    source = parse(name, decode(name, raw), as_json=path.suffix.lower() == ".json")
    if not isinstance(source.data, dict):
        raise one_line(name, NOT_A_MAPPING)
    found = problems(source.data)
    if source.problems or found:
        if not source.places:
            find_places(source)
        raise refusal([source.locate(p) for p in [*source.problems, *found]], name)
    return source


def read_tenant_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or JSON tenant file into plain data checked against the schema; ConfigError if it cannot."""
    return read_source(path).data


def load_world(
    data: dict[str, Any],
    *,
    now: datetime | None = None,
    base_dir: Path | None = None,
    secret_rng: random.Random | None = None,
    mail_written_here: bool = False,
) -> LoadedWorld:
    """Build the world from tenant-file data; ConfigError naming every offending place.

    `base_dir` is the folder certificate `file`s are read from; None (data from the control API) reads no files.
    `mail_written_here`: the `mail` entries come from this emulator's own world file, so the schema is not run
    over every message again (restoring still refuses what it cannot put back).
    """
    if not isinstance(data, dict):
        raise ConfigError(NOT_A_MAPPING)
    found = problems(_without_mail(data) if mail_written_here else data, files=base_dir is not None)
    if found:
        raise refusal(found)
    try:
        return _build(data, now, base_dir, secret_rng, trusted_mail=mail_written_here)
    except ConfigError as exc:
        problem = from_message(str(exc))
        raise (exc if problem is None else refusal([problem])) from None


def load_tenant_file(path: str | Path, *, now: datetime | None = None) -> LoadedWorld:
    path = Path(path)
    source = read_source(path)
    try:
        return _build(source.data, now, path.parent, None)
    except ConfigError as exc:
        raise _located(exc, source) from None


def _located(exc: ConfigError, source: Source) -> ConfigError:
    """The reader's refusal (`tenants[0].id: ...`) with the file, line and column in front."""
    problem = from_message(str(exc))
    if problem is None:
        return ConfigError(f"{source.name}: {exc}")
    return refusal([source.locate(problem)], source.name)


def _without_mail(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the mailboxes' `mail` and the `outbound` log left out (the rest is shared, not copied)."""
    tenants = []
    for tenant in data.get("tenants") or []:
        if isinstance(tenant, dict) and isinstance(tenant.get("mailboxes"), list):
            boxes = [
                {k: v for k, v in box.items() if k != "mail"} if isinstance(box, dict) else box
                for box in tenant["mailboxes"]
            ]
            tenant = {**tenant, "mailboxes": boxes}
        tenants.append(tenant)
    return {k: (tenants if k == "tenants" else v) for k, v in data.items() if k != "outbound"}


def _build(
    data: dict[str, Any],
    now: datetime | None,
    base_dir: Path | None,
    rng: random.Random | None,
    *,
    trusted_mail: bool = False,
) -> LoadedWorld:
    reader = TenantFileReader(now or datetime.now(UTC), base_dir, rng)
    settings = reader.settings(data.get("settings"))
    directory = Directory()
    for i, item in enumerate(data["tenants"]):
        where = f"tenants[{i}]"
        tenant = reader.tenant(item, where)
        try:
            directory.add_tenant(tenant)
        except DirectoryError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    for content in reader.mail:
        if content.state is not None:
            try:
                content.store = restore_mail(
                    content.mailbox, utc_now_seconds, content.state, f"{content.where}.mail", trusted=trusted_mail
                )
            except MailStateError as exc:
                raise ConfigError(str(exc)) from None
    outbound = []
    for i, record in enumerate(data.get("outbound") or []):
        try:
            outbound.append(outbound_from_record(record, f"outbound[{i}]"))
        except MailStateError as exc:
            raise ConfigError(str(exc)) from None
    try:
        faults = read_rules(data.get("faults") or [])
    except RuleRefused as exc:
        raise ConfigError(f"{dotted(exc.path)}: {exc.message}") from None
    return LoadedWorld(directory, settings, reader.generated, reader.mail, outbound, faults)


class TenantFileReader:
    """Builds the objects of a tenant world from entries the schema has already checked.

    The control API uses it too, for one object at a time (after checking its body against the schema's
    definition of that object); `base_dir` None reads no certificate files.
    """

    def __init__(self, now: datetime, base_dir: Path | None, secret_rng: random.Random | None) -> None:
        self.now = now
        self.base_dir = base_dir
        self.secret_rng = secret_rng
        self.generated: list[GeneratedSecret] = []
        self.mail: list[MailboxContent] = []

    @staticmethod
    def _text(item: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = item.get(key)
        if value is None:
            value = default
        if value is None:
            raise ConfigError(f"{where}.{key}: required")
        if str(value).strip() == "":
            raise ConfigError(f"{where}.{key}: expected a non-empty string")
        return str(value).strip()

    @staticmethod
    def _guid(value: str, where: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a GUID") from None

    def _date(self, value: Any, where: str) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an ISO 8601 date-time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def settings(self, data: dict[str, Any] | None) -> Settings:
        values = dict(data or {})
        if "throttling" in values:
            values["throttling"] = ThrottlingSettings(**(values["throttling"] or {}))
        return Settings(**values)

    def tenant(self, item: dict[str, Any], where: str) -> Tenant:
        domains = [str(d).strip().lower() for d in item["domains"]]
        if any("." not in d for d in domains):
            raise ConfigError(f"{where}.domains: at least one domain name such as contoso.onmicrosoft.com")
        tid = self._guid(self._text(item, "id", where, stable_guid("tenant", domains[0])), f"{where}.id")
        tenant = Tenant(id=tid, domains=domains, display_name=str(item.get("name") or domains[0].split(".")[0]))
        for i, entry in enumerate(item.get("mailboxes") or []):
            self._add(
                tenant.add_mailbox, self.mailbox(entry, tenant, f"{where}.mailboxes[{i}]"), f"{where}.mailboxes[{i}]"
            )
        for i, entry in enumerate(item.get("groups") or []):
            self._add(tenant.add_group, self.group(entry, tenant, f"{where}.groups[{i}]"), f"{where}.groups[{i}]")
        for i, entry in enumerate(item.get("applications") or []):
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
            for i, entry in enumerate(item.get(key) or []):
                reader(entry, tenant, f"{where}.{key}[{i}]")

    def _rule(self, where: str, change: Any) -> Any:
        try:
            return change()
        except DirectoryError as exc:
            raise ConfigError(f"{where}: {exc}") from exc

    def access_policy(self, entry: dict[str, Any], tenant: Tenant, where: str, *, now: float = 0.0, delay: float = 0.0):
        from m365_mock.state import policies

        apps = entry.get("app_id")
        apps = apps if isinstance(apps, list) else [apps]
        identity = self._guid(self._text(entry, "id", where, stable_guid(tenant.id, "policy", where)), f"{where}.id")
        app_ids = [self._app_key(tenant, a, f"{where}.app_id") for a in apps if a is not None]
        return self._rule(
            where,
            lambda: policies.new_access_policy(
                tenant,
                app_ids=app_ids,
                scope=self._text(entry, "scope", where),
                access_right=self._text(entry, "access_right", where),
                description=entry.get("description"),
                now=now,
                delay=delay,
                identity=identity,
            ),
        )

    def service_principal(self, entry: dict[str, Any], tenant: Tenant, where: str):
        from m365_mock.state import policies

        app_id = self._app_key(tenant, self._text(entry, "app_id", where), f"{where}.app_id")
        return self._rule(
            where,
            lambda: policies.new_service_principal(
                tenant, app_id=app_id, object_id=entry.get("object_id"), display_name=entry.get("display_name")
            ),
        )

    def management_scope(self, entry: dict[str, Any], tenant: Tenant, where: str):
        from m365_mock.state import policies

        return self._rule(
            where,
            lambda: policies.new_management_scope(
                tenant, name=self._text(entry, "name", where), recipient_filter=self._text(entry, "filter", where)
            ),
        )

    def role_assignment(
        self, entry: dict[str, Any], tenant: Tenant, where: str, *, now: float = 0.0, delay: float = 0.0
    ):
        from m365_mock.state import policies

        return self._rule(
            where,
            lambda: policies.new_role_assignment(
                tenant,
                role=self._text(entry, "role", where),
                app=self._text(entry, "app_id", where),
                scope_name=entry.get("scope"),
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

    def mailbox(self, item: dict[str, Any], tenant: Tenant, where: str) -> Mailbox:
        address = self._text(item, "address", where).lower()
        local = address.split("@")[0]
        mailbox = self._mailbox_only(item, tenant, where, address, local)
        generate = item.get("generate") or 0
        messages = [
            self.seed_message(m, f"{where}.messages[{i}]", address) for i, m in enumerate(item.get("messages") or [])
        ]
        state = item.get("mail")
        if state is not None:
            if messages or generate:
                raise ConfigError(f"{where}.mail: exact mail and 'messages'/'generate' exclude each other")
            self.mail.append(MailboxContent(mailbox, [], 0, state=state, where=where))
        elif messages or generate:
            self.mail.append(MailboxContent(mailbox, messages, generate))
        return mailbox

    def seed_message(self, item: dict[str, Any], where: str, owner: str) -> SeedMessage:
        sender = self._text(item, "from", where, "sender@external.example")
        name, _, address = sender.rpartition("<")
        address = address.rstrip(">").strip() if "<" in sender else sender
        if "@" not in address:
            raise ConfigError(f"{where}.from: {sender!r} is not an email address (or 'Name <address>')")
        return SeedMessage(
            folder=self._text(item, "folder", where, "inbox"),
            subject=str(item.get("subject", "")),
            body=str(item.get("body", "")),
            body_type=self._text(item, "body_type", where, "text").lower(),
            sender=(name.strip().strip('"') or address, address),
            to=[str(a) for a in item.get("to") or []] or [owner],
            received=self._date(item["received"], f"{where}.received") if "received" in item else None,
            is_read=bool(item.get("read", False)),
            importance=self._text(item, "importance", where, "normal").lower(),
            categories=[str(c) for c in item.get("categories") or []],
        )

    def _mailbox_only(self, item: dict[str, Any], tenant: Tenant, where: str, address: str, local: str) -> Mailbox:
        return Mailbox(
            id=self._guid(self._text(item, "id", where, stable_guid(tenant.id, "mailbox", address)), f"{where}.id"),
            address=address,
            display_name=self._text(item, "display_name", where, local.replace(".", " ").title()),
            kind=self._text(item, "type", where, "user").lower(),
            aliases=[str(a).strip().lower() for a in item.get("aliases") or []],
            custom_attributes=self._custom_attributes(item.get("custom_attributes"), f"{where}.custom_attributes"),
        )

    def _custom_attributes(self, value: Any, where: str) -> dict[int, str]:
        """CustomAttribute1..15 by number; checked here too, as a mailbox's PATCH body is not a tenant-file entry."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        attributes = {}
        for key, text in value.items():
            number = str(key).lower().removeprefix("customattribute")
            if not number.isdigit() or not 1 <= int(number) <= 15:
                raise ConfigError(f"{where}: {key!r} is not CustomAttribute1..15 (or 1..15)")
            attributes[int(number)] = str(text)
        return attributes

    def group(self, item: dict[str, Any], tenant: Tenant, where: str) -> Group:
        address = self._text(item, "address", where).lower()
        return Group(
            id=self._guid(self._text(item, "id", where, stable_guid(tenant.id, "group", address)), f"{where}.id"),
            display_name=self._text(item, "display_name", where, address.split("@")[0]),
            address=address,
            members=[str(m).strip() for m in item.get("members") or []],
        )

    def application(self, item: dict[str, Any], tenant: Tenant, where: str) -> Application:
        name = self._text(item, "display_name", where)
        app_id = self._guid(self._text(item, "app_id", where, stable_guid(tenant.id, "app", name)), f"{where}.app_id")
        try:
            permissions = [canonical_permission(p) for p in item.get("permissions") or []]
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
            consent_granted=bool(item.get("admin_consent", True)),
            enabled=bool(item.get("enabled", True)),
        )
        for i, entry in enumerate(item.get("secrets") or []):
            app.secrets.append(self.secret(entry, tenant, app, f"{where}.secrets[{i}]"))
        for i, entry in enumerate(item.get("certificates") or []):
            app.certificates.append(self.certificate(entry, app, f"{where}.certificates[{i}]"))
        return app

    def secret(self, item: dict[str, Any], tenant: Tenant, app: Application, where: str) -> ClientSecret:
        index = len(app.secrets)
        key_id = self._guid(self._text(item, "id", where, stable_guid(app.app_id, "secret", str(index))), f"{where}.id")
        start = self._date(item["starts"], f"{where}.starts") if "starts" in item else self.now
        if "expires" in item:
            end = self._date(item["expires"], f"{where}.expires")
        else:
            end = self.now + timedelta(days=item.get("expires_in_days", DEFAULT_SECRET_DAYS))
        if "value" in item:
            value = self._text(item, "value", where)
        else:
            value = new_secret_value(self.secret_rng)
            self.generated.append(GeneratedSecret(tenant.id, app.app_id, app.display_name, key_id, value))
        return ClientSecret(
            key_id=key_id, value=value, start=start, end=end, display_name=str(item.get("display_name") or "")
        )

    def certificate(self, item: dict[str, Any], app: Application, where: str) -> Certificate:
        if "file" in item and "pem" not in item:
            if self.base_dir is None:
                raise ConfigError(f"{where}.file: {NO_FILES}")
            path = self.base_dir / self._text(item, "file", where)
            try:
                pem = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise ConfigError(f"{where}.file: cannot read {path}: {exc}") from exc
        else:
            pem = self._text(item, "pem", where)
        try:
            cert = keys.load_certificate(pem)
        except ValueError as exc:
            raise ConfigError(f"{where}: not a PEM certificate: {exc}") from exc
        key_id = self._guid(
            self._text(item, "id", where, stable_guid(app.app_id, "cert", keys.b64url(keys.thumbprint_sha1(cert)))),
            f"{where}.id",
        )
        return Certificate(key_id=key_id, certificate=cert, display_name=str(item.get("display_name") or ""))
