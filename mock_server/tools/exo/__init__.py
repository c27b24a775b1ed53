"""`m365-mock exo`: Exchange Online PowerShell lines, as pasted from a runbook, against a running emulator through
its control API.

`lexer` and `parser` read the PowerShell (`tokenize`, `parse`, `ShellSyntaxError` with line and column);
`binding` holds the cmdlet registry and binds parameters as PowerShell does; `formatting` shows output as
Exchange does; `cmdlets/` defines the cmdlets by family (importing it registers them); `shell` runs statements
(`Shell`, `run`, `interactive`, `main`).
"""

from m365_mock.tools.exo import cmdlets  # noqa: F401 - registers the cmdlets
from m365_mock.tools.exo.lexer import ShellSyntaxError, tokenize
from m365_mock.tools.exo.parser import parse
from m365_mock.tools.exo.shell import Shell, interactive, main, run

__all__ = ["Shell", "ShellSyntaxError", "interactive", "main", "parse", "run", "tokenize"]
