"""Session and utility cmdlets: the connection cmdlets a runbook starts with (no-ops here), Write-Host,
Get-Command, and what runs after a pipe: Format-List, Format-Table and Select-Object.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from m365_mock.tools.control_client import CmdletError
from m365_mock.tools.exo.binding import CMDLETS, Context, Parameter, cmdlet
from m365_mock.tools.exo.formatting import Output, property_names, ps_text


@cmdlet("Connect-ExchangeOnline", lenient=True)
@cmdlet("Disconnect-ExchangeOnline", lenient=True)
@cmdlet("Import-Module", lenient=True)
def no_op(ctx: Context, args: dict[str, Any]) -> None:
    """Runbooks connect first; m365-mock is already connected to its emulator."""


@cmdlet(
    "Write-Host",
    Parameter("Object", "list", position=0),
    Parameter("ForegroundColor"),
    Parameter("NoNewline", "switch"),
)
def write_host(ctx: Context, args: dict[str, Any]) -> Output:
    return Output(lines=[" ".join(args.get("Object", []))])


@cmdlet("Get-Command", Parameter("Name", position=0))
def get_command(ctx: Context, args: dict[str, Any]) -> Output:
    names = sorted({spec.name for spec in CMDLETS.values()})
    pattern = (args.get("Name") or "*").lower()
    return Output(
        [{"CommandType": "Cmdlet", "Name": n} for n in names if fnmatch.fnmatchcase(n.lower(), pattern)], "table"
    )


def _piped(ctx: Context) -> Output:
    return ctx.input or Output()


def _formatted(ctx: Context, args: dict[str, Any], view: str) -> Output:
    """The piped objects in `view` with -Property as the columns; without it, Format-List shows every property
    and Format-Table the columns of the default view. Plain lines pass through."""
    given = _piped(ctx)
    if given.lines is not None:
        return given
    default = given.columns if view == "table" else None
    return Output(given.objects, view, tuple(args["Property"]) if "Property" in args else default)


@cmdlet("Format-List", Parameter("Property", "list", position=0), formatter=True, aliases=("fl",))
def format_list_cmdlet(ctx: Context, args: dict[str, Any]) -> Output:
    return _formatted(ctx, args, "list")


@cmdlet(
    "Format-Table",
    Parameter("Property", "list", position=0),
    Parameter("AutoSize", "switch"),
    Parameter("Wrap", "switch"),
    formatter=True,
    aliases=("ft",),
)
def format_table_cmdlet(ctx: Context, args: dict[str, Any]) -> Output:
    return _formatted(ctx, args, "table")


@cmdlet(
    "Select-Object",
    Parameter("Property", "list", position=0),
    Parameter("ExpandProperty"),
    Parameter("First"),
    formatter=True,
    aliases=("select",),
)
def select_object(ctx: Context, args: dict[str, Any]) -> Output:
    objects = _piped(ctx).objects
    first = args.get("First")
    if first is not None:
        if not first.isdigit():
            raise CmdletError(f"Cannot bind parameter 'First': '{first}' is not a whole number.")
        objects = objects[: int(first)]
    if args.get("ExpandProperty"):
        names = property_names(objects, [args["ExpandProperty"]])
        if not names:
            raise CmdletError(f'Property "{args["ExpandProperty"]}" cannot be found.')
        values = [o.get(names[0]) for o in objects]
        return Output(lines=[ps_text(v) for value in values for v in (value if isinstance(value, list) else [value])])
    patterns = args.get("Property") or ["*"]
    names = []
    for pattern in patterns:
        matched = property_names(objects, [pattern]) if any(c in pattern for c in "*?[") else [pattern]
        names += [n for n in matched if n not in names]
    real = {n.lower(): n for o in objects for n in o}
    names = [real.get(n.lower(), n) for n in names]
    projected = [{n: o.get(n) for n in names} for o in objects]
    return Output(projected, "table" if len(names) <= 4 else "list")
