"""Reading PowerShell as pasted from a runbook into tokens: words with their quotes and `$variables`, parameters
(`-Name`, `-Name:`), commas, pipes, `@( )` lists and `$name =`. Statements end at newlines and `;` (not after a
`|` or `,`, nor inside `@( )`); a backtick at the end of a line continues it. Malformed input raises
`ShellSyntaxError` with the line and column, and says whether more lines could complete it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"  # PowerShell also takes the typographic quotes of pasted documents
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
DASHES = "-\u2013\u2014\u2015"  # and en/em dashes in front of parameter names
SPACES = " \t\f\v\u00a0"
WORD_END = frozenset(SPACES + "\n;|,(){}&<>")
ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
VARIABLE = re.compile(r"\$(?:\{([^}]+)\}|((?:env:)?\w+))", re.IGNORECASE)
ASSIGNMENT = re.compile(r"\$(\w+)[ \t]*=(?!=)")
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


class Lexer:
    """One pass over `text`: `run()` gives its statements as token lists; `dangling` then holds the lines that end
    with a backtick followed by spaces (for the hint when such a statement fails)."""

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
        start, quoted = self.pos, False
        parts: list[Part] = []
        buffer: list[str] = []
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
            if c not in SINGLE_QUOTES:
                out.append(c)
                self.pos += 1
            elif self.closes(SINGLE_QUOTES, out):
                return "".join(out)

    def double_quoted(self, parts: list[Part], buffer: list[str]) -> None:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or (self.text[self.pos] == "`" and self.pos + 1 >= len(self.text)):
                self.fail('The string is missing the terminator: ".', start, incomplete=True)
            c = self.text[self.pos]
            if c in DOUBLE_QUOTES:
                if self.closes(DOUBLE_QUOTES, buffer):
                    return
            elif c == "`":
                buffer.append(ESCAPES.get(self.text[self.pos + 1], self.text[self.pos + 1]))
                self.pos += 2
            elif c == "$":
                self.variable(parts, buffer)
            else:
                buffer.append(c)
                self.pos += 1

    def closes(self, quotes: str, out: list[str]) -> bool:
        """At a quote inside a string quoted with `quotes`: steps past it and says whether it ends the string. Two
        in a row stand for one quote character, added to `out`."""
        doubled = self.pos + 1 < len(self.text) and self.text[self.pos + 1] in quotes
        if doubled:
            out.append(self.text[self.pos])
        self.pos += 2 if doubled else 1
        return not doubled

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
    return Lexer(text).run()
