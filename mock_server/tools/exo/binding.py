"""The cmdlet registry and parameter binding as PowerShell does it.

`Parameter` and `Cmdlet` describe a cmdlet (kinds, mandatory, positions, aliases, common parameters, -WhatIf and
-Confirm for cmdlets that change something); `@cmdlet(...)` registers a function in `CMDLETS`, to be called with
a `Context` and the bound arguments. `bind` matches what was written to the parameters (exact name or alias, else
an unambiguous prefix, then positions) and converts each value to its parameter's kind, failing with
PowerShell's messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from m365_mock.tools.control_client import CmdletError, ControlClient
from m365_mock.tools.exo.formatting import Output, ps_text
from m365_mock.tools.exo.parser import Expr, ParamArg


@dataclass(frozen=True)
class Parameter:
    """kind: string, list (String[]), switch or bool. `unsupported`: why m365-mock refuses a real parameter."""

    name: str
    kind: str = "string"
    mandatory: bool = False
    position: int | None = None
    aliases: tuple[str, ...] = ()
    unsupported: str | None = None


TYPE_NAMES = {
    "string": "System.String",
    "list": "System.String[]",
    "bool": "System.Boolean",
    "switch": "System.Management.Automation.SwitchParameter",
}

# PowerShell's common parameters: accepted, no effect (but -Verbose shows the control API calls).
COMMON = (
    Parameter("Verbose", "switch", aliases=("vb",)),
    Parameter("Debug", "switch", aliases=("db",)),
    Parameter("ErrorAction", aliases=("ea",)),
    Parameter("WarningAction", aliases=("wa",)),
    Parameter("InformationAction", aliases=("infa",)),
    Parameter("ErrorVariable", aliases=("ev",)),
    Parameter("WarningVariable", aliases=("wv",)),
    Parameter("InformationVariable", aliases=("iv",)),
    Parameter("OutVariable", aliases=("ov",)),
    Parameter("OutBuffer", aliases=("ob",)),
    Parameter("PipelineVariable", aliases=("pv",)),
)
# Cmdlets that change something also take -WhatIf (print what would happen, do nothing) and -Confirm (never asks).
SHOULD_PROCESS = (Parameter("WhatIf", "switch", aliases=("wi",)), Parameter("Confirm", "switch", aliases=("cf",)))


@dataclass
class Context:
    """What a cmdlet function gets besides its parameters."""

    client: ControlClient
    err: TextIO
    verbose: bool = False
    input: Output | None = None  # the output of the command before, for Format-List and friends

    def warn(self, message: str) -> None:
        self.err.write(f"WARNING: {message}\n")

    def note(self, message: str) -> None:
        if self.verbose:
            self.err.write(f"VERBOSE: {message}\n")


Handler = Callable[[Context, dict[str, Any]], "Output | None"]


@dataclass(frozen=True)
class Cmdlet:
    """A cmdlet definition: `changes` adds -WhatIf/-Confirm, `target` names the parameter a What if: shows,
    `lenient` accepts and ignores any parameters, `formatter` runs after a pipe on the output before it."""

    name: str
    parameters: tuple[Parameter, ...]
    run: Handler
    changes: bool = False
    target: str | None = None
    lenient: bool = False
    formatter: bool = False

    def all_parameters(self) -> tuple[Parameter, ...]:
        return self.parameters + COMMON + (SHOULD_PROCESS if self.changes else ())


CMDLETS: dict[str, Cmdlet] = {}


def cmdlet(
    name: str,
    *parameters: Parameter,
    changes: bool = False,
    target: str | None = None,
    lenient: bool = False,
    formatter: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the cmdlet `name` (and its aliases)."""

    def register(handler: Handler) -> Handler:
        spec = Cmdlet(name, parameters, handler, changes, target, lenient, formatter)
        for key in (name, *aliases):
            CMDLETS[key.lower()] = spec
        return handler

    return register


# -Identity as most cmdlets take it: the first positional parameter.
IDENTITY = Parameter("Identity", mandatory=True, position=0)
OPTIONAL_IDENTITY = Parameter("Identity", position=0)


def _resolve_parameter(spec: Cmdlet, typed: str) -> Parameter:
    key = typed.lower()
    candidates = spec.all_parameters()
    for param in candidates:
        if key == param.name.lower() or key in (a.lower() for a in param.aliases):
            return param
    matches = [p for p in candidates if any(n.lower().startswith(key) for n in (p.name, *p.aliases))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CmdletError(f"A parameter cannot be found that matches parameter name '{typed}'.")
    names = " ".join(f"-{p.name}" for p in matches)
    raise CmdletError(
        f"Parameter cannot be processed because the parameter name '{typed}' is ambiguous. "
        f"Possible matches include: {names}."
    )


def _type_of(value: Any) -> str:
    if isinstance(value, list):
        return "System.Object[]"
    return "System.Boolean" if isinstance(value, bool) else "System.String"


def _convert(param: Parameter, value: Any) -> Any:
    name = param.name
    if param.kind == "switch":
        if value is None or isinstance(value, bool):
            return bool(value)
        raise CmdletError(
            f"Cannot convert '{_type_of(value)}' to the type '{TYPE_NAMES['switch']}' required by parameter '{name}'."
        )
    if param.kind == "bool":
        if isinstance(value, bool) or value in ("0", "1"):
            return value in (True, "1")
        raise CmdletError(
            f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
            f'"{ps_text(value)}" to type "System.Boolean". Boolean parameters accept only Boolean values and '
            "numbers, such as $True, $False, 1 or 0."
        )
    if param.kind == "list":
        items = value if isinstance(value, list) else [] if value is None else [value]
        return [ps_text(v) for v in items]
    if isinstance(value, list):
        if len(value) == 1:
            return ps_text(value[0])
        raise CmdletError(
            f"Cannot convert 'System.Object[]' to the type 'System.String' required by parameter '{name}'. "
            "Specified method is not supported."
        )
    return None if value is None else ps_text(value)


def bind(spec: Cmdlet, elements: list[ParamArg | Expr], evaluate: Callable[[Expr], Any]) -> dict[str, Any]:
    """Named parameters (exact name or alias, else an unambiguous prefix), then positional values, then checks."""
    bound: dict[str, Any] = {}
    positional: list[Expr] = []
    index = 0
    while index < len(elements):
        element = elements[index]
        index += 1
        if not isinstance(element, ParamArg):
            positional.append(element)
            continue
        if spec.lenient:
            if not element.colon and index < len(elements) and not isinstance(elements[index], ParamArg):
                index += 1
            continue
        param = _resolve_parameter(spec, element.name)
        if param.name in bound:
            raise CmdletError(
                f"Cannot bind parameter because parameter '{param.name}' is specified more than once. To provide "
                "multiple values to parameters that can accept multiple values, use the array syntax. For "
                'example, "-parameter value1,value2,value3".'
            )
        if element.colon:
            expr = element.value
        elif param.kind == "switch":
            bound[param.name] = True
            continue
        elif index < len(elements) and not isinstance(following := elements[index], ParamArg):
            expr = following
            index += 1
        else:
            expr = None
        if expr is None:
            raise CmdletError(
                f"Missing an argument for parameter '{param.name}'. "
                f"Specify a parameter of type '{TYPE_NAMES[param.kind]}' and try again."
            )
        bound[param.name] = _convert(param, evaluate(expr))
    if spec.lenient:
        return bound
    slots = sorted(
        (p for p in spec.parameters if p.position is not None and p.name not in bound),
        key=lambda p: p.position or 0,
    )
    for expr in positional:
        value = evaluate(expr)
        if not slots:
            shown = "System.Object[]" if isinstance(value, list) else ps_text(value)
            raise CmdletError(f"A positional parameter cannot be found that accepts argument '{shown}'.")
        param = slots.pop(0)
        bound[param.name] = _convert(param, value)
    for param in spec.parameters:
        if param.unsupported and param.name in bound:
            raise CmdletError(f"m365-mock does not support the parameter '{param.name}': {param.unsupported}")
    missing = [p.name for p in spec.parameters if p.mandatory and p.name not in bound]
    if missing:
        raise CmdletError(
            f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}."
        )
    return bound
