"""Identifiers and opaque random values that need to be unique, not secret.

Drawn from one Mersenne Twister seeded from the OS once per process: `os.urandom` is a system call per value,
which showed as ~20 % of the token endpoint's time under load here. Nothing drawn from here protects anything
(token signatures, secrets and keys use `secrets` / `cryptography`).
"""

from __future__ import annotations

import os
import random

_source = random.Random(os.urandom(32))


def reseed() -> None:
    """A fresh seed, e.g. in a forked worker, so parent and child never share a sequence."""
    _source.seed(os.urandom(32))


def random_bytes(size: int) -> bytes:
    return _source.randbytes(size)


_VERSION_4 = 0x4000 << 64 | 0x8000 << 48  # the version nibble (4) and the RFC 4122 variant bits (10)
_RANDOM_BITS = ~(0xF000 << 64 | 0xC000 << 48) & (1 << 128) - 1


def new_uuid() -> str:
    """A random (version 4) UUID as text, formatted directly (no `uuid.UUID` object per call)."""
    value = f"{_source.getrandbits(128) & _RANDOM_BITS | _VERSION_4:032x}"
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


os.register_at_fork(after_in_child=reseed)
