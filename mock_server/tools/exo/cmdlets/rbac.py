"""RBAC for Applications: service principals, management scopes, management role assignments, and
Test-ServicePrincipalAuthorization.
"""

from __future__ import annotations

from typing import Any

from m365_mock.tools.control_client import ControlClient
from m365_mock.tools.exo.binding import IDENTITY, OPTIONAL_IDENTITY, Context, Parameter, cmdlet
from m365_mock.tools.exo.cmdlets.shared import (
    app_ids,
    find_mailbox,
    named,
    not_found,
    one_or_many,
    register_removal,
)
from m365_mock.tools.exo.formatting import Output

SERVICE_PRINCIPAL_COLUMNS = ("DisplayName", "ObjectId", "AppId")
ASSIGNMENT_COLUMNS = ("Name", "Role", "RoleAssigneeName", "RoleAssigneeType", "AssignmentMethod", "CustomResourceScope")


def service_principal_record(sp: dict[str, Any]) -> dict[str, Any]:
    """A service principal as Get-ServicePrincipal shows it."""
    return {
        "DisplayName": sp["display_name"],
        "ObjectId": sp["object_id"],
        "AppId": sp["app_id"],
        "Identity": sp["identity"],
    }


def scope_record(scope: dict[str, Any]) -> dict[str, Any]:
    """A management scope as Get-ManagementScope shows it."""
    return {
        "Name": scope["name"],
        "ScopeRestrictionType": "RecipientScope",
        "Exclusive": False,
        "RecipientRoot": "",
        "RecipientFilter": scope["filter"],
        "ServerFilter": "",
    }


def assignment_records(ctx: Context, assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Role assignments as Get-ManagementRoleAssignment shows them, each assignee by its display name."""
    names = {sp["app_id"]: sp["display_name"] for sp in ctx.client.service_principals()}
    return [
        {
            "Name": a["name"],
            "Role": a["role"],
            "RoleAssigneeName": names.get(a["app_id"], a["app_id"]),
            "RoleAssigneeType": "ServicePrincipal",
            "AssignmentMethod": "Direct",
            "CustomResourceScope": a.get("scope") or "",
            "RecipientWriteScope": "CustomRecipientScope" if a.get("scope") else "Organization",
            "AppId": a["app_id"],
        }
        for a in assignments
    ]


@cmdlet(
    "New-ServicePrincipal",
    Parameter("AppId", mandatory=True),
    Parameter("ObjectId", mandatory=True, aliases=("ServiceId",)),
    Parameter("DisplayName"),
    Parameter("Organization"),
    changes=True,
    target="AppId",
)
def new_service_principal(ctx: Context, args: dict[str, Any]) -> Output:
    [app_id] = app_ids([args["AppId"]])
    sp = ctx.client.add_service_principal(
        app_id, object_id=args["ObjectId"], display_name=args.get("DisplayName") or None
    )
    return Output([service_principal_record(sp)], "table", SERVICE_PRINCIPAL_COLUMNS)


def _service_principals(ctx: Context, identity: str | None) -> list[dict[str, Any]]:
    """Every service principal, or those `identity` names by app id, object id, identity or display name."""
    sps = ctx.client.service_principals()
    if identity is None:
        return sps
    key = identity.strip().lower()
    found = [sp for sp in sps if key in (sp["app_id"], sp["object_id"], sp["identity"], sp["display_name"].lower())]
    if not found:
        raise not_found(identity)
    return found


@cmdlet("Get-ServicePrincipal", OPTIONAL_IDENTITY, Parameter("Organization"))
def get_service_principal(ctx: Context, args: dict[str, Any]) -> Output:
    records = [service_principal_record(sp) for sp in _service_principals(ctx, args.get("Identity"))]
    return Output(records, "table", SERVICE_PRINCIPAL_COLUMNS)


register_removal("Remove-ServicePrincipal", ControlClient.remove_service_principal)


@cmdlet(
    "New-ManagementScope",
    Parameter("Name", mandatory=True, position=0),
    Parameter("RecipientRestrictionFilter", mandatory=True),
    Parameter("RecipientRoot", unsupported="scopes filter the whole organisation."),
    changes=True,
    target="Name",
)
def new_management_scope(ctx: Context, args: dict[str, Any]) -> Output:
    scope = ctx.client.add_management_scope(args["Name"], args["RecipientRestrictionFilter"])
    return Output([scope_record(scope)], "table")


@cmdlet("Get-ManagementScope", OPTIONAL_IDENTITY)
def get_management_scope(ctx: Context, args: dict[str, Any]) -> Output:
    scopes = ctx.client.management_scopes()
    if args.get("Identity"):
        scopes = named(scopes, args["Identity"])
    return Output([scope_record(s) for s in scopes], "table")


register_removal("Remove-ManagementScope", ControlClient.remove_management_scope)


ONLY_APPS = "m365-mock emulates role assignments to applications (-App) only."


@cmdlet(
    "New-ManagementRoleAssignment",
    Parameter("Name", position=0),
    Parameter("Role", mandatory=True),
    Parameter("App", mandatory=True),
    Parameter("CustomResourceScope"),
    Parameter("User", unsupported=ONLY_APPS),
    Parameter("SecurityGroup", unsupported=ONLY_APPS),
    Parameter("Policy", unsupported=ONLY_APPS),
    Parameter("RecipientAdministrativeUnitScope", unsupported="use -CustomResourceScope with a management scope."),
    Parameter("RecipientOrganizationalUnitScope", unsupported="use -CustomResourceScope with a management scope."),
    changes=True,
    target="App",
)
def new_management_role_assignment(ctx: Context, args: dict[str, Any]) -> Output:
    assignment = ctx.client.add_role_assignment(
        args["Role"], args["App"], scope=args.get("CustomResourceScope") or None, name=args.get("Name") or None
    )
    return Output(assignment_records(ctx, [assignment]), "table", ASSIGNMENT_COLUMNS)


@cmdlet("Get-ManagementRoleAssignment", OPTIONAL_IDENTITY, Parameter("RoleAssignee"), Parameter("Role"))
def get_management_role_assignment(ctx: Context, args: dict[str, Any]) -> Output:
    assignments = ctx.client.role_assignments()
    if args.get("Identity"):
        assignments = named(assignments, args["Identity"])
    if args.get("RoleAssignee"):
        apps = {sp["app_id"] for sp in _service_principals(ctx, args["RoleAssignee"])}
        assignments = [a for a in assignments if a["app_id"] in apps]
    if args.get("Role"):
        assignments = [a for a in assignments if a["role"].lower() == args["Role"].strip().lower()]
    return Output(assignment_records(ctx, assignments), "table", ASSIGNMENT_COLUMNS)


register_removal("Remove-ManagementRoleAssignment", ControlClient.remove_role_assignment)


@cmdlet("Test-ServicePrincipalAuthorization", IDENTITY, Parameter("Resource"))
def test_service_principal_authorization(ctx: Context, args: dict[str, Any]) -> Output:
    resource = find_mailbox(ctx, args["Resource"])["address"] if args.get("Resource") else None
    rows = ctx.client.test_authorization(args["Identity"], resource)
    records = [
        {
            "RoleName": row["role_name"],
            "GrantedPermissions": one_or_many(row["granted_permissions"]),
            "AllowedResourceScope": row["allowed_resource_scope"],
            "ScopeType": row["scope_type"],
            "InScope": row["in_scope"],
        }
        for row in rows
    ]
    return Output(records, "table")
