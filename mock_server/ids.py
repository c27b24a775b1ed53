"""Identifiers and opaque random values that need to be unique, not secret.

Drawn from one Mersenne Twister seeded from the OS once per process: `os.urandom` is a system call per value,
which showed as ~20 % of the token endpoint's time under load here. Nothing drawn from here protects anything
(token signatures, secrets and keys use `secrets` / `cryptography`).
"""

from __future__ import annotations

import os
import random
import uuid

_source = random.Random(os.urandom(32))


def reseed() -> None:
    """A fresh seed, e.g. in a forked worker, so parent and child never share a sequence."""
    _source.seed(os.urandom(32))


def random_bytes(size: int) -> bytes:
    return _source.randbytes(size)


def new_uuid() -> str:
    """A random (version 4) UUID as text."""
    return str(uuid.UUID(int=_source.getrandbits(128), version=4))


os.register_at_fork(after_in_child=reseed)
