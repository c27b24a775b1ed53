"""Attachments as Graph reads and writes them: from request bodies (`@odata.type` picks the type), as Graph
JSON, and `$expand=attachments` on messages."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from m365_mock.clock import iso_z
from m365_mock.graph import body, errors
from m365_mock.graph.query import ParseUriError
from m365_mock.graph.serializers import message_json
from m365_mock.state.mailstore import Message, detached_message
from m365_mock.state.mailstore.attachments import FILE, ITEM, ODATA_TYPES, Attachment
from m365_mock.web import current_emulator

# Properties of each attachment type in the order Graph writes them (after @odata.type and id).
BASE_PROPERTIES = ("lastModifiedDateTime", "name", "contentType", "size", "isInline")
FILE_PROPERTIES = ("contentId", "contentLocation", "contentBytes")
_PROPERTY_NAMES = {p.lower(): p for p in (*BASE_PROPERTIES, *FILE_PROPERTIES, "id", "item")}
_TYPE_NAMES = {t.lstrip("#").lower(): kind for kind, t in ODATA_TYPES.items()}
_TYPE_NAMES["microsoft.graph.attachment"] = ""
ITEM_EXPAND = "microsoft.graph.itemattachment/item"


# ---------------------------------------------------------------- reading


def read_attachment(value: Any, owner: str) -> Attachment:
    """An attachment from a request body, as Graph's OData reader takes it: `@odata.type` picks the type, and
    a property the type does not have is refused."""
    obj = body.expect_object("attachments", value)
    kind = _attachment_kind(obj)
    fields = body.fold_keys(obj)
    allowed = {"name", "contenttype", "isinline", "size", "id", "lastmodifieddatetime"}
    if kind == FILE:
        allowed |= {"contentbytes", "contentid", "contentlocation"}
    elif kind == ITEM:
        allowed |= {"item"}
    type_name = f"microsoft.graph.{kind}Attachment" if kind else "microsoft.graph.attachment"
    for lower, (sent, _) in fields.items():
        if lower not in allowed:
            raise errors.RequestBodyRead(
                f"The property '{sent}' does not exist on type '{type_name}'. Make sure to only use property names "
                "that are defined by the type or mark the type as open type."
            )
    if not kind:
        raise errors.AbstractAttachment()

    def text(name: str) -> str | None:
        return body.expect_string(name, fields.get(name.lower(), (name, None))[1])

    name = text("name")
    if not name:
        raise errors.InvalidParameter("The attachment's name is empty.")  # fidelity: chosen
    inline = body.expect_bool("isInline", fields["isinline"][1]) if "isinline" in fields else False
    content = b""
    item = None
    if kind == FILE:
        raw = text("contentBytes") or ""
        try:
            content = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise errors.RequestBodyRead(
                f"Cannot convert the literal '{raw[:40]}' to the expected type 'Edm.Binary'."
            ) from None
    elif kind == ITEM:
        item = read_item(fields.get("item", ("item", None))[1], owner)
    return Attachment(
        id="",
        kind=kind,
        name=name,
        content_type=text("contentType") or ("application/octet-stream" if kind == FILE else None),
        modified=current_emulator().mail.now(),
        is_inline=inline,
        content_id=text("contentId") if kind == FILE else None,
        content_location=text("contentLocation") if kind == FILE else None,
        content=content,
        item=item,
    )


def _attachment_kind(obj: dict[str, Any]) -> str:
    """`file`, `item`, `reference`, or "" for the abstract type (no `@odata.type`)."""
    odata_type = next((v for k, v in obj.items() if k.lower() == "@odata.type"), None)
    if odata_type is None:
        return ""
    if not isinstance(odata_type, str):
        raise body._unexpected_node("@odata.type", odata_type, "PrimitiveValue")
    kind = _TYPE_NAMES.get(odata_type.lstrip("#").lower())
    if kind is None:
        raise errors.RequestBodyRead(
            f"A type named '{odata_type.lstrip('#')}' could not be resolved by the model. When a model is available, "
            "each type name must resolve to a valid type."
        )
    return kind


def read_item(value: Any, owner: str) -> Message:
    """The message of an itemAttachment (`item` with `@odata.type` microsoft.graph.message)."""
    obj = body.expect_object("item", value)
    odata_type = next((v for k, v in obj.items() if k.lower() == "@odata.type"), "")
    if str(odata_type).lstrip("#").lower() != "microsoft.graph.message":
        raise errors.UnsupportedItemType(str(odata_type))
    fields = body.read_message_fields(obj)
    now = current_emulator().mail.now()
    return detached_message(owner, now, fields)


# ---------------------------------------------------------------- Graph JSON


def parse_attachment_select(text: str) -> list[str]:
    """`$select` on attachments: property names of microsoft.graph.attachment and its types."""
    names = []
    for raw in text.split(","):
        item = raw.strip()
        name = _PROPERTY_NAMES.get(item.lower())
        if name is None:
            raise ParseUriError(f"Could not find a property named '{item}' on type 'microsoft.graph.attachment'.")
        names.append(name)
    return list(dict.fromkeys(names))


def attachment_json(
    attachment: Attachment,
    *,
    select: list[str] | None = None,
    expand_item: bool = False,
    context: str | None = None,
) -> dict[str, Any]:
    """An attachment as Graph returns it; with `$select`, files also carry `@odata.mediaContentType`."""
    out: dict[str, Any] = {}
    if context:
        out["@odata.context"] = context
    out["@odata.type"] = ODATA_TYPES[attachment.kind]
    if select is not None and attachment.kind == FILE:
        out["@odata.mediaContentType"] = attachment.content_type
    out["id"] = attachment.id
    names = [*BASE_PROPERTIES, *(FILE_PROPERTIES if attachment.kind == FILE else ())]
    for name in names:
        if select is None or name in select:
            out[name] = _value(attachment, name)
    if attachment.kind == ITEM and expand_item and attachment.item is not None:
        out["item"] = {"@odata.type": "#microsoft.graph.message", **message_json(attachment.item)}
    return out


def _value(attachment: Attachment, name: str) -> Any:
    match name:
        case "lastModifiedDateTime":
            return iso_z(attachment.modified)
        case "name":
            return attachment.name
        case "contentType":
            return attachment.content_type
        case "size":
            return attachment.size
        case "isInline":
            return attachment.is_inline
        case "contentId":
            return attachment.content_id
        case "contentLocation":
            return attachment.content_location
        case "contentBytes":
            return base64.b64encode(attachment.content).decode("ascii")
    raise KeyError(name)


# ---------------------------------------------------------------- $expand on messages

_EXPAND_ITEM = re.compile(r"^\s*attachments\s*(?:\(\s*\$select\s*=\s*([^()]*)\))?\s*$", re.I)


def parse_expand(text: str) -> list[str] | None:
    """`$expand` on a message: `attachments`, or `attachments($select=...)`; the attachment $select (or None
    for all properties). Anything else is refused."""
    match = _EXPAND_ITEM.match(text)
    if match is None:
        first = re.split(r"[(,/]", text.strip(), maxsplit=1)[0].strip()
        if first and first.lower() != "attachments":
            raise ParseUriError(f"Could not find a property named '{first}' on type 'microsoft.graph.message'.")
        raise ParseUriError(
            f"The $expand value '{text}' is not supported; the emulator expands 'attachments' and "
            "'attachments($select=...)'."
        )  # fidelity: chosen
    return parse_attachment_select(match.group(1)) if match.group(1) else None


def expanded_attachments(message: Message, select: list[str] | None) -> list[dict[str, Any]]:
    return [attachment_json(a, select=select) for a in message.attachments]
