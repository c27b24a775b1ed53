"""Mailboxes and mail-enabled security groups: New-, Get-, Set- and Remove-Mailbox; New-, Get- and
Remove-DistributionGroup, and the group members.
"""

from __future__ import annotations

import re
from typing import Any

from m365_mock.tools.control_client import CmdletError
from m365_mock.tools.exo.binding import IDENTITY, OPTIONAL_IDENTITY, Context, Parameter, cmdlet
from m365_mock.tools.exo.cmdlets.shared import (
    find_group,
    find_mailbox,
    find_recipient,
    local_part,
    recipient_address,
    recipients_named,
    warn_unchanged,
)
from m365_mock.tools.exo.formatting import Output

MAILBOX_COLUMNS = ("Name", "Alias", "RecipientTypeDetails", "PrimarySmtpAddress")
GROUP_COLUMNS = ("Name", "DisplayName", "GroupType", "PrimarySmtpAddress")
NOT_IN_ALIAS = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]")  # what making an alias from a name leaves out


def mailbox_record(mailbox: dict[str, Any]) -> dict[str, Any]:
    """A mailbox as Get-Mailbox shows it."""
    attributes = mailbox.get("custom_attributes") or {}
    record = {
        "Name": mailbox["display_name"],
        "Alias": local_part(mailbox["address"]),
        "DisplayName": mailbox["display_name"],
        "PrimarySmtpAddress": mailbox["address"],
        "EmailAddresses": [f"SMTP:{mailbox['address']}", *(f"smtp:{a}" for a in mailbox.get("aliases", []))],
        "RecipientTypeDetails": "SharedMailbox" if mailbox["type"] == "shared" else "UserMailbox",
        "ExternalDirectoryObjectId": mailbox["id"],
    }
    for number in range(1, 16):
        record[f"CustomAttribute{number}"] = attributes.get(str(number), "")
    return record


def group_record(group: dict[str, Any]) -> dict[str, Any]:
    """A group as Get-DistributionGroup shows it."""
    return {
        "Name": group["display_name"],
        "DisplayName": group["display_name"],
        "Alias": local_part(group["address"]),
        "GroupType": "Universal, SecurityEnabled",
        "PrimarySmtpAddress": group["address"],
        "RecipientTypeDetails": "MailUniversalSecurityGroup",
        "ExternalDirectoryObjectId": group["id"],
    }


def _member_record(kind: str, recipient: dict[str, Any]) -> dict[str, Any]:
    """A member as Get-DistributionGroupMember shows it."""
    record = mailbox_record(recipient) if kind == "mailbox" else group_record(recipient)
    return {
        "Name": record["Name"],
        "RecipientType": "UserMailbox" if kind == "mailbox" else record["RecipientTypeDetails"],
        "Alias": record["Alias"],
        "PrimarySmtpAddress": record["PrimarySmtpAddress"],
        "RecipientTypeDetails": record["RecipientTypeDetails"],
    }


def _names(ctx: Context, args: dict[str, Any], *addresses: str) -> tuple[str, str]:
    """The address and display name of a new mailbox or group: the first of the `addresses` parameters given, else
    the alias (-Alias, else made from -Name) at the tenant's first domain; -DisplayName, else -Name."""
    address = next((args[name] for name in addresses if args.get(name)), None)
    if not address:
        alias = args.get("Alias") or NOT_IN_ALIAS.sub("", args["Name"])
        if not alias:
            raise CmdletError(
                f"An alias can't be made from the name '{args['Name']}'; give -Alias or -PrimarySmtpAddress."
            )
        address = f"{alias}@{ctx.client.tenant['domains'][0]}"
    return address, args.get("DisplayName") or args["Name"]


# ---------------------------------------------------------------- mailboxes


@cmdlet(
    "New-Mailbox",
    Parameter("Name", mandatory=True, position=0),
    Parameter("Shared", "switch"),
    Parameter("DisplayName"),
    Parameter("Alias"),
    Parameter("PrimarySmtpAddress"),
    Parameter("MicrosoftOnlineServicesID"),
    Parameter("Password"),
    changes=True,
    target="Name",
)
def new_mailbox(ctx: Context, args: dict[str, Any]) -> Output:
    address, display_name = _names(ctx, args, "PrimarySmtpAddress", "MicrosoftOnlineServicesID")
    kind = "shared" if args.get("Shared") else "user"
    mailbox = ctx.client.add_mailbox(address, kind=kind, display_name=display_name)
    return Output([mailbox_record(mailbox)], "table", MAILBOX_COLUMNS)


@cmdlet(
    "Get-Mailbox",
    OPTIONAL_IDENTITY,
    Parameter("RecipientTypeDetails", "list"),
    Parameter("ResultSize"),
)
def get_mailbox(ctx: Context, args: dict[str, Any]) -> Output:
    mailboxes = [find_mailbox(ctx, args["Identity"])] if args.get("Identity") else ctx.client.mailboxes()
    records = [mailbox_record(m) for m in mailboxes]
    if "RecipientTypeDetails" in args:
        wanted = {t.lower() for t in args["RecipientTypeDetails"]}
        unknown = wanted - {"usermailbox", "sharedmailbox"}
        if unknown:
            raise CmdletError(
                f"Cannot bind parameter 'RecipientTypeDetails': m365-mock has UserMailbox and SharedMailbox "
                f"mailboxes, not '{sorted(unknown)[0]}'."
            )
        records = [r for r in records if r["RecipientTypeDetails"].lower() in wanted]
    size = args.get("ResultSize")
    if size is not None and size.lower() != "unlimited":
        if not size.isdigit():
            raise CmdletError(f"Cannot bind parameter 'ResultSize': '{size}' is neither a number nor Unlimited.")
        records = records[: int(size)]
    return Output(records, "table", MAILBOX_COLUMNS)


CUSTOM_ATTRIBUTES = tuple(f"CustomAttribute{n}" for n in range(1, 16))


@cmdlet(
    "Set-Mailbox",
    IDENTITY,
    Parameter("DisplayName"),
    *(Parameter(name) for name in CUSTOM_ATTRIBUTES),
    changes=True,
    target="Identity",
)
def set_mailbox(ctx: Context, args: dict[str, Any]) -> None:
    mailbox = find_mailbox(ctx, args["Identity"])
    body: dict[str, Any] = {}
    attributes = {name: args[name] or "" for name in CUSTOM_ATTRIBUTES if name in args}
    if attributes:
        body["custom_attributes"] = attributes
    if args.get("DisplayName"):
        body["display_name"] = args["DisplayName"]
    if not body:
        warn_unchanged(ctx, args["Identity"])
        return
    ctx.client.update_mailbox(mailbox["address"], **body)


@cmdlet("Remove-Mailbox", IDENTITY, changes=True, target="Identity")
def remove_mailbox(ctx: Context, args: dict[str, Any]) -> None:
    mailbox = find_mailbox(ctx, args["Identity"])
    ctx.client.remove_mailbox(mailbox["address"])


# ---------------------------------------------------------------- mail-enabled security groups


@cmdlet(
    "New-DistributionGroup",
    Parameter("Name", mandatory=True, position=0),
    Parameter("Type"),
    Parameter("DisplayName"),
    Parameter("Alias"),
    Parameter("PrimarySmtpAddress"),
    Parameter("Members", "list"),
    changes=True,
    target="Name",
)
def new_distribution_group(ctx: Context, args: dict[str, Any]) -> Output:
    kind = (args.get("Type") or "Distribution").lower()
    if kind not in ("security", "distribution"):
        raise CmdletError(f"Cannot bind parameter 'Type': use Security (or Distribution), not '{args['Type']}'.")
    if kind != "security":
        raise CmdletError(
            "m365-mock creates only mail-enabled security groups (-Type Security): a distribution group is not "
            "a security principal, so it can't be the scope of an application access policy."
        )
    members = []
    for member in args.get("Members", []):
        found = find_recipient(ctx, member)
        if found is None:
            raise CmdletError(
                f'Couldn\'t find object "{member}". Please make sure that it was spelled correctly or specify a '
                "different object."
            )
        members.append(found[1]["address"])
    address, display_name = _names(ctx, args, "PrimarySmtpAddress")
    group = ctx.client.add_group(address, members, display_name=display_name)
    return Output([group_record(group)], "table", GROUP_COLUMNS)


@cmdlet("Get-DistributionGroup", OPTIONAL_IDENTITY)
def get_distribution_group(ctx: Context, args: dict[str, Any]) -> Output:
    groups = [find_group(ctx, args["Identity"])] if args.get("Identity") else ctx.client.groups()
    return Output([group_record(g) for g in groups], "table", GROUP_COLUMNS)


@cmdlet("Remove-DistributionGroup", IDENTITY, changes=True, target="Identity")
def remove_distribution_group(ctx: Context, args: dict[str, Any]) -> None:
    group = find_group(ctx, args["Identity"])
    ctx.client.remove_group(group["id"])


MEMBER_PARAMETERS = (
    IDENTITY,
    Parameter("Member", mandatory=True),
    Parameter("BypassSecurityGroupManagerCheck", "switch"),
)


@cmdlet("Add-DistributionGroupMember", *MEMBER_PARAMETERS, changes=True, target="Identity")
def add_distribution_group_member(ctx: Context, args: dict[str, Any]) -> None:
    group = find_group(ctx, args["Identity"])
    ctx.client.add_member(group["id"], recipient_address(ctx, args["Member"]))


@cmdlet("Remove-DistributionGroupMember", *MEMBER_PARAMETERS, changes=True, target="Identity")
def remove_distribution_group_member(ctx: Context, args: dict[str, Any]) -> None:
    group = find_group(ctx, args["Identity"])
    member = recipient_address(ctx, args["Member"])
    ctx.client.remove_member(group["id"], member)


@cmdlet("Get-DistributionGroupMember", IDENTITY, Parameter("ResultSize"))
def get_distribution_group_member(ctx: Context, args: dict[str, Any]) -> Output:
    group = find_group(ctx, args["Identity"])
    mailboxes, groups = ctx.client.mailboxes(), ctx.client.groups()
    records = []
    for member in group["members"]:
        found = recipients_named(member, mailboxes, groups)
        if found:
            records.append(_member_record(*found[0]))
    return Output(records, "table", ("Name", "RecipientType"))
