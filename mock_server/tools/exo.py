"""`m365-mock exo`: Exchange Online PowerShell lines against a running emulator, through its control API.

Three parts:

1. Syntax: `tokenize` and `parse` read the PowerShell an admin pastes from a runbook (quotes, backtick line
   continuation, comments, `;`, comma lists, `$true`/`$false`/`$null`, simple `$variables`, pipes into
   Format-List / Format-Table / Select-Object) and raise `ShellSyntaxError` with the line and column.
2. Cmdlets: a table of definitions (name, parameters with their kind, mandatory, position and aliases) and one
   function each that calls the control API through a `ControlClient` and returns objects to format.
3. `run` (and `Shell`): bind parameters as PowerShell does (prefixes, positional Identity, common parameters),
   run each statement, format the output like the real cmdlets, and report errors the PowerShell way.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import fnmatch
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from m365_mock.tools.control_client import (  # noqa: F401 - part of the shell's interface
    ADMIN_HEADER,
    CmdletError,
    ControlClient,
    ControlUnavailable,
    SetupError,
    add_connection_arguments,
    client_from_args,
)

# ================================================================ syntax

SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"  # PowerShell also takes the typographic quotes of pasted documents
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
DASHES = "-\u2013\u2014\u2015"  # and en/em dashes in front of parameter names
SPACES = " \t\f\v\u00a0"
WORD_END = frozenset(SPACES + "\n;|,(){}&<>")
ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
VARIABLE = re.compile(r"\$(?:\{([^}]+)\}|((?:env:)?\w+))", re.IGNORECASE)
ASSIGNMENT = re.compile(r"\$(\w+)[ \t]*=(?!=)")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
UNSUPPORTED_CHARACTERS = {
    "(": "Sub-expressions in parentheses ( ) are not supported by m365-mock; write the value itself.",
    "{": "Script blocks { } are not supported by m365-mock.",
    "}": "Unexpected token '}' in expression or statement.",
    "&": "The call operator & is not supported by m365-mock; wrap an ampersand in quotes to pass it as text.",
    ">": "Redirection (>) is not supported by m365-mock.",
    "<": "The '<' operator is reserved for future use.",
}


class ShellSyntaxError(Exception):
    """A parse error: nothing of the input runs. `incomplete` means more lines could complete it."""

    def __init__(self, message: str, line: int, column: int, *, incomplete: bool = False) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.incomplete = message, line, column, incomplete

    def describe(self) -> str:
        return f"ParserError: line {self.line}, char {self.column}: {self.message}"


@dataclass(frozen=True)
class Var:
    """A `$name` inside a word or a double-quoted string, looked up when the statement runs."""

    name: str


Part = str | Var


@dataclass
class Token:
    """kind: word, param (text = name, colon = written `-Name:`), comma, pipe, array (`@(`), rparen, assign."""

    kind: str
    text: str
    line: int
    column: int
    parts: tuple[Part, ...] = ()
    quoted: bool = False
    colon: bool = False
    raw: str = ""  # a param as written (its dash, name and colon)


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.pos = 0
        self.line_starts = [0] + [i + 1 for i, c in enumerate(self.text) if c == "\n"]
        self.statements: list[list[Token]] = []
        self.current: list[Token] = []
        self.depth = 0  # open @( )
        self.dangling: set[int] = set()  # lines that end with a backtick followed by spaces

    def where(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1] + 1

    def fail(self, message: str, pos: int, *, incomplete: bool = False) -> None:
        raise ShellSyntaxError(message, *self.where(pos), incomplete=incomplete)

    def add(self, kind: str, text: str, start: int, **extra: Any) -> None:
        self.current.append(Token(kind, text, *self.where(start), **extra))

    def ends_line(self, pos: int) -> bool:
        """Whether only spaces follow `pos` up to the end of its line."""
        end = pos
        while end < len(self.text) and self.text[end] in SPACES:
            end += 1
        return end == len(self.text) or self.text[end] == "\n"

    def escaped_space(self, pos: int) -> None:
        """A backtick at `pos` followed by a space: PowerShell reads an escaped space, not a line continuation.
        When only spaces follow to the end of the line, the statement ends there; the line is remembered for a hint.
        """
        if self.ends_line(pos + 1):
            self.dangling.add(self.where(pos)[0])

    def end_statement(self, pos: int) -> None:
        if self.current:
            if self.current[-1].kind == "pipe":
                self.fail("An empty pipe element is not allowed.", pos, incomplete=pos >= len(self.text))
            if self.current[-1].kind == "comma":
                self.fail("Missing expression after ','.", pos, incomplete=pos >= len(self.text))
            self.statements.append(self.current)
        self.current = []

    def separator(self, pos: int) -> None:
        """A newline or `;`: ends the statement, continues after `|` or `,`, separates items inside @( )."""
        last = self.current[-1].kind if self.current else None
        if self.depth:
            if last not in ("comma", "array"):
                self.add("comma", ",", pos)
        elif last not in ("pipe", "comma") or self.text[pos] == ";":
            self.end_statement(pos)

    def run(self) -> list[list[Token]]:
        text = self.text
        while self.pos < len(text):
            c, start = text[self.pos], self.pos
            nxt = text[self.pos + 1] if self.pos + 1 < len(text) else ""
            if c in SPACES:
                self.pos += 1
            elif c == "`" and nxt in ("\n", ""):
                if not text[self.pos + 2 :].strip():
                    self.fail(
                        "The line continuation character (`) at the end of the input has no line to continue.",
                        start,
                        incomplete=True,
                    )
                self.pos += 2
            elif c == "`" and nxt in SPACES:
                self.escaped_space(self.pos)  # between tokens an escaped space is just a space
                self.pos += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif c == "<" and nxt == "#":
                end = text.find("#>", self.pos + 2)
                if end < 0:
                    self.fail("The block comment is missing the terminator: #>.", start, incomplete=True)
                self.pos = end + 2
            elif c in "\n;":
                self.separator(self.pos)
                self.pos += 1
            elif c == "|":
                if nxt == "|":
                    self.fail("The token '||' is not supported by m365-mock.", start)
                if not self.current or self.current[-1].kind == "pipe":
                    self.fail("An empty pipe element is not allowed.", start)
                self.add("pipe", c, start)
                self.pos += 1
            elif c == ",":
                self.add("comma", c, start)
                self.pos += 1
            elif c == "@" and nxt == "(":
                self.add("array", "@(", start)
                self.depth += 1
                self.pos += 2
            elif c == ")":
                if not self.depth:
                    self.fail("Unexpected token ')' in expression or statement.", start)
                self.add("rparen", c, start)
                self.depth -= 1
                self.pos += 1
            elif c in UNSUPPORTED_CHARACTERS:
                self.fail(UNSUPPORTED_CHARACTERS[c], start)
            elif c in DASHES and (nxt.isalpha() or nxt == "_"):
                self.parameter()
            elif c == "$" and not self.current and (match := ASSIGNMENT.match(text, self.pos)):
                self.add("assign", match.group(1), start)
                self.pos = match.end()
            else:
                self.word()
        if self.depth:
            self.fail("Missing closing ')' in expression.", len(text), incomplete=True)
        self.end_statement(len(text))
        return self.statements

    def parameter(self) -> None:
        start, end = self.pos, self.pos + 1
        while end < len(self.text) and self.text[end] not in WORD_END and self.text[end] != ":":
            end += 1
        colon = end < len(self.text) and self.text[end] == ":"
        self.add("param", self.text[start + 1 : end], start, colon=colon, raw=self.text[start : end + colon])
        self.pos = end + colon

    def word(self) -> None:
        start, parts, buffer, quoted = self.pos, [], [], False
        text = self.text
        while self.pos < len(text) and text[self.pos] not in WORD_END:
            c = text[self.pos]
            if c == "`":
                escaped = text[self.pos + 1 : self.pos + 2]
                if escaped in ("\n", "") or (escaped in SPACES and text[start] in SINGLE_QUOTES + DOUBLE_QUOTES):
                    break  # a line continuation, or a space after a string that ends its word: run() takes these
                if escaped in SPACES:
                    self.escaped_space(self.pos)
                buffer.append(ESCAPES.get(escaped, escaped))
                self.pos += 2
            elif c in SINGLE_QUOTES:
                quoted = True
                buffer.append(self.single_quoted())
            elif c in DOUBLE_QUOTES:
                quoted = True
                self.double_quoted(parts, buffer)
            elif c == "$":
                self.variable(parts, buffer)
            else:
                buffer.append(c)
                self.pos += 1
        _flush(parts, buffer)
        self.add("word", text[start : self.pos], start, parts=tuple(parts), quoted=quoted)

    def single_quoted(self) -> str:
        start, out = self.pos, []
        self.pos += 1
        while True:
            if self.pos >= len(self.text):
                self.fail("The string is missing the terminator: '.", start, incomplete=True)
            c = self.text[self.pos]
            if c in SINGLE_QUOTES:
                if self.pos + 1 < len(self.text) and self.text[self.pos + 1] in SINGLE_QUOTES:
                    out.append(c)
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(out)
            out.append(c)
            self.pos += 1

    def double_quoted(self, parts: list[Part], buffer: list[str]) -> None:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or (self.text[self.pos] == "`" and self.pos + 1 >= len(self.text)):
                self.fail('The string is missing the terminator: ".', start, incomplete=True)
            c = self.text[self.pos]
            if c in DOUBLE_QUOTES:
                if self.pos + 1 < len(self.text) and self.text[self.pos + 1] in DOUBLE_QUOTES:
                    buffer.append(c)
                    self.pos += 2
                    continue
                self.pos += 1
                return
            if c == "`":
                buffer.append(ESCAPES.get(self.text[self.pos + 1], self.text[self.pos + 1]))
                self.pos += 2
            elif c == "$":
                self.variable(parts, buffer)
            else:
                buffer.append(c)
                self.pos += 1

    def variable(self, parts: list[Part], buffer: list[str]) -> None:
        match = VARIABLE.match(self.text, self.pos)
        if match is None:
            if self.text.startswith("$(", self.pos):
                self.fail("Sub-expressions $( ) are not supported by m365-mock; write the value itself.", self.pos)
            buffer.append("$")
            self.pos += 1
            return
        _flush(parts, buffer)
        parts.append(Var(match.group(1) or match.group(2)))
        self.pos = match.end()


def _flush(parts: list[Part], buffer: list[str]) -> None:
    if buffer:
        if parts and isinstance(parts[-1], str):
            parts[-1] += "".join(buffer)
        else:
            parts.append("".join(buffer))
        buffer.clear()


def tokenize(text: str) -> list[list[Token]]:
    """The statements of `text`, each a list of tokens; ShellSyntaxError for malformed input."""
    return _Lexer(text).run()


@dataclass
class Word:
    """A value written as text: literal pieces and `$variables` (quoted marks a string, not a command name)."""

    parts: tuple[Part, ...]
    quoted: bool
    text: str


@dataclass
class ArrayValue:
    """`a,b` or `@(a, b)`."""

    items: list[Word | ArrayValue]


Expr = Word | ArrayValue


@dataclass
class ParamArg:
    """`-Name`, `-Name value` (the value is the next element) or `-Name:value` (`value` set here)."""

    name: str
    colon: bool
    value: Expr | None = None


@dataclass
class Command:
    """One cmdlet call: its name as written and its elements (parameters and values) in order."""

    name: str
    elements: list[ParamArg | Expr]
    line: int
    column: int


@dataclass
class Statement:
    """A pipeline of commands, or `$name = value`. `line` and `end_line` are its first and last lines; `dangling`
    is a line ending with a backtick followed by spaces that ended it, `after_dangling` one that ended the statement
    before it, and `after_line` the last line of the statement before it (for hints when a statement fails)."""

    pipeline: list[Command] = field(default_factory=list)
    assign: str | None = None
    value: Expr | None = None
    line: int = 1
    end_line: int = 1
    dangling: int | None = None
    after_dangling: int | None = None
    after_line: int | None = None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.index = tokens, 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        self.index += 1
        return self.tokens[self.index - 1]

    def fail(self, message: str, token: Token | None = None) -> None:
        token = token or self.tokens[-1]
        raise ShellSyntaxError(message, token.line, token.column)

    def statement(self) -> Statement:
        first = self.tokens[0]
        if first.kind == "assign":
            self.take()
            if self.peek() is None:
                self.fail("You must provide a value expression following the '=' operator.", first)
            value = self.expression()
            if self.peek() is not None:
                self.fail(f"Unexpected token '{self.peek().text}' in expression or statement.", self.peek())
            for word in _words(value):
                if not word.quoted and not NUMBER.fullmatch(word.text) and not _is_variable(word):
                    self.fail(
                        "m365-mock assigns only values ('text', \"text\", numbers, $variables and lists of them) "
                        f"to a variable, not the output of a command such as '{word.text}'.",
                        first,
                    )
            return Statement(assign=first.text, value=value, line=first.line)
        pipeline = [self.command()]
        while self.peek() is not None:
            self.take()  # the pipe
            pipeline.append(self.command())
        return Statement(pipeline, line=first.line)

    def command(self) -> Command:
        token = self.take()
        if token.kind == "param":
            # PowerShell takes a parameter that starts a statement (a line whose continuation was lost) as the
            # name of a command: no syntax error, but "The term '-AppId' is not recognized" when it runs.
            return Command(token.raw, self.elements(), token.line, token.column)
        if token.kind != "word":
            self.fail(f"Unexpected token '{token.text}' in expression or statement.", token)
        if token.quoted or any(isinstance(p, Var) for p in token.parts):
            self.fail(f"m365-mock runs cmdlets: a statement must start with a cmdlet name, not {token.text}.", token)
        name = "".join(p for p in token.parts if isinstance(p, str))
        return Command(name, self.elements(), token.line, token.column)

    def elements(self) -> list[ParamArg | Expr]:
        elements: list[ParamArg | Expr] = []
        while (nxt := self.peek()) is not None and nxt.kind != "pipe":
            if nxt.kind == "param":
                self.take()
                value = None
                if nxt.colon and (after := self.peek()) is not None and after.kind in ("word", "array"):
                    value = self.expression()
                elements.append(ParamArg(nxt.text, nxt.colon, value))
            else:
                elements.append(self.expression())
        return elements

    def expression(self) -> Expr:
        items = [self.primary()]
        while (nxt := self.peek()) is not None and nxt.kind == "comma":
            self.take()
            after = self.peek()
            if after is None or after.kind not in ("word", "array"):
                self.fail("Missing expression after ','.", after or nxt)
            items.append(self.primary())
        return items[0] if len(items) == 1 else ArrayValue(items)

    def primary(self) -> Expr:
        token = self.take()
        if token.kind == "word":
            return Word(token.parts, token.quoted, token.text)
        if token.kind == "array":
            items: list[Expr] = []
            while (nxt := self.peek()) is not None and nxt.kind != "rparen":
                if nxt.kind == "comma":
                    self.take()
                elif nxt.kind in ("word", "array"):
                    items.append(self.primary())
                else:
                    self.fail(f"Unexpected token '{nxt.text}' in expression or statement.", nxt)
            self.take()
            return ArrayValue(items)
        self.fail(f"Unexpected token '{token.text}' in expression or statement.", token)
        raise AssertionError  # unreachable: fail raises


def _words(expr: Expr) -> Iterable[Word]:
    if isinstance(expr, Word):
        yield expr
    else:
        for item in expr.items:
            yield from _words(item)


def _is_variable(word: Word) -> bool:
    return len(word.parts) == 1 and isinstance(word.parts[0], Var)


def parse(text: str) -> list[Statement]:
    """The statements of `text` (pipelines of commands, or assignments); ShellSyntaxError for malformed input."""
    lexer = _Lexer(text)
    statements: list[Statement] = []
    for tokens in lexer.run():
        statement = _Parser(tokens).statement()
        statement.end_line = tokens[-1].line
        if statement.end_line in lexer.dangling:
            statement.dangling = statement.end_line
        if statements:
            before = statements[-1]
            statement.after_line = before.end_line
            if before.dangling is not None and before.dangling < statement.line:
                statement.after_dangling = before.dangling
        statements.append(statement)
    return statements


# ================================================================ values and formatting


def ps_text(value: Any) -> str:
    """A value as PowerShell turns it into a string."""
    if isinstance(value, bool):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(ps_text(v) for v in value)
    return str(value)


def ps_display(value: Any) -> str:
    """A property value as Format-List and Format-Table show it (collections as `{a, b}`)."""
    if isinstance(value, list):
        return "{" + ", ".join(ps_text(v) for v in value) + "}"
    return ps_text(value)


@dataclass
class Output:
    """What a cmdlet returns: objects (property name -> value) with their default view, or plain lines."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    view: str = "list"  # "list" or "table"
    columns: tuple[str, ...] | None = None  # properties the view shows (None: all)
    lines: list[str] | None = None


def _properties(objects: list[dict[str, Any]], patterns: Iterable[str] | None) -> list[str]:
    names = list(dict.fromkeys(k for o in objects for k in o))
    if patterns is None:
        return names
    chosen = []
    for pattern in patterns:
        chosen += [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower()) and n not in chosen]
    return chosen


def format_list(objects: list[dict[str, Any]], properties: Iterable[str] | None = None) -> str:
    """`Name : Value` lines, names padded to the longest, a blank line after each object."""
    blocks = []
    for obj in objects:
        names = _properties([obj], properties)
        if not names:
            continue
        width = max(len(n) for n in names)
        lines = []
        for name in names:
            value = ps_display(obj.get(name)).replace("\n", "\n" + " " * (width + 3))
            lines.append(f"{name.ljust(width)} : {value}".rstrip())
        blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks)


def format_table(objects: list[dict[str, Any]], columns: Iterable[str] | None = None) -> str:
    """Columns as wide as their longest cell, headers underlined with dashes, a blank line after the table."""
    names = _properties(objects, columns)
    if not objects or not names:
        return ""
    rows = [[ps_display(o.get(n)).replace("\n", " ") for n in names] for o in objects]
    widths = [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]

    def line(cells: list[str]) -> str:
        return " ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    body = [line(names), line(["-" * len(n) for n in names]), *(line(r) for r in rows)]
    return "\n".join(body) + "\n\n"


def render(output: Output) -> str:
    if output.lines is not None:
        return "".join(line + "\n" for line in output.lines)
    if output.view == "table":
        return format_table(output.objects, output.columns)
    return format_list(output.objects, output.columns)


# ================================================================ control API client


def _segment(value: str) -> str:
    return quote(value, safe="")


# ================================================================ cmdlet table


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


IDENTITY = Parameter("Identity", mandatory=True, position=0)
OPTIONAL_IDENTITY = Parameter("Identity", position=0)


# ---------------------------------------------------------------- binding


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
        elif index < len(elements) and not isinstance(elements[index], ParamArg):
            expr = elements[index]
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
        (p for p in spec.parameters if p.position is not None and p.name not in bound), key=lambda p: p.position
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


# ---------------------------------------------------------------- recipients


def _local(address: str) -> str:
    return address.split("@")[0]


def _mailbox_keys(mailbox: dict[str, Any]) -> set[str]:
    names = [mailbox["id"], mailbox["address"], *mailbox.get("aliases", []), _local(mailbox["address"])]
    return {n.lower() for n in [*names, mailbox["display_name"]]}


def _group_keys(group: dict[str, Any]) -> set[str]:
    return {n.lower() for n in (group["id"], group["address"], _local(group["address"]), group["display_name"])}


def find_recipient(
    ctx: Context, identity: str, *, mailboxes: bool = True, groups: bool = True
) -> tuple[str, dict[str, Any]] | None:
    """("mailbox" | "group", object) named by id, address, alias or name, as Exchange's -Identity takes them."""
    key = identity.strip().lower()
    found: list[tuple[str, dict[str, Any]]] = []
    if mailboxes:
        found += [("mailbox", m) for m in ctx.client.call("GET", "/mailboxes")["value"] if key in _mailbox_keys(m)]
    if groups:
        found += [("group", g) for g in ctx.client.call("GET", "/groups")["value"] if key in _group_keys(g)]
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


GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def app_ids(values: list[str], *, everyone: bool = False) -> list[str]:
    """-AppId values as Exchange takes them: application ids (GUIDs), and `*` where the cmdlet allows it
    (`everyone`). A display name is refused here, although the control API and tenant files resolve one."""
    for value in values:
        text = value.strip()
        if not (GUID.fullmatch(text) or (everyone and text == "*")):
            wanted = "application ids (GUIDs) or *" if everyone else "an application id (GUID)"
            raise CmdletError(f"The AppId '{value}' isn't valid: give {wanted}.")
    return [value.strip() for value in values]


def _alias_from(name: str) -> str:
    alias = re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", "", name)
    if not alias:
        raise CmdletError(f"An alias can't be made from the name '{name}'; give -Alias or -PrimarySmtpAddress.")
    return alias


def _single(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


# ---------------------------------------------------------------- records (what the real cmdlets show)

MAILBOX_COLUMNS = ("Name", "Alias", "RecipientTypeDetails", "PrimarySmtpAddress")
GROUP_COLUMNS = ("Name", "DisplayName", "GroupType", "PrimarySmtpAddress")
SERVICE_PRINCIPAL_COLUMNS = ("DisplayName", "ObjectId", "AppId")
ASSIGNMENT_COLUMNS = ("Name", "Role", "RoleAssigneeName", "RoleAssigneeType", "AssignmentMethod", "CustomResourceScope")


def policy_record(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "ScopeName": policy["scope_name"],
        "ScopeIdentity": policy["scope_identity"],
        "Identity": policy["identity"],
        "AppId": _single(policy["app_id"]),
        "ScopeIdentityRaw": policy["scope_identity_raw"],
        "Description": policy["description"],
        "AccessRight": policy["access_right"],
        "ShardType": policy["shard_type"],
        "IsValid": policy["is_valid"],
        "ObjectState": policy["object_state"],
    }


def mailbox_record(mailbox: dict[str, Any]) -> dict[str, Any]:
    attributes = mailbox.get("custom_attributes") or {}
    record = {
        "Name": mailbox["display_name"],
        "Alias": _local(mailbox["address"]),
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
    return {
        "Name": group["display_name"],
        "DisplayName": group["display_name"],
        "Alias": _local(group["address"]),
        "GroupType": "Universal, SecurityEnabled",
        "PrimarySmtpAddress": group["address"],
        "RecipientTypeDetails": "MailUniversalSecurityGroup",
        "ExternalDirectoryObjectId": group["id"],
    }


def service_principal_record(sp: dict[str, Any]) -> dict[str, Any]:
    return {
        "DisplayName": sp["display_name"],
        "ObjectId": sp["object_id"],
        "AppId": sp["app_id"],
        "Identity": sp["identity"],
    }


def scope_record(scope: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": scope["name"],
        "ScopeRestrictionType": "RecipientScope",
        "Exclusive": False,
        "RecipientRoot": "",
        "RecipientFilter": scope["filter"],
        "ServerFilter": "",
    }


def assignment_records(ctx: Context, assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {sp["app_id"]: sp["display_name"] for sp in ctx.client.call("GET", "/servicePrincipals")["value"]}
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


# ---------------------------------------------------------------- application access policies


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
        return Output([policy_record(ctx.client.call("GET", f"/accessPolicies/{_segment(args['Identity'])}"))])
    return Output([policy_record(p) for p in ctx.client.call("GET", "/accessPolicies")["value"]])


@cmdlet("Set-ApplicationAccessPolicy", IDENTITY, Parameter("Description"), changes=True, target="Identity")
def set_application_access_policy(ctx: Context, args: dict[str, Any]) -> None:
    path = f"/accessPolicies/{_segment(args['Identity'])}"
    if "Description" not in args:
        ctx.client.call("GET", path)
        ctx.warn(f"The command completed successfully but no settings of '{args['Identity']}' have been modified.")
        return
    ctx.client.call("PATCH", path, {"description": args["Description"] or ""})


@cmdlet("Remove-ApplicationAccessPolicy", IDENTITY, changes=True, target="Identity")
def remove_application_access_policy(ctx: Context, args: dict[str, Any]) -> None:
    ctx.client.call("DELETE", f"/accessPolicies/{_segment(args['Identity'])}")


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
    alias = args.get("Alias") or _alias_from(args["Name"])
    address = (
        args.get("PrimarySmtpAddress")
        or args.get("MicrosoftOnlineServicesID")
        or f"{alias}@{ctx.client.tenant['domains'][0]}"
    )
    body = {
        "address": address,
        "display_name": args.get("DisplayName") or args["Name"],
        "type": "shared" if args.get("Shared") else "user",
    }
    return Output([mailbox_record(ctx.client.call("POST", "/mailboxes", body))], "table", MAILBOX_COLUMNS)


@cmdlet(
    "Get-Mailbox",
    OPTIONAL_IDENTITY,
    Parameter("RecipientTypeDetails", "list"),
    Parameter("ResultSize"),
)
def get_mailbox(ctx: Context, args: dict[str, Any]) -> Output:
    if args.get("Identity"):
        mailboxes = [find_mailbox(ctx, args["Identity"])]
    else:
        mailboxes = ctx.client.call("GET", "/mailboxes")["value"]
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
        ctx.warn(f"The command completed successfully but no settings of '{args['Identity']}' have been modified.")
        return
    ctx.client.call("PATCH", f"/mailboxes/{_segment(mailbox['address'])}", body)


@cmdlet("Remove-Mailbox", IDENTITY, changes=True, target="Identity")
def remove_mailbox(ctx: Context, args: dict[str, Any]) -> None:
    mailbox = find_mailbox(ctx, args["Identity"])
    ctx.client.call("DELETE", f"/mailboxes/{_segment(mailbox['address'])}")


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
    address = args.get("PrimarySmtpAddress") or (
        f"{args.get('Alias') or _alias_from(args['Name'])}@{ctx.client.tenant['domains'][0]}"
    )
    body = {"address": address, "display_name": args.get("DisplayName") or args["Name"], "members": members}
    return Output([group_record(ctx.client.call("POST", "/groups", body))], "table", GROUP_COLUMNS)


@cmdlet("Get-DistributionGroup", OPTIONAL_IDENTITY)
def get_distribution_group(ctx: Context, args: dict[str, Any]) -> Output:
    groups = [find_group(ctx, args["Identity"])] if args.get("Identity") else ctx.client.call("GET", "/groups")["value"]
    return Output([group_record(g) for g in groups], "table", GROUP_COLUMNS)


@cmdlet("Remove-DistributionGroup", IDENTITY, changes=True, target="Identity")
def remove_distribution_group(ctx: Context, args: dict[str, Any]) -> None:
    group = find_group(ctx, args["Identity"])
    ctx.client.call("DELETE", f"/groups/{group['id']}")


MEMBER_PARAMETERS = (
    IDENTITY,
    Parameter("Member", mandatory=True),
    Parameter("BypassSecurityGroupManagerCheck", "switch"),
)


@cmdlet("Add-DistributionGroupMember", *MEMBER_PARAMETERS, changes=True, target="Identity")
def add_distribution_group_member(ctx: Context, args: dict[str, Any]) -> None:
    group = find_group(ctx, args["Identity"])
    ctx.client.call("POST", f"/groups/{group['id']}/members", {"member": recipient_address(ctx, args["Member"])})


@cmdlet("Remove-DistributionGroupMember", *MEMBER_PARAMETERS, changes=True, target="Identity")
def remove_distribution_group_member(ctx: Context, args: dict[str, Any]) -> None:
    group = find_group(ctx, args["Identity"])
    member = recipient_address(ctx, args["Member"])
    ctx.client.call("DELETE", f"/groups/{group['id']}/members/{_segment(member)}")


@cmdlet("Get-DistributionGroupMember", IDENTITY, Parameter("ResultSize"))
def get_distribution_group_member(ctx: Context, args: dict[str, Any]) -> Output:
    group = find_group(ctx, args["Identity"])
    mailboxes = ctx.client.call("GET", "/mailboxes")["value"]
    groups = ctx.client.call("GET", "/groups")["value"]
    records = []
    for member in group["members"]:
        key = member.lower()
        mailbox = next((m for m in mailboxes if key in _mailbox_keys(m)), None)
        if mailbox is not None:
            record = mailbox_record(mailbox)
            records.append(
                {
                    "Name": record["Name"],
                    "RecipientType": "UserMailbox",
                    "Alias": record["Alias"],
                    "PrimarySmtpAddress": record["PrimarySmtpAddress"],
                    "RecipientTypeDetails": record["RecipientTypeDetails"],
                }
            )
        elif (inner := next((g for g in groups if key in _group_keys(g)), None)) is not None:
            records.append(
                {
                    "Name": inner["display_name"],
                    "RecipientType": "MailUniversalSecurityGroup",
                    "Alias": _local(inner["address"]),
                    "PrimarySmtpAddress": inner["address"],
                    "RecipientTypeDetails": "MailUniversalSecurityGroup",
                }
            )
    return Output(records, "table", ("Name", "RecipientType"))


# ---------------------------------------------------------------- RBAC for Applications


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
    body = {"app_id": app_id, "object_id": args["ObjectId"]}
    if args.get("DisplayName"):
        body["display_name"] = args["DisplayName"]
    sp = ctx.client.call("POST", "/servicePrincipals", body)
    return Output([service_principal_record(sp)], "table", SERVICE_PRINCIPAL_COLUMNS)


def _service_principals(ctx: Context, identity: str | None) -> list[dict[str, Any]]:
    sps = ctx.client.call("GET", "/servicePrincipals")["value"]
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


@cmdlet("Remove-ServicePrincipal", IDENTITY, changes=True, target="Identity")
def remove_service_principal(ctx: Context, args: dict[str, Any]) -> None:
    ctx.client.call("DELETE", f"/servicePrincipals/{_segment(args['Identity'])}")


@cmdlet(
    "New-ManagementScope",
    Parameter("Name", mandatory=True, position=0),
    Parameter("RecipientRestrictionFilter", mandatory=True),
    Parameter("RecipientRoot", unsupported="scopes filter the whole organisation."),
    changes=True,
    target="Name",
)
def new_management_scope(ctx: Context, args: dict[str, Any]) -> Output:
    scope = ctx.client.call(
        "POST", "/managementScopes", {"name": args["Name"], "filter": args["RecipientRestrictionFilter"]}
    )
    return Output([scope_record(scope)], "table")


@cmdlet("Get-ManagementScope", OPTIONAL_IDENTITY)
def get_management_scope(ctx: Context, args: dict[str, Any]) -> Output:
    scopes = ctx.client.call("GET", "/managementScopes")["value"]
    if args.get("Identity"):
        scopes = [s for s in scopes if s["name"].lower() == args["Identity"].strip().lower()]
        if not scopes:
            raise not_found(args["Identity"])
    return Output([scope_record(s) for s in scopes], "table")


@cmdlet("Remove-ManagementScope", IDENTITY, changes=True, target="Identity")
def remove_management_scope(ctx: Context, args: dict[str, Any]) -> None:
    ctx.client.call("DELETE", f"/managementScopes/{_segment(args['Identity'])}")


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
    body = {"role": args["Role"], "app_id": args["App"]}
    if args.get("CustomResourceScope"):
        body["scope"] = args["CustomResourceScope"]
    if args.get("Name"):
        body["name"] = args["Name"]
    assignment = ctx.client.call("POST", "/roleAssignments", body)
    return Output(assignment_records(ctx, [assignment]), "table", ASSIGNMENT_COLUMNS)


@cmdlet("Get-ManagementRoleAssignment", OPTIONAL_IDENTITY, Parameter("RoleAssignee"), Parameter("Role"))
def get_management_role_assignment(ctx: Context, args: dict[str, Any]) -> Output:
    assignments = ctx.client.call("GET", "/roleAssignments")["value"]
    if args.get("Identity"):
        assignments = [a for a in assignments if a["name"].lower() == args["Identity"].strip().lower()]
        if not assignments:
            raise not_found(args["Identity"])
    if args.get("RoleAssignee"):
        apps = {sp["app_id"] for sp in _service_principals(ctx, args["RoleAssignee"])}
        assignments = [a for a in assignments if a["app_id"] in apps]
    if args.get("Role"):
        assignments = [a for a in assignments if a["role"].lower() == args["Role"].strip().lower()]
    return Output(assignment_records(ctx, assignments), "table", ASSIGNMENT_COLUMNS)


@cmdlet("Remove-ManagementRoleAssignment", IDENTITY, changes=True, target="Identity")
def remove_management_role_assignment(ctx: Context, args: dict[str, Any]) -> None:
    ctx.client.call("DELETE", f"/roleAssignments/{_segment(args['Identity'])}")


@cmdlet("Test-ServicePrincipalAuthorization", IDENTITY, Parameter("Resource"))
def test_service_principal_authorization(ctx: Context, args: dict[str, Any]) -> Output:
    body = {}
    if args.get("Resource"):
        body["resource"] = find_mailbox(ctx, args["Resource"])["address"]
    rows = ctx.client.call("POST", f"/servicePrincipals/{_segment(args['Identity'])}/testAuthorization", body)
    records = [
        {
            "RoleName": row["role_name"],
            "GrantedPermissions": _single(row["granted_permissions"]),
            "AllowedResourceScope": row["allowed_resource_scope"],
            "ScopeType": row["scope_type"],
            "InScope": row["in_scope"],
        }
        for row in rows["value"]
    ]
    return Output(records, "table")


# ---------------------------------------------------------------- session and helpers


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


# ---------------------------------------------------------------- after a pipe


def _piped(ctx: Context) -> Output:
    return ctx.input or Output()


@cmdlet("Format-List", Parameter("Property", "list", position=0), formatter=True, aliases=("fl",))
def format_list_cmdlet(ctx: Context, args: dict[str, Any]) -> Output:
    given = _piped(ctx)
    if given.lines is not None:
        return given
    return Output(given.objects, "list", tuple(args["Property"]) if "Property" in args else None)


@cmdlet(
    "Format-Table",
    Parameter("Property", "list", position=0),
    Parameter("AutoSize", "switch"),
    Parameter("Wrap", "switch"),
    formatter=True,
    aliases=("ft",),
)
def format_table_cmdlet(ctx: Context, args: dict[str, Any]) -> Output:
    given = _piped(ctx)
    if given.lines is not None:
        return given
    columns = tuple(args["Property"]) if "Property" in args else given.columns
    return Output(given.objects, "table", columns)


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
        names = _properties(objects, [args["ExpandProperty"]])
        if not names:
            raise CmdletError(f'Property "{args["ExpandProperty"]}" cannot be found.')
        values = [o.get(names[0]) for o in objects]
        return Output(lines=[ps_text(v) for value in values for v in (value if isinstance(value, list) else [value])])
    patterns = args.get("Property") or ["*"]
    names = []
    for pattern in patterns:
        matched = _properties(objects, [pattern]) if any(c in pattern for c in "*?[") else [pattern]
        names += [n for n in matched if n not in names]
    real = {n.lower(): n for o in objects for n in o}
    names = [real.get(n.lower(), n) for n in names]
    projected = [{n: o.get(n) for n in names} for o in objects]
    return Output(projected, "table" if len(names) <= 4 else "list")


# ================================================================ running


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
        if _is_variable(expr):
            return self.lookup(expr.parts[0].name)  # type: ignore[union-attr]
        return "".join(p if isinstance(p, str) else ps_text(self.lookup(p.name)) for p in expr.parts)

    def run_text(self, text: str) -> bool:
        """Parse and run `text`; True when every statement succeeded. A syntax error runs nothing."""
        try:
            statements = parse(text)
        except ShellSyntaxError as exc:
            self.err.write(exc.describe() + "\n")
            return False
        return self.run_statements(statements)

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
            try:
                stages.append((spec, bind(spec, command.elements, self.evaluate)))
            except CmdletError as exc:
                exc.cmdlet = spec.name
                raise
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
                output = spec.run(ctx, args)
            except CmdletError as exc:
                exc.cmdlet = spec.name
                raise
            finally:
                self.client.trace = None
        if output is not None:
            self.out.write(render(output))
        self.out.flush()


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
    ok, pending = True, []
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


# ================================================================ the command line


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
    try:
        statements = parse(text)
    except ShellSyntaxError as exc:
        err.write(exc.describe() + "\n")
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
