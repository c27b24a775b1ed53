"""Writing mail: sendMail, drafts (create, send), reply / replyAll / forward and their create* drafts,
permanentDelete, and a message as MIME (`$value`). JSON bodies or, where Graph takes it, base64 MIME."""

from __future__ import annotations

import base64
import binascii
import html
from datetime import datetime
from typing import Any

from flask import Response

from m365_mock.graph import body, errors
from m365_mock.graph.attachmentjson import read_attachment
from m365_mock.graph.routes import (
    MailboxRequest,
    _message_in_scope,
    _message_routes,
    _one,
    allow_query,
    authorize,
    find_folder,
    graph,
)
from m365_mock.ids import random_bytes
from m365_mock.state.access import Operation
from m365_mock.state.mailstore import Folder, ItemNotFound, Message, recipient
from m365_mock.state.mailstore.attachments import counts_as_attachment
from m365_mock.state.mailstore.messages import _clone
from m365_mock.state.mailstore.mime import MimeError, message_mime, read_mime
from m365_mock.web import current_emulator

MIME_TYPE = "text/plain"


# ---------------------------------------------------------------- reading a message from a body


def _is_mime(req: MailboxRequest) -> bool:
    return req.http.mimetype == MIME_TYPE


def mime_fields(req: MailboxRequest) -> dict[str, Any]:
    """Message fields from a base64 MIME body (`Content-Type: text/plain`)."""
    raw = req.http.get_data(cache=True).strip()
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise errors.MimeContentInvalidBase64() from None
    if not data.strip():
        raise errors.MimeContentInvalidBase64()
    try:
        return read_mime(data, req.mailbox.id, current_emulator().mail.now())
    except MimeError as invalid:
        raise errors.MimeContentInvalid(str(invalid)) from None


def message_fields(req: MailboxRequest, obj: dict[str, Any]) -> dict[str, Any]:
    """Writable message properties and attachments of a JSON message object, as store fields."""
    fields = body.read_message_fields(obj, ignore=frozenset({"attachments"}))
    attachments = body.fold_keys(obj).get("attachments")
    if attachments is not None:
        fields["attachments"] = [
            read_attachment(item, req.mailbox.id) for item in body.expect_list("attachments", attachments[1])
        ]
        fields["has_attachments"] = counts_as_attachment(fields["attachments"])
    return fields


def _check_recipients(fields: dict[str, Any]) -> None:
    recipients = [*fields.get("to", []), *fields.get("cc", []), *fields.get("bcc", [])]
    if not recipients:
        raise errors.InvalidRecipients()
    if len(recipients) > body.MAX_RECIPIENTS:
        raise errors.TooManyRecipients()


def _check_send_as(req: MailboxRequest, fields: dict[str, Any]) -> None:
    """A `from` or `sender` other than the mailbox itself is refused (the app sends as the mailbox)."""
    for name in ("from_", "sender"):
        claimed = fields.pop(name, None)
        if claimed is not None and req.mailbox is not req.token.tenant.mailbox(claimed["emailAddress"]["address"]):
            raise errors.SendAsDenied()


def _submit(req: MailboxRequest, fields: dict[str, Any], save: bool = True) -> None:
    _check_recipients(fields)
    _check_send_as(req, fields)
    fields.pop("is_read", None)
    current_emulator().mail.send(req.token.tenant, req.mailbox, fields, save_to_sent=save)


# ---------------------------------------------------------------- sendMail


@graph.post("/users/<user>/sendMail")
def send_mail(user: str) -> Response:
    req = authorize(user, Operation.SEND)
    allow_query(req)
    if _is_mime(req):
        _submit(req, mime_fields(req))
        return Response(status=202)
    payload = body.fold_keys(body.json_body())
    for lower, (sent, _) in payload.items():
        if lower not in ("message", "savetosentitems"):
            raise errors.UnknownActionParameter(sent, "sendMail")
    if "message" not in payload or payload["message"][1] is None:
        raise errors.InvalidParameter("The value of the parameter 'Message' is empty.")  # fidelity: chosen
    save = body.expect_bool("SaveToSentItems", payload["savetosentitems"][1]) if "savetosentitems" in payload else True
    fields = message_fields(req, body.expect_object("Message", payload["message"][1]))
    _submit(req, fields, save)
    return Response(status=202)


# ---------------------------------------------------------------- drafts


def _new_draft(req: MailboxRequest, folder: Folder, fields: dict[str, Any]) -> Message:
    now = current_emulator().mail.now()
    if "from_" not in fields:
        fields["from_"] = recipient(req.mailbox.address, req.mailbox.display_name)
    fields.setdefault("sender", _clone(fields["from_"]))
    fields.update(is_draft=True, is_read=True, received=now, sent=now)
    return req.store.add_message(folder, **fields)


def _create_draft(req: MailboxRequest, folder: Folder) -> Response:
    fields = mime_fields(req) if _is_mime(req) else message_fields(req, body.json_body(allow_empty=True))
    fields.pop("is_draft", None)
    return _one(req, _new_draft(req, folder, fields), 201)


@graph.post("/users/<user>/messages")
def create_draft(user: str) -> Response:
    req = authorize(user, Operation.WRITE)
    allow_query(req)
    return _create_draft(req, req.store.well_known["drafts"])


@graph.post("/users/<user>/mailFolders/<folder_id>/messages")
def create_draft_in_folder(user: str, folder_id: str) -> Response:
    req = authorize(user, Operation.WRITE)
    allow_query(req)
    return _create_draft(req, find_folder(req, folder_id))


def _no_body(req: MailboxRequest, action: str) -> None:
    """Actions that take no parameters (send, permanentDelete): an empty body, or an empty JSON object."""
    if req.http.get_data(cache=True).strip():
        for sent, _ in body.fold_keys(body.json_body()).values():
            raise errors.UnknownActionParameter(sent, action)


@_message_routes("/send", methods=["POST"])
def send_draft(user: str, message_id: str, folder_id: str | None = None) -> Response:
    """Send a draft: delivered as sendMail delivers, and the draft itself moves to Sent Items."""
    req = authorize(user, Operation.SEND)
    allow_query(req)
    _no_body(req, "send")
    draft = _message_in_scope(req, message_id, folder_id)
    now = current_emulator().mail.now()
    own = recipient(req.mailbox.address, req.mailbox.display_name)

    def sent(message: Message) -> None:
        message.is_draft, message.sent, message.received = False, now, now
        message.from_, message.sender = own, _clone(own)

    # The draft is claimed under its mailbox's lock (checked, marked sent, moved to Sent Items), so two sends of
    # it cannot both deliver; delivery itself takes the recipients' locks, after this one is released.
    with req.store.lock:
        if not draft.is_draft:
            raise errors.NotADraft()
        fields = draft.copy_fields()
        _check_recipients(fields)
        _check_send_as(req, fields)
        try:
            req.store.update_message(draft.id, sent)
            req.store.move_message(draft.id, req.store.well_known["sentitems"])
        except ItemNotFound:
            raise errors.ItemNotFound() from None
    current_emulator().mail.send(req.token.tenant, req.mailbox, _sendable(fields), save_to_sent=False)
    return Response(status=202)


def _sendable(fields: dict[str, Any]) -> dict[str, Any]:
    for name in ("is_read", "is_draft", "sent", "received"):
        fields.pop(name, None)
    return fields


@_message_routes("/permanentDelete", methods=["POST"])
def permanent_delete(user: str, message_id: str, folder_id: str | None = None) -> Response:
    """Out of every folder a client sees, into the dumpster (Recoverable Items)."""
    req = authorize(user, Operation.WRITE)
    allow_query(req)
    _no_body(req, "permanentDelete")
    message = _message_in_scope(req, message_id, folder_id)
    try:
        req.store.move_message(message.id, req.store.well_known["recoverableitemsdeletions"])
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    return Response(status=204)


# ---------------------------------------------------------------- MIME out


@_message_routes("/$value", methods=["GET"])
def message_value(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.READ)
    allow_query(req)
    message = _message_in_scope(req, message_id, folder_id)
    with req.store.lock:
        mime = message_mime(message, include_bcc=message.is_draft or message.folder_id == _sent_id(req))
    return Response(mime, content_type=MIME_TYPE)


def _sent_id(req: MailboxRequest) -> str:
    return req.store.well_known["sentitems"].id


# ---------------------------------------------------------------- reply, reply all, forward

REPLY, REPLY_ALL, FORWARD = "reply", "replyAll", "forward"
_PREFIXES = {REPLY: "RE: ", REPLY_ALL: "RE: ", FORWARD: "FW: "}


def _action_parameters(req: MailboxRequest, action: str) -> dict[str, Any]:
    """`Comment`, `Message` and (forward) `ToRecipients`, any case; anything else refused."""
    allowed = ("comment", "message", "torecipients") if action.endswith("orward") else ("comment", "message")
    raw = req.http.get_data(cache=True)
    payload = body.fold_keys(body.json_body()) if raw.strip() else {}
    for lower, (sent, _) in payload.items():
        if lower not in allowed:
            raise errors.UnknownActionParameter(sent, action)
    return {lower: value for lower, (_, value) in payload.items()}


def _response_fields(req: MailboxRequest, original: Message, kind: str, action: str) -> dict[str, Any]:
    """The reply or forward of `original`: recipients, subject, the comment above the quoted original, the
    thread (conversation, In-Reply-To, References); properties of `message` override."""
    parameters = _action_parameters(req, action)
    comment = body.expect_string("Comment", parameters.get("comment"))
    message_obj = body.expect_object("Message", parameters["message"]) if parameters.get("message") else {}
    overrides = message_fields(req, message_obj) if message_obj else {}
    if comment is not None and "body_content" in overrides:
        raise errors.CommentAndMessageBody()
    own = req.mailbox.address.lower()
    fields: dict[str, Any] = {}
    if kind == FORWARD:
        top = parameters.get("torecipients")
        to = body.read_recipients("ToRecipients", top) if top is not None else None
        if (to is None) == ("to" not in overrides):
            raise errors.ForwardRecipients()
        fields["to"] = to if to is not None else overrides.pop("to")
        fields["attachments"] = list(original.attachments)
        fields["has_attachments"] = original.has_attachments
    else:
        reply_to = original.reply_to or ([original.from_] if original.from_ else [])
        fields["to"] = _clone(reply_to)
        if kind == REPLY_ALL:
            seen = {r["emailAddress"]["address"].lower() for r in fields["to"]} | {own}
            for entry in original.to:
                if entry["emailAddress"]["address"].lower() not in seen:
                    seen.add(entry["emailAddress"]["address"].lower())
                    fields["to"].append(_clone(entry))
            fields["cc"] = [_clone(c) for c in original.cc if c["emailAddress"]["address"].lower() not in seen]
    fields["subject"] = _PREFIXES[kind] + _strip_prefix(original.subject, _PREFIXES[kind])
    fields["body_type"] = "html"
    fields["body_content"] = _quoted(comment or "", original, kind)
    fields["conversation_id"] = original.conversation_id
    fields["conversation_index"] = _child_index(original.conversation_index)
    references = next((h["value"] for h in original.internet_message_headers if h["name"] == "References"), "")
    if original.internet_message_id:
        fields["internet_message_headers"] = [
            {"name": "In-Reply-To", "value": original.internet_message_id},
            {"name": "References", "value": f"{references} {original.internet_message_id}".strip()},
        ]
    fields.update(overrides)
    return fields


def _strip_prefix(subject: str, prefix: str) -> str:
    return subject[len(prefix) :] if subject.upper().startswith(prefix) else subject


def _child_index(parent: str) -> str:
    """A reply's conversationIndex: the parent's 22-byte header and blocks, and one 5-byte block more."""
    try:
        raw = base64.b64decode(parent) if parent else random_bytes(22)
    except (binascii.Error, ValueError):
        raw = random_bytes(22)
    return base64.b64encode(raw + random_bytes(5)).decode("ascii")


def _quoted(comment: str, original: Message, kind: str) -> str:
    """Outlook's reply body: the comment, a rule, the original's From/Sent/To/Subject block, its body."""

    def names(entries: list[dict[str, Any]]) -> str:
        return "; ".join(html.escape(e["emailAddress"].get("name") or e["emailAddress"]["address"]) for e in entries)

    sent: datetime = original.sent or original.received
    original_body = (
        original.body_content
        if original.body_type == "html"
        else f"<div>{html.escape(original.body_content).replace(chr(10), '<br>')}</div>"
    )
    header = [
        f"<b>From:</b> {names([original.from_]) if original.from_ else ''}",
        f"<b>Sent:</b> {sent.strftime('%A, %B %d, %Y %I:%M %p').replace(' 0', ' ')}",
        f"<b>To:</b> {names(original.to)}",
    ]
    if original.cc:
        header.append(f"<b>Cc:</b> {names(original.cc)}")
    header.append(f"<b>Subject:</b> {html.escape(original.subject)}")
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body>'
        f"<div>{html.escape(comment)}</div>"
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">'
        f"{'<br>'.join(header)}</font><div>&nbsp;</div></div>{original_body}</body></html>"
    )


def _respond(user: str, message_id: str, folder_id: str | None, kind: str, *, draft: bool) -> Response:
    action = ("create" + kind[0].upper() + kind[1:]) if draft else kind
    req = authorize(user, Operation.WRITE if draft else Operation.SEND)
    allow_query(req)
    original = _message_in_scope(req, message_id, folder_id)
    with req.store.lock:
        fields = _response_fields(req, original, kind, action)
    if draft:
        return _one(req, _new_draft(req, req.store.well_known["drafts"], fields), 201)
    _submit(req, fields)
    return Response(status=202)


def _register(kind: str) -> None:
    def send(user: str, message_id: str, folder_id: str | None = None) -> Response:
        return _respond(user, message_id, folder_id, kind, draft=False)

    def create(user: str, message_id: str, folder_id: str | None = None) -> Response:
        return _respond(user, message_id, folder_id, kind, draft=True)

    send.__name__ = f"message_{kind}"
    create.__name__ = f"message_create_{kind}"
    _message_routes(f"/{kind}", methods=["POST"])(send)
    _message_routes(f"/create{kind[0].upper()}{kind[1:]}", methods=["POST"])(create)


for _kind in (REPLY, REPLY_ALL, FORWARD):
    _register(_kind)
