"""Control API (JSON) shared parts, and the routes for mail, the request log, time, reset and import/export.

Every route but health needs the admin key; a Graph token is never accepted here.
"""

from __future__ import annotations

import hmac
import math
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from m365_mock.app import current_emulator, json_response
from m365_mock.clock import iso_z
from m365_mock.graph import body as graph_body
from m365_mock.graph import errors as graph_errors
from m365_mock.state.content import generate_messages
from m365_mock.state.directory import DirectoryError, Tenant
from m365_mock.state.mailstore import ItemNotFound, MalformedId, recipient
from m365_mock.state.tenantfile import ConfigError, Problem, dump_world, entry_problems, load_world
from m365_mock.state.tenantfile.problems import dotted

control = Blueprint("control", __name__, url_prefix="/_m365")
ADMIN_HEADER = "X-M365-Admin-Key"
MAX_GENERATED = 200_000


class ControlError(Exception):
    """A control-API refusal: `{"error": {"code", "message"}}` with the status, and `details` (one per wrong
    place: `{"code", "target", "message"}`) when a body is refused for several reasons at once."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@control.errorhandler(ControlError)
def render_control_error(exc: ControlError) -> Response:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        error["details"] = exc.details
    return json_response({"error": error}, exc.status)


def refused_body(code: str, problems: list[Problem]) -> ControlError:
    """400 naming every wrong place of a body, one per line (a message in Exchange's words as it is)."""
    lines = [p.message if p.exact and len(p.path) <= 1 else p.render() for p in problems]
    details = [{"code": code, "target": dotted(p.path), "message": p.message} for p in problems]
    return ControlError(400, code, "\n".join(lines), details)


@control.errorhandler(graph_errors.GraphError)
def render_body_error(exc: graph_errors.GraphError) -> Response:
    return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status)


@control.errorhandler(DirectoryError)
def render_rule_error(exc: DirectoryError) -> Response:
    """Refusals of the directory and of Exchange's rules, in Exchange's words."""
    message = str(exc)
    status, code = (404, "NotFound") if "couldn't be found" in message else (400, "InvalidOperation")
    return json_response({"error": {"code": code, "message": message}}, status)


def body_object() -> dict[str, Any]:
    """The JSON object of a control request (an empty body is an empty object)."""
    return graph_body.json_body(allow_empty=True)


def entry_body(definition: str) -> dict[str, Any]:
    """The body of a route that creates one object, checked against the tenant-file schema's definition of that
    object (`application`, `accessPolicy`, ...): an unknown or misspelt field is refused (400 InvalidField)."""
    payload = body_object()
    found = entry_problems(definition, payload)
    if found:
        raise refused_body("InvalidField", found)
    return payload


def tenant_for(key: str) -> Tenant:
    tenant = current_emulator().directory.tenant(key)
    if tenant is None:
        raise ControlError(404, "TenantNotFound", f"This emulator has no tenant '{key}'.")
    return tenant


def text_field(payload: dict[str, Any], name: str, *, required: bool = True, default: str | None = None) -> str | None:
    value = payload.get(name, default)
    if value is None:
        if required:
            raise ControlError(400, "MissingField", f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise ControlError(400, "InvalidField", f"'{name}' must be a string.")
    return value


def list_field(payload: dict[str, Any], name: str) -> list[str]:
    value = payload.get(name)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ControlError(400, "InvalidField", f"'{name}' must be a string or a list of strings.")
    return value


def bool_field(payload: dict[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name, default)
    if not isinstance(value, bool):
        raise ControlError(400, "InvalidField", f"'{name}' must be true or false.")
    return value


@control.before_request
def require_admin_key() -> None:
    if request.endpoint == "control.health":
        return
    given = request.headers.get(ADMIN_HEADER, "")
    if not hmac.compare_digest(given.encode(), current_emulator().admin_key.encode()):
        raise ControlError(
            401,
            "AdminKeyRequired",
            f"The control API needs the emulator's admin key in the {ADMIN_HEADER} header "
            "(printed at start-up and in connection.json).",
        )


@control.get("/health")
def health() -> Response:
    return json_response({"status": "ok", "tenants": len(current_emulator().directory.tenants)})


@control.get("/outbound")
def outbound() -> Response:
    """Mail sent to addresses outside every tenant, oldest first."""
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
                }
                for m in current_emulator().mail.outbound()
            ]
        }
    )


def _mailbox(address: str):
    emulator = current_emulator()
    for tenant in emulator.directory.tenants:
        mailbox = tenant.mailbox(address)
        if mailbox is not None:
            return emulator.mail.store(mailbox)
    raise ControlError(404, "MailboxNotFound", f"No tenant of this emulator has a mailbox '{address}'.")


@control.post("/mailboxes/<address>/messages")
def add_messages(address: str) -> Response:
    """Put mail into a mailbox: `{"count": N}` generates N messages; otherwise the body is one message
    (Graph message properties plus optional `folder`, `receivedDateTime`) delivered as if from outside."""
    store = _mailbox(address)
    payload = graph_body.json_body()
    folder_key = payload.pop("folder", "inbox")
    try:
        folder = store.folder(str(folder_key))
    except (MalformedId, ItemNotFound):
        raise ControlError(404, "FolderNotFound", f"Mailbox '{address}' has no folder '{folder_key}'.") from None
    now = current_emulator().mail.now()
    if "count" in payload:
        count = payload["count"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_GENERATED:
            raise ControlError(400, "InvalidCount", f"'count' must be a whole number from 1 to {MAX_GENERATED}.")
        seed = payload.get("seed", 365)
        if not isinstance(seed, int):
            raise ControlError(400, "InvalidSeed", "'seed' must be a whole number.")
        ratio = payload.get("unreadRatio", 0.3)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise ControlError(400, "InvalidField", "'unreadRatio' must be a number from 0 to 1.")
        ids = generate_messages(store, folder, count, seed=seed, now=now, unread_ratio=float(ratio))
        return json_response({"created": len(ids), "ids": ids[-100:]}, 201)
    received = payload.pop("receivedDateTime", None)
    fields: dict[str, Any] = graph_body.read_message_fields(payload)
    if received is not None:
        from datetime import datetime

        try:
            fields["received"] = datetime.fromisoformat(str(received).replace("Z", "+00:00"))
        except ValueError:
            raise ControlError(400, "InvalidDate", f"'receivedDateTime' {received!r} is not ISO 8601.") from None
        fields["sent"] = fields["created"] = fields["modified"] = fields["received"]
    else:
        fields["sent"] = now
    fields.setdefault("to", [recipient(store.mailbox.address, store.mailbox.display_name)])
    if fields.get("from_") is None:
        fields["from_"] = recipient("sender@external.example", "External Sender")
    fields.setdefault("sender", fields["from_"])
    message = store.add_message(folder, **fields)
    return json_response({"created": 1, "ids": [message.id]}, 201)


# ---------------------------------------------------------------- request log


@control.get("/log")
def request_log() -> Response:
    """Graph requests with their decisions, oldest first; filter by `app`, `mailbox`, `outcome`, `limit`."""
    limit = request.args.get("limit")
    if limit is not None and (not (limit.isascii() and limit.isdigit()) or int(limit) == 0):
        raise ControlError(400, "InvalidField", "'limit' must be a positive whole number.")
    records = current_emulator().log.query(
        app=request.args.get("app"),
        mailbox=request.args.get("mailbox"),
        outcome=request.args.get("outcome"),
        limit=int(limit) if limit else None,
    )
    return json_response({"value": [r.to_json() for r in records]})


# ---------------------------------------------------------------- time, settings, reset, import/export


def _time_json() -> dict[str, Any]:
    clock = current_emulator().clock
    return {"now": clock.now_datetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "frozen": clock.frozen}


@control.get("/time")
def get_time() -> Response:
    return json_response(_time_json())


@control.post("/time")
def set_time() -> Response:
    """`{"advance": seconds}`, `{"freeze": true | "<ISO time>"}`, `{"resume": true}` or `{"reset": true}`."""
    payload = body_object()
    clock = current_emulator().clock
    freeze_at: datetime | None = None
    if "freeze" in payload and payload["freeze"] is not True:
        value = payload["freeze"]
        if not isinstance(value, str):
            raise ControlError(400, "InvalidField", "'freeze' must be true or an ISO 8601 time.")
        try:
            freeze_at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ControlError(400, "InvalidField", f"'freeze' {value!r} is not an ISO 8601 time.") from None
        if freeze_at.tzinfo is None:
            freeze_at = freeze_at.replace(tzinfo=UTC)
        if not TIME_FLOOR <= freeze_at <= TIME_CEILING:
            raise ControlError(400, "InvalidField", "'freeze' must lie between the years 1971 and 2999.")
    seconds = payload.get("advance", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ControlError(400, "InvalidField", "'advance' must be a number of seconds.")
    if abs(seconds) > MAX_ADVANCE_SECONDS:
        raise ControlError(400, "InvalidField", f"'advance' must be within ±{MAX_ADVANCE_SECONDS} s (100 years).")
    if "freeze" in payload:
        clock.freeze(freeze_at)
    if seconds:
        landing = clock.now() + float(seconds)
        if not TIME_FLOOR.timestamp() <= landing <= TIME_CEILING.timestamp():
            raise ControlError(400, "InvalidField", "'advance' would move the clock outside the years 1971-2999.")
        clock.advance(float(seconds))
    if payload.get("resume") is True:
        clock.resume()
    if payload.get("reset") is True:
        clock.reset()
    return json_response(_time_json())


TIME_FLOOR = datetime(1971, 1, 1, tzinfo=UTC)
TIME_CEILING = datetime(2999, 12, 31, tzinfo=UTC)
MAX_ADVANCE_SECONDS = 100 * 365 * 86400
SETTING_LIMITS = {"tokenLifetime": (1, 365 * 86400), "propagationDelay": (0, 10 * 365 * 86400)}

SETTINGS_FIELDS = {
    "tokenLifetime": "token_lifetime",
    "propagationDelay": "propagation_delay",
    "nestedGroupMembership": "nested_group_membership",
}


def _settings_json() -> dict[str, Any]:
    settings = current_emulator().settings
    return {name: getattr(settings, attr) for name, attr in SETTINGS_FIELDS.items()}


@control.get("/settings")
def get_settings() -> Response:
    return json_response(_settings_json())


@control.patch("/settings")
def patch_settings() -> Response:
    payload = body_object()
    unknown = set(payload) - set(SETTINGS_FIELDS)
    if unknown:
        raise ControlError(
            400, "UnknownField", f"Unknown settings {sorted(unknown)}; known: {sorted(SETTINGS_FIELDS)}."
        )
    emulator = current_emulator()
    if "nestedGroupMembership" in payload:
        bool_field(payload, "nestedGroupMembership", True)
    for name, (low, high) in SETTING_LIMITS.items():
        if name in payload:
            value = payload[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ControlError(
                    400, "InvalidField", f"'{name}' must be a whole number of seconds from {low} to {high}."
                )
    for name, value in payload.items():
        setattr(emulator.settings, SETTINGS_FIELDS[name], value)
    emulator.issuer.lifetime = emulator.settings.token_lifetime
    return json_response(_settings_json())


@control.post("/reset")
def reset() -> Response:
    """Back to the tenant world loaded at start-up, in real time; mail, log and rule changes are gone."""
    current_emulator().reset()
    return json_response({"status": "reset"})


@control.get("/export")
def export() -> Response:
    """The current world as tenant-file JSON: directory, rules, settings, each mailbox's mail and the outbound log.

    Importing it gives the same world, and exporting that again the same bytes.
    """
    emulator = current_emulator()
    return json_response(dump_world(emulator.directory, emulator.settings, emulator.mail))


@control.post("/import")
def import_world() -> Response:
    """Replace the world with tenant-file JSON; its mail is loaded, mail and log of the old world are dropped.

    The body is checked against the tenant-file schema first (400 InvalidTenantFile naming every wrong place);
    no file is ever read, so a certificate must come as `pem`.
    """
    try:
        world = load_world(body_object(), base_dir=None)
    except ConfigError as exc:
        if exc.problems:
            raise refused_body("InvalidTenantFile", exc.problems) from None
        raise ControlError(400, "InvalidTenantFile", str(exc)) from None
    current_emulator().load(world)
    return json_response({"status": "imported", "tenants": [t.id for t in world.directory.tenants]})
