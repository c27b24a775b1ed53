"""Control API: tenants, applications (secrets, certificates, permissions, consent), mailboxes and groups.

Bodies and answers use the tenant-file field names (docs/tenant-file.md), so what a tenant file says and what
the control API takes are the same thing.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, request

from m365_mock.app import current_emulator, json_response
from m365_mock.control.routes import (
    ControlError,
    body_object,
    bool_field,
    control,
    entry_body,
    list_field,
    tenant_for,
)
from m365_mock.state.content import seed_mailboxes
from m365_mock.state.directory import Application, Group, Mailbox, Tenant, canonical_permission
from m365_mock.state.tenantfile import (
    ConfigError,
    TenantFileReader,
    dump_application,
    dump_certificate,
    dump_group,
    dump_mailbox,
    dump_secret,
)


def reader() -> TenantFileReader:
    """The tenant-file reader for one object of a control request: it reads no files."""
    return TenantFileReader(current_emulator().clock.now_datetime(), None, None)


def read(build: Any) -> Any:
    """Run a tenant-file reader on the request body; its ConfigError becomes a 400 naming the field.

    Readers are given a one-word place (`policy`, `mailbox`, ...); a message about the whole object drops it,
    so Exchange's own words come through as they are.
    """
    try:
        return build()
    except ConfigError as exc:
        message = str(exc)
        head, _, rest = message.partition(": ")
        message = rest if rest and re.fullmatch(r"[A-Za-z_][\w.]*", head) else message
        if "couldn't be found" in message:
            raise ControlError(404, "NotFound", message) from None
        raise ControlError(400, "InvalidField", message) from None


def created(payload: dict[str, Any]) -> Response:
    return json_response(payload, 201)


def no_content() -> Response:
    return Response(status=204)


# ---------------------------------------------------------------- tenants


@control.get("/tenants")
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
    app = tenant.application(key)
    if app is None:
        for candidate in tenant.applications.values():
            if candidate.display_name.lower() == key.lower():
                return candidate
        raise ControlError(404, "ApplicationNotFound", f"Tenant {tenant.id} has no application '{key}'.")
    return app


@control.get("/tenants/<tenant_key>/applications")
def list_applications(tenant_key: str) -> Response:
    tenant = tenant_for(tenant_key)
    return json_response({"value": [dump_application(a) for a in tenant.applications.values()]})


@control.post("/tenants/<tenant_key>/applications")
def create_application(tenant_key: str) -> Response:
    """A new app registration (tenant-file fields); secrets left without a value are generated and returned."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("application")
    with current_emulator().directory.edit(tenant) as draft:
        app = read(lambda: reader().application(payload, draft, "application"))
        if draft.application(app.app_id) is not None:
            raise ControlError(409, "ApplicationExists", f"Application {app.app_id} already exists.")
        draft.add_application(app)
    return created(dump_application(app))


@control.get("/tenants/<tenant_key>/applications/<app_key>")
def get_application(tenant_key: str, app_key: str) -> Response:
    return json_response(dump_application(application_for(tenant_for(tenant_key), app_key)))


@control.patch("/tenants/<tenant_key>/applications/<app_key>")
def update_application(tenant_key: str, app_key: str) -> Response:
    """Change `permissions`, `admin_consent`, `enabled` or `display_name`; tokens issued later carry it."""
    tenant = tenant_for(tenant_key)
    payload = body_object()
    unknown = set(payload) - {"permissions", "admin_consent", "enabled", "display_name"}
    if unknown:
        raise ControlError(
            400,
            "UnknownField",
            f"Fields that can change: permissions, admin_consent, enabled, display_name; not {sorted(unknown)}.",
        )
    with current_emulator().directory.edit(tenant) as draft:
        app = application_for(draft, app_key)
        permissions = (
            [canonical_permission(p) for p in list_field(payload, "permissions")]
            if "permissions" in payload
            else app.permissions
        )
        consent = bool_field(payload, "admin_consent", app.consent_granted)
        enabled = bool_field(payload, "enabled", app.enabled)
        name = payload.get("display_name", app.display_name)
        if not isinstance(name, str) or not name.strip():
            raise ControlError(400, "InvalidField", "'display_name' must be a non-empty string.")
        app.permissions, app.consent_granted, app.enabled = list(dict.fromkeys(permissions)), consent, enabled
        app.display_name = name.strip()
    return json_response(dump_application(app))


@control.delete("/tenants/<tenant_key>/applications/<app_key>")
def delete_application(tenant_key: str, app_key: str) -> Response:
    tenant = tenant_for(tenant_key)
    with current_emulator().directory.edit(tenant) as draft:
        draft.remove_application(application_for(draft, app_key))
    return no_content()


@control.post("/tenants/<tenant_key>/applications/<app_key>/secrets")
def add_secret(tenant_key: str, app_key: str) -> Response:
    """A new client secret (`value`, `expires` or `expires_in_days`, `starts`, `display_name`)."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("secret")
    with current_emulator().directory.edit(tenant) as draft:
        app = application_for(draft, app_key)
        secret = read(lambda: reader().secret(payload, draft, app, "secret"))
        if any(s.key_id == secret.key_id for s in app.secrets):
            raise ControlError(409, "SecretExists", f"Secret {secret.key_id} already exists.")
        app.secrets.append(secret)
    return created(dump_secret(secret))


@control.delete("/tenants/<tenant_key>/applications/<app_key>/secrets/<secret_id>")
def remove_secret(tenant_key: str, app_key: str, secret_id: str) -> Response:
    tenant = tenant_for(tenant_key)
    with current_emulator().directory.edit(tenant) as draft:
        app = application_for(draft, app_key)
        kept = [s for s in app.secrets if s.key_id != secret_id.lower()]
        if len(kept) == len(app.secrets):
            raise ControlError(404, "SecretNotFound", f"App {app.app_id} has no secret {secret_id}.")
        app.secrets = kept
    return no_content()


@control.post("/tenants/<tenant_key>/applications/<app_key>/certificates")
def add_certificate(tenant_key: str, app_key: str) -> Response:
    """Upload a public certificate (`pem`, `display_name`)."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("certificate")
    with current_emulator().directory.edit(tenant) as draft:
        app = application_for(draft, app_key)
        cert = read(lambda: reader().certificate(payload, app, "certificate"))
        if any(c.sha1 == cert.sha1 for c in app.certificates):
            raise ControlError(409, "CertificateExists", f"App {app.app_id} already has that certificate.")
        app.certificates.append(cert)
    return created(dump_certificate(cert))


@control.delete("/tenants/<tenant_key>/applications/<app_key>/certificates/<cert_id>")
def remove_certificate(tenant_key: str, app_key: str, cert_id: str) -> Response:
    tenant = tenant_for(tenant_key)
    with current_emulator().directory.edit(tenant) as draft:
        app = application_for(draft, app_key)
        kept = [c for c in app.certificates if cert_id.lower() not in (c.key_id, c.thumbprint.lower())]
        if len(kept) == len(app.certificates):
            raise ControlError(404, "CertificateNotFound", f"App {app.app_id} has no certificate {cert_id}.")
        app.certificates = kept
    return no_content()


# ---------------------------------------------------------------- mailboxes


def mailbox_for(tenant: Tenant, key: str) -> Mailbox:
    mailbox = tenant.mailbox(key)
    if mailbox is None:
        raise ControlError(404, "MailboxNotFound", f"Tenant {tenant.id} has no mailbox '{key}'.")
    return mailbox


@control.get("/tenants/<tenant_key>/mailboxes")
def list_mailboxes(tenant_key: str) -> Response:
    tenant = tenant_for(tenant_key)
    kind = request.args.get("type")
    boxes = [m for m in tenant.mailboxes.values() if kind is None or m.kind == kind.lower()]
    return json_response({"value": [dump_mailbox(m) for m in boxes]})


@control.post("/tenants/<tenant_key>/mailboxes")
def create_mailbox(tenant_key: str) -> Response:
    tenant = tenant_for(tenant_key)
    payload = entry_body("mailbox")
    emulator = current_emulator()
    with emulator.directory.edit(tenant) as draft:
        mail_reader = reader()
        mailbox = read(lambda: mail_reader.mailbox(payload, draft, "mailbox"))
        try:
            draft.add_mailbox(mailbox)
        except ValueError as exc:
            if "clashes" in str(exc) or "already" in str(exc):
                raise ControlError(409, "MailboxExists", str(exc)) from None
            raise ControlError(400, "InvalidMailbox", str(exc)) from None
    seed_mailboxes(emulator.mail, mail_reader.mail, emulator.mail.now())
    return created(dump_mailbox(mailbox))


@control.get("/tenants/<tenant_key>/mailboxes/<key>")
def get_mailbox(tenant_key: str, key: str) -> Response:
    return json_response(dump_mailbox(mailbox_for(tenant_for(tenant_key), key)))


@control.patch("/tenants/<tenant_key>/mailboxes/<key>")
def update_mailbox(tenant_key: str, key: str) -> Response:
    """Change `display_name` or `custom_attributes` (merged; an empty string clears one)."""
    tenant = tenant_for(tenant_key)
    payload = body_object()
    unknown = set(payload) - {"display_name", "custom_attributes"}
    if unknown:
        raise ControlError(
            400, "UnknownField", f"Fields that can change: display_name, custom_attributes; not {sorted(unknown)}."
        )
    with current_emulator().directory.edit(tenant) as draft:
        mailbox = mailbox_for(draft, key)
        attributes = read(lambda: reader()._custom_attributes(payload.get("custom_attributes"), "custom_attributes"))
        if "display_name" in payload:
            if not isinstance(payload["display_name"], str) or not payload["display_name"].strip():
                raise ControlError(400, "InvalidField", "'display_name' must be a non-empty string.")
            mailbox.display_name = payload["display_name"].strip()
        merged = {**mailbox.custom_attributes, **attributes}
        mailbox.custom_attributes = {k: v for k, v in merged.items() if v != ""}
    return json_response(dump_mailbox(mailbox))


@control.delete("/tenants/<tenant_key>/mailboxes/<key>")
def delete_mailbox(tenant_key: str, key: str) -> Response:
    tenant = tenant_for(tenant_key)
    emulator = current_emulator()
    with emulator.directory.edit(tenant) as draft:
        mailbox = mailbox_for(draft, key)
        if any(p.scope_id == mailbox.id for p in draft.rules.configured_policies()):
            raise ControlError(409, "MailboxInUse", f"{mailbox.address} is the scope of an access policy.")
        draft.remove_mailbox(mailbox)
    emulator.mail.forget(mailbox)
    return no_content()


# ---------------------------------------------------------------- groups


def group_for(tenant: Tenant, key: str) -> Group:
    group = tenant.group(key)
    if group is None:
        raise ControlError(404, "GroupNotFound", f"Tenant {tenant.id} has no group '{key}'.")
    return group


@control.get("/tenants/<tenant_key>/groups")
def list_groups(tenant_key: str) -> Response:
    return json_response({"value": [dump_group(g) for g in tenant_for(tenant_key).groups.values()]})


@control.post("/tenants/<tenant_key>/groups")
def create_group(tenant_key: str) -> Response:
    """A mail-enabled security group (`address`, `display_name`, `members`)."""
    tenant = tenant_for(tenant_key)
    payload = entry_body("group")
    with current_emulator().directory.edit(tenant) as draft:
        group = read(lambda: reader().group(payload, draft, "group"))
        try:
            draft.add_group(group)
        except ValueError as exc:
            raise ControlError(409 if "exists" in str(exc) else 400, "InvalidGroup", str(exc)) from None
    return created(dump_group(group))


@control.get("/tenants/<tenant_key>/groups/<key>")
def get_group(tenant_key: str, key: str) -> Response:
    return json_response(dump_group(group_for(tenant_for(tenant_key), key)))


@control.delete("/tenants/<tenant_key>/groups/<key>")
def delete_group(tenant_key: str, key: str) -> Response:
    tenant = tenant_for(tenant_key)
    with current_emulator().directory.edit(tenant) as draft:
        group = group_for(draft, key)
        if any(p.scope_id == group.id for p in draft.rules.configured_policies()):
            raise ControlError(409, "GroupInUse", f"{group.address} is the scope of an access policy.")
        draft.remove_group(group)
    return no_content()


@control.post("/tenants/<tenant_key>/groups/<key>/members")
def add_group_member(tenant_key: str, key: str) -> Response:
    """Add-DistributionGroupMember: `{"member": "<mailbox or group>"}`."""
    tenant = tenant_for(tenant_key)
    payload = body_object()
    member = payload.get("member")
    if not isinstance(member, str) or not member.strip():
        raise ControlError(400, "MissingField", "'member' is required.")
    with current_emulator().directory.edit(tenant) as draft:
        group = group_for(draft, key)
        target = draft.recipient(member)
        if target is None:
            raise ControlError(
                404,
                "RecipientNotFound",
                f'Couldn\'t find object "{member}". Please make sure that it was spelled correctly '
                "or specify a different object.",
            )
        if target is group:
            raise ControlError(400, "InvalidMember", "A group can't be a member of itself.")
        address = target.address
        if any(draft.recipient(m) is target for m in group.members):
            raise ControlError(
                409,
                "MemberAlreadyExists",
                f'The recipient "{address}" is already a member of the group "{group.display_name}".',
            )
        group.members.append(address)
    return created(dump_group(group))


@control.delete("/tenants/<tenant_key>/groups/<key>/members/<member>")
def remove_group_member(tenant_key: str, key: str, member: str) -> Response:
    tenant = tenant_for(tenant_key)
    with current_emulator().directory.edit(tenant) as draft:
        group = group_for(draft, key)
        target = draft.recipient(member)
        kept = [m for m in group.members if target is None or draft.recipient(m) is not target]
        if target is None or len(kept) == len(group.members):
            raise ControlError(
                404, "MemberNotFound", f'The recipient "{member}" isn\'t a member of the group "{group.display_name}".'
            )
        group.members = kept
    return no_content()
