"""Control API routes (JSON): outbound mail and mailbox seeding. Every route but health needs the admin key."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, request

from mock_server.app import current_emulator, json_response
from mock_server.clock import iso_z
from mock_server.graph import body as graph_body
from mock_server.graph import errors as graph_errors
from mock_server.state.content import generate_messages
from mock_server.state.mailstore import ItemNotFound, MalformedId, recipient

control = Blueprint("control", __name__, url_prefix="/_m365")
ADMIN_HEADER = "X-M365-Admin-Key"
MAX_GENERATED = 200_000


class ControlError(Exception):
    """A control-API refusal: `{"error": {"code", "message"}}` with the status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@control.errorhandler(ControlError)
def render_control_error(exc: ControlError) -> Response:
    return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status)


@control.errorhandler(graph_errors.GraphError)
def render_body_error(exc: graph_errors.GraphError) -> Response:
    return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status)


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
        ids = generate_messages(
            store, folder, count, seed=seed, now=now, unread_ratio=float(payload.get("unreadRatio", 0.3))
        )
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
