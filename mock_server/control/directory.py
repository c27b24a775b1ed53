"""Control API: tenants, applications (secrets, certificates, permissions, consent), mailboxes and groups.

Bodies and answers use the tenant-file field names (docs/tenant-file.md), so what a tenant file says and what
the control API takes are the same thing.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, request

from m365_mock.control import errors
from m365_mock.control import schemas as s
from m365_mock.control.api import Query, route
from m365_mock.control.fields import (
    bool_field,
    entry_body,
    json_object,
    known_fields,
    list_field,
    name_field,
    tenant_for,
)
from m365_mock.state.content import seed_mailboxes
from m365_mock.state.directory import Application, DirectoryError, Group, Mailbox, Tenant, canonical_permission
from m365_mock.state.tenantfile import (
    ConfigError,
    TenantFileReader,
    dump_application,
    dump_certificate,
    dump_group,
    dump_mailbox,
    dump_secret,
)
from m365_mock.web import current_emulator, json_response


def reader() -> TenantFileReader:
    """The tenant-file reader for one object of a control request: it reads no files."""
    return TenantFileReader(current_emulator().clock.now_datetime(), None, None)


def read(build: Any) -> Any:
    """Run a tenant-file reader on the request body; its ConfigError becomes a 400 naming the field (404 when the
    rules it ran found no object by the name given).

    Readers are given a one-word place (`policy`, `mailbox`, ...); a message about the whole object drops it,
    so Exchange's own words come through as they are.
    """
    try:
        return build()
    except ConfigError as exc:
        message = str(exc)
        head, _, rest = message.partition(": ")
        message = rest if rest and re.fullmatch(r"[A-Za-z_][\w.]*", head) else message
        raise errors.from_reader(exc, message) from None


def created(payload: dict[str, Any]) -> Response:
    return json_response(payload, 201)


def no_content() -> Response:
    return Response(status=204)


NO_CONTENT: dict[int, dict[str, Any] | None] = {204: None}

# ---------------------------------------------------------------- tenants


@route("GET", "/tenants", summary="The emulator's tenants", tag="tenants", answers={200: s.listing(s.ref("Tenant"))})
def list_tenants() -> Response:
    return json_response(
        {
            "value": [
                {"id": t.id, "name": t.display_name, "domains": list(t.domains)}
                for t in current_emulator().directory.tenants
            ]
        }
    )


# ---------------------------------------------------------------- applications


def application_for(tenant: Tenant, key: str) -> Application:
    """An app by id or display name (any case)."""
    app = tenant.application(key)
    if app is None:
        for candidate in tenant.applications.values():
            if candidate.display_name.lower() == key.lower():
                return candidate
        raise errors.ApplicationNotFound(f"Tenant {tenant.id} has no application '{key}'.")
    return app


@route(
    "GET",
    "/tenants/{tenant}/applications",
    summary="App registrations, with their secrets' values",
    tag="applications",
    answers={200: s.listing(s.ref("Application"))},
)
def list_applications(tenant: str) -> Response:
    return json_response({"value": [dump_application(a) for a in tenant_for(tenant).applications.values()]})


@route(
    "POST",
    "/tenants/{tenant}/applications",
    summary="Register an app",
    tag="applications",
    body=s.ref("application"),
    body_required=True,
    answers={201: s.ref("Application")},
    refusals=(errors.InvalidField, errors.ApplicationExists),
)
def create_application(tenant: str) -> Response:
    """Tenant-file fields; secrets left without a value are generated and returned."""
    target = tenant_for(tenant)
    payload = entry_body("application")
    with current_emulator().directory.edit(target) as draft:
        app = read(lambda: reader().application(payload, draft, "application"))
        if draft.application(app.app_id) is not None:
            raise errors.ApplicationExists(f"Application {app.app_id} already exists.")
        draft.add_application(app)
    return created(dump_application(app))


@route(
    "GET",
    "/tenants/{tenant}/applications/{app}",
    summary="One app registration",
    tag="applications",
    answers={200: s.ref("Application")},
    refusals=(errors.ApplicationNotFound,),
)
def get_application(tenant: str, app: str) -> Response:
    return json_response(dump_application(application_for(tenant_for(tenant), app)))


@route(
    "PATCH",
    "/tenants/{tenant}/applications/{app}",
    summary="Change permissions, consent, enabled or display name",
    tag="applications",
    body=s.APPLICATION_CHANGE,
    answers={200: s.ref("Application")},
    refusals=(errors.ApplicationNotFound, errors.UnknownField, errors.InvalidField, errors.InvalidOperation),
)
def update_application(tenant: str, app: str) -> Response:
    """`permissions`, `admin_consent`, `enabled` or `display_name`; tokens issued later carry the change."""
    target = tenant_for(tenant)
    payload = json_object()
    known_fields(payload, ("permissions", "admin_consent", "enabled", "display_name"), "Fields that can change")
    with current_emulator().directory.edit(target) as draft:
        entry = application_for(draft, app)
        permissions = (
            [canonical_permission(p) for p in list_field(payload, "permissions")]
            if "permissions" in payload
            else entry.permissions
        )
        consent = bool_field(payload, "admin_consent", entry.consent_granted)
        enabled = bool_field(payload, "enabled", entry.enabled)
        name = name_field(payload, "display_name", entry.display_name)
        entry.permissions, entry.consent_granted, entry.enabled = list(dict.fromkeys(permissions)), consent, enabled
        entry.display_name = name
    return json_response(dump_application(entry))


@route(
    "DELETE",
    "/tenants/{tenant}/applications/{app}",
    summary="Delete an app registration",
    tag="applications",
    answers=NO_CONTENT,
    refusals=(errors.ApplicationNotFound,),
)
def delete_application(tenant: str, app: str) -> Response:
    with current_emulator().directory.edit(tenant_for(tenant)) as draft:
        draft.remove_application(application_for(draft, app))
    return no_content()


@route(
    "POST",
    "/tenants/{tenant}/applications/{app}/secrets",
    summary="Add a client secret",
    tag="applications",
    body=s.ref("secret"),
    answers={201: s.ref("Secret")},
    refusals=(errors.ApplicationNotFound, errors.InvalidField, errors.SecretExists),
)
def add_secret(tenant: str, app: str) -> Response:
    """`value` (default: generated), `expires` or `expires_in_days`, `starts`, `display_name`."""
    target = tenant_for(tenant)
    payload = entry_body("secret")
    with current_emulator().directory.edit(target) as draft:
        entry = application_for(draft, app)
        secret = read(lambda: reader().secret(payload, draft, entry, "secret"))
        if any(x.key_id == secret.key_id for x in entry.secrets):
            raise errors.SecretExists(f"Secret {secret.key_id} already exists.")
        entry.secrets.append(secret)
    return created(dump_secret(secret))


@route(
    "DELETE",
    "/tenants/{tenant}/applications/{app}/secrets/{secret}",
    summary="Remove a client secret",
    tag="applications",
    answers=NO_CONTENT,
    refusals=(errors.ApplicationNotFound, errors.SecretNotFound),
)
def remove_secret(tenant: str, app: str, secret: str) -> Response:
    with current_emulator().directory.edit(tenant_for(tenant)) as draft:
        entry = application_for(draft, app)
        kept = [x for x in entry.secrets if x.key_id != secret.lower()]
        if len(kept) == len(entry.secrets):
            raise errors.SecretNotFound(f"App {entry.app_id} has no secret {secret}.")
        entry.secrets = kept
    return no_content()


@route(
    "POST",
    "/tenants/{tenant}/applications/{app}/certificates",
    summary="Upload a public certificate",
    tag="applications",
    body=s.ref("certificate"),
    body_required=True,
    answers={201: s.ref("Certificate")},
    refusals=(errors.ApplicationNotFound, errors.InvalidField, errors.CertificateExists),
)
def add_certificate(tenant: str, app: str) -> Response:
    """`pem` and `display_name`; the control API reads no files."""
    target = tenant_for(tenant)
    payload = entry_body("certificate")
    with current_emulator().directory.edit(target) as draft:
        entry = application_for(draft, app)
        cert = read(lambda: reader().certificate(payload, entry, "certificate"))
        if any(c.sha1 == cert.sha1 for c in entry.certificates):
            raise errors.CertificateExists(f"App {entry.app_id} already has that certificate.")
        entry.certificates.append(cert)
    return created(dump_certificate(cert))


@route(
    "DELETE",
    "/tenants/{tenant}/applications/{app}/certificates/{certificate}",
    summary="Remove a certificate (by key id or thumbprint)",
    tag="applications",
    answers=NO_CONTENT,
    refusals=(errors.ApplicationNotFound, errors.CertificateNotFound),
)
def remove_certificate(tenant: str, app: str, certificate: str) -> Response:
    with current_emulator().directory.edit(tenant_for(tenant)) as draft:
        entry = application_for(draft, app)
        key = certificate.lower()
        kept = [c for c in entry.certificates if key not in (c.key_id, c.thumbprint.lower())]
        if len(kept) == len(entry.certificates):
            raise errors.CertificateNotFound(f"App {entry.app_id} has no certificate {certificate}.")
        entry.certificates = kept
    return no_content()


# ---------------------------------------------------------------- mailboxes


def mailbox_for(tenant: Tenant, key: str) -> Mailbox:
    mailbox = tenant.mailbox(key)
    if mailbox is None:
        raise errors.MailboxNotFound(f"Tenant {tenant.id} has no mailbox '{key}'.")
    return mailbox


def _taken(tenant: Tenant, mailbox: Mailbox) -> bool:
    """Whether one of the mailbox's addresses or its id already names something in the tenant."""
    ids = {mailbox.id.lower()}
    return any(tenant.recipient(a) is not None for a in mailbox.addresses()) or bool(
        ids & (set(tenant.mailboxes) | set(tenant.groups))
    )


@route(
    "GET",
    "/tenants/{tenant}/mailboxes",
    summary="User and shared mailboxes",
    tag="mailboxes",
    query=(Query("type", {"enum": ["user", "shared"]}, "Only mailboxes of this type."),),
    answers={200: s.listing(s.ref("Mailbox"))},
    refusals=(errors.InvalidField,),
)
def list_mailboxes(tenant: str) -> Response:
    target = tenant_for(tenant)
    kind = request.args.get("type")
    if kind is not None and kind.lower() not in ("user", "shared"):
        raise errors.InvalidField("'type' must be user or shared.")
    boxes = [m for m in target.mailboxes.values() if kind is None or m.kind == kind.lower()]
    return json_response({"value": [dump_mailbox(m) for m in boxes]})


@route(
    "POST",
    "/tenants/{tenant}/mailboxes",
    summary="Create a mailbox (New-Mailbox, -Shared)",
    tag="mailboxes",
    body=s.ref("mailbox"),
    body_required=True,
    answers={201: s.ref("Mailbox")},
    refusals=(errors.InvalidField, errors.InvalidMailbox, errors.MailboxExists),
)
def create_mailbox(tenant: str) -> Response:
    """Tenant-file fields, `generate` and `messages` included."""
    target = tenant_for(tenant)
    payload = entry_body("mailbox")
    emulator = current_emulator()
    with emulator.directory.edit(target) as draft:
        mail_reader = reader()
        mailbox = read(lambda: mail_reader.mailbox(payload, draft, "mailbox"))
        try:
            draft.add_mailbox(mailbox)
        except DirectoryError as exc:
            raise (errors.MailboxExists if _taken(draft, mailbox) else errors.InvalidMailbox)(str(exc)) from None
    seed_mailboxes(emulator.mail, mail_reader.mail, emulator.mail.now())
    return created(dump_mailbox(mailbox))


@route(
    "GET",
    "/tenants/{tenant}/mailboxes/{mailbox}",
    summary="One mailbox, by address, alias or id",
    tag="mailboxes",
    answers={200: s.ref("Mailbox")},
    refusals=(errors.MailboxNotFound,),
)
def get_mailbox(tenant: str, mailbox: str) -> Response:
    return json_response(dump_mailbox(mailbox_for(tenant_for(tenant), mailbox)))


@route(
    "PATCH",
    "/tenants/{tenant}/mailboxes/{mailbox}",
    summary="Change display name or custom attributes (Set-Mailbox)",
    tag="mailboxes",
    body=s.MAILBOX_CHANGE,
    answers={200: s.ref("Mailbox")},
    refusals=(errors.MailboxNotFound, errors.UnknownField, errors.InvalidField),
)
def update_mailbox(tenant: str, mailbox: str) -> Response:
    """`custom_attributes` are merged; an empty string clears one."""
    target = tenant_for(tenant)
    payload = json_object()
    known_fields(payload, ("display_name", "custom_attributes"), "Fields that can change")
    with current_emulator().directory.edit(target) as draft:
        entry = mailbox_for(draft, mailbox)
        attributes = read(lambda: reader()._custom_attributes(payload.get("custom_attributes"), "custom_attributes"))
        if "display_name" in payload:
            entry.display_name = name_field(payload, "display_name", entry.display_name)
        merged = {**entry.custom_attributes, **attributes}
        entry.custom_attributes = {k: v for k, v in merged.items() if v != ""}
    return json_response(dump_mailbox(entry))


@route(
    "DELETE",
    "/tenants/{tenant}/mailboxes/{mailbox}",
    summary="Delete a mailbox and its mail",
    tag="mailboxes",
    answers=NO_CONTENT,
    refusals=(errors.MailboxNotFound, errors.MailboxInUse),
)
def delete_mailbox(tenant: str, mailbox: str) -> Response:
    emulator = current_emulator()
    with emulator.directory.edit(tenant_for(tenant)) as draft:
        entry = mailbox_for(draft, mailbox)
        if any(p.scope_id == entry.id for p in draft.rules.configured_policies()):
            raise errors.MailboxInUse(f"{entry.address} is the scope of an access policy.")
        draft.remove_mailbox(entry)
    emulator.mail.forget(entry)
    return no_content()


# ---------------------------------------------------------------- groups


def group_for(tenant: Tenant, key: str) -> Group:
    group = tenant.group(key)
    if group is None:
        raise errors.GroupNotFound(f"Tenant {tenant.id} has no group '{key}'.")
    return group


@route(
    "GET",
    "/tenants/{tenant}/groups",
    summary="Mail-enabled security groups",
    tag="groups",
    answers={200: s.listing(s.ref("Group"))},
)
def list_groups(tenant: str) -> Response:
    return json_response({"value": [dump_group(g) for g in tenant_for(tenant).groups.values()]})


@route(
    "POST",
    "/tenants/{tenant}/groups",
    summary="Create a mail-enabled security group (New-DistributionGroup -Type Security)",
    tag="groups",
    body=s.ref("group"),
    body_required=True,
    answers={201: s.ref("Group")},
    refusals=(errors.InvalidField, errors.InvalidGroup, errors.GroupExists),
)
def create_group(tenant: str) -> Response:
    """`address`, `display_name`, `members`."""
    target = tenant_for(tenant)
    payload = entry_body("group")
    with current_emulator().directory.edit(target) as draft:
        group = read(lambda: reader().group(payload, draft, "group"))
        try:
            draft.add_group(group)
        except DirectoryError as exc:
            exists = draft.recipient(group.address) is not None or group.id.lower() in draft.groups
            raise (errors.GroupExists if exists else errors.InvalidGroup)(str(exc)) from None
    return created(dump_group(group))


@route(
    "GET",
    "/tenants/{tenant}/groups/{group}",
    summary="One group, by address, name or id",
    tag="groups",
    answers={200: s.ref("Group")},
    refusals=(errors.GroupNotFound,),
)
def get_group(tenant: str, group: str) -> Response:
    return json_response(dump_group(group_for(tenant_for(tenant), group)))


@route(
    "DELETE",
    "/tenants/{tenant}/groups/{group}",
    summary="Delete a group",
    tag="groups",
    answers=NO_CONTENT,
    refusals=(errors.GroupNotFound, errors.GroupInUse),
)
def delete_group(tenant: str, group: str) -> Response:
    with current_emulator().directory.edit(tenant_for(tenant)) as draft:
        entry = group_for(draft, group)
        if any(p.scope_id == entry.id for p in draft.rules.configured_policies()):
            raise errors.GroupInUse(f"{entry.address} is the scope of an access policy.")
        draft.remove_group(entry)
    return no_content()


@route(
    "POST",
    "/tenants/{tenant}/groups/{group}/members",
    summary="Add a member (Add-DistributionGroupMember)",
    tag="groups",
    body=s.MEMBER,
    body_required=True,
    answers={201: s.ref("Group")},
    refusals=(
        errors.MissingField,
        errors.GroupNotFound,
        errors.RecipientNotFound,
        errors.InvalidMember,
        errors.MemberAlreadyExists,
    ),
)
def add_group_member(tenant: str, group: str) -> Response:
    """`{"member": "<mailbox or group>"}`."""
    target = tenant_for(tenant)
    payload = json_object()
    member = payload.get("member")
    if not isinstance(member, str) or not member.strip():
        raise errors.MissingField("member")
    with current_emulator().directory.edit(target) as draft:
        entry = group_for(draft, group)
        recipient = draft.recipient(member)
        if recipient is None:
            raise errors.RecipientNotFound(member)
        if recipient is entry:
            raise errors.InvalidMember()
        if any(draft.recipient(m) is recipient for m in entry.members):
            raise errors.MemberAlreadyExists(
                f'The recipient "{recipient.address}" is already a member of the group "{entry.display_name}".'
            )
        entry.members.append(recipient.address)
    return created(dump_group(entry))


@route(
    "DELETE",
    "/tenants/{tenant}/groups/{group}/members/{member}",
    summary="Remove a member (Remove-DistributionGroupMember)",
    tag="groups",
    answers=NO_CONTENT,
    refusals=(errors.GroupNotFound, errors.MemberNotFound),
)
def remove_group_member(tenant: str, group: str, member: str) -> Response:
    with current_emulator().directory.edit(tenant_for(tenant)) as draft:
        entry = group_for(draft, group)
        recipient = draft.recipient(member)
        kept = [m for m in entry.members if recipient is None or draft.recipient(m) is not recipient]
        if recipient is None or len(kept) == len(entry.members):
            raise errors.MemberNotFound(
                f'The recipient "{member}" isn\'t a member of the group "{entry.display_name}".'
            )
        entry.members = kept
    return no_content()
