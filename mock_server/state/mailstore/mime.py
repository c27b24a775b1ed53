"""Messages as RFC 5322 MIME and back, with the standard library's `email` package.

`message_mime` writes what `GET .../messages/{id}/$value` returns: the headers (From, To, Cc, Subject, Date,
Message-ID, threading headers, Thread-Index), the body as multipart/alternative when it is HTML, inline
attachments in multipart/related and the others as parts of multipart/mixed. `read_mime` takes a message in
MIME (sendMail and draft creation with `Content-Type: text/plain`) back into message fields.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.message import Message as MimeMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import Any

from m365_mock.state.mailstore.attachments import FILE, ITEM, Attachment, counts_as_attachment
from m365_mock.state.mailstore.messages import Message, detached_message, recipient, text_of

THREADING_HEADERS = ("In-Reply-To", "References")
_PASSED_THROUGH = frozenset({"in-reply-to", "references"})


class MimeError(ValueError):
    """MIME content the emulator cannot read as a message."""


def _address(entry: dict[str, Any] | None) -> str | None:
    email = (entry or {}).get("emailAddress") or {}
    address = email.get("address")
    if not address:
        return None
    name = email.get("name")
    local, _, domain = address.rpartition("@")
    try:
        return str(Address(display_name=name if name and name != address else "", username=local, domain=domain))
    except (ValueError, IndexError):
        return address


def _addresses(entries: list[dict[str, Any]]) -> str:
    return ", ".join(a for a in (_address(e) for e in entries) if a)


def message_mime(message: Message, *, include_bcc: bool | None = None) -> bytes:
    """The message as RFC 5322 bytes (CRLF line ends). Bcc is written for drafts and sent copies only."""
    mime = EmailMessage(policy=policy.SMTP)
    sender = _address(message.from_) or _address(message.sender)
    if sender:
        mime["From"] = sender
    if message.sender and message.from_ and _address(message.sender) != sender:
        mime["Sender"] = _address(message.sender)
    for header, entries in (("To", message.to), ("Cc", message.cc)):
        if entries:
            mime[header] = _addresses(entries)
    if message.bcc and (include_bcc if include_bcc is not None else message.is_draft):
        mime["Bcc"] = _addresses(message.bcc)
    if message.reply_to:
        mime["Reply-To"] = _addresses(message.reply_to)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime((message.sent or message.received).astimezone(UTC))
    if message.internet_message_id:
        mime["Message-ID"] = message.internet_message_id
    for extra in message.internet_message_headers:
        mime[extra["name"]] = extra["value"]
    if message.conversation_index:
        mime["Thread-Index"] = message.conversation_index
    mime["Thread-Topic"] = _topic(message.subject)
    if message.importance != "normal":
        mime["Importance"] = message.importance
    _set_body(mime, message)
    inline = [a for a in message.attachments if a.is_inline and a.kind == FILE]
    if inline:
        html = mime.get_body(("html",))
        for attachment in inline:
            maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
            target = html if html is not None else mime
            target.add_related(
                bytes(attachment.content),
                maintype=maintype,
                subtype=subtype or "octet-stream",
                cid=f"<{attachment.content_id or attachment.name}>",
                filename=attachment.name,
                disposition="inline",
            )
    for attachment in message.attachments:
        if attachment.is_inline and attachment.kind == FILE:
            continue
        _add_attachment(mime, attachment)
    return mime.as_bytes()


def _topic(subject: str) -> str:
    lowered = subject
    while lowered[:4].upper() in ("RE: ", "FW: "):
        lowered = lowered[4:]
    return lowered


def _set_body(mime: EmailMessage, message: Message) -> None:
    if message.body_type == "html":
        mime.set_content(text_of(message.body_content, "html").strip() + "\n", cte="quoted-printable")
        mime.add_alternative(message.body_content, subtype="html", cte="quoted-printable")
    else:
        mime.set_content(message.body_content, cte="quoted-printable")


def _add_attachment(mime: EmailMessage, attachment: Attachment) -> None:
    if attachment.kind == FILE:
        maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
        mime.add_attachment(
            bytes(attachment.content), maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.name
        )
    elif attachment.kind == ITEM and attachment.item is not None:
        inner = BytesParser(policy=policy.SMTP).parsebytes(message_mime(attachment.item))
        mime.add_attachment(inner, filename=attachment.name)


# ---------------------------------------------------------------- back in


def read_mime(data: bytes, owner: str, now: datetime) -> dict[str, Any]:
    """Message fields from RFC 5322 bytes: headers, the HTML body (else the text one), attachments."""
    parsed = BytesParser(policy=policy.default).parsebytes(data)
    if not parsed.keys() or (parsed.defects and not parsed.get("From") and not parsed.get("To")):
        raise MimeError("The MIME content has no message headers.")
    fields: dict[str, Any] = {"subject": str(parsed.get("Subject", "") or "")}
    for header, name in (("To", "to"), ("Cc", "cc"), ("Bcc", "bcc"), ("Reply-To", "reply_to")):
        fields[name] = _recipients(parsed.get_all(header) or [])
    senders = _recipients(parsed.get_all("From") or [])
    if senders:
        fields["from_"] = senders[0]
    message_id = parsed.get("Message-ID")
    if message_id:
        fields["internet_message_id"] = str(message_id).strip()
    headers = [
        {"name": name, "value": str(value)}
        for name, value in parsed.items()
        if name.lower().startswith("x-") or name.lower() in _PASSED_THROUGH
    ]
    if headers:
        fields["internet_message_headers"] = headers
    date = parsed.get("Date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            fields["sent"] = parsedate_to_datetime(str(date)).astimezone(UTC).replace(microsecond=0)
    importance = str(parsed.get("Importance", "")).strip().lower()
    if importance in ("low", "high"):
        fields["importance"] = importance
    body = parsed.get_body(("html", "plain"))
    if body is not None:
        content = body.get_content()
        fields["body_content"] = content if isinstance(content, str) else content.decode("utf-8", "replace")
        fields["body_type"] = "html" if body.get_content_subtype() == "html" else "text"
    attachments = [_attachment_of(part, owner, now) for part in _attachment_parts(parsed, body)]
    fields["attachments"] = attachments
    fields["has_attachments"] = counts_as_attachment(attachments)
    return fields


def _recipients(values: list[Any]) -> list[dict[str, Any]]:
    return [recipient(address, name or None) for name, address in getaddresses([str(v) for v in values]) if address]


def _attachment_parts(parsed: EmailMessage, body: MIMEPart | None) -> list[MIMEPart]:
    """Every part that is not the body: attachments, and inline parts of multipart/related."""
    parts: list[MIMEPart] = []
    for part in parsed.walk():
        if part is parsed or part is body or (part.is_multipart() and part.get_content_type() != "message/rfc822"):
            continue
        if part.get_content_maintype() == "text" and part.get_content_disposition() is None:
            continue  # the other alternative of the body
        parts.append(part)
    return _outermost(parts)


def _outermost(parts: list[MIMEPart]) -> list[MIMEPart]:
    """Drop the parts inside an attached message: they belong to it."""
    inner: set[int] = set()
    for part in parts:
        if part.get_content_type() == "message/rfc822":
            for sub in part.walk():
                if sub is not part:
                    inner.add(id(sub))
    return [p for p in parts if id(p) not in inner]


def _attachment_of(part: MIMEPart, owner: str, now: datetime) -> Attachment:
    content_id = part.get("Content-ID")
    cid = str(content_id).strip().strip("<>") if content_id else None
    name = part.get_filename() or (cid or "attachment")
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0) if part.is_multipart() else part.get_content()
        item_bytes = inner.as_bytes() if isinstance(inner, MimeMessage) else str(inner).encode()
        item = detached_message(owner, now, read_mime(item_bytes, owner, now))
        return Attachment(id="", kind=ITEM, name=name, content_type="message/rfc822", modified=now, item=item)
    payload = part.get_payload(decode=True)
    content = payload if isinstance(payload, bytes) else b""
    return Attachment(
        id="",
        kind=FILE,
        name=name,
        content_type=part.get_content_type(),
        modified=now,
        is_inline=part.get_content_disposition() == "inline" and cid is not None,
        content_id=cid,
        content=content,
    )
