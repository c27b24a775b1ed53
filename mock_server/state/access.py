"""THE access decision for every Graph request that touches a mailbox.

A decision needs the app's permissions (token roles) for the operation; application access policies and RBAC
for Applications (issue 4) then narrow or widen it per mailbox. The decision carries its reason, which the
request log keeps and the 403 explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mock_server.state.directory import Mailbox, Tenant


class Operation(Enum):
    """What a request does to a mailbox, with the permissions that allow it, least privileged first."""

    READ_BASIC = ("read", ("Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"))
    READ = ("read content", ("Mail.Read", "Mail.ReadWrite"))
    WRITE = ("write", ("Mail.ReadWrite",))
    SEND = ("send", ("Mail.Send",))

    def __init__(self, label: str, permissions: tuple[str, ...]) -> None:
        self.label = label
        self.permissions = permissions


FULL_READ = frozenset({"Mail.Read", "Mail.ReadWrite"})
ACCESS_DENIED = "Access is denied. Check credentials and try again."


@dataclass(frozen=True)
class Decision:
    """Whether an app may do `operation` on `mailbox`, and why."""

    allowed: bool
    operation: Operation
    app_id: str
    mailbox: str
    reason: str
    permission: str | None = None
    content_visible: bool = True
    message: str = ACCESS_DENIED

    def describe(self) -> str:
        return f"{'granted' if self.allowed else 'denied'}: {self.reason}"


def decide(
    tenant: Tenant, app_id: str, roles: tuple[str, ...] | list[str], mailbox: Mailbox, operation: Operation
) -> Decision:
    """Decide one request. `roles` are the token's roles (Entra-consented application permissions)."""
    held = set(roles)
    permission = next((p for p in operation.permissions if p in held), None)
    if permission is None:
        missing = " or ".join(operation.permissions)
        reason = "the token has no roles (no admin consent?)" if not held else f"missing {missing}"
        return Decision(False, operation, app_id, mailbox.address, reason)
    return Decision(
        True,
        operation,
        app_id,
        mailbox.address,
        f"{permission} (Entra-consented)",
        permission,
        content_visible=bool(held & FULL_READ),
    )
