"""Statements from tokens: pipelines of commands (a name, then parameters and values in order) and
`$name = value` assignments, whose values are words (text with `$variables`) and comma or `@( )` lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from m365_mock.tools.exo.lexer import Lexer, Part, ShellSyntaxError, Token, Var

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


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
    """The tokens of one statement into a Statement."""

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

    def unexpected(self, token: Token) -> None:
        self.fail(f"Unexpected token '{token.text}' in expression or statement.", token)

    def statement(self) -> Statement:
        first = self.tokens[0]
        if first.kind == "assign":
            self.take()
            if self.peek() is None:
                self.fail("You must provide a value expression following the '=' operator.", first)
            value = self.expression()
            if (extra := self.peek()) is not None:
                self.unexpected(extra)
            for word in words(value):
                if not word.quoted and not NUMBER.fullmatch(word.text) and not is_variable(word):
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
            self.unexpected(token)
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
                    self.unexpected(nxt)
            self.take()
            return ArrayValue(items)
        self.unexpected(token)
        raise AssertionError  # unreachable: fail raises


def words(expr: Expr) -> Iterable[Word]:
    """The words of a value, lists flattened."""
    if isinstance(expr, Word):
        yield expr
    else:
        for item in expr.items:
            yield from words(item)


def is_variable(word: Word) -> bool:
    """Whether the word is one `$variable` and nothing else (its value keeps its type: a list stays a list)."""
    return len(word.parts) == 1 and isinstance(word.parts[0], Var)


def parse(text: str) -> list[Statement]:
    """The statements of `text` (pipelines of commands, or assignments); ShellSyntaxError for malformed input."""
    lexer = Lexer(text)
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
