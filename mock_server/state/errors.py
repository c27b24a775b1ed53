"""The refusals of the tenant world: a change or lookup the directory or Exchange's rules do not allow.

Callers tell them apart by type, never by their words: `NotFound` is an identity that names nothing,
`AlreadyExists` a name or id already taken, `InUse` an object that other rules still need, and any other
`DirectoryError` a change the rules refuse.
"""

from __future__ import annotations


class DirectoryError(ValueError):
    """A directory change or lookup that the rules refuse; the message says which rule."""


class RuleError(DirectoryError):
    """A policy, scope or assignment change that Exchange would refuse; the message is Exchange's."""


class NotFound(RuleError):
    """An identity (a recipient, policy, service principal, scope or assignment) that names nothing."""


class AlreadyExists(DirectoryError):
    """A new object whose name, address or id is already taken."""


class InUse(RuleError):
    """An object that cannot go while other rules use it (a management scope with role assignments)."""


def not_found(identity: str) -> NotFound:
    """Exchange's answer for an identity that names nothing."""
    return NotFound(f"The operation couldn't be performed because object '{identity}' couldn't be found.")
