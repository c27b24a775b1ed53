"""What is wrong with a tenant file: each problem names its place (key path, and line and column in a file)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Path = tuple[str | int, ...]

_NAME = re.compile(r"[A-Za-z_][\w-]*")
_PART = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


class ConfigError(ValueError):
    """A tenant file that cannot be loaded; the message names the place of every problem, one per line."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def dotted(path: Path) -> str:
    """`('tenants', 0, 'access_policies')` as the docs write it: `tenants[0].access_policies`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _NAME.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def parse_dotted(text: str) -> Path | None:
    """The key path written by `dotted` (`tenants[0].access_policies`); None for text that is not one."""
    parts: list[str | int] = []
    at = 0
    while at < len(text):
        match = _PART.match(text, at)
        if match is None or (at == 0 and text.startswith(".")):
            return None
        name, index, quoted = match.groups()
        parts.append(name if name is not None else int(index) if index is not None else quoted)
        at = match.end()
    return tuple(parts) if parts else None


@dataclass(frozen=True)
class Problem:
    """One wrong place: its key path, what is wrong, and where it is in the file when that is known."""

    path: Path
    message: str
    line: int | None = None
    column: int | None = None
    exact: bool = False  # the message is the real service's own, naming what it is about (Exchange's words)

    def render(self, source: str | None = None) -> str:
        """`tenant.yaml:14:5: tenants[0].accessPolicies: unknown key ...`; without a source, from the path on."""
        text = f"{dotted(self.path)}: {self.message}" if self.path else self.message
        if source is None:
            return text
        place = f"{source}:{self.line}:{self.column}" if self.line is not None else source
        return f"{place}: {text}"


def from_message(text: str) -> Problem | None:
    """The problem in a message written `<key path>: <what is wrong>`; None when it names no key path."""
    where, _, message = text.partition(": ")
    path = parse_dotted(where) if message else None
    return None if path is None else Problem(path, message)


def refusal(problems: Iterable[Problem], source: str | None = None) -> ConfigError:
    """One ConfigError carrying every problem, in file order (by line, else as found), each once."""
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
    return ConfigError("\n".join(p.render(source) for p in unique), unique)
