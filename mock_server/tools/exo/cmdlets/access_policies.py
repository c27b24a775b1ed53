"""Application access policies: New-, Get-, Set-, Remove- and Test-ApplicationAccessPolicy."""

from __future__ import annotations

from typing import Any

from m365_mock.tools.exo.binding import IDENTITY, OPTIONAL_IDENTITY, Context, Parameter, cmdlet
from m365_mock.tools.exo.cmdlets.shared import (
    app_ids,
    item_path,
    listing,
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
    body = {
        "app_id": app_ids(args["AppId"], everyone=True),
        "scope": recipient_address(ctx, args["PolicyScopeGroupId"]),
        "access_right": args["AccessRight"],
    }
    if args.get("Description") is not None:
        body["description"] = args["Description"]
    return Output([policy_record(ctx.client.call("POST", "/accessPolicies", body))])


@cmdlet("Get-ApplicationAccessPolicy", OPTIONAL_IDENTITY)
def get_application_access_policy(ctx: Context, args: dict[str, Any]) -> Output:
    if args.get("Identity"):
        return Output([policy_record(ctx.client.call("GET", item_path("/accessPolicies", args["Identity"])))])
    return Output([policy_record(p) for p in listing(ctx, "/accessPolicies")])


@cmdlet("Set-ApplicationAccessPolicy", IDENTITY, Parameter("Description"), changes=True, target="Identity")
def set_application_access_policy(ctx: Context, args: dict[str, Any]) -> None:
    path = item_path("/accessPolicies", args["Identity"])
    if "Description" not in args:
        ctx.client.call("GET", path)
        warn_unchanged(ctx, args["Identity"])
        return
    ctx.client.call("PATCH", path, {"description": args["Description"] or ""})


register_removal("Remove-ApplicationAccessPolicy", "/accessPolicies")


@cmdlet("Test-ApplicationAccessPolicy", IDENTITY, Parameter("AppId", mandatory=True))
def test_application_access_policy(ctx: Context, args: dict[str, Any]) -> Output:
    """-Identity is any recipient: a mailbox, or a group as in the cmdlet's own example. A group is tested as one
    recipient (one result, its own ids), covered by a policy whose scope is the group or contains it."""
    [app_id] = app_ids([args["AppId"]])
    kind, recipient = require_recipient(ctx, args["Identity"])
    body = {"mailbox" if kind == "mailbox" else "recipient": recipient["address"], "app_id": app_id}
    result = ctx.client.call("POST", "/accessPolicies/test", body)
    ctx.note(f"m365-mock: {result['reason']}")
    record = {
        "AppId": result["app_id"],
        "Mailbox": result["mailbox"],
        "MailboxId": result["mailbox_id"],
        "MailboxSid": result["mailbox_sid"],
        "AccessCheckResult": result["access_check_result"],
    }
    return Output([record])
