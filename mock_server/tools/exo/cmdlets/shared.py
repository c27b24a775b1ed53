"""What the cmdlet families share: finding the recipient an -Identity names (a mailbox or a group, by id, address,
alias or name), application ids as Exchange takes them, and control-API path segments.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from m365_mock.tools.control_client import CmdletError
from m365_mock.tools.exo.binding import Context

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def segment(value: str) -> str:
    """`value` as one segment of a control-API path."""
    return quote(value, safe="")


def local_part(address: str) -> str:
    """The part of an address before the @ (Exchange's alias)."""
    return address.split("@")[0]


def mailbox_keys(mailbox: dict[str, Any]) -> set[str]:
    """Every name -Identity may give a mailbox by, lower-case."""
    names = [mailbox["id"], mailbox["address"], *mailbox.get("aliases", []), local_part(mailbox["address"])]
    return {n.lower() for n in [*names, mailbox["display_name"]]}


def group_keys(group: dict[str, Any]) -> set[str]:
    """Every name -Identity may give a group by, lower-case."""
    return {n.lower() for n in (group["id"], group["address"], local_part(group["address"]), group["display_name"])}


def find_recipient(
    ctx: Context, identity: str, *, mailboxes: bool = True, groups: bool = True
) -> tuple[str, dict[str, Any]] | None:
    """("mailbox" | "group", object) named by id, address, alias or name, as Exchange's -Identity takes them."""
    key = identity.strip().lower()
    found: list[tuple[str, dict[str, Any]]] = []
    if mailboxes:
        found += [("mailbox", m) for m in ctx.client.call("GET", "/mailboxes")["value"] if key in mailbox_keys(m)]
    if groups:
        found += [("group", g) for g in ctx.client.call("GET", "/groups")["value"] if key in group_keys(g)]
    if len(found) > 1:
        raise CmdletError(f"The operation couldn't be performed because '{identity}' matches multiple entries.")
    return found[0] if found else None


def not_found(identity: str) -> CmdletError:
    return CmdletError(f"The operation couldn't be performed because object '{identity}' couldn't be found.")


def find_mailbox(ctx: Context, identity: str) -> dict[str, Any]:
    found = find_recipient(ctx, identity, groups=False)
    if found is None:
        raise not_found(identity)
    return found[1]


def find_group(ctx: Context, identity: str) -> dict[str, Any]:
    found = find_recipient(ctx, identity, mailboxes=False)
    if found is None:
        raise not_found(identity)
    return found[1]


def recipient_address(ctx: Context, identity: str) -> str:
    """The address of the mailbox or group `identity` names; as given when nothing matches (the API says so)."""
    found = find_recipient(ctx, identity)
    return found[1]["address"] if found else identity


def app_ids(values: list[str], *, everyone: bool = False) -> list[str]:
    """-AppId values as Exchange takes them: application ids (GUIDs), and `*` where the cmdlet allows it
    (`everyone`). A display name is refused here, although the control API and tenant files resolve one."""
    for value in values:
        text = value.strip()
        if not (GUID.fullmatch(text) or (everyone and text == "*")):
            wanted = "application ids (GUIDs) or *" if everyone else "an application id (GUID)"
            raise CmdletError(f"The AppId '{value}' isn't valid: give {wanted}.")
    return [value.strip() for value in values]


def one_or_many(values: list[str]) -> str | list[str]:
    """A multi-valued property as Exchange shows it: one value bare, more as a list."""
    return values[0] if len(values) == 1 else values
