"""Message delta's state tokens: where a round stands and the query of its first request, sealed with a key.

A token is `<payload>.<mac>`, both base64url: the payload is JSON (readable, as Graph's tokens are opaque but
not secret), the MAC an HMAC-SHA256 of it under the emulator's delta key, made at start. The payload names the
key it was sealed with (`kid`, a digest of the key), so a token of an earlier run is told apart from a forged
one: the first must resync, the second is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from typing import Any

SKIP, DELTA = "$skiptoken", "$deltatoken"
_MAC_BYTES = 16


class BadToken(Exception):
    """Not a token this service could have issued (garbled, tampered with, or of the wrong kind)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class DeltaQuery:
    """What the round's first request asked for, carried by every token of the round and of the next ones."""

    select: tuple[str, ...] | None = None
    page_size: int | None = None
    change_type: str | None = None
    received_after: tuple[float, bool] | None = None
    immutable_ids: bool = False


@dataclass(frozen=True)
class DeltaState:
    """One token: the folder it belongs to (tenant, mailbox, folder, the change log's epoch), its kind, the
    round's span of changes (`since`, `until`: the first round has phase "initial" and walks the folder itself),
    the position within the round (`after`: a change number, or for the first round a sort key), and how many
    messages the first round has given (its `$filter` caps it)."""

    kind: str  # SKIP or DELTA
    tenant: str
    mailbox: str
    folder: str
    epoch: str
    query: DeltaQuery
    phase: str  # "initial" or "changes"
    since: int
    until: int
    after: int | tuple[float, int] | None = None
    given: int = 0
    kid: str = ""
    sealed: bool = True  # False: sealed under another key (an earlier run); nothing in it is to be trusted


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"m365-mock delta key id" + key).hexdigest()[:12]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, state: DeltaState) -> str:
    q = state.query
    payload = {
        "kid": key_id(key),
        "k": "s" if state.kind == SKIP else "d",
        "t": state.tenant,
        "m": state.mailbox,
        "f": state.folder,
        "e": state.epoch,
        "p": "i" if state.phase == "initial" else "c",
        "s": state.since,
        "u": state.until,
        "a": list(state.after) if isinstance(state.after, tuple) else state.after,
        "g": state.given,
        "q": {
            "sel": list(q.select) if q.select is not None else None,
            "n": q.page_size,
            "ct": q.change_type,
            "ra": list(q.received_after) if q.received_after is not None else None,
            "im": q.immutable_ids,
        },
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{body}.{_b64(mac)}"


def unseal(key: bytes, token: str) -> DeltaState:
    """The state a token holds; BadToken if it is not one this service issued. A token sealed under another
    key (an earlier run of the emulator) comes back with `sealed` False, for the caller to tell it to resync."""
    if not token:
        raise BadToken("the token is empty.")
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac or not token.isascii():
        raise BadToken("the token is not one this service issued.")
    try:
        data = json.loads(_unb64(body))
        given_mac = _unb64(mac)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadToken("the token is not one this service issued.") from None
    if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
        raise BadToken("the token is not one this service issued.")
    ours = data["kid"] == key_id(key)
    if ours:
        expected = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(expected, given_mac):
            raise BadToken("the token has been altered.")
    try:
        state = _state(data)
    except (KeyError, TypeError, ValueError):
        raise BadToken("the token is not one this service issued.") from None
    return state if ours else replace(state, sealed=False)


def _expect(value: Any, kind: type | tuple[type, ...]) -> Any:
    """`value` if it is of `kind` (a JSON true or false is not a number here); TypeError otherwise."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(value)
    return value


def _state(data: dict[str, Any]) -> DeltaState:
    query = _expect(data["q"], dict)
    select = query["sel"]
    if select is not None:
        select = tuple(_expect(name, str) for name in _expect(select, list))
    received_after = query["ra"]
    if received_after is not None:
        instant, inclusive = _expect(received_after, list)
        received_after = (float(_expect(instant, (int, float))), _expect(inclusive, bool))
    page_size = query["n"]
    if page_size is not None:
        _expect(page_size, int)
    change_type = query["ct"]
    if change_type not in (None, "created", "updated", "deleted"):
        raise ValueError(change_type)
    phase = {"i": "initial", "c": "changes"}[data["p"]]
    after = data["a"]
    if phase == "initial" and after is not None:
        neg_instant, neg_seq = _expect(after, list)
        after = (float(_expect(neg_instant, (int, float))), _expect(neg_seq, int))
    elif phase == "changes":
        _expect(after, int)
    return DeltaState(
        kind={"s": SKIP, "d": DELTA}[data["k"]],
        tenant=_expect(data["t"], str),
        mailbox=_expect(data["m"], str),
        folder=_expect(data["f"], str),
        epoch=_expect(data["e"], str),
        query=DeltaQuery(select, page_size, change_type, received_after, _expect(query["im"], bool)),
        phase=phase,
        since=_expect(data["s"], int),
        until=_expect(data["u"], int),
        after=after,
        given=_expect(data["g"], int),
        kid=data["kid"],
    )
