"""World conditions: what a daemon must have done to the world, as `wait` waits for it and `check` expects it.

One function per condition key, in CONDITIONS: it takes the world and one condition (a mapping, placeholders
filled) and returns the problems found (none: it holds) and what the world looked like. The world is read
through the control API (`world.admin`), never with a Graph token, so judging leaves no trace in the request
log the daemon is judged by.

Imported by steps.py, so by the schema: nothing heavy at import time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from m365_mock.scenarios.outcome import Outcome

if TYPE_CHECKING:
    from m365_mock.scenarios.world import World

POLL = 0.2  # seconds between two looks at the world while waiting
WAIT_TIMEOUT = 10.0
SHOWN = 5  # subjects or messages a description names
LOOKED_AT = 1000  # newest messages a `message` or `no_message` condition looks at
COMPARED = 10_000  # newest messages `no_duplicates` compares (the control API's most)
NOT_COPIES = ("sentitems", "drafts")  # folders left out of a mailbox-wide `no_duplicates`

Verdict = tuple[list[str], str]  # (problems, what the world looked like)


def unmet(world: World, conditions: dict[str, Any]) -> list[str]:
    """Each condition that does not hold, with what the world looked like; conditions are mappings or lists of
    mappings, by key of CONDITIONS."""
    failing = []
    for key, given in conditions.items():
        for spec in given if isinstance(given, list) else [given]:
            problems, seen = CONDITIONS[key](world, world.fill(spec))
            if problems:
                failing.append("; ".join(problems) + (f" [{seen}]" if seen else ""))
    return failing


def _read(world: World, call: Callable[[], Any]) -> tuple[Any, str | None]:
    """(the control API's answer, None), or (None, its refusal) when it refused (an unknown mailbox or folder)."""
    from m365_mock.tools.control_client import ControlError

    try:
        return call(), None
    except ControlError as exc:
        return None, str(exc)


def _where(spec: dict[str, Any]) -> str:
    return f"{spec['folder']} of {spec['mailbox']}" if spec.get("folder") else spec["mailbox"]


def _paths(answer: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["path"] for f in answer["folders"]}


def _subject_matches(spec: dict[str, Any], subject: str) -> bool:
    if "subject" in spec:
        return subject == spec["subject"]
    return spec["subject_contains"].lower() in subject.lower()


def _subject_wanted(spec: dict[str, Any]) -> str:
    return repr(spec["subject"]) if "subject" in spec else f"with {spec['subject_contains']!r} in its subject"


def _newest_subjects(answer: dict[str, Any]) -> str:
    return f"newest subjects: {[m['subject'] for m in answer['value'][:SHOWN]]}"


def _partial(answer: dict[str, Any], listed: int) -> list[str]:
    total = answer["total"]
    return [f"only the newest {listed} of its {total} messages were looked at"] if total > listed else []


# ---------------------------------------------------------------- the conditions, one per key


def folder(world: World, spec: dict[str, Any]) -> Verdict:
    """The folder exists and has these counts: `total`, `unread`, `total_at_least`."""
    answer, refused = _read(world, lambda: world.admin.messages(spec["mailbox"], folder=spec["folder"], top=SHOWN))
    if refused is not None:
        return [f"folder {_where(spec)}: {refused}"], ""
    [found] = answer["folders"]
    total, unread = found["totalItemCount"], found["unreadItemCount"]
    where = f"folder {found['path']} of {spec['mailbox']}"
    problems = []
    if "total" in spec and total != spec["total"]:
        problems.append(f"{where}: total {total} (expected {spec['total']})")
    if "unread" in spec and unread != spec["unread"]:
        problems.append(f"{where}: unread {unread} (expected {spec['unread']})")
    if "total_at_least" in spec and total < spec["total_at_least"]:
        problems.append(f"{where}: total {total} (expected at least {spec['total_at_least']})")
    return problems, f"total {total}, unread {unread}; {_newest_subjects(answer)}"


def _describe_message(message: dict[str, Any], paths: dict[str, str]) -> str:
    flags = [
        "read" if message["isRead"] else "unread",
        *(["flagged"] if message["flagStatus"] == "flagged" else []),
        *(["attachments"] if message["hasAttachments"] else []),
    ]
    categories = f", categories {message['categories']}" if message["categories"] else ""
    return f"{message['subject']!r} in {paths.get(message['parentFolderId'], '?')} ({', '.join(flags)}{categories})"


def _properties_hold(spec: dict[str, Any], message: dict[str, Any]) -> bool:
    return (
        ("read" not in spec or message["isRead"] == spec["read"])
        and ("flagged" not in spec or (message["flagStatus"] == "flagged") == spec["flagged"])
        and ("has_attachments" not in spec or message["hasAttachments"] == spec["has_attachments"])
        and all(c.lower() in (m.lower() for m in message["categories"]) for c in spec.get("categories", []))
    )


def message(world: World, spec: dict[str, Any]) -> Verdict:
    """A message with the subject (`subject`, or `subject_contains` ignoring case) is in the folder (default:
    anywhere in the mailbox), with these properties: `read`, `flagged`, `has_attachments`, `categories` (each
    of them among its categories)."""
    answer, refused = _read(
        world, lambda: world.admin.messages(spec["mailbox"], folder=spec.get("folder"), top=LOOKED_AT)
    )
    if refused is not None:
        return [f"no message {_subject_wanted(spec)} in {_where(spec)}: {refused}"], ""
    paths = _paths(answer)
    candidates = [m for m in answer["value"] if _subject_matches(spec, m["subject"])]
    if any(_properties_hold(spec, m) for m in candidates):
        return [], f"{_describe_message(next(m for m in candidates if _properties_hold(spec, m)), paths)}"
    if not candidates:
        return [f"no message {_subject_wanted(spec)} in {_where(spec)}", *_partial(answer, LOOKED_AT)], (
            _newest_subjects(answer)
        )
    wanted = {k: spec[k] for k in ("read", "flagged", "has_attachments", "categories") if k in spec}
    shown = [_describe_message(m, paths) for m in candidates[:SHOWN]]
    return [f"no message {_subject_wanted(spec)} in {_where(spec)} with {wanted}"], f"found: {shown}"


def no_message(world: World, spec: dict[str, Any]) -> Verdict:
    """No message with the subject (`subject`, or `subject_contains`) is in the folder (default: the mailbox)."""
    answer, refused = _read(
        world, lambda: world.admin.messages(spec["mailbox"], folder=spec.get("folder"), top=LOOKED_AT)
    )
    if refused is not None:
        return [f"{_where(spec)}: {refused}"], ""
    paths = _paths(answer)
    found = [m for m in answer["value"] if _subject_matches(spec, m["subject"])]
    if not found:
        return _partial(answer, LOOKED_AT), f"no message {_subject_wanted(spec)} in {_where(spec)}"
    shown = [_describe_message(m, paths) for m in found[:SHOWN]]
    return [f"{len(found)} message(s) {_subject_wanted(spec)} in {_where(spec)} (expected none)"], f"found: {shown}"


def _recipients(mail: dict[str, Any]) -> list[str]:
    return [address.lower() for address in mail["recipients"]]


def _outbound_matches(spec: dict[str, Any], mail: dict[str, Any]) -> bool:
    to = spec.get("to")
    wanted = [to] if isinstance(to, str) else list(to or [])
    attachments = mail.get("attachments") or []
    return (
        all(address.lower() in _recipients(mail) for address in wanted)
        and ("subject" not in spec or mail["subject"] == spec["subject"])
        and ("subject_contains" not in spec or spec["subject_contains"].lower() in mail["subject"].lower())
        and ("body_contains" not in spec or spec["body_contains"] in mail["body"]["content"])
        and all(
            any(
                a["name"] == want["name"] and ("sha256" not in want or a["sha256"] == want["sha256"].lower())
                for a in attachments
            )
            for want in spec.get("attachments", [])
        )
    )


def _describe_outbound(mail: dict[str, Any]) -> str:
    names = [a["name"] for a in mail.get("attachments") or []]
    carried = f" with {names}" if names else ""
    return f"{mail['subject']!r} to {', '.join(mail['recipients'])}{carried}"


def outbound(world: World, spec: dict[str, Any]) -> Verdict:
    """Mail sent outside every tenant matches: `to` (each address among its recipients), `subject`,
    `subject_contains`, `body_contains`, `attachments` (each by name, and by `sha256` when given); `count` such
    messages exactly, else at least one."""
    caught = world.admin.outbound()
    found = [mail for mail in caught if _outbound_matches(spec, mail)]
    wanted = {k: v for k, v in spec.items() if k != "count"}
    seen = f"{len(caught)} outbound message(s); newest: {[_describe_outbound(m) for m in caught[::-1][:SHOWN]]}"
    if "count" in spec and len(found) != spec["count"]:
        return [f"{len(found)} outbound message(s) match {wanted} (expected {spec['count']})"], seen
    if "count" not in spec and not found:
        return [f"no outbound message matches {wanted}"], seen
    return [], seen


def log(world: World, spec: dict[str, Any]) -> Verdict:
    """The request log has at least `count_at_least` (default 1) records of the app (`as` or `app`: display name
    or id) on `mailbox` with `status` and `outcome`; Graph requests unless `kind` is token or all."""
    key = spec.get("as", spec.get("app"))
    app = world.app(key)["app_id"] if key is not None else None
    kind = spec.get("kind", "graph")
    records = world.admin.log(
        app=app, mailbox=spec.get("mailbox"), outcome=spec.get("outcome"), kind=None if kind == "all" else kind
    )
    found = [r for r in records if "status" not in spec or r["status"] == spec["status"]]
    least = spec.get("count_at_least", 1)
    newest = [f"{r['method']} {r['path']} {r['status']}" for r in records[::-1][:SHOWN]]
    seen = f"{len(records)} such record(s) of any status; newest: {newest}"
    if len(found) < least:
        wanted = {k: v for k, v in spec.items() if k != "count_at_least"}
        return [f"{len(found)} log record(s) match {wanted} (expected at least {least})"], seen
    return [], seen


def no_duplicates(world: World, spec: dict[str, Any]) -> Verdict:
    """No Internet message id twice in the folder (default: the mailbox, its Sent Items and Drafts aside), and no
    two messages sent outside from the mailbox with the same subject to the same recipients."""
    answer, refused = _read(
        world, lambda: world.admin.messages(spec["mailbox"], folder=spec.get("folder"), top=COMPARED)
    )
    if refused is not None:
        return [f"{_where(spec)}: {refused}"], ""
    paths = _paths(answer)
    skipped = (
        {f["id"] for f in answer["folders"] if f["wellKnownName"] in NOT_COPIES} if not spec.get("folder") else set()
    )
    kept = [m for m in answer["value"] if m["parentFolderId"] not in skipped and m["internetMessageId"]]
    copies = Counter(m["internetMessageId"] for m in kept)
    problems = [
        f"{count} copies of {next(_describe_message(m, paths) for m in kept if m['internetMessageId'] == mid)} "
        f"in {_where(spec)}"
        for mid, count in copies.items()
        if count > 1
    ]
    problems += _partial(answer, COMPARED)
    sender = spec["mailbox"].lower()
    sent = [m for m in world.admin.outbound() if m["sender"].lower() == sender]
    repeated = Counter((m["subject"], tuple(sorted(_recipients(m)))) for m in sent)
    problems += [
        f"sent outside {count} times: {subject!r} to {', '.join(to)}"
        for (subject, to), count in repeated.items()
        if count > 1
    ]
    return problems, f"{len(kept)} message(s) compared in {_where(spec)}; {len(sent)} sent outside from it"


CONDITIONS: dict[str, Callable[[World, dict[str, Any]], Verdict]] = {
    "folder": folder,
    "message": message,
    "no_message": no_message,
    "outbound": outbound,
    "log": log,
    "no_duplicates": no_duplicates,
}


# ---------------------------------------------------------------- the handlers: wait, check


def wait(world: World, o: dict[str, Any]) -> Outcome:
    """Look at the world every 0.2 s until every condition of `until` holds, or `timeout` seconds (default 10)
    have passed; then fail with what the world looked like for each that did not. A daemon of the scenario that
    exits meanwhile ends the wait at once when it failed, or when no daemon is left running."""
    from m365_mock.scenarios.daemons import describe_exit

    timeout = float(o.get("timeout", WAIT_TIMEOUT))
    began = time.monotonic()
    watched = [run for run in world.daemons.values() if run.running and run.process.poll() is None]
    while True:
        failing = unmet(world, o["until"])
        waited = time.monotonic() - began
        if not failing:
            return Outcome(note=f"held after {waited:.1f} s: {', '.join(o['until'])}")
        exited = [run for run in watched if run.process.poll() is not None]
        failed = [run for run in exited if run.process.returncode != 0]
        if failed or (watched and len(exited) == len(watched)):
            failing = unmet(world, o["until"])  # once more: what it did before it exited counts
            if not failing:
                return Outcome(note=f"held after {waited:.1f} s: {', '.join(o['until'])}")
            why = "; ".join(
                f"{run.name} exited with {describe_exit(run.process.returncode)} ({run.output_tail()})"
                for run in failed or exited
            )
            return Outcome(failure=f"{why}, after {waited:.1f} s of waiting; " + "; ".join(failing))
        if waited >= timeout:
            return Outcome(failure=f"not within {timeout:g} s: " + "; ".join(failing))
        time.sleep(POLL)


def check(world: World, o: dict[str, Any]) -> Outcome:
    """Nothing to do: the world conditions of `expect` are checked as the step's expectations."""
    return Outcome()
