"""What the cmdlet families share: finding what an -Identity names (a recipient by id, address, alias or name; other
objects by name), application ids as Exchange takes them, the one shape of the Remove-* cmdlets that delete by
identity, and the warning of a Set-* that changed nothing. The control API is reached only through the typed
methods of `ControlClient`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from m365_mock.tools.control_client import CmdletError, ControlClient
from m365_mock.tools.exo.binding import IDENTITY, Context, cmdlet

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)

Recipient = tuple[str, dict[str, Any]]  # ("mailbox" | "group", the control API's object)


def not_found(identity: str) -> CmdletError:
    return CmdletError(f"The operation couldn't be performed because object '{identity}' couldn't be found.")


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


def recipients_named(identity: str, mailboxes: list[dict[str, Any]], groups: list[dict[str, Any]]) -> list[Recipient]:
    """The mailboxes, then the groups, that `identity` names by id, address, alias or name (any case)."""
    key = identity.strip().lower()
    return [("mailbox", m) for m in mailboxes if key in mailbox_keys(m)] + [
        ("group", g) for g in groups if key in group_keys(g)
    ]


def find_recipient(ctx: Context, identity: str, *, mailboxes: bool = True, groups: bool = True) -> Recipient | None:
    """The recipient `identity` names, as Exchange's -Identity takes it; None when none does, an error when several
    do."""
    found = recipients_named(
        identity, ctx.client.mailboxes() if mailboxes else [], ctx.client.groups() if groups else []
    )
    if len(found) > 1:
        raise CmdletError(f"The operation couldn't be performed because '{identity}' matches multiple entries.")
    return found[0] if found else None


def require_recipient(ctx: Context, identity: str, *, mailboxes: bool = True, groups: bool = True) -> Recipient:
    """As `find_recipient`, but an error when nothing matches."""
    found = find_recipient(ctx, identity, mailboxes=mailboxes, groups=groups)
    if found is None:
        raise not_found(identity)
    return found


def find_mailbox(ctx: Context, identity: str) -> dict[str, Any]:
    return require_recipient(ctx, identity, groups=False)[1]


def find_group(ctx: Context, identity: str) -> dict[str, Any]:
    return require_recipient(ctx, identity, mailboxes=False)[1]


def recipient_address(ctx: Context, identity: str) -> str:
    """The address of the mailbox or group `identity` names; as given when nothing matches (the API says so)."""
    found = find_recipient(ctx, identity)
    return found[1]["address"] if found else identity


def named(items: list[dict[str, Any]], identity: str) -> list[dict[str, Any]]:
    """The items whose name is `identity` (any case); an error when there are none."""
    key = identity.strip().lower()
    found = [item for item in items if item["name"].lower() == key]
    if not found:
        raise not_found(identity)
    return found


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


def warn_unchanged(ctx: Context, identity: str) -> None:
    """What a Set-* cmdlet says when it was given nothing to change."""
    ctx.warn(f"The command completed successfully but no settings of '{identity}' have been modified.")


def register_removal(name: str, remover: Callable[[ControlClient, str], None]) -> None:
    """Register `name` as the cmdlet that deletes what -Identity names with the client's `remover`, such as
    `ControlClient.remove_access_policy` (the API says when there is none)."""

    @cmdlet(name, IDENTITY, changes=True, target="Identity")
    def remove(ctx: Context, args: dict[str, Any]) -> None:
        remover(ctx.client, args["Identity"])
