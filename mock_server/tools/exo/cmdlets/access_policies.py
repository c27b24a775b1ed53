"""Application access policies: New-, Get-, Set-, Remove- and Test-ApplicationAccessPolicy."""

from __future__ import annotations

from typing import Any

from m365_mock.tools.control_client import ControlClient
from m365_mock.tools.exo.binding import IDENTITY, OPTIONAL_IDENTITY, Context, Parameter, cmdlet
from m365_mock.tools.exo.cmdlets.shared import (
    app_ids,
    one_or_many,
    recipient_address,
    register_removal,
    require_recipient,
    warn_unchanged,
)
from m365_mock.tools.exo.formatting import Output


def policy_record(policy: dict[str, Any]) -> dict[str, Any]:
    """A policy as Get-ApplicationAccessPolicy shows it."""
    return {
        "ScopeName": policy["scope_name"],
        "ScopeIdentity": policy["scope_identity"],
        "Identity": policy["identity"],
        "AppId": one_or_many(policy["app_id"]),
        "ScopeIdentityRaw": policy["scope_identity_raw"],
        "Description": policy["description"],
        "AccessRight": policy["access_right"],
        "ShardType": policy["shard_type"],
        "IsValid": policy["is_valid"],
        "ObjectState": policy["object_state"],
    }


@cmdlet(
    "New-ApplicationAccessPolicy",
    Parameter("AccessRight", mandatory=True),
    Parameter("AppId", "list", mandatory=True),
    Parameter("PolicyScopeGroupId", mandatory=True),
    Parameter("Description"),
    changes=True,
    target="AppId",
)
def new_application_access_policy(ctx: Context, args: dict[str, Any]) -> Output:
    policy = ctx.client.add_access_policy(
        app_ids(args["AppId"], everyone=True),
        recipient_address(ctx, args["PolicyScopeGroupId"]),
        args["AccessRight"],
        description=args.get("Description"),
    )
    return Output([policy_record(policy)])


@cmdlet("Get-ApplicationAccessPolicy", OPTIONAL_IDENTITY)
def get_application_access_policy(ctx: Context, args: dict[str, Any]) -> Output:
    if args.get("Identity"):
        return Output([policy_record(ctx.client.access_policy(args["Identity"]))])
    return Output([policy_record(p) for p in ctx.client.access_policies()])


@cmdlet("Set-ApplicationAccessPolicy", IDENTITY, Parameter("Description"), changes=True, target="Identity")
def set_application_access_policy(ctx: Context, args: dict[str, Any]) -> None:
    if "Description" not in args:
        ctx.client.access_policy(args["Identity"])
        warn_unchanged(ctx, args["Identity"])
        return
    ctx.client.set_access_policy(args["Identity"], args["Description"] or "")


register_removal("Remove-ApplicationAccessPolicy", ControlClient.remove_access_policy)


@cmdlet("Test-ApplicationAccessPolicy", IDENTITY, Parameter("AppId", mandatory=True))
def test_application_access_policy(ctx: Context, args: dict[str, Any]) -> Output:
    """-Identity is any recipient: a mailbox, or a group as in the cmdlet's own example. A group is tested as one
    recipient (one result, its own ids), covered by a policy whose scope is the group or contains it."""
    [app_id] = app_ids([args["AppId"]])
    recipient = require_recipient(ctx, args["Identity"])[1]
    result = ctx.client.test_access_policy(app_id, recipient["address"])
    ctx.note(f"m365-mock: {result['reason']}")
    record = {
        "AppId": result["app_id"],
        "Mailbox": result["mailbox"],
        "MailboxId": result["mailbox_id"],
        "MailboxSid": result["mailbox_sid"],
        "AccessCheckResult": result["access_check_result"],
    }
    return Output([record])
