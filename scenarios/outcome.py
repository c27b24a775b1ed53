"""What a step produced (Outcome), compared with its `expect` by expectations.py; and StepError, a failed call.

Apart from steps.py (which exports both) so that handlers kept in modules of their own (daemons.py,
conditions.py) can make one without importing the table of steps that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from m365_mock.scenarios.behaviour import BehaviourReport
    from m365_mock.scenarios.world import World


class StepError(Exception):
    """What a failed call returned: HTTP status, error code and message."""

    def __init__(self, status: int, code: str | int | None, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Outcome:
    """What a step produced, compared with its `expect`."""

    error: StepError | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    count: int | None = None
    claims: dict[str, Any] | None = None
    body_visible: bool | None = None
    folder: dict[str, Any] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)  # download: name, size, intact, inline
    statuses: list[int] = field(default_factory=list)  # batch: the inner answers' statuses, in request order
    removed: int | None = None  # sync: messages reported removed
    behaviour: BehaviourReport | None = None  # behaviour: the report of a daemon's requests
    note: str = ""
    # run, stop: the process's exit code and output; the exit code that counts as success when `expect.exit_code`
    # names none (None: any)
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    success_exit: int | None = None
    failure: str | None = None  # why the step failed, whatever it expected (a timeout, a daemon that died)
    world: World | None = None  # the world after the step, for the world conditions of `expect`
