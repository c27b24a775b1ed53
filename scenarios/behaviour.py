"""The behaviour report: what one app did on the wire, judged against Microsoft's guidance for Graph clients.

`report(records)` is pure: request-log records (dicts, as GET /_m365/log gives them, read by calls.py) in, a
BehaviourReport out:
the requests grouped by operation with their statuses, the mailboxes touched, how often each folder was polled,
and a Finding for each rule in RULES that the requests break, with up to three example requests and an
explanation of what the daemon did, what Microsoft's guidance says and what to do instead. `judge(world, ...)`
is the `behaviour` step's side of it: it picks the records of a started daemon (or of an app since the scenario
began) from the emulator's log. Times are the emulator's clock, as the log records them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from m365_mock.scenarios.calls import Call, per_minute, read_call, seconds_of
from m365_mock.scenarios.world import ScenarioFailure

if TYPE_CHECKING:
    from m365_mock.scenarios.world import World

# Thresholds, each documented in docs/scenarios.md ("Judging a daemon's behaviour").
TOKEN_RENEWAL_SECONDS = 300.0  # one token per 5 minutes of run is tolerated (tokens last 60 to 90 minutes)
BACKOFF_SECONDS = 1.0  # a retry sooner than this after a 429/5xx without Retry-After is immediate
FORBIDDEN_MEMORY_SECONDS = 3600.0  # access policy changes can take over an hour to reach Graph
LISTING_ROUNDS = 3  # the same folder listed in full this often, without delta, is polling by full listing
TOP_MAX = 1000  # $top's documented range on messages is 1 to 1000
EXAMPLES = 3


class DaemonSpan(Protocol):
    """What the report needs of a daemon a scenario started (the values of `world.daemons`)."""

    @property
    def app_id(self) -> str: ...

    @property
    def first_seq(self) -> int: ...  # the log's last seq just before the daemon started

    @property
    def last_seq(self) -> int | None: ...  # the log's last seq just after it ended; None while it runs


# ---------------------------------------------------------------- the report


@dataclass
class Finding:
    """A rule the requests broke: how often, three examples, and what to do about it."""

    rule: str
    title: str
    count: int
    examples: list[Call]
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title,
            "count": self.count,
            "examples": [call.example() for call in self.examples],
            "explanation": self.explanation,
        }


@dataclass
class OperationCount:
    operation: str
    count: int
    statuses: dict[int, int]

    def statuses_text(self) -> str:
        return ", ".join(f"{status or 'no answer'} x{n}" for status, n in sorted(self.statuses.items()))


@dataclass
class FolderPolls:
    """How often one folder was read from the start (listing or delta rounds)."""

    mailbox: str
    folder: str
    rounds: int
    per_minute: float

    @property
    def name(self) -> str:
        return f"{self.mailbox} {self.folder or '(all messages)'}"


@dataclass
class BehaviourReport:
    subject: str  # whose requests: "daemon 'connector' (Contact Center Connector)", an app id, ...
    calls: list[Call]
    operations: list[OperationCount]
    mailboxes: list[str]  # in the order first touched
    polls: list[FolderPolls]
    findings: list[Finding]
    span_seconds: float
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def rules_found(self) -> list[str]:
        return [finding.rule for finding in self.findings]

    def finding(self, rule: str) -> Finding | None:
        return next((f for f in self.findings if f.rule == rule), None)

    @property
    def token_requests(self) -> int:
        return sum(call.is_token for call in self.calls)

    @property
    def graph_requests(self) -> list[Call]:
        return [call for call in self.calls if not call.is_token]

    @property
    def without_client_request_id(self) -> list[Call]:
        return [call for call in self.graph_requests if not call.record.get("client_request_id")]

    @property
    def forbidden(self) -> int:
        return sum(call.status == 403 for call in self.graph_requests)

    def summary(self) -> str:
        counted = f"{len(self.calls)} request{'s' if len(self.calls) != 1 else ''}"
        if not self.findings:
            return f"behaviour of {self.subject}: {counted}, no findings"
        return f"behaviour of {self.subject}: {counted}, findings: {', '.join(self.rules_found)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "requests": len(self.calls),
            "first_seq": self.calls[0].seq if self.calls else None,
            "last_seq": self.calls[-1].seq if self.calls else None,
            "seconds": round(self.span_seconds, 3),
            "token_requests": self.token_requests,
            "operations": [
                {"operation": o.operation, "count": o.count, "statuses": {str(k): n for k, n in o.statuses.items()}}
                for o in self.operations
            ],
            "mailboxes": self.mailboxes,
            "polls": [
                {"mailbox": p.mailbox, "folder": p.folder, "rounds": p.rounds, "per_minute": round(p.per_minute, 2)}
                for p in self.polls
            ],
            "findings": [f.to_json() for f in self.findings],
        }

    def text(self) -> str:
        """The report for people: operations, mailboxes, polling, then each finding with its examples."""
        if not self.calls:
            return f"Behaviour of {self.subject}: no requests logged."
        lines = [
            f"Behaviour of {self.subject}: {_plural(len(self.calls), 'request')} (#{self.calls[0].seq} to "
            f"#{self.calls[-1].seq}) over {_duration(self.span_seconds)}",
            "  Requests by operation:",
        ]
        width = max(len(o.operation) for o in self.operations)
        lines += [f"    {o.operation:<{width}}  {o.count:>5}  {o.statuses_text()}" for o in self.operations]
        lines.append(f"  Mailboxes touched: {', '.join(self.mailboxes) or 'none'}")
        for poll in self.polls:
            rounds = _plural(poll.rounds, "time")
            lines.append(f"  Polled {poll.name}: {rounds}, at most {poll.per_minute:.1f} a minute")
        if not self.findings:
            lines.append("  No findings: nothing Microsoft's guidance warns against.")
        for finding in self.findings:
            lines.append(f"  [{finding.rule}] {finding.title} ({finding.count})")
            lines += [f"      {line}" for line in _wrap(finding.explanation, 110)]
            lines += [f"      e.g. {call.line()}" for call in finding.examples]
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def report(
    records: Iterable[Mapping[str, Any]], *, subject: str = "the requests", token_lifetime: float | None = None
) -> BehaviourReport:
    """The behaviour report of these Graph and token requests (others are left out), oldest first by seq.

    `token_lifetime` (seconds, the emulator's tokenLifetime) shortens the renewal allowance of token-not-cached
    when tokens live less than 5 minutes."""
    kept = sorted((dict(r) for r in records if r.get("kind", "graph") in ("graph", "token")), key=lambda r: r["seq"])
    calls = [read_call(r) for r in kept]
    operations: dict[str, OperationCount] = {}
    for call in calls:
        group = operations.setdefault(call.operation, OperationCount(call.operation, 0, {}))
        group.count += 1
        group.statuses[call.status] = group.statuses.get(call.status, 0) + 1
    mailboxes = list(dict.fromkeys(call.mailbox for call in calls if call.mailbox))
    span = calls[-1].at - calls[0].at if calls else 0.0
    context = _Context(calls, span, token_lifetime)
    findings = [found for rule in RULES.values() if (found := rule.check(context)) is not None]
    return BehaviourReport(subject, calls, list(operations.values()), mailboxes, _polls(calls), findings, span, kept)


def _polls(calls: list[Call]) -> list[FolderPolls]:
    rounds: dict[tuple[str, str], list[float]] = {}
    for call in calls:
        if call.is_round and call.mailbox is not None and call.folder is not None:
            rounds.setdefault((call.mailbox, call.folder), []).append(call.at)
    return [FolderPolls(mailbox, folder, len(times), per_minute(times)) for (mailbox, folder), times in rounds.items()]


# ---------------------------------------------------------------- the rules


@dataclass
class _Context:
    """What the rules read: the calls in order, their Graph ones, the time they span, the tokens' lifetime."""

    calls: list[Call]
    span: float
    token_lifetime: float | None
    graph: list[Call] = field(init=False)

    def __post_init__(self) -> None:
        self.graph = [call for call in self.calls if not call.is_token]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    find: Callable[[_Context], tuple[list[Call], str] | None]  # the offending calls and the explanation

    def check(self, context: _Context) -> Finding | None:
        found = self.find(context)
        if found is None or not found[0]:
            return None
        calls, explanation = found
        return Finding(self.id, self.title, len(calls), calls[:EXAMPLES], explanation)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _token_not_cached(c: _Context) -> tuple[list[Call], str] | None:
    issued = [call for call in c.calls if call.is_token and call.status == 200]
    interval = min(TOKEN_RENEWAL_SECONDS, c.token_lifetime or TOKEN_RENEWAL_SECONDS)
    renewals = sum(call.status == 401 for call in c.graph)
    allowed = 1 + int(c.span // interval) + renewals
    if len(issued) <= allowed:
        return None
    return issued[allowed:], (
        f"It was issued {_plural(len(issued), 'token')} in {_duration(c.span)} for {len(c.graph)} Graph requests, "
        f"{len(issued) - allowed} more than the {allowed} that would have done (one to start, one per "
        f"{_duration(interval)} of run, one after each 401 answer). "
        "Access tokens of the Microsoft identity platform last 60 to 90 minutes, and Microsoft's 'Acquire and "
        "cache tokens using the Microsoft Authentication Library (MSAL)' has the app ask its client application "
        "for a token before each call, which answers from its token cache until the token is about to expire. "
        "Keep one ConfidentialClientApplication (or azure-identity credential) for the daemon's life and ask it "
        "for the token each time, instead of creating one or posting to the token endpoint per request."
    )


def _retry_without_backoff(c: _Context) -> tuple[list[Call], str] | None:
    quick: list[Call] = []
    for i, failed in enumerate(c.graph):
        if not (failed.status == 429 or failed.status >= 500) or failed.record.get("retry_after") is not None:
            continue
        again = next((later for later in c.graph[i + 1 :] if later.same_request == failed.same_request), None)
        if again is not None and again.at - failed.at < BACKOFF_SECONDS:
            quick.append(again)
    if not quick:
        return None
    return quick, (
        f"{_plural(len(quick), 'request')} went out again less than {BACKOFF_SECONDS:g} s after a 429 or 5xx "
        "answer that gave no Retry-After. Microsoft Graph throttling guidance asks clients to avoid immediate "
        "retries, since every request counts against the usage limits, and to back off exponentially when an "
        "answer says nothing about when to come back; the Microsoft Graph SDKs' retry handler does the same "
        "(429, 503 and 504 only, Retry-After when given, exponential backoff otherwise, a bounded number of "
        "times). Wait, doubling the wait on each further failure, and give up after a few tries."
    )


def came_before_retry_after(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
    """(answer with Retry-After, the same app's next request on that mailbox, seconds between) for each next
    request that came sooner than the Retry-After said (by the emulator's clock, as the log records it)."""
    early = []
    for i, record in enumerate(records):
        if record.get("retry_after") is None:
            continue
        key = (record.get("app_id"), record.get("mailbox"))
        after = next((r for r in records[i + 1 :] if (r.get("app_id"), r.get("mailbox")) == key), None)
        if after is not None:
            gap = seconds_of(after["time"]) - seconds_of(record["time"])
            if gap < record["retry_after"]:
                early.append((record, after, gap))
    return early


def _retry_after_ignored(c: _Context) -> tuple[list[Call], str] | None:
    by_seq = {call.seq: call for call in c.calls}
    early = came_before_retry_after([call.record for call in c.calls])
    if not early:
        return None
    waits = ", ".join(f"{gap:.2f} s after a Retry-After of {first['retry_after']} s" for first, _, gap in early[:3])
    return [by_seq[after["seq"]] for _, after, _ in early], (
        f"{_plural(len(early), 'request')} came back to a mailbox sooner than the Retry-After of the answer "
        f"before ({waits}). Microsoft Graph throttling guidance: when a 429 (or 503) answer carries "
        "Retry-After, wait that many seconds before the next request, and keep waiting it out while the answers "
        "stay 429; requests sent sooner are refused again and prolong the throttling. Read Retry-After from each "
        "answer and sleep at least that long before touching that mailbox again."
    )


def _retried_403(c: _Context) -> tuple[list[Call], str] | None:
    refused_at: dict[tuple[str, str], float] = {}
    repeats: list[Call] = []
    for call in c.graph:
        target = call.same_target
        if target in refused_at and call.at - refused_at[target] <= FORBIDDEN_MEMORY_SECONDS:
            repeats.append(call)
        if call.status == 403:
            refused_at[target] = call.at
    if not repeats:
        return None
    targets = len({call.same_target for call in repeats})
    return repeats, (
        f"{_plural(len(repeats), 'request')} asked again for what a 403 had just refused "
        f"({_plural(targets, 'distinct request')}, within the hour). A 403 Forbidden from Microsoft Graph means "
        "access is denied (missing permission, or an Exchange access policy or RBAC scope that excludes the "
        "mailbox): it is not transient, and the Microsoft Graph SDKs never retry it (their retry handler takes "
        "429, 503 and 504 only). Microsoft documents that changes to application access policies can take "
        "longer than an hour to reach Graph, so asking again sooner only adds load. Stop using that mailbox or "
        "operation, log the error with its request-id and client-request-id, tell an admin, and try again "
        "after an hour at the soonest."
    )


def _full_listing(c: _Context) -> tuple[list[Call], str] | None:
    delta = {(call.mailbox, call.folder) for call in c.graph if call.operation == "delta"}
    rounds: dict[tuple[str | None, str | None], list[Call]] = {}
    for call in c.graph:
        unrestricted = "filter" not in call.query and "search" not in call.query
        if call.operation == "list messages" and call.is_round and unrestricted:
            rounds.setdefault((call.mailbox, call.folder), []).append(call)
    relisted = {key: calls for key, calls in rounds.items() if len(calls) >= LISTING_ROUNDS and key not in delta}
    if not relisted:
        return None
    folders = "; ".join(f"{m} {f or '(all messages)'} {len(calls)} times" for (m, f), calls in relisted.items())
    return [call for calls in relisted.values() for call in calls], (
        f"It listed the same folder from the start, with no $filter or $search, again and again ({folders}), "
        "and never asked for its delta. Microsoft's 'Use delta query to track changes in Microsoft Graph data' "
        "(and 'Get incremental changes to messages in a folder') lets an app learn of new, changed and deleted "
        "messages without a full read of the folder each time, which lowers the cost of each request and the "
        "chance of being throttled. Sync each folder with GET .../mailFolders/{id}/messages/delta, keep the "
        "@odata.deltaLink, and poll that link."
    )


def _no_select(c: _Context) -> tuple[list[Call], str] | None:
    bare = [
        call
        for call in c.graph
        if call.operation in ("list messages", "delta")
        and call.is_round
        and "deltatoken" not in call.query
        and "select" not in call.query
    ]
    if not bare:
        return None
    listings = sum(call.operation in ("list messages", "delta") and call.is_round for call in c.graph)
    return bare, (
        f"{len(bare)} of {_plural(listings, 'message listing')} asked for no $select, so each message came with "
        "its default properties, bodies included. Microsoft's 'Best practices for working with Microsoft Graph' "
        "says to choose only the properties the app needs with $select, which saves network traffic and "
        "processing on both sides (Microsoft's Dev Proxy flags Graph requests without $select for the same "
        "reason). Add $select=id,subject,from,receivedDateTime,... with what the daemon reads, and fetch a body "
        "only for the messages it handles."
    )


def _filter_orderby_refused(c: _Context) -> tuple[list[Call], str] | None:
    refused = [call for call in c.graph if call.status == 400 and call.record.get("error_code") == "InefficientFilter"]
    if not refused:
        return None
    return refused, (
        f"Graph refused {_plural(len(refused), 'listing')} with 400 InefficientFilter, 'The restriction or sort "
        "order is too complex for this operation.' Microsoft's 'List messages' reference: with $filter and "
        "$orderby together, the properties in $orderby must also be in $filter, in the same order, before any "
        "other property. Put the sort property first in the filter (e.g. $filter=receivedDateTime ge "
        "2024-01-01T00:00:00Z and isRead eq false&$orderby=receivedDateTime), or sort on the client."
    )


def _unbounded_top(c: _Context) -> tuple[list[Call], str] | None:
    unbounded = []
    for call in c.graph:
        if call.operation == "list messages" and call.is_round:
            top = call.query.get("top")
            if top is None or not top.strip().isdigit() or int(top) > TOP_MAX:
                unbounded.append(call)
    if not unbounded:
        return None
    missing = sum("top" not in call.query for call in unbounded)
    return unbounded, (
        f"{_plural(len(unbounded), 'listing')} chose no page size ({missing} without $top, "
        f"{len(unbounded) - missing} with a $top outside 1 to {TOP_MAX}). Without $top Graph answers messages "
        "10 to a page, so a large folder takes a round trip per 10 messages; the 'List messages' reference "
        f"takes $top from 1 to {TOP_MAX}, and 'Paging Microsoft Graph data in your app' has the client follow "
        f"@odata.nextLink for the rest. Ask for the page size the daemon handles at once ($top=50, at most "
        f"{TOP_MAX}) and follow @odata.nextLink."
    )


def _out_of_scope(c: _Context) -> tuple[list[Call], str] | None:
    denied = [
        call
        for call in c.graph
        if call.record.get("outcome") == "denied" and "polic" in (call.record.get("decision") or "").lower()
    ]
    if not denied:
        return None
    mailboxes = list(dict.fromkeys(call.mailbox or "?" for call in denied))
    reason = (denied[0].record.get("decision") or "").removeprefix("denied: ")
    return denied, (
        f"{_plural(len(denied), 'request')} reached for {_plural(len(mailboxes), 'mailbox')} its access policy "
        f"excludes ({', '.join(mailboxes)}): {reason}. The admin scoped the app to certain mailboxes "
        "(Microsoft's 'Limiting application permissions to specific Exchange Online mailboxes', application "
        "access policies, and their successor RBAC for Applications in Exchange Online); Graph answers 403 "
        "ErrorAccessDenied for any other. Configure the daemon with only the mailboxes in its scope, or ask the "
        "admin to add these to the scope group; do not probe mailboxes outside it."
    )


def _no_client_request_id(c: _Context) -> tuple[list[Call], str] | None:
    missing = [call for call in c.graph if not call.record.get("client_request_id")]
    if not missing:
        return None
    return missing, (
        f"{len(missing)} of {_plural(len(c.graph), 'Graph request')} carried no client-request-id header. Graph "
        "echoes the client-request-id a client sends in its answer and in Microsoft Graph activity logs "
        "(ClientRequestId), so a GUID you make, send and log with each request ties your logs to Microsoft's "
        "when a request has to be traced; without one Graph uses its own request id, which you only learn if "
        "the answer arrives (Microsoft's Dev Proxy shows a tip for each Graph request without one). Send a new "
        "GUID as client-request-id on each request (the Graph SDKs do) and log it with the answer's request-id."
    )


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("token-not-cached", "Token not cached", _token_not_cached),
        Rule("retry-without-backoff", "Retried without backoff", _retry_without_backoff),
        Rule("retry-after-ignored", "Came back before Retry-After", _retry_after_ignored),
        Rule("retried-403", "Repeated a request refused with 403", _retried_403),
        Rule("full-listing", "Full listings where delta query would do", _full_listing),
        Rule("no-select", "Message listings without $select", _no_select),
        Rule("filter-orderby-refused", "$filter with $orderby refused (InefficientFilter)", _filter_orderby_refused),
        Rule("unbounded-top", "Listings without a page size ($top missing or over 1000)", _unbounded_top),
        Rule("out-of-scope", "Reached for mailboxes outside its access policy", _out_of_scope),
        Rule("no-client-request-id", "Graph requests without client-request-id", _no_client_request_id),
    )
}
RULE_IDS = list(RULES)


# ---------------------------------------------------------------- the `behaviour` step's side


def judge(world: World, daemon: str | None, app: str | None) -> BehaviourReport:
    """The report of a started daemon (`daemon`: its app's records from its start to its stop), or of an app
    (`as`, default the tenant's first) since the scenario began."""
    if daemon is not None and app is not None:
        raise ScenarioFailure("a behaviour step takes `daemon` (a started daemon) or `as` (an app), not both")
    if daemon is not None:
        runs: Mapping[str, DaemonSpan] = world.daemons
        run = runs.get(daemon)
        if run is None:
            started = ", ".join(repr(name) for name in runs) or "none"
            raise ScenarioFailure(f"no daemon called {daemon!r} was started in this scenario (started: {started})")
        app_id, first, last = run.app_id, run.first_seq, run.last_seq
        subject = f"daemon {daemon!r} ({_app_name(world, app_id)})"
    else:
        found = world.app(app)
        app_id, first, last = found["app_id"], world.first_seq, None
        subject = f"{found['display_name']} since the scenario began"
    records = [r for r in world.admin.log(app=app_id) if r["seq"] > first and (last is None or r["seq"] <= last)]
    lifetime = world.admin.settings().get("tokenLifetime")
    return report(records, subject=subject, token_lifetime=float(lifetime) if lifetime else None)


def _app_name(world: World, app_id: str) -> str:
    try:
        return str(world.app(app_id)["display_name"])
    except ScenarioFailure:
        return app_id
