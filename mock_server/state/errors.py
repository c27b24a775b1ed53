"""The refusals of the tenant world: a change or lookup the directory or Exchange's rules do not allow."""

from __future__ import annotations


class DirectoryError(ValueError):
    """A directory change or lookup that the rules refuse; the message says which rule."""


class RuleError(DirectoryError):
    """A policy, scope or assignment change that Exchange would refuse; the message is Exchange's."""


def not_found(identity: str) -> RuleError:
    """Exchange's answer for an identity that names nothing."""
    return RuleError(f"The operation couldn't be performed because object '{identity}' couldn't be found.")
