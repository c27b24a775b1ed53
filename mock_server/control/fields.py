"""Reading a control request: its JSON body, one field at a time, and the tenant it names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import request

from m365_mock.control import errors
from m365_mock.state.directory import Tenant
from m365_mock.state.mailstate import MAIL_SCHEMA
from m365_mock.state.tenantfile import Problem, entry_problems
from m365_mock.state.tenantfile.schema import SCHEMA
from m365_mock.web import current_emulator

# The years the emulator's clock covers; a date-time a body gives must lie within them.
TIME_FLOOR = datetime(1971, 1, 1, tzinfo=UTC)
TIME_CEILING = datetime(2999, 12, 31, tzinfo=UTC)
# The times of exported mail (a message's `created`, the outbound log's `sent`, ...) are written without a format.
_MAIL_TIME = MAIL_SCHEMA["properties"]["messages"]["items"]["properties"]["created"]


def json_object(*, allow_empty: bool = True) -> dict[str, Any]:
    """The JSON object of the request; an empty body is an empty object where `allow_empty`."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if allow_empty:
            return {}
        raise errors.EmptyBody()
    if request.mimetype != "application/json":
        raise errors.UnsupportedMediaType(request.content_type or "")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.UnreadableBody() from None
    if not isinstance(value, dict):
        raise errors.UnreadableBody()
    return value


def entry_body(definition: str) -> dict[str, Any]:
    """The body of a route that creates one object, checked against the tenant-file schema's definition of that
    object (`application`, `accessPolicy`, ...): an unknown or misspelt field is refused (400 InvalidField)."""
    payload = json_object()
    found = entry_problems(definition, payload) or distant_times(payload, SCHEMA["$defs"][definition])
    if found:
        raise errors.refused_body(errors.InvalidField, found)
    return payload


def distant_times(data: Any, schema: dict[str, Any], path: tuple[str | int, ...] = ()) -> list[Problem]:
    """Every date-time of `data` (where the tenant-file `schema` says `format: date-time`, and the times of exported
    mail) outside the years 1971-2999: the clock covers no other, and such a time would not be written back out as
    a date-time (nor, at the edges of what Python's dates hold, moved to UTC at all)."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = SCHEMA["$defs"][ref.removeprefix("#/$defs/")]
    if isinstance(data, dict):
        properties = schema.get("properties", {})
        return [p for k, v in data.items() if k in properties for p in distant_times(v, properties[k], (*path, k))]
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        return [p for i, v in enumerate(data) for p in distant_times(v, schema["items"], (*path, i))]
    if isinstance(data, str) and _is_time(schema):
        try:
            moment = datetime.fromisoformat(data.replace("Z", "+00:00"))
        except ValueError:
            return []  # the reader says what is wrong with it
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if not TIME_FLOOR <= moment <= TIME_CEILING:
            return [Problem(path, "must lie between the years 1971 and 2999")]
    return []


def _is_time(schema: dict[str, Any]) -> bool:
    if schema is _MAIL_TIME or schema.get("format") == "date-time":
        return True
    return any(isinstance(choice, dict) and _is_time(choice) for choice in schema.get("oneOf", ()))


def known_fields(payload: dict[str, Any], known: tuple[str, ...], what: str) -> None:
    """400 UnknownField naming the fields a body may hold, when it holds another."""
    unknown = sorted(set(payload) - set(known))
    if unknown:
        raise errors.UnknownField(f"{what}: {', '.join(known)}; not {unknown}.")


def tenant_for(key: str) -> Tenant:
    tenant = current_emulator().directory.tenant(key)
    if tenant is None:
        raise errors.TenantNotFound(key)
    return tenant


def text_field(payload: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise errors.MissingField(name)
        return None
    if not isinstance(value, str):
        raise errors.InvalidField(f"'{name}' must be a string.")
    return value


def list_field(payload: dict[str, Any], name: str) -> list[str]:
    value = payload.get(name)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidField(f"'{name}' must be a string or a list of strings.")
    return value


def bool_field(payload: dict[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name, default)
    if not isinstance(value, bool):
        raise errors.InvalidField(f"'{name}' must be true or false.")
    return value


def name_field(payload: dict[str, Any], name: str, default: str) -> str:
    """A display name: a non-empty string, stripped."""
    value = payload.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidField(f"'{name}' must be a non-empty string.")
    return value.strip()
