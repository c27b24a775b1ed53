"""Admin actions: the items of `setup:` and of `admin` steps, one function per kind, in ACTIONS.

Each takes the world and the action's value and returns what it did, for the report; ScenarioFailure (or the
control client's ControlError) when it could not. The schema of each kind is in schema.py (`$defs.action`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from m365_mock.scenarios.world import ScenarioFailure

if TYPE_CHECKING:
    from m365_mock.scenarios.world import World


def run_setup(world: World, action: dict[str, Any]) -> str:
    """One admin action (a mapping with exactly one key, its kind); returns what it did, for the report."""
    kind, value = next(iter(action.items()))
    handler = ACTIONS.get(kind)
    if handler is None:
        raise ScenarioFailure(f"unknown setup action {kind}")
    return handler(world, value)


def exo(world: World, script: str) -> str:
    """Exchange Online PowerShell, run as `m365-mock exo` runs it."""
    from m365_mock.tools.exo import run

    script = world.fill(script)
    out, err = io.StringIO(), io.StringIO()
    shell_client = world.admin.for_tenant(world.tenant_id)  # a client of its own: the shell sets its trace
    if run(script, shell_client, out, err) != 0:
        raise ScenarioFailure(f"exo failed: {err.getvalue().strip()}")
    return f"exo: {script.strip().splitlines()[0]}"


def control(world: World, request: dict[str, Any]) -> str:
    """Any control API request; the answer must have `status` (default: any 2xx)."""
    path = world.fill(request["path"])
    world.admin.request(request["method"], path, world.fill(request.get("body")), expect=request.get("status"))
    world.refresh_apps()
    return f"control: {request['method']} {path}"


def deliver(world: World, value: dict[str, Any]) -> str:
    """Generated mail (`count`) or one message written as in tenant files (`message`)."""
    mailbox = world.fill(value["mailbox"])
    if "count" in value:
        world.admin.generate(mailbox, value["count"], unread_ratio=value.get("unread_ratio", 0.3))
        return f"deliver: {value['count']} message(s) to {mailbox}"
    message = world.fill(value.get("message") or {})
    body = control_message(message)
    if message.get("attachments"):
        body["attachments"] = [_file_attachment(world, spec) for spec in message["attachments"]]
    world.admin.deliver(mailbox, body)
    return f"deliver: {body.get('subject', '(no subject)')!r} to {mailbox}"


def _file_attachment(world: World, spec: str | dict[str, Any]) -> dict[str, Any]:
    """A Graph fileAttachment of a file or of made bytes (`{name, size}`, `inline`, `content_id`)."""
    import base64

    name, content, content_type = world.attachment(spec)
    attachment: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentType": content_type,
        "contentBytes": base64.b64encode(content).decode("ascii"),
    }
    if isinstance(spec, dict) and spec.get("inline"):
        attachment["isInline"] = True
        attachment["contentId"] = spec.get("content_id") or name
    return attachment


def advance(world: World, seconds: float) -> str:
    world.admin.advance(seconds)
    return f"advance the clock {seconds} s"


def settings(world: World, changes: dict[str, Any]) -> str:
    world.admin.update_settings(**world.fill(changes))
    return f"settings: {changes}"


def fault(world: World, rule: dict[str, Any]) -> str:
    """A fault rule put in force (docs/faults.md), from the next request on; the tenant's next import removes it."""
    added = world.admin.add_fault(**world.fill(rule))
    return f"fault {added['id']}: {added['action']}"


def certificate(world: World, value: dict[str, str]) -> str:
    app = world.app(world.fill(value["app"]))
    world.make_certificate(app)
    return f"certificate uploaded for {app['display_name']}"


ACTIONS: dict[str, Callable[[World, Any], str]] = {
    "exo": exo,
    "control": control,
    "deliver": deliver,
    "advance": advance,
    "settings": settings,
    "certificate": certificate,
    "fault": fault,
}


# ---------------------------------------------------------------- messages as the control API takes them


def control_message(message: dict[str, Any]) -> dict[str, Any]:
    """A `deliver.message` written as in tenant files, as the control API's fields (Graph message properties)."""
    names = {
        "subject": "subject",
        "received": "receivedDateTime",
        "read": "isRead",
        "folder": "folder",
        "importance": "importance",
        "categories": "categories",
    }
    body = {field_name: message[key] for key, field_name in names.items() if key in message}
    if "from" in message:
        body["from"] = _recipient(message["from"])
    if "to" in message:
        body["toRecipients"] = [_recipient(address) for address in addresses(message["to"])]
    if "body" in message or "body_type" in message:
        body["body"] = {"contentType": message.get("body_type", "text"), "content": message.get("body", "")}
    return body


def _recipient(text: str) -> dict[str, Any]:
    """`address` or `Name <address>` as a Graph recipient."""
    if "<" in text:
        name, _, address = text.rpartition("<")
        address, name = address.rstrip().rstrip(">").strip(), name.strip().strip('"').strip()
    else:
        address, name = text.strip(), ""
    return {"emailAddress": {"name": name or address, "address": address}}


def addresses(value: str | list[str] | None) -> list[str]:
    """One address or a list of them, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
