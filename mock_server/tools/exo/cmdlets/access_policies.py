"""Application access policies: New-, Get-, Set-, Remove- and Test-ApplicationAccessPolicy."""

from __future__ import annotations

from typing import Any

from m365_mock.tools.exo.binding import IDENTITY, OPTIONAL_IDENTITY, Context, Parameter, cmdlet
from m365_mock.tools.exo.cmdlets.shared import (
    app_ids,
    find_recipient,
    not_found,
    one_or_many,
    recipient_address,
    segment,
)
from m365_mock.tools.exo.formatting import Output


def policy_record(policy: dict[str, Any]) -> dict[str, Any]:
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
        return Output([policy_record(ctx.client.call("GET", f"/accessPolicies/{segment(args['Identity'])}"))])
    return Output([policy_record(p) for p in ctx.client.call("GET", "/accessPolicies")["value"]])


@cmdlet("Set-ApplicationAccessPolicy", IDENTITY, Parameter("Description"), changes=True, target="Identity")
def set_application_access_policy(ctx: Context, args: dict[str, Any]) -> None:
    path = f"/accessPolicies/{segment(args['Identity'])}"
    if "Description" not in args:
        ctx.client.call("GET", path)
        ctx.warn(f"The command completed successfully but no settings of '{args['Identity']}' have been modified.")
        return
    ctx.client.call("PATCH", path, {"description": args["Description"] or ""})


@cmdlet("Remove-ApplicationAccessPolicy", IDENTITY, changes=True, target="Identity")
def remove_application_access_policy(ctx: Context, args: dict[str, Any]) -> None:
    ctx.client.call("DELETE", f"/accessPolicies/{segment(args['Identity'])}")


@cmdlet("Test-ApplicationAccessPolicy", IDENTITY, Parameter("AppId", mandatory=True))
def test_application_access_policy(ctx: Context, args: dict[str, Any]) -> Output:
    """-Identity is any recipient: a mailbox, or a group as in the cmdlet's own example. A group is tested as one
    recipient (one result, its own ids), covered by a policy whose scope is the group or contains it."""
    [app_id] = app_ids([args["AppId"]])
    found = find_recipient(ctx, args["Identity"])
    if found is None:
        raise not_found(args["Identity"])
    kind, recipient = found
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
