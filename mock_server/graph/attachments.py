"""The attachment routes of a message: list, get, add, delete, `$value`, and upload sessions with their
pre-authenticated chunk URL."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response

from m365_mock.clock import iso_z
from m365_mock.graph import body, errors
from m365_mock.graph.attachmentjson import ITEM_EXPAND, attachment_json, parse_attachment_select, read_attachment
from m365_mock.graph.query import ParseUriError
from m365_mock.graph.routes import (
    MailboxRequest,
    _message_in_scope,
    _message_routes,
    admit,
    allow_query,
    authorize,
    graph_json,
    mailbox_request,
    refuse_other_methods,
)
from m365_mock.identity.tokens import VerifiedToken
from m365_mock.state.access import Operation
from m365_mock.state.mailstore import ItemNotFound, MalformedId, Message
from m365_mock.state.mailstore.attachments import (
    DIRECT_LIMIT,
    FILE,
    ITEM,
    KINDS,
    REFERENCE,
    SESSION_MAXIMUM,
    SESSION_MINIMUM,
    Attachment,
)
from m365_mock.state.mailstore.mime import message_mime
from m365_mock.state.uploads import UploadRefused, UploadSession
from m365_mock.web import DECISION, TOKEN, current_emulator, current_request, origin_of

# ---------------------------------------------------------------- routes


def _attachment_context(req: MailboxRequest, message_id: str, tail: str) -> str:
    return req.context(f"messages('{message_id}')/attachments{tail}")


def _find_attachment(req: MailboxRequest, message: Message, attachment_id: str) -> Attachment:
    try:
        return req.store.attachment(message, attachment_id)
    except MalformedId:
        raise errors.InvalidIdMalformed() from None
    except ItemNotFound:
        raise errors.ItemNotFound() from None


def _expand_item(args: Any) -> bool:
    if "$expand" not in args:
        return False
    if args["$expand"].strip().lower() != ITEM_EXPAND:
        raise ParseUriError(
            f"Could not find a property named '{args['$expand'].strip()}' on type 'microsoft.graph.attachment'."
        )
    return True


@_message_routes("/attachments", methods=["GET"])
def list_attachments(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.READ)
    allow_query(req, "$select", "$expand")
    message = _message_in_scope(req, message_id, folder_id)
    select = parse_attachment_select(req.http.args["$select"]) if "$select" in req.http.args else None
    expand = _expand_item(req.http.args)
    with req.store.lock:
        value = [attachment_json(a, select=select, expand_item=expand) for a in message.attachments]
    return graph_json({"@odata.context": _attachment_context(req, message_id, ""), "value": value})


@_message_routes("/attachments/<attachment_id>", methods=["GET"])
def get_attachment(user: str, message_id: str, attachment_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.READ)
    allow_query(req, "$select", "$expand")
    message = _message_in_scope(req, message_id, folder_id)
    attachment = _find_attachment(req, message, attachment_id)
    select = parse_attachment_select(req.http.args["$select"]) if "$select" in req.http.args else None
    context = _attachment_context(req, message_id, "/$entity")
    return graph_json(
        attachment_json(attachment, select=select, expand_item=_expand_item(req.http.args), context=context)
    )


@_message_routes("/attachments/<attachment_id>/$value", methods=["GET"])
def attachment_value(user: str, message_id: str, attachment_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.READ)
    allow_query(req)
    message = _message_in_scope(req, message_id, folder_id)
    attachment = _find_attachment(req, message, attachment_id)
    if attachment.kind == REFERENCE:
        raise errors.MethodNotAllowed()
    if attachment.kind == ITEM and attachment.item is not None:
        return Response(message_mime(attachment.item), content_type="text/plain")
    # The content itself, not a copy: a 150 MB upload is a bytearray that is never changed again.
    return Response(attachment.content, content_type=attachment.content_type or "application/octet-stream")


@_message_routes("/attachments", methods=["POST"])
def add_attachment(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.WRITE)
    allow_query(req)
    message = _message_in_scope(req, message_id, folder_id)
    attachment = read_attachment(body.json_body(), req.mailbox.id)
    if attachment.size >= DIRECT_LIMIT:
        raise errors.AttachmentTooLarge()
    try:
        added = req.store.add_attachment(message.id, attachment)
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    return graph_json(attachment_json(added, context=_attachment_context(req, message_id, "/$entity")), 201)


@_message_routes("/attachments/<attachment_id>", methods=["DELETE"])
def delete_attachment(user: str, message_id: str, attachment_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.WRITE)
    allow_query(req)
    message = _message_in_scope(req, message_id, folder_id)
    try:
        req.store.remove_attachment(message.id, attachment_id)
    except MalformedId:
        raise errors.InvalidIdMalformed() from None
    except ItemNotFound:
        raise errors.ItemNotFound() from None
    return Response(status=204)


# ---------------------------------------------------------------- upload sessions


def _read_attachment_item(payload: dict[str, Any]) -> tuple[Attachment, int]:
    """createUploadSession's `AttachmentItem`: the file's name, size, and inline details."""
    fields = body.fold_keys(payload)
    for lower, (sent, _) in fields.items():
        if lower != "attachmentitem":
            raise errors.RequestBodyRead(
                f"The parameter '{sent}' in the request payload is not a valid parameter for the operation "
                "'createUploadSession'."
            )
    if "attachmentitem" not in fields or fields["attachmentitem"][1] is None:
        raise errors.InvalidParameter("The value of the parameter 'AttachmentItem' is empty.")  # fidelity: chosen
    item = body.fold_keys(body.expect_object("AttachmentItem", fields["attachmentitem"][1]))
    known = {"attachmenttype", "name", "size", "contenttype", "isinline", "contentid"}
    for lower, (sent, _) in item.items():
        if lower not in known:
            raise errors.RequestBodyRead(
                f"The property '{sent}' does not exist on type 'microsoft.graph.attachmentItem'. Make sure to only "
                "use property names that are defined by the type or mark the type as open type."
            )
    kind = body.expect_enum("attachmentType", item.get("attachmenttype", ("attachmentType", "file"))[1], KINDS)
    if kind != FILE:
        raise errors.InvalidParameter(  # fidelity: chosen (Graph's sessions upload files to messages)
            f"Upload sessions take file attachments; attachmentType '{kind}' is not supported."
        )
    name = body.expect_string("name", item.get("name", ("name", None))[1])
    if not name:
        raise errors.InvalidParameter("The attachment's name is empty.")  # fidelity: chosen
    size = item.get("size", ("size", None))[1]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise errors.RequestBodyRead(f"Cannot convert the literal '{size}' to the expected type 'Edm.Int64'.")
    if size < SESSION_MINIMUM:
        raise errors.AttachmentBelowMinimumSize()
    if size > SESSION_MAXIMUM:
        raise errors.MessageSizeExceeded()
    inline = body.expect_bool("isInline", item["isinline"][1]) if "isinline" in item else False
    attachment = Attachment(
        id="",
        kind=FILE,
        name=name,
        content_type=body.expect_string("contentType", item.get("contenttype", ("contentType", None))[1])
        or "application/octet-stream",
        modified=current_emulator().mail.now(),
        is_inline=inline,
        content_id=body.expect_string("contentId", item.get("contentid", ("contentId", None))[1]),
    )
    return attachment, size


@_message_routes("/attachments/createUploadSession", methods=["POST"])
def create_upload_session(user: str, message_id: str, folder_id: str | None = None) -> Response:
    req = authorize(user, Operation.WRITE)
    allow_query(req)
    message = _message_in_scope(req, message_id, folder_id)
    attachment, size = _read_attachment_item(body.json_body())
    emulator = current_emulator()
    session = emulator.uploads.open(
        tenant_id=req.token.tenant.id,
        app_id=req.token.app_id,
        roles=tuple(req.token.roles),
        mailbox_id=req.mailbox.id,
        message_id=message.immutable_id,
        attachment=attachment,
        size=size,
        now=emulator.clock.now_datetime(),
    )
    origin = origin_of(req.http)
    return graph_json(
        {
            "@odata.context": f"{origin}/v1.0/$metadata#microsoft.graph.uploadSession",
            "uploadUrl": upload_url(origin, session, message, emulator.uploads.auth_token(session)),
            "expirationDateTime": iso_z(session.expires),
            "nextExpectedRanges": ["0-"],
        },
        201,
    )


# `attachments/createUploadSession` stands where an attachment id could: other methods are 405, not a malformed id.
refuse_other_methods("/users/<user>/messages/<message_id>/attachments/createUploadSession", "upload_session", ("POST",))
refuse_other_methods(
    "/users/<user>/mailFolders/<folder_id>/messages/<message_id>/attachments/createUploadSession",
    "upload_session_in_folder",
    ("POST",),
)


def upload_url(origin: str, session: UploadSession, message: Message, token: str) -> str:
    return (
        f"{origin}/api/v2.0/Users('{session.mailbox_id}')/Messages('{quote(message.id, safe='')}')"
        f"/AttachmentSessions('{session.id}')?authtoken={token}"
    )


_SESSION_CONTEXT = "/api/v2.0/$metadata#Microsoft.OutlookServices.UploadSession"
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$", re.I)


def _session_of(mailbox_id: str, message_id: str, session_id: str) -> tuple[UploadSession, MailboxRequest]:
    """The session the URL names, re-authorized now: the app that opened it must still reach the mailbox."""
    emulator = current_emulator()
    http = current_request()
    token = http.args.get("authtoken", "")
    session = emulator.uploads.find(session_id, token, emulator.clock.now_datetime())
    if session is None or session.mailbox_id != mailbox_id:
        raise errors.UploadSessionNotFound()
    tenant = emulator.directory.tenant(session.tenant_id)
    mailbox = tenant.mailboxes.get(session.mailbox_id) if tenant is not None else None
    if tenant is None or mailbox is None:
        raise errors.UploadSessionNotFound()
    holder = VerifiedToken(tenant, session.app_id, session.roles, {"upload_session": session.id})
    req = mailbox_request(emulator, http, holder, mailbox.address, Operation.WRITE)
    http.environ[TOKEN], http.environ[DECISION] = holder, req.decision
    if not req.decision.allowed:
        raise errors.AccessDenied(req.decision.message)
    admit(emulator, req)
    try:
        message = req.store.message(session.message_id)
    except (MalformedId, ItemNotFound):
        raise errors.ItemNotFound() from None
    if message.id != message_id and message.immutable_id != message_id:
        raise errors.UploadSessionNotFound()
    return session, req


# Upload URLs are Outlook REST URLs (`/api/v2.0/...`), as Graph's are; they answer in Graph's error format.
outlook = Blueprint("outlook", __name__, url_prefix="/api/v2.0")


@outlook.route("/Users/<mailbox_id>/Messages/<message_id>/AttachmentSessions/<session_id>", methods=["PUT", "DELETE"])
def upload_chunk(mailbox_id: str, message_id: str, session_id: str) -> Response:
    """PUT a chunk to an upload URL (no bearer token: the URL is the credential), or DELETE to cancel."""
    session, req = _session_of(mailbox_id, message_id, session_id)
    emulator = current_emulator()
    if req.http.method == "DELETE":
        emulator.uploads.close(session)
        return Response(status=204)
    match = _CONTENT_RANGE.match(req.http.headers.get("Content-Range", ""))
    if match is None:
        raise errors.InvalidContentRange("The Content-Range header is missing or is not 'bytes {start}-{end}/{total}'.")
    start, end, total = (int(g) for g in match.groups())
    chunk = req.http.get_data(cache=False)
    with session.lock:
        if session.done:
            raise errors.UploadSessionNotFound()
        try:
            complete = session.write(start, end, total, chunk, emulator.clock.now_datetime())
        except UploadRefused as refused:
            raise errors.InvalidContentRange(refused.message) from None
        if not complete:
            return graph_json(
                {
                    "@odata.context": f"{origin_of(req.http)}{_SESSION_CONTEXT}",
                    "ExpirationDateTime": iso_z(session.expires),
                    "nextExpectedRanges": [str(session.received)],
                }
            )
        session.done = True
    emulator.uploads.close(session)
    finished = Attachment(**{**_fields(session.attachment), "content": session.buffer})  # the buffer, not a copy
    try:
        added = req.store.add_attachment(session.message_id, finished)
    except (MalformedId, ItemNotFound):
        raise errors.ItemNotFound() from None
    message = req.store.message(session.message_id)
    location = (
        f"{origin_of(req.http)}/api/v2.0/Users('{session.mailbox_id}')/Messages('{quote(message.id, safe='')}')"
        f"/Attachments('{added.id}')"
    )
    return Response(status=201, headers={"Location": location, "Content-Length": "0"})


def _fields(attachment: Attachment) -> dict[str, Any]:
    return {name: getattr(attachment, name) for name in Attachment.__slots__}
