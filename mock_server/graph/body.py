"""Reading Graph request bodies: JSON with property names matched case-insensitively, types checked as
Graph's OData reader checks them, and errors in Graph's words."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request

from m365_mock.graph import errors

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IMPORTANCE = ("low", "normal", "high")
INFERENCE = ("focused", "other")
BODY_TYPES = ("text", "html")
FLAG_STATUSES = ("notFlagged", "complete", "flagged")
MAX_RECIPIENTS = 500


def json_body(*, allow_empty: bool = False) -> dict[str, Any]:
    """The request's JSON object; Graph's errors for a wrong content type, empty or unreadable payload."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if allow_empty:
            return {}
        raise errors.EmptyPayload()
    if request.mimetype != "application/json":
        raise errors.UnsupportedMediaType(request.content_type or "")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.UnreadableJson() from None
    if not isinstance(value, dict):
        raise errors.UnreadableJson()
    return value


def fold_keys(obj: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Lower-cased property name -> (name as sent, value); OData annotations (`@odata.type`) dropped."""
    return {k.lower(): (k, v) for k, v in obj.items() if "@" not in k}


def _node(value: Any) -> str:
    if isinstance(value, dict):
        return "StartObject"
    if isinstance(value, list):
        return "StartArray"
    return "PrimitiveValue"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _unexpected_node(name: str, value: Any, expected: str) -> errors.RequestBodyRead:
    """ODataLib's error for a JSON value of the wrong kind (`expected`: PrimitiveValue, StartObject, StartArray)."""
    return errors.RequestBodyRead(
        f"An unexpected '{_node(value)}' node was found for property named '{name}' when reading from the JSON "
        f"reader. A '{expected}' node was expected."
    )


def _primitive(name: str, value: Any, kind: type, edm_type: str) -> Any:
    """`value` when it is a `kind`; ODataLib's error for an object, array or other literal otherwise."""
    if isinstance(value, dict | list):
        raise _unexpected_node(name, value, "PrimitiveValue")
    if not isinstance(value, kind):
        raise errors.RequestBodyRead(
            f"Cannot convert the literal '{_literal(value)}' to the expected type '{edm_type}'."
        )
    return value


def expect_string(name: str, value: Any, *, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    return _primitive(name, value, str, "Edm.String")


def expect_bool(name: str, value: Any) -> bool:
    return _primitive(name, value, bool, "Edm.Boolean")


def expect_enum(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = expect_string(name, value, nullable=False) or ""
    for option in allowed:
        if option.lower() == text.lower():
            return option
    raise errors.RequestBodyRead(f"Requested value '{text}' was not found.")


def expect_object(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _unexpected_node(name, value, "StartObject")
    return value


def expect_list(name: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _unexpected_node(name, value, "StartArray")
    return value


def read_recipient(name: str, value: Any) -> dict[str, Any]:
    """`{"emailAddress": {"address", "name"}}` -> the same, with the name defaulting to the address."""
    fields = fold_keys(expect_object(name, value))
    if "emailaddress" not in fields:
        raise errors.InvalidRecipients()
    email = fold_keys(expect_object("emailAddress", fields["emailaddress"][1]))
    address = expect_string("address", email.get("address", ("address", None))[1])
    display = expect_string("name", email.get("name", ("name", None))[1])
    if not address or not _ADDRESS.match(address.strip()):
        raise errors.InvalidRecipients()
    address = address.strip()
    return {"emailAddress": {"name": display if display else address, "address": address}}


def read_recipients(name: str, value: Any) -> list[dict[str, Any]]:
    return [read_recipient(name, item) for item in expect_list(name, value)]


def read_body(name: str, value: Any) -> tuple[str, str]:
    """itemBody -> (content, contentType); contentType in any case, emitted lower-case."""
    fields = fold_keys(expect_object(name, value))
    content_type = (
        expect_enum("contentType", fields["contenttype"][1], BODY_TYPES) if "contenttype" in fields else "text"
    )
    content = expect_string("content", fields.get("content", ("content", ""))[1]) or ""
    return content, content_type


def read_flag(name: str, value: Any) -> dict[str, Any]:
    fields = fold_keys(expect_object(name, value))
    flag: dict[str, Any] = {"flagStatus": "notFlagged"}
    if "flagstatus" in fields:
        flag["flagStatus"] = expect_enum("flagStatus", fields["flagstatus"][1], FLAG_STATUSES)
    for key in ("startDateTime", "dueDateTime", "completedDateTime"):
        if key.lower() in fields and fields[key.lower()][1] is not None:
            moment = fold_keys(expect_object(key, fields[key.lower()][1]))
            flag[key] = {
                "dateTime": expect_string("dateTime", moment.get("datetime", ("dateTime", None))[1], nullable=False),
                "timeZone": expect_string("timeZone", moment.get("timezone", ("timeZone", "UTC"))[1]) or "UTC",
            }
    return flag


def read_headers(name: str, value: Any) -> list[dict[str, str]]:
    headers = []
    for item in expect_list(name, value):
        fields = fold_keys(expect_object(name, item))
        header_name = expect_string("name", fields.get("name", ("name", ""))[1]) or ""
        if not header_name.lower().startswith("x-"):
            raise errors.InvalidInternetMessageHeader(header_name)
        headers.append({"name": header_name, "value": expect_string("value", fields.get("value", ("v", ""))[1]) or ""})
    return headers


def read_categories(name: str, value: Any) -> list[str]:
    return [expect_string(name, item, nullable=False) or "" for item in expect_list(name, value)]


# Message properties a client may write: JSON name -> (store field, reader).
MESSAGE_WRITERS: dict[str, tuple[str, Any]] = {
    "subject": ("subject", lambda n, v: expect_string(n, v) or ""),
    "body": ("body", read_body),
    "torecipients": ("to", read_recipients),
    "ccrecipients": ("cc", read_recipients),
    "bccrecipients": ("bcc", read_recipients),
    "replyto": ("reply_to", read_recipients),
    "from": ("from_", lambda n, v: None if v is None else read_recipient(n, v)),
    "sender": ("sender", lambda n, v: None if v is None else read_recipient(n, v)),
    "importance": ("importance", lambda n, v: expect_enum(n, v, IMPORTANCE)),
    "inferenceclassification": ("inference_classification", lambda n, v: expect_enum(n, v, INFERENCE)),
    "isread": ("is_read", expect_bool),
    "isdeliveryreceiptrequested": ("is_delivery_receipt_requested", expect_bool),
    "isreadreceiptrequested": ("is_read_receipt_requested", expect_bool),
    "flag": ("flag", read_flag),
    "categories": ("categories", read_categories),
    "internetmessageid": ("internet_message_id", lambda n, v: expect_string(n, v) or ""),
    "internetmessageheaders": ("internet_message_headers", read_headers),
}
# Read-only properties a client may echo back from a GET.
MESSAGE_READ_ONLY = frozenset(
    {
        "id",
        "createddatetime",
        "lastmodifieddatetime",
        "changekey",
        "receiveddatetime",
        "sentdatetime",
        "hasattachments",
        "bodypreview",
        "parentfolderid",
        "conversationid",
        "conversationindex",
        "isdraft",
        "weblink",
        "uniquebody",
    }
)
DRAFT_ONLY = frozenset({"body", "internetmessageid", "replyto", "subject"})


def read_message_fields(
    obj: dict[str, Any], *, allow: frozenset[str] | None = None, ignore: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Message properties from a request body, as store fields; `allow` limits which may appear.

    Unknown properties get Graph's "does not exist on type" error; read-only ones are refused by the caller.
    """
    fields: dict[str, Any] = {}
    for lower, (sent_name, value) in fold_keys(obj).items():
        if lower in ignore:
            continue
        if lower not in MESSAGE_WRITERS:
            if lower in MESSAGE_READ_ONLY:
                raise errors.ReadOnlyProperty(sent_name)
            raise errors.RequestBodyRead(
                f"The property '{sent_name}' does not exist on type 'microsoft.graph.message'. Make sure to only use "
                "property names that are defined by the type or mark the type as open type."
            )
        if allow is not None and lower not in allow:
            raise errors.ReadOnlyProperty(sent_name)
        target, reader = MESSAGE_WRITERS[lower]
        if target == "body":
            content, content_type = reader(sent_name, value)
            fields["body_content"], fields["body_type"] = content, content_type
        else:
            fields[target] = reader(sent_name, value)
    return fields
