"""What cmdlets return and how it is shown: `Output` (objects with their default view, or plain lines), values as
PowerShell turns them into text, and Exchange's list and table formats.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


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


def property_names(objects: list[dict[str, Any]], patterns: Iterable[str] | None) -> list[str]:
    """The properties of `objects` in order of appearance; with `patterns`, those matching them (wildcards, any
    case), in the order of the patterns."""
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
        names = property_names([obj], properties)
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
    names = property_names(objects, columns)
    if not objects or not names:
        return ""
    rows = [[ps_display(o.get(n)).replace("\n", " ") for n in names] for o in objects]
    widths = [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]

    def line(cells: list[str]) -> str:
        return " ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    body = [line(names), line(["-" * len(n) for n in names]), *(line(r) for r in rows)]
    return "\n".join(body) + "\n\n"


def render(output: Output) -> str:
    """The text an Output shows: its lines, or its objects in its view."""
    if output.lines is not None:
        return "".join(line + "\n" for line in output.lines)
    if output.view == "table":
        return format_table(output.objects, output.columns)
    return format_list(output.objects, output.columns)
