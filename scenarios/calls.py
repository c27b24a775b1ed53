"""Requests as the request log records them, read for the behaviour report (behaviour.py): each record's
operation ("list messages", "move", "token", ...), mailbox, folder and query options, from its method and path.

Pure: a record (a dict, as GET /_m365/log gives it) in, a Call out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

_MESSAGE_ACTIONS = {
    "move": "move",
    "copy": "copy",
    "reply": "reply",
    "replyall": "reply all",
    "forward": "forward",
    "createreply": "create reply",
    "createreplyall": "create reply all",
    "createforward": "create forward",
    "send": "send draft",
    "permanentdelete": "permanent delete",
}


@dataclass(frozen=True)
class Call:
    """One logged request, with what the rules ask of it."""

    record: dict[str, Any]
    at: float  # the emulator's clock, in seconds
    operation: str  # "token", "list messages", "get message", "move", ...
    mailbox: str | None  # lower case: the decision's mailbox, else the address in the path
    folder: str | None  # for listings and delta: the folder id or name, lower case ("" for the whole mailbox)
    query: dict[str, str]  # query options, names lower case without `$`

    @property
    def seq(self) -> int:
        return int(self.record["seq"])

    @property
    def status(self) -> int:
        return int(self.record["status"])

    @property
    def is_token(self) -> bool:
        return self.record.get("kind") == "token"

    @property
    def same_request(self) -> tuple[str, str]:
        """Method and URL: what a retry of this request sends again."""
        return self.record["method"].upper(), self.record["path"]

    @property
    def same_target(self) -> tuple[str, str]:
        """Method and path without the query: the same thing asked for."""
        return self.record["method"].upper(), self.record["path"].partition("?")[0].lower()

    @property
    def is_round(self) -> bool:
        """A listing or delta request that starts reading its folder (not a next page of one)."""
        if self.operation == "list messages":
            return self.query.get("skip", "0") in ("", "0") and "skiptoken" not in self.query
        return self.operation == "delta" and "skiptoken" not in self.query

    def line(self) -> str:
        """`#12 10:00:01.250 GET /v1.0/users/... -> 403 ErrorAccessDenied` (long paths cut)."""
        r = self.record
        path = unquote(r["path"])
        path = path if len(path) <= 140 else path[:137] + "..."
        answer = f"{r['status'] or 'no answer'}" + (f" {r['error_code']}" if r.get("error_code") else "")
        if r.get("retry_after") is not None:
            answer += f" (Retry-After {r['retry_after']})"
        return f"#{r['seq']} {r['time'][11:23]} {r['method']} {path} -> {answer}"

    def example(self) -> dict[str, Any]:
        r = self.record
        return {k: r.get(k) for k in ("seq", "time", "method", "path", "status", "error_code", "retry_after")}


def seconds_of(time: str) -> float:
    return datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()


def read_call(record: dict[str, Any]) -> Call:
    """A record as a Call: its operation, mailbox and folder from the method and path."""
    path, _, query_text = record["path"].partition("?")
    query = {name.lower().removeprefix("$"): value for name, value in parse_qsl(query_text, keep_blank_values=True)}
    mailbox = (record.get("mailbox") or "").lower() or None
    if record.get("kind") == "token":
        return Call(record, seconds_of(record["time"]), "token", None, None, query)
    operation, user, folder = _route(record["method"].upper(), [s for s in path.split("/") if s])
    if mailbox is None and user and "@" in user:
        mailbox = user.lower()
    return Call(record, seconds_of(record["time"]), operation, mailbox, folder, query)


def _route(method: str, segments: list[str]) -> tuple[str, str | None, str | None]:
    """(operation, the user segment, the folder of a listing) of a Graph path."""
    names = [s.lower().removeprefix("microsoft.graph.").removesuffix("()") for s in segments]
    if names and names[0] in ("v1.0", "beta"):
        segments, names = segments[1:], names[1:]
    if any(name.startswith("attachmentsessions") for name in names):
        return "upload attachment chunk", None, None
    if names[:1] == ["$batch"]:
        return "batch", None, None
    if names[:1] == ["me"]:
        return f"{method} /me", None, None
    if names[:1] != ["users"]:
        return f"{method} /{'/'.join(segments[:1])}", None, None
    if len(names) == 1:
        return "list users", None, None
    user, rest, lowered = segments[1], segments[2:], names[2:]
    if not rest:
        return ("read user" if method == "GET" else f"{method} user"), user, None
    if lowered == ["sendmail"]:
        return "send mail", user, None
    folder = ""
    while lowered[:1] in (["mailfolders"], ["childfolders"]):
        if len(lowered) == 1:
            return ("list folders" if method == "GET" else "create folder"), user, None
        folder, rest, lowered = rest[1].lower(), rest[2:], lowered[2:]
        if not lowered:
            verbs = {"GET": "get folder", "PATCH": "update folder", "DELETE": "delete folder"}
            return verbs.get(method, f"{method} folder"), user, None
    if lowered[:1] != ["messages"]:
        return f"{method} {lowered[0]}", user, None
    return _message_operation(method, lowered[1:]), user, folder


def _message_operation(method: str, tail: list[str]) -> str:
    """The operation of `.../messages/<tail>` (tail lower case)."""
    if not tail:
        return "list messages" if method == "GET" else "create draft"
    if tail == ["delta"]:
        return "delta"
    if tail == ["$count"]:
        return "count messages"
    if len(tail) == 1:
        return {"GET": "get message", "PATCH": "update message", "DELETE": "delete message"}.get(method, method)
    if tail[1] == "$value":
        return "get MIME"
    if tail[1] in _MESSAGE_ACTIONS:
        return _MESSAGE_ACTIONS[tail[1]]
    if tail[1] == "attachments":
        if len(tail) == 2:
            return "list attachments" if method == "GET" else "add attachment"
        if tail[2] == "createuploadsession":
            return "upload session"
        if tail[-1] == "$value":
            return "get attachment content"
        return {"GET": "get attachment", "DELETE": "delete attachment"}.get(method, f"{method} attachment")
    return f"{method} message {tail[1]}"


def per_minute(times: list[float]) -> float:
    """The most of these times in any 60 seconds. When there are three or more and they span less than a minute
    (but some time), their pace over a minute instead if higher: rounds two seconds apart read as 30 a minute
    even in a ten-second run."""
    ordered = sorted(times)
    busiest, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 60:
            start += 1
        busiest = max(busiest, end - start + 1)
    span = ordered[-1] - ordered[0] if ordered else 0.0
    if len(ordered) < 3 or span == 0 or span >= 60:
        return float(busiest)
    return max(float(busiest), 60 * (len(ordered) - 1) / span)
