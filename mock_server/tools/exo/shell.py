"""Running statements: `Shell` keeps the `$variables`, binds each command's parameters, runs the pipeline (with
-WhatIf and -Verbose), prints the output in Exchange's formats and reports errors the PowerShell way, with a hint
when a line continuation was lost; `run` for a text, `interactive` for the `PS> ` prompt, `main` for
`m365-mock exo`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from m365_mock.tools.control_client import CmdletError, ControlClient, ControlUnavailable, SetupError, client_from_args
from m365_mock.tools.exo.binding import CMDLETS, Cmdlet, Context, bind
from m365_mock.tools.exo.formatting import Output, ps_text, render
from m365_mock.tools.exo.lexer import DASHES, ShellSyntaxError
from m365_mock.tools.exo.parser import ArrayValue, Expr, Statement, is_variable, parse


class Shell:
    """Runs statements against one emulator; `$variables` live as long as the shell (the interactive prompt)."""

    def __init__(self, client: ControlClient, out: TextIO, err: TextIO) -> None:
        self.client, self.out, self.err = client, out, err
        self.variables: dict[str, Any] = {}
        self.exited = False

    def lookup(self, name: str) -> Any:
        key = name.lower()
        builtin = {"true": True, "false": False, "null": None}
        if key in builtin:
            return builtin[key]
        if key.startswith("env:"):
            return os.environ.get(name[4:])
        if key not in self.variables:
            raise CmdletError(f"The variable '${name}' cannot be retrieved because it has not been set.")
        return self.variables[key]

    def evaluate(self, expr: Expr) -> Any:
        if isinstance(expr, ArrayValue):
            values: list[Any] = []
            for item in expr.items:
                value = self.evaluate(item)
                values += value if isinstance(value, list) else [value]
            return values
        if is_variable(expr):
            return self.lookup(expr.parts[0].name)  # type: ignore[union-attr]
        return "".join(p if isinstance(p, str) else ps_text(self.lookup(p.name)) for p in expr.parts)

    def run_text(self, text: str) -> bool:
        """Parse and run `text`; True when every statement succeeded. A syntax error runs nothing."""
        statements = _parsed(text, self.err)
        return statements is not None and self.run_statements(statements)

    def run_statements(self, statements: list[Statement]) -> bool:
        ok = True
        for statement in statements:
            try:
                self.run_statement(statement)
            except CmdletError as exc:
                ok = False
                self.err.write(f"{exc.cmdlet} : {exc.message}\n" if exc.cmdlet else f"{exc.message}\n")
                if (hint := continuation_hint(statement)) is not None:
                    self.err.write(f"Hint: {hint}\n")
            except ControlUnavailable as exc:
                self.err.write(f"m365-mock exo: {exc}\n")
                return False
            if self.exited:
                break
        return ok

    def run_statement(self, statement: Statement) -> None:
        if statement.assign is not None:
            name = statement.assign.lower()
            if name in ("true", "false", "null"):
                raise CmdletError(f"Cannot overwrite variable {name} because it is read-only or constant.")
            assert statement.value is not None
            self.variables[name] = self.evaluate(statement.value)
            return
        first = statement.pipeline[0]
        if first.name.lower() == "exit" and len(statement.pipeline) == 1:
            self.exited = True
            return
        stages: list[tuple[Cmdlet, dict[str, Any]]] = []
        for position, command in enumerate(statement.pipeline):
            spec = CMDLETS.get(command.name.lower())
            if spec is None and position == 0:
                raise CmdletError(
                    f"The term '{command.name}' is not recognized as the name of a cmdlet, function, script file, "
                    "or operable program.",
                    command.name,
                )
            if position and (spec is None or not spec.formatter):
                raise CmdletError(
                    f"Piping into '{command.name}' is not supported by m365-mock: after | use Format-List (fl), "
                    "Format-Table (ft) or Select-Object (select).",
                    command.name,
                )
            assert spec is not None
            with _reported_as(spec.name):
                stages.append((spec, bind(spec, command.elements, self.evaluate)))
        output: Output | None = None
        for spec, args in stages:
            if spec.changes and args.get("WhatIf"):
                target = args.get(spec.target or "")
                shown = ", ".join(target) if isinstance(target, list) else ps_text(target)
                self.out.write(f'What if: Performing the operation "{spec.name}" on target "{shown}".\n')
                return
            ctx = Context(self.client, self.err, verbose=bool(args.get("Verbose")), input=output)
            self.client.trace = ctx.note if ctx.verbose else None
            try:
                with _reported_as(spec.name):
                    output = spec.run(ctx, args)
            finally:
                self.client.trace = None
        if output is not None:
            self.out.write(render(output))
        self.out.flush()


@contextlib.contextmanager
def _reported_as(name: str) -> Iterator[None]:
    """A CmdletError raised inside is reported as the cmdlet `name`'s."""
    try:
        yield
    except CmdletError as exc:
        exc.cmdlet = name
        raise


def _parsed(text: str, err: TextIO) -> list[Statement] | None:
    """The statements of `text`; None, with the parser's error written to `err`, when it is malformed."""
    try:
        return parse(text)
    except ShellSyntaxError as exc:
        err.write(exc.describe() + "\n")
        return None


PASTED_SPACES = "Delete the spaces after that backtick (text pasted from a PDF often carries them)."


def continuation_hint(statement: Statement) -> str | None:
    """Why a failed statement may not be the statement its author meant: a line continuation that wasn't one."""
    if statement.dangling is not None:
        return (
            f"line {statement.dangling} ends with a backtick followed by spaces, so the statement ends there: a "
            "backtick continues a line only as its last character, and here it escapes the space after it. "
            + PASTED_SPACES
        )
    if statement.after_dangling is not None:
        return (
            f"line {statement.line} starts a statement of its own, because line {statement.after_dangling} ends "
            "with a backtick followed by spaces. " + PASTED_SPACES
        )
    first = statement.pipeline[0] if statement.pipeline else None
    after = statement.after_line
    if first is not None and first.name[:1] in DASHES and after is not None and after < statement.line:
        return (
            "a statement can't start with a parameter: is the line continuation (`) missing at the end of line "
            f"{after}?"
        )
    return None


def run(text: str, client: ControlClient, out: TextIO, err: TextIO) -> int:
    """Run PowerShell `text` against the emulator behind `client`: 0 when every statement succeeded, else 1."""
    return 0 if Shell(client, out, err).run_text(text) else 1


def interactive(shell: Shell, read_line: Callable[[str], str], out: TextIO) -> int:
    """A `PS> ` prompt (`>> ` while a statement is incomplete); 0 when every statement succeeded."""
    ok = True
    pending: list[str] = []
    while not shell.exited:
        try:
            line = read_line(">> " if pending else "PS> ")
        except EOFError:
            out.write("\n")
            break
        except KeyboardInterrupt:
            out.write("\n")
            pending = []
            continue
        pending.append(line)
        text = "\n".join(pending)
        try:
            parse(text)
        except ShellSyntaxError as exc:
            if exc.incomplete and line.strip():
                continue
        pending = []
        ok = shell.run_text(text) and ok
    return 0 if ok else 1


def main(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    client: ControlClient | None = None,
) -> int:
    """`m365-mock exo`: 0 when every command succeeded, 1 when one failed, 2 when no emulator is configured."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    try:
        client = client or client_from_args(args)
    except SetupError as exc:
        err.write(f"m365-mock exo: {exc}\n")
        return 2
    shell = Shell(client, out, err)
    if args.text is None and args.file is None and stdin.isatty():
        if not _connected(client, err):
            return 1
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        return interactive(shell, input, out)
    if args.text is not None:
        text = args.text
    elif args.file not in (None, "-"):
        try:
            text = Path(args.file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            err.write(f"m365-mock exo: cannot read {args.file}: {exc.strerror or exc}\n")
            return 2
    else:
        text = stdin.read()
    statements = _parsed(text, err)
    if statements is None:
        return 1
    if statements and not _connected(client, err):
        return 1
    return 0 if shell.run_statements(statements) else 1


def _connected(client: ControlClient, err: TextIO) -> bool:
    """Reach the emulator and find the tenant once, so a wrong URL or key is one clear error."""
    try:
        client.tenant  # noqa: B018
    except (CmdletError, ControlUnavailable) as exc:
        err.write(f"m365-mock exo: {exc}\n")
        return False
    return True
