"""Control API routes for mail, the request log, time, settings, reset and import/export; and the blueprint with
every control route registered (importing this module registers them all).
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from typing import Any

from flask import Response, request

from m365_mock.clock import from_microseconds, iso_exact, iso_z, microseconds
from m365_mock.control import errors
from m365_mock.control import schemas as s
from m365_mock.control.api import ADMIN_HEADER, Query, control, route
from m365_mock.control.fields import TIME_CEILING, TIME_FLOOR, bool_field, distant_times, json_object, known_fields
from m365_mock.graph import body as graph_body
from m365_mock.graph import errors as graph_errors
from m365_mock.graph.attachmentjson import read_attachment
from m365_mock.state.content import generate_messages
from m365_mock.state.mailstore import Folder, ItemNotFound, MailboxStore, MalformedId, Message, recipient
from m365_mock.state.mailstore.attachments import counts_as_attachment
from m365_mock.state.mailstore.mime import MimeError, read_mime
from m365_mock.state.requestlog import KINDS, OUTCOMES
from m365_mock.state.tenantfile import ConfigError, dump_world, load_world
from m365_mock.state.tenantfile.schema import SCHEMA
from m365_mock.state.throttling import CONCURRENCY_SCOPES, ThrottlingSettings
from m365_mock.web import current_emulator, json_response

__all__ = ["ADMIN_HEADER", "control"]

MAX_GENERATED = s.MAX_GENERATED
MAX_ADVANCE_SECONDS = 100 * 365 * 86400
SETTING_LIMITS = {"tokenLifetime": (1, 365 * 86400), "propagationDelay": (0, 10 * 365 * 86400)}
SETTINGS_FIELDS = {
    "tokenLifetime": "token_lifetime",
    "propagationDelay": "propagation_delay",
    "nestedGroupMembership": "nested_group_membership",
    "throttling": "throttling",
}
# The control API's names of the throttling limits -> ThrottlingSettings' fields.
THROTTLING_FIELDS = {
    "enabled": "enabled",
    "mailboxRequests": "mailbox_requests",
    "mailboxWindow": "mailbox_window",
    "uploadBytes": "upload_bytes",
    "uploadWindow": "upload_window",
    "mailboxConcurrency": "mailbox_concurrency",
    "concurrencyScope": "concurrency_scope",
    "appRequestsPerSecond": "app_requests_per_second",
    "tokenRequests": "token_requests",
    "tokenWindow": "token_window",
}
TIME_FIELDS = ("advance", "freeze", "resume", "reset")
GENERATE_FIELDS = ("count", "seed", "unreadRatio", "folder")
MIME_FIELDS = ("mime", "folder", "receivedDateTime")


@route(
    "GET",
    "/health",
    summary="Readiness, without the admin key",
    tag="emulator",
    public=True,
    answers={
        200: s._closed({"status": {"const": "ok"}, "tenants": {"type": "integer", "minimum": 0}}, ["status", "tenants"])
    },
)
def health() -> Response:
    return json_response({"status": "ok", "tenants": len(current_emulator().directory.tenants)})


@route(
    "GET",
    "/outbound",
    summary="Mail sent to addresses outside every tenant (the mail catcher)",
    tag="mail",
    answers={200: s.listing(s.ref("OutboundMessage"))},
)
def outbound() -> Response:
    """Oldest first."""
    return json_response(
        {
            "value": [
                {
                    "sentDateTime": iso_z(m.sent),
                    "sender": m.sender,
                    "recipients": m.recipients,
                    "subject": m.subject,
                    "body": {"contentType": m.body_type, "content": m.body_content},
                    "internetMessageId": m.internet_message_id,
                    "toRecipients": m.to,
                    "ccRecipients": m.cc,
                    "bccRecipients": m.bcc,
                    "attachments": [
                        {"name": a["name"], "contentType": a["content_type"], "size": a["size"], "sha256": a["sha256"]}
                        for a in m.attachments
                    ],
                }
                for m in current_emulator().mail.outbound()
            ]
        }
    )


def _store(address: str):
    emulator = current_emulator()
    for tenant in emulator.directory.tenants:
        mailbox = tenant.mailbox(address)
        if mailbox is not None:
            return emulator.mail.store(mailbox)
    raise errors.MailboxNotFound(f"No tenant of this emulator has a mailbox '{address}'.")


@route(
    "POST",
    "/mailboxes/{address}/messages",
    summary="Put mail into a mailbox: generated, or one message as if from outside",
    tag="mail",
    body=s.DELIVERY,
    body_required=True,
    answers={201: s.ref("CreatedMessages")},
    refusals=(
        errors.EmptyBody,
        errors.MailboxNotFound,
        errors.FolderNotFound,
        errors.UnknownField,
        errors.InvalidCount,
        errors.InvalidSeed,
        errors.InvalidField,
        errors.InvalidDate,
        graph_errors.RequestBodyRead,
        graph_errors.ReadOnlyProperty,
        graph_errors.InvalidRecipients,
        graph_errors.InvalidInternetMessageHeader,
        graph_errors.AbstractAttachment,
        graph_errors.UnsupportedItemType,
        graph_errors.InvalidParameter,
    ),
)
def add_messages(address: str) -> Response:
    """`{"count": N}` (with `seed`, `unreadRatio`, `folder`) generates N messages; otherwise the body is one message
    (Graph message properties plus optional `folder`, `receivedDateTime`) delivered as if from outside."""
    store = _store(address)
    payload = json_object(allow_empty=False)
    if "count" in payload:
        known_fields(payload, GENERATE_FIELDS, "Generated mail takes")
    folder_key = payload.pop("folder", "inbox")
    try:
        folder = store.folder(str(folder_key))
    except (MalformedId, ItemNotFound):
        raise errors.FolderNotFound(f"Mailbox '{address}' has no folder '{folder_key}'.") from None
    now = current_emulator().mail.now()
    if "count" in payload:
        count = payload["count"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_GENERATED:
            raise errors.InvalidCount(f"'count' must be a whole number from 1 to {MAX_GENERATED}.")
        seed = payload.get("seed", 365)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise errors.InvalidSeed()
        ratio = payload.get("unreadRatio", 0.3)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise errors.InvalidField("'unreadRatio' must be a number from 0 to 1.")
        ids = generate_messages(store, folder, count, seed=seed, now=now, unread_ratio=float(ratio))
        return json_response({"created": len(ids), "ids": ids[-100:]}, 201)
    received = payload.pop("receivedDateTime", None)
    owner = store.mailbox.id
    fields = _mime_fields(payload, owner, now) if "mime" in payload else _json_fields(payload, owner)
    if received is not None:
        fields["received"] = _instant(received, "receivedDateTime", errors.InvalidDate)
        fields["sent"] = fields["created"] = fields["modified"] = fields["received"]
    else:
        fields["sent"] = now
    fields.setdefault("to", [recipient(store.mailbox.address, store.mailbox.display_name)])
    if fields.get("from_") is None:
        fields["from_"] = recipient("sender@external.example", "External Sender")
    fields.setdefault("sender", fields["from_"])
    message = store.add_message(folder, **fields)
    return json_response({"created": 1, "ids": [message.id]}, 201)


MAX_LISTED = 10_000


@route(
    "GET",
    "/mailboxes/{address}/messages",
    summary="What a mailbox holds: its folders' counts and its newest messages, without a Graph token",
    tag="mail",
    query=(
        Query(
            "folder",
            {"type": "string"},
            "Only this folder: a well-known name, an id, a display name or a path of display names "
            "(`Inbox/Processed`), any case. Default: the whole mailbox.",
        ),
        Query("top", {"type": "integer", "minimum": 1, "maximum": MAX_LISTED}, "The newest N messages (default 100)."),
    ),
    answers={200: s.ref("MailboxMessages")},
    refusals=(errors.MailboxNotFound, errors.FolderNotFound, errors.InvalidField),
)
def list_messages(address: str) -> Response:
    """For scenarios and tests that judge what a daemon did: read here, it leaves no trace in the request log."""
    store = _store(address)
    top = request.args.get("top", "100")
    if not (top.isascii() and top.isdigit()) or not 0 < int(top) <= MAX_LISTED:
        raise errors.InvalidField(f"'top' must be a whole number from 1 to {MAX_LISTED}.")
    paths = _folder_paths(store)
    key = request.args.get("folder")
    folder = None if key is None else _named_folder(store, address, key, paths)
    page = store.list_messages(folder, skip=0, top=int(top), count=True)
    return json_response(
        {
            "folders": [_folder_json(f, path) for f, path in paths if folder is None or f.id == folder.id],
            "total": page.total or 0,
            "value": [_message_summary(m) for m in page.items],
        }
    )


def _folder_paths(store: MailboxStore) -> list[tuple[Folder, str]]:
    """Every folder of the mailbox's view (hidden ones aside), parents first, with its path of display names."""
    found: list[tuple[Folder, str]] = []

    def walk(parent: Folder, prefix: str) -> None:
        for child in store.child_folders(parent):
            found.append((child, f"{prefix}{child.display_name}"))
            walk(child, f"{prefix}{child.display_name}/")

    walk(store.root, "")
    return found


def _named_folder(store: MailboxStore, address: str, key: str, paths: list[tuple[Folder, str]]) -> Folder:
    """The folder `key` names: well-known name or id, else a path, else a display name naming one folder."""
    try:
        return store.folder(key)
    except (MalformedId, ItemNotFound):
        pass
    wanted = key.strip().strip("/").lower()
    by_path = [f for f, path in paths if path.lower() == wanted]
    if by_path:
        return by_path[0]
    named = [(f, path) for f, path in paths if f.display_name.lower() == wanted]
    if len(named) > 1:
        places = ", ".join(path for _, path in named)
        raise errors.InvalidField(
            f"'folder' {key!r} names {len(named)} folders of '{address}' ({places}); give its path."
        )
    if not named:
        known = ", ".join(path for _, path in paths)
        raise errors.FolderNotFound(f"Mailbox '{address}' has no folder '{key}'; its folders: {known}.")
    return named[0][0]


def _folder_json(folder: Folder, path: str) -> dict[str, Any]:
    return {
        "id": folder.id,
        "displayName": folder.display_name,
        "path": path,
        "wellKnownName": folder.well_known,
        "totalItemCount": folder.total_count,
        "unreadItemCount": folder.unread_count,
    }


def _message_summary(message: Message) -> dict[str, Any]:
    sender = (message.from_ or {}).get("emailAddress") or {}
    return {
        "id": message.id,
        "subject": message.subject,
        "from": sender.get("address"),
        "receivedDateTime": iso_z(message.received),
        "isRead": message.is_read,
        "categories": list(message.categories),
        "flagStatus": str(message.flag.get("flagStatus", "notFlagged")),
        "hasAttachments": message.has_attachments,
        "internetMessageId": message.internet_message_id,
        "parentFolderId": message.folder_id,
    }


def _json_fields(payload: dict[str, Any], owner: str) -> dict[str, Any]:
    """Graph message properties, attachments included (each with its `@odata.type`, as Graph reads them)."""
    fields: dict[str, Any] = graph_body.read_message_fields(payload, ignore=frozenset({"attachments"}))
    attachments = graph_body.fold_keys(payload).get("attachments")
    if attachments is not None:
        fields["attachments"] = [
            read_attachment(item, owner) for item in graph_body.expect_list("attachments", attachments[1])
        ]
        fields["has_attachments"] = counts_as_attachment(fields["attachments"])
    return fields


def _mime_fields(payload: dict[str, Any], owner: str, now: datetime) -> dict[str, Any]:
    """`{"mime": base64 of an RFC 5322 message}`: the message as the mailbox would receive it."""
    known_fields(payload, MIME_FIELDS, "MIME delivery takes")
    raw = payload["mime"]
    try:
        data = base64.b64decode(raw if isinstance(raw, str) else "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data.strip():
        raise errors.InvalidField("'mime' must be the base64 of an RFC 5322 message.")
    try:
        return read_mime(data, owner, now)
    except MimeError as invalid:
        raise errors.InvalidField(f"'mime': {invalid}") from None


def _instant(value: Any, name: str, refusal: type[errors.ControlError], noun: str = "ISO 8601") -> datetime:
    """An ISO 8601 time (UTC when it names no offset) between the years 1971 and 2999."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise refusal(f"'{name}' {value!r} is not {noun}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not TIME_FLOOR <= moment <= TIME_CEILING:
        raise refusal(f"'{name}' must lie between the years 1971 and 2999.")
    return moment


# ---------------------------------------------------------------- request log

_LOG_QUERY = (
    Query("app", {"type": "string"}, "Only requests of this app id."),
    Query("mailbox", {"type": "string"}, "Only requests on this mailbox address."),
    Query(
        "outcome",
        {"enum": list(OUTCOMES)},
        "Only requests with this outcome (a token request's is issued or refused).",
    ),
    Query("kind", {"enum": list(KINDS)}, "Only Graph requests, token requests, or other requests a fault rule met."),
    Query("limit", {"type": "integer", "minimum": 1}, "Only the newest N records."),
)


@route(
    "GET",
    "/log",
    summary="Graph and token requests, with their access decisions, oldest first",
    tag="log",
    query=_LOG_QUERY,
    answers={200: s.listing(s.ref("LogRecord"))},
    refusals=(errors.InvalidField,),
)
def request_log() -> Response:
    """Every Graph request kept (the newest 10,000 within about 32 MiB), with why it was allowed or denied."""
    limit = request.args.get("limit")
    if limit is not None and (not (limit.isascii() and limit.isdigit()) or int(limit) == 0):
        raise errors.InvalidField("'limit' must be a positive whole number.")
    outcome = request.args.get("outcome")
    if outcome and outcome.lower() not in OUTCOMES:
        raise errors.InvalidField(f"'outcome' must be one of {', '.join(OUTCOMES)}.")
    kind = request.args.get("kind")
    if kind and kind.lower() not in KINDS:
        raise errors.InvalidField(f"'kind' must be one of {', '.join(KINDS)}.")
    records = current_emulator().log.query(
        app=request.args.get("app"),
        mailbox=request.args.get("mailbox"),
        outcome=outcome,
        kind=kind,
        limit=int(limit) if limit else None,
    )
    return json_response({"value": [r.to_json() for r in records]})


# ---------------------------------------------------------------- time and settings


def time_json() -> dict[str, Any]:
    """The clock as `GET /_m365/time` shows it: `now` to the microsecond, and whether it is frozen."""
    clock = current_emulator().clock
    return {"now": clock.now_datetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "frozen": clock.frozen}


@route("GET", "/time", summary="The emulator's clock", tag="time and settings", answers={200: s.ref("Time")})
def get_time() -> Response:
    return json_response(time_json())


@route(
    "POST",
    "/time",
    summary="Freeze, advance, resume or reset the clock",
    tag="time and settings",
    body=s.TIME_CHANGE,
    answers={200: s.ref("Time")},
    refusals=(errors.InvalidField, errors.UnknownField),
)
def set_time() -> Response:
    """`{"advance": seconds}`, `{"freeze": true | "<ISO time>"}`, `{"resume": true}` or `{"reset": true}`; tokens,
    secrets and propagation delays see the moved clock."""
    payload = json_object()
    known_fields(payload, TIME_FIELDS, "The clock takes")
    clock = current_emulator().clock
    freeze_at: datetime | None = None
    if "freeze" in payload and payload["freeze"] is not True:
        value = payload["freeze"]
        if not isinstance(value, str):
            raise errors.InvalidField("'freeze' must be true or an ISO 8601 time.")
        freeze_at = _instant(value, "freeze", errors.InvalidField, "an ISO 8601 time")
    seconds = payload.get("advance", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise errors.InvalidField("'advance' must be a number of seconds.")
    if abs(seconds) > MAX_ADVANCE_SECONDS:
        raise errors.InvalidField(f"'advance' must be within ±{MAX_ADVANCE_SECONDS} s (100 years).")
    for flag in ("resume", "reset"):
        bool_field(payload, flag, False)
    if "freeze" in payload:
        clock.freeze(freeze_at)
    if seconds:
        landing = clock.now() + float(seconds)
        if not TIME_FLOOR.timestamp() <= landing <= TIME_CEILING.timestamp():
            raise errors.InvalidField("'advance' would move the clock outside the years 1971-2999.")
        clock.advance(float(seconds))
    if payload.get("resume") is True:
        clock.resume()
    if payload.get("reset") is True:
        clock.reset()
    return json_response(time_json())


def _settings_json() -> dict[str, Any]:
    settings = current_emulator().settings
    out = {name: getattr(settings, attr) for name, attr in SETTINGS_FIELDS.items() if name != "throttling"}
    out["throttling"] = _throttling_json(settings.throttling)
    return out


def _throttling_json(limits: ThrottlingSettings) -> dict[str, Any]:
    return {name: getattr(limits, attr) for name, attr in THROTTLING_FIELDS.items()}


def _throttling_change(value: Any, current: ThrottlingSettings) -> ThrottlingSettings:
    """The limits with the changes `value` gives; each checked, an unknown one refused."""
    if not isinstance(value, dict):
        raise errors.InvalidField("'throttling' must be an object of limits.")
    unknown = set(value) - set(THROTTLING_FIELDS)
    if unknown:
        raise errors.UnknownField(f"Unknown throttling limits {sorted(unknown)}; known: {sorted(THROTTLING_FIELDS)}.")
    changes: dict[str, Any] = {}
    for name, given in value.items():
        if name == "enabled":
            bool_field(value, "enabled", True)
        elif name == "concurrencyScope":
            if given not in CONCURRENCY_SCOPES:
                raise errors.InvalidField(f"'concurrencyScope' must be one of {list(CONCURRENCY_SCOPES)}.")
        elif isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise errors.InvalidField(f"'throttling.{name}' must be a whole number from 1.")
        changes[THROTTLING_FIELDS[name]] = given
    return current.changed(changes)


@route("GET", "/settings", summary="The emulator's settings", tag="time and settings", answers={200: s.ref("Settings")})
def get_settings() -> Response:
    return json_response(_settings_json())


@route(
    "PATCH",
    "/settings",
    summary="Change token lifetime, propagation delay, nested group membership or throttling limits",
    tag="time and settings",
    body=s.SETTINGS_CHANGE,
    answers={200: s.ref("Settings")},
    refusals=(errors.InvalidField, errors.UnknownField),
)
def patch_settings() -> Response:
    payload = json_object()
    unknown = set(payload) - set(SETTINGS_FIELDS)
    if unknown:
        raise errors.UnknownField(f"Unknown settings {sorted(unknown)}; known: {sorted(SETTINGS_FIELDS)}.")
    emulator = current_emulator()
    if "nestedGroupMembership" in payload:
        bool_field(payload, "nestedGroupMembership", True)
    for name, (low, high) in SETTING_LIMITS.items():
        if name in payload:
            value = payload[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise errors.InvalidField(f"'{name}' must be a whole number of seconds from {low} to {high}.")
    if "throttling" in payload:
        payload["throttling"] = _throttling_change(payload["throttling"], emulator.settings.throttling)
    for name, value in payload.items():
        setattr(emulator.settings, SETTINGS_FIELDS[name], value)
    emulator.issuer.lifetime = emulator.settings.token_lifetime
    return json_response(_settings_json())


@route(
    "GET",
    "/throttling",
    summary="Throttling now: the limits, and each (app, mailbox) window's count, requests in flight, next reset",
    tag="time and settings",
    answers={200: s.ref("Throttling")},
)
def get_throttling() -> Response:
    limits = _throttling_json(current_emulator().settings.throttling)
    return json_response({"limits": limits, "value": throttling_windows()})


def throttling_windows() -> list[dict[str, Any]]:
    """Each tenant's (app, mailbox) windows, the mailbox by its address and the next reset as an ISO time."""
    emulator = current_emulator()
    rows = []
    for tenant in emulator.directory.tenants:
        addresses = {m.id: m.address for m in tenant.mailboxes.values()}
        for row in emulator.throttle.snapshot(tenant.id):
            reset = row["next_reset"]
            rows.append(
                {
                    "tenant_id": tenant.id,
                    **row,
                    "mailbox": addresses.get(row["mailbox"], row["mailbox"]),
                    "next_reset": None if reset is None else iso_exact(from_microseconds(microseconds(reset))),
                }
            )
    return rows


# ---------------------------------------------------------------- reset, export, import


@route(
    "POST",
    "/reset",
    summary="Back to the world loaded at start-up",
    tag="world",
    answers={200: s._closed({"status": {"const": "reset"}}, ["status"])},
)
def reset() -> Response:
    """In real time; mail, log and rule changes are gone."""
    current_emulator().reset()
    return json_response({"status": "reset"})


@route(
    "GET",
    "/export",
    summary="The whole world as a tenant file, mail included",
    tag="world",
    answers={200: s.ref("TenantFile")},
)
def export() -> Response:
    """Directory, rules, settings, each mailbox's mail, the outbound log and the fault rules. Importing it gives the
    same world (fault rules counted from zero), and exporting that again the same bytes."""
    emulator = current_emulator()
    return json_response(dump_world(emulator.directory, emulator.settings, emulator.mail, emulator.faults.rules))


@route(
    "POST",
    "/import",
    summary="Replace the world with a tenant file",
    tag="world",
    body=s.ref("TenantFile"),
    body_required=True,
    answers={
        200: s._closed(
            {"status": {"const": "imported"}, "tenants": {"type": "array", "items": {"type": "string"}}},
            ["status", "tenants"],
        )
    },
    refusals=(errors.InvalidTenantFile,),
)
def import_world() -> Response:
    """Its mail is loaded; mail and log of the old world are dropped. The body is checked against the tenant-file
    schema first (400 InvalidTenantFile naming every wrong place); no file is ever read, so a certificate must come
    as `pem`."""
    data = json_object()
    try:
        found = distant_times(data, SCHEMA)
        if found:
            raise ConfigError("", found)
        world = load_world(data, base_dir=None)
    except ConfigError as exc:
        if exc.problems:
            raise errors.refused_body(errors.InvalidTenantFile, exc.problems) from None
        raise errors.InvalidTenantFile(str(exc)) from None
    current_emulator().load(world)
    return json_response({"status": "imported", "tenants": [t.id for t in world.directory.tenants]})


# Every other control route registers itself on import; the blueprint is complete once this module is imported.
from m365_mock.control import directory, faults, openapi, rules  # noqa: E402,F401
