"""One fault rule: which requests it matches, when among them it acts, and what it does.

A rule is read from its definition (a mapping the tenant-file schema's `fault` entry has already checked for
shape) by `read_rule`, which refuses, naming the place, what the schema cannot see: two actions at once, options
that belong to another action, a regex that does not compile, a preset with criteria it can never meet.

Where a rule is matched follows from what it asks about. Method, path and the token endpoint are known as a
request arrives, so a rule about those only is matched before any route runs (`at_gate` False). The app, the
mailbox and the operation are known where the request's identity is decided, at a gate: the mailbox gate of
every mailbox route, the directory gate of /users, and the token endpoint once it has read `client_id`. A rule
naming any of those, or a preset about a mailbox, is matched there (`at_gate` True).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]

# The operations a rule may name: the access decision's (state/access.py Operation labels) and the token endpoint.
OPERATIONS = ("read", "read content", "write", "send", "read directory", "token")
MAILBOX_OPERATIONS = frozenset({"read", "read content", "write", "send"})
ACTIONS = ("preset", "status", "close", "truncate", "invalid_json", "trickle")
STATUS_OPTIONS = ("code", "message", "aadsts", "retry_after")
DEFAULT_TRICKLE = (64, 0.5)
_REFUSED = "The request was refused by a fault rule of the emulator."
_TOKEN_PATH = re.compile(r"/[^/]+/oauth2/(?:v2\.0/)?token/?", re.IGNORECASE)


@dataclass(frozen=True)
class Preset:
    """A well-known failure: its status and error, and where it is met (docs/fidelity.md says why these)."""

    status: int
    code: str
    message: str
    service: str = "graph"  # graph: Graph's error body; entra: the token endpoint's AADSTS body
    retry_after: int | None = None
    inner_error: str = "standard"  # standard (date, request ids), throttle (Graph's 429 innerError), none
    aadsts: int | None = None
    gate: bool = False  # met where the request's identity is known (a mailbox, a directory read)
    mailbox: bool = False  # met only by requests on a mailbox (the message names it)


PRESETS: dict[str, Preset] = {
    "throttle": Preset(
        429, "TooManyRequests", "Please retry again later.", retry_after=2, inner_error="throttle", gate=True
    ),
    "mailbox-concurrency": Preset(
        429,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
        retry_after=1,
        inner_error="none",
        gate=True,
    ),
    "service-unavailable": Preset(
        503,
        "serviceNotAvailable",
        "The service is not available. Try the request again after a delay. There may be a Retry-After header.",
    ),
    "gateway-timeout": Preset(504, "UnknownError", ""),
    "bad-gateway": Preset(502, "UnknownError", ""),
    "token-endpoint-down": Preset(
        503, "temporarily_unavailable", "The service is temporarily unavailable.", service="entra", aadsts=90006
    ),
    "mailbox-not-enabled": Preset(
        404,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        gate=True,
        mailbox=True,
    ),
    "invalid-user": Preset(404, "ErrorInvalidUser", "The requested user '{user}' is invalid.", gate=True, mailbox=True),
}

# A status without a code: the preset of that status gives code and message, else Graph's gateway error.
_STATUS_PRESETS = {429: "throttle", 503: "service-unavailable", 504: "gateway-timeout", 502: "bad-gateway"}


@dataclass(slots=True)
class Facts:
    """What is known of a request where rules are matched (before the route, or at a gate)."""

    method: str
    path: str
    graph: bool
    operation: str | None = None
    app_id: str | None = None
    tenant: Any = None  # the Tenant the app belongs to, for a rule naming the app by display name
    user: str | None = None  # the mailbox as the URL names it
    address: str | None = None  # the mailbox it resolved to
    in_batch: bool = False


def token_operation(path: str) -> str | None:
    """`token` for a token endpoint's path (v2.0 or v1), else None."""
    return "token" if _TOKEN_PATH.fullmatch(path) else None


@dataclass(frozen=True, eq=False)
class FaultRule:
    """A rule as read: its definition (`spec`, what an export writes back), its criteria, schedule and action."""

    id: str
    spec: dict[str, Any]
    methods: frozenset[str] | None = None
    path: re.Pattern[str] | None = None
    path_is_regex: bool = False
    app: str | None = None
    mailbox: str | None = None
    operations: frozenset[str] | None = None
    nth: int = 1
    every: int = 1
    probability: float | None = None
    seed: int = 0
    times: int | None = None
    preset: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    aadsts: int | None = None
    retry_after: int | None = None
    close: str | None = None
    truncate: int | None = None
    invalid_json: bool = False
    trickle: tuple[int, float] | None = None
    latency: float | None = None
    at_gate: bool = field(init=False)
    service: str | None = field(init=False)
    needs_mailbox: bool = field(init=False)
    whole_request: bool = field(init=False)  # acts on the connection or the body: not inside a $batch
    on_the_wire: bool = field(init=False)  # the server front carries it out (close, truncate, trickle, latency)
    refuses: bool = field(init=False)  # answers instead of the route (a status, or close before it runs)
    action: str = field(init=False)

    def __post_init__(self) -> None:
        preset = PRESETS.get(self.preset or "")
        names_identity = self.app is not None or self.mailbox is not None
        other_operations = self.operations is not None and self.operations != {"token"}
        derived = {
            "at_gate": names_identity or other_operations or bool(preset and preset.gate),
            "service": preset.service if preset else None,
            "needs_mailbox": bool(preset and preset.mailbox),
            "whole_request": (self.status is None and self.preset is None) or self.latency is not None,
            "on_the_wire": self.close is not None
            or self.truncate is not None
            or self.trickle is not None
            or self.latency is not None,
            "refuses": self.status is not None or self.preset is not None or self.close == "before",
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "action", _describe(self))

    def matches(self, facts: Facts) -> bool:
        """Whether the request is one this rule is about (its schedule aside)."""
        if self.service is not None and facts.graph != (self.service == "graph"):
            return False
        if facts.in_batch and self.whole_request:
            return False
        if self.methods is not None and facts.method.upper() not in self.methods:
            return False
        if self.operations is not None and facts.operation not in self.operations:
            return False
        if self.needs_mailbox and facts.user is None:
            return False
        if self.path is not None:
            found = self.path.search(facts.path) if self.path_is_regex else self.path.fullmatch(facts.path)
            if found is None:
                return False
        if self.mailbox is not None and self.mailbox not in (
            (facts.user or "").lower(),
            (facts.address or "").lower(),
        ):
            return False
        return self.app is None or self._app_matches(facts)

    def _app_matches(self, facts: Facts) -> bool:
        if facts.app_id is None:
            return False
        if facts.app_id.lower() == self.app:
            return True
        app = facts.tenant.application(facts.app_id) if facts.tenant is not None else None
        return app is not None and app.display_name.lower() == self.app

    def graph_error(self) -> tuple[int, str, str, str]:
        """(status, code, message, innerError kind) of this rule's answer on a Graph path.

        A status without a code borrows the code and message of the preset with that status (429, 502, 503, 504);
        any other is Graph's gateway error, `UnknownError` with an empty message.
        """
        if self.preset is not None:
            preset = PRESETS[self.preset]
            return preset.status, preset.code, preset.message, preset.inner_error
        status = self.status or 503
        borrowed = PRESETS.get(_STATUS_PRESETS.get(status, ""))
        if self.code is None and borrowed is not None:
            code, message, inner = borrowed.code, borrowed.message, borrowed.inner_error
        else:
            code, message, inner = self.code or "UnknownError", "", "standard"
        return status, code, self.message if self.message is not None else message, inner

    def entra_error(self) -> tuple[int, str, str, int]:
        """(status, OAuth `error`, description, AADSTS number or 0) of this rule's answer on a token endpoint path.

        Without a code: 429 and 503 are token-endpoint-down's answer, other 5xx `server_error`, 4xx
        `invalid_request`.
        """
        down = PRESETS["token-endpoint-down"]
        if self.preset is not None:
            return down.status, down.code, down.message, down.aadsts or 0
        status = self.status or 503
        if self.code is not None:
            error, description, number = self.code, _REFUSED, 0
        elif status in (429, 503):
            error, description, number = down.code, down.message, down.aadsts or 0
        elif status >= 500:
            error, description, number = "server_error", "The server encountered an unexpected error.", 0
        else:
            error, description, number = "invalid_request", _REFUSED, 0
        if self.aadsts is not None:
            number = self.aadsts
        return status, error, self.message if self.message is not None else description, number

    @property
    def retry_after_seconds(self) -> int | None:
        """The `Retry-After` of this rule's answer (a status or preset only), in whole seconds."""
        if self.retry_after is not None:
            return self.retry_after
        preset = PRESETS.get(self.preset or "")
        return preset.retry_after if preset else None


def _describe(rule: FaultRule) -> str:
    """What the rule does, in a few words (the request log and the rule listing show it)."""
    parts = []
    if rule.preset is not None:
        preset = PRESETS[rule.preset]
        parts.append(f"{rule.preset} ({preset.status} {preset.code})")
    elif rule.status is not None:
        parts.append(f"{rule.status}" + (f" {rule.code}" if rule.code else ""))
    elif rule.close == "before":
        parts.append("connection closed before the request ran")
    elif rule.close == "after":
        parts.append("connection closed after the request ran, its answer lost")
    elif rule.truncate is not None:
        parts.append(f"answer cut after at most {rule.truncate} bytes of its body, connection closed")
    elif rule.invalid_json:
        parts.append("answer body cut in half (invalid JSON)")
    elif rule.trickle is not None:
        parts.append(f"answer body trickled {rule.trickle[0]} bytes every {rule.trickle[1]:g} s")
    retry_after = rule.retry_after_seconds if rule.refuses and rule.close is None else None
    if retry_after is not None:
        parts.append(f"Retry-After {retry_after}")
    if rule.latency is not None:
        parts.append(f"{rule.latency:g} s latency")
    return ", ".join(parts)


# ---------------------------------------------------------------- reading


class RuleRefused(ValueError):
    """A rule definition refused: the key path of the wrong place (in the list or body given) and why."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def _refuse(where: Path, key: str | None, message: str) -> RuleRefused:
    return RuleRefused((*where, key) if key else where, message)


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A path glob as a regex, any case: `*` within one segment, `**` across segments, `?` one character."""
    out = []
    at = 0
    while at < len(glob):
        if glob.startswith("**", at):
            out.append(".*")
            at += 2
            continue
        char = glob[at]
        out.append("[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char))
        at += 1
    return re.compile("".join(out), re.IGNORECASE)


def read_rules(entries: Iterable[Any], where: Path = ("faults",)) -> list[FaultRule]:
    """The rules of a `faults:` list, each with its id (`fault-N` where the list gives none); ids are unique."""
    rules = [read_rule(entry, (*where, i)) for i, entry in enumerate(entries)]
    taken: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.id:
            if rule.id in taken:
                raise _refuse((*where, i), "id", f"'{rule.id}' is already the id of {where[-1]}[{taken[rule.id]}]")
            taken[rule.id] = i
    number = 0
    for i, rule in enumerate(rules):
        if not rule.id:
            number += 1
            while f"fault-{number}" in taken:
                number += 1
            rules[i] = with_id(rule, f"fault-{number}")
    return rules


def with_id(rule: FaultRule, rule_id: str) -> FaultRule:
    """The same rule under the id `rule_id` (its definition too)."""
    spec = {"id": rule_id, **{k: v for k, v in rule.spec.items() if k != "id"}}
    values = {name: getattr(rule, name) for name in rule.__dataclass_fields__ if rule.__dataclass_fields__[name].init}
    return FaultRule(**{**values, "id": rule_id, "spec": spec})


def read_rule(entry: dict[str, Any], where: Path = ()) -> FaultRule:
    """A rule from its definition, checked for shape by the schema; RuleRefused naming the place otherwise."""
    spec = copy.deepcopy(entry)
    actions = [name for name in ACTIONS if name in spec]
    if len(actions) > 1:
        raise _refuse(where, actions[1], f"a rule does one thing: give only one of {', '.join(actions)}")
    action = actions[0] if actions else None
    if action is None and "latency" not in spec:
        raise _refuse(where, None, f"a rule must say what it does: give one of {', '.join(ACTIONS)}, or latency")
    for option in STATUS_OPTIONS:
        if option in spec and action not in ("status", "preset"):
            raise _refuse(where, option, f"'{option}' belongs to a status or a preset")
    preset = PRESETS.get(spec["preset"].lower()) if action == "preset" else None
    if action == "preset":
        for option in ("code", "message", "aadsts"):
            if option in spec:
                raise _refuse(where, option, "a preset fixes status, code and message; give status instead")
    if "path" in spec and "path_regex" in spec:
        raise _refuse(where, "path_regex", "give path (a glob) or path_regex, not both")
    if "seed" in spec and "probability" not in spec:
        raise _refuse(where, "seed", "'seed' seeds the random source of 'probability'")
    operations = _operations(spec.get("operation"))
    _check_reachable(where, spec, preset, operations)
    path, is_regex = _path(where, spec)
    methods = spec.get("method")
    trickle = spec.get("trickle")
    schedule_given = "every" in spec or "probability" in spec
    return FaultRule(
        id=spec.get("id", ""),
        spec=spec,
        methods=frozenset(m.upper() for m in ([methods] if isinstance(methods, str) else methods))
        if methods is not None
        else None,
        path=path,
        path_is_regex=is_regex,
        app=spec["app"].strip().lower() if "app" in spec else None,
        mailbox=spec["mailbox"].strip().lower() if "mailbox" in spec else None,
        operations=operations,
        nth=spec.get("nth", spec.get("every", 1)),
        every=spec.get("every", 1),
        probability=spec.get("probability"),
        seed=spec.get("seed", 0),
        times=spec.get("times", 1 if "nth" in spec and not schedule_given else None),
        preset=spec["preset"].lower() if action == "preset" else None,
        status=spec.get("status"),
        code=spec.get("code"),
        message=spec.get("message"),
        aadsts=spec.get("aadsts"),
        retry_after=spec.get("retry_after"),
        close=spec["close"].lower() if "close" in spec else None,
        truncate=spec.get("truncate"),
        invalid_json=bool(spec.get("invalid_json")),
        trickle=(
            (trickle.get("chunk_bytes", DEFAULT_TRICKLE[0]), float(trickle.get("interval", DEFAULT_TRICKLE[1])))
            if trickle is not None
            else None
        ),
        latency=float(spec["latency"]) if "latency" in spec else None,
    )


def _operations(value: str | list[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(v.lower() for v in ([value] if isinstance(value, str) else value))


def _check_reachable(
    where: Path, spec: dict[str, Any], preset: Preset | None, operations: frozenset[str] | None
) -> None:
    """Refuse criteria that no request can meet together (the rule would never act, and say nothing)."""
    name = spec.get("preset", "").lower()
    if operations is not None and "mailbox" in spec and not operations & MAILBOX_OPERATIONS:
        raise _refuse(where, "mailbox", "token and directory requests name no mailbox; leave out 'mailbox'")
    if preset is None:
        return
    if preset.service == "entra":
        if operations is not None and operations != {"token"}:
            raise _refuse(where, "operation", f"the preset {name} answers the token endpoint: operation is token")
        if "mailbox" in spec:
            raise _refuse(where, "mailbox", f"the preset {name} answers the token endpoint, which names no mailbox")
    elif operations is not None and "token" in operations:
        raise _refuse(where, "operation", f"the preset {name} answers Graph requests, not the token endpoint")
    if preset.mailbox and operations is not None and not operations & MAILBOX_OPERATIONS:
        raise _refuse(where, "operation", f"the preset {name} answers requests on a mailbox: read, write or send")


def _path(where: Path, spec: dict[str, Any]) -> tuple[re.Pattern[str] | None, bool]:
    if "path" in spec:
        glob = spec["path"]
        if not glob.startswith(("/", "*")):
            raise _refuse(where, "path", "a path starts with '/': it is matched against the whole path")
        return glob_pattern(glob), False
    if "path_regex" in spec:
        try:
            return re.compile(spec["path_regex"]), True
        except re.error as exc:
            raise _refuse(where, "path_regex", f"not a regular expression: {exc}") from None
    return None, False
