"""The steps of a scenario: one handler per `do:` kind, in STEPS, with the options it needs and the options it reads.

schema.py takes the kinds (`do`'s values) and the options each kind requires from STEPS, so a file can name no kind
without a handler, and no handler runs without its options. The schema is imported to read files, so this module
imports nothing heavy when it is imported: the reference client and jwt are imported by the handlers using them.

A handler takes the world and the step's options (placeholders filled) and returns the Outcome that the step's
`expect` is checked against (expectations.py). It reads a required option as `o["name"]` and an optional one as
`o.get("name")`; `as` and `credential` (the app and how it signs in) are read by `World.daemon`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from m365_mock.scenarios import conditions, daemons
from m365_mock.scenarios.outcome import Outcome, StepError
from m365_mock.scenarios.world import ScenarioFailure

if TYPE_CHECKING:
    from m365_mock.client import MailClient
    from m365_mock.scenarios.model import Step
    from m365_mock.scenarios.world import World

__all__ = ["COMMON_OPTIONS", "STEPS", "Outcome", "StepError", "StepKind", "perform"]

# Options every kind takes: which app acts, and with which credential (`name` is the step's, not an option).
COMMON_OPTIONS = ("as", "credential")


@dataclass(frozen=True)
class StepKind:
    """A kind of step: its handler, the options it cannot run without, and the other options it reads."""

    handler: Callable[[World, dict[str, Any]], Outcome]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


def perform(world: World, step: Step) -> Outcome:
    """Do one step; the outcome holds what came back (or the error the emulator answered)."""
    kind = STEPS.get(step.do)
    if kind is None:  # a file naming it is refused when read (the schema takes the kinds from STEPS)
        raise ScenarioFailure(f"no kind of step is called {step.do!r}; the kinds are {', '.join(STEPS)}")
    try:
        outcome = kind.handler(world, world.fill(step.options))
    except StepError as exc:
        outcome = Outcome(error=exc)
    outcome.world = world
    return outcome


def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)`, with the reference client's errors as StepError."""
    from m365_mock.client import AuthError, GraphError

    try:
        return function(*args, **kwargs)
    except AuthError as exc:
        raise StepError(exc.status, exc.code, exc.description) from None
    except GraphError as exc:
        raise StepError(exc.status, exc.code, exc.message) from None


def find(mail: MailClient, mailbox: str, subject: str, folder: str | None = None) -> dict[str, Any]:
    """The first message with this subject (among the first 100 of the folder)."""
    for message in call(lambda: list(mail.messages(mailbox, folder=folder, top=100))):
        if message.get("subject") == subject:
            return message
    raise StepError(404, "ScenarioMessageNotFound", f"no message with subject {subject!r} in {mailbox}")


# ---------------------------------------------------------------- the handlers, one per kind


def token(world: World, o: dict[str, Any]) -> Outcome:
    """A token by client credentials; its claims (read, not verified) for `expect.claims`."""
    import jwt

    tokens, _ = world.daemon(o)
    return Outcome(claims=jwt.decode(call(tokens.token), options={"verify_signature": False}))


def fetch(world: World, o: dict[str, Any]) -> Outcome:
    """List messages, following @odata.nextLink."""
    _, mail = world.daemon(o)
    messages = call(
        lambda: list(mail.messages(o["mailbox"], folder=o.get("folder"), unread=o.get("unread"), top=o.get("top", 50)))
    )
    return Outcome(messages=messages, count=len(messages))


def read(world: World, o: dict[str, Any]) -> Outcome:
    """Get the first message with the subject; whether its body came back."""
    _, mail = world.daemon(o)
    found = find(mail, o["mailbox"], o["subject"], o.get("folder"))
    message = call(mail.message, o["mailbox"], found["id"])
    return Outcome(messages=[message], body_visible="body" in message)


def mark_read(world: World, o: dict[str, Any]) -> Outcome:
    _, mail = world.daemon(o)
    found = find(mail, o["mailbox"], o["subject"], o.get("folder"))
    return Outcome(messages=[call(mail.mark_read, o["mailbox"], found["id"], True)])


def move(world: World, o: dict[str, Any]) -> Outcome:
    """Move the first message with the subject (the folder is made when missing)."""
    _, mail = world.daemon(o)
    found = find(mail, o["mailbox"], o["subject"], o.get("folder"))
    return Outcome(messages=[call(mail.move, o["mailbox"], found["id"], o["move_to"], create=True)])


def send(world: World, o: dict[str, Any]) -> Outcome:
    """sendMail from the mailbox; attachments are files relative to the scenario file, or made ({name, size})."""
    from m365_mock.scenarios.actions import addresses

    _, mail = world.daemon(o)
    attachments = [world.attachment(spec) for spec in o.get("attachments", [])]
    call(
        mail.send,
        o["mailbox"],
        to=addresses(o["to"]),
        cc=addresses(o.get("cc")),
        subject=o.get("subject", ""),
        body=o.get("body", ""),
        attachments=attachments,
    )
    return Outcome()


def wait_for_delivery(world: World, o: dict[str, Any]) -> Outcome:
    """Poll the folder until a message with the subject is there, or `timeout` seconds (default 5) have passed."""
    _, mail = world.daemon(o)
    deadline = time.monotonic() + float(o.get("timeout", 5))
    while True:
        messages = [
            m
            for m in call(lambda: list(mail.messages(o["mailbox"], folder=o.get("folder", "inbox"), top=100)))
            if m.get("subject") == o["subject"]
        ]
        if messages or time.monotonic() > deadline:
            return Outcome(messages=messages, count=len(messages))
        time.sleep(0.1)


def process(world: World, o: dict[str, Any]) -> Outcome:
    """The daemon's fetch loop: take unread mail page by page, mark it read and/or move it, until none is left.

    Fails when a message would be handled twice (by internetMessageId, else id).
    """
    _, mail = world.daemon(o)
    mailbox, folder, top, move_to = o["mailbox"], o.get("folder", "inbox"), o.get("top", 10), o.get("move_to")
    seen: set[str] = set()
    subjects: list[str] = []
    for _ in range(1000):
        page = call(lambda: list(mail.messages(mailbox, folder=folder, unread=True, top=top, limit=top)))
        if not page:
            break
        for message in page:
            identity = message.get("internetMessageId") or message["id"]
            if identity in seen:
                raise StepError(500, "ScenarioDuplicate", f"message {message['subject']!r} was handed out twice")
            seen.add(identity)
            subjects.append(message["subject"])
            if o.get("mark_read", True):
                message = call(mail.mark_read, mailbox, message["id"], True)
            if move_to:
                call(mail.move, mailbox, message["id"], move_to, create=True)
    outcome = Outcome(count=len(subjects), messages=[{"subject": s} for s in subjects])
    outcome.folder = call(mail.folder, mailbox, folder)
    return outcome


def folder(world: World, o: dict[str, Any]) -> Outcome:
    """A folder's counts (default inbox)."""
    _, mail = world.daemon(o)
    return Outcome(folder=call(mail.folder, o["mailbox"], o.get("folder", "inbox")))


def log(world: World, o: dict[str, Any]) -> Outcome:
    """The request log's records, by mailbox, outcome, app (`as`, when given) and kind (Graph requests unless
    `kind` says token or all)."""
    app = world.app(o["as"])["app_id"] if "as" in o else None
    kind = o.get("kind", "graph")
    records = world.admin.log(
        mailbox=o.get("mailbox") or None,
        outcome=o.get("outcome") or None,
        app=app,
        kind=None if kind == "all" else kind,
    )
    return Outcome(log=records, count=len(records), statuses=[r["status"] for r in records])


def download(world: World, o: dict[str, Any]) -> Outcome:
    """Fetch the attachments of the first message with the subject, save each file into the scenario's folder,
    and compare its bytes with what the scenario put into mail."""
    import hashlib

    _, mail = world.daemon(o)
    found = find(mail, o["mailbox"], o["subject"], o.get("folder"))
    folder = (world.workdir or world.base_dir) / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for attachment in call(mail.attachments, o["mailbox"], found["id"]):
        content = call(mail.download_attachment, o["mailbox"], found["id"], attachment["id"])
        (folder / attachment["name"]).write_bytes(content)
        digest = hashlib.sha256((folder / attachment["name"]).read_bytes()).hexdigest()
        results.append(
            {
                "name": attachment["name"],
                "size": len(content),
                "inline": attachment.get("isInline", False),
                "intact": world.attachment_hashes.get(attachment["name"]) == digest,
            }
        )
    return Outcome(messages=[found], attachments=results, count=len(results))


def reply(world: World, o: dict[str, Any]) -> Outcome:
    """Answer the first message with the subject in its thread (createReply, attach, send); attachments of 3 MB
    or more go through an upload session."""
    _, mail = world.daemon(o)
    found = find(mail, o["mailbox"], o["subject"], o.get("folder"))
    attachments = [world.attachment(spec) for spec in o.get("attachments", [])]
    draft = call(mail.reply, o["mailbox"], found["id"], o.get("body", ""), attachments=attachments)
    return Outcome(messages=[draft], note=f"replied to {o['subject']!r} as {draft.get('subject')!r}")


def batch(world: World, o: dict[str, Any]) -> Outcome:
    """One JSON batch listing the inbox of each mailbox named (`mailboxes`); the inner answers' statuses."""
    from m365_mock.scenarios.actions import addresses

    _, mail = world.daemon(o)
    requests = [
        {"id": str(i + 1), "method": "GET", "url": f"/users/{address}/mailFolders/inbox/messages?$top=5"}
        for i, address in enumerate(addresses(o["mailboxes"]))
    ]
    answers = call(mail.batch, requests)
    statuses = [answer["status"] for answer in sorted(answers, key=lambda a: int(a["id"]))]
    return Outcome(statuses=statuses, note=f"$batch of {len(requests)}: statuses {statuses}")


def sync(world: World, o: dict[str, Any]) -> Outcome:
    """One delta round of the folder (default inbox), from where this app's last `sync` of it ended; the changes
    (created or updated messages, and removals) for `expect.changed` and `expect.removed`."""
    _, mail = world.daemon(o)
    folder = o.get("folder", "inbox")
    key = (world.app(o.get("as"))["app_id"], o["mailbox"].lower(), folder.lower())
    changes, world.delta_links[key] = call(mail.sync, o["mailbox"], folder, world.delta_links.get(key))
    changed = [m for m in changes if "@removed" not in m]
    return Outcome(
        messages=changed,
        count=len(changed),
        removed=len(changes) - len(changed),
        note=f"{len(changed)} created or changed, {len(changes) - len(changed)} removed",
    )


def behaviour(world: World, o: dict[str, Any]) -> Outcome:
    """The behaviour report (behaviour.py) of a started daemon's requests (`daemon`), or of an app's (`as`) since
    the scenario began; its records are `log`, for `retry_after_honoured`."""
    from m365_mock.scenarios.behaviour import judge

    report = judge(world, o.get("daemon"), o.get("as"))
    return Outcome(behaviour=report, log=report.records, note=report.summary())


def admin(world: World, o: dict[str, Any]) -> Outcome:
    """An admin action between daemon steps (filling its placeholders again changes nothing)."""
    from m365_mock.scenarios.actions import run_setup

    return Outcome(note=run_setup(world, o["action"]))


# The table: `do`'s values, in the order the schema and the documentation list them.
STEPS: dict[str, StepKind] = {
    "token": StepKind(token),
    "fetch": StepKind(fetch, ("mailbox",), ("folder", "unread", "top")),
    "read": StepKind(read, ("mailbox", "subject"), ("folder",)),
    "mark_read": StepKind(mark_read, ("mailbox", "subject"), ("folder",)),
    "move": StepKind(move, ("mailbox", "subject", "move_to"), ("folder",)),
    "send": StepKind(send, ("mailbox", "to"), ("cc", "subject", "body", "attachments")),
    "download": StepKind(download, ("mailbox", "subject"), ("folder",)),
    "reply": StepKind(reply, ("mailbox", "subject"), ("folder", "body", "attachments")),
    "batch": StepKind(batch, ("mailboxes",)),
    "sync": StepKind(sync, ("mailbox",), ("folder",)),
    "wait_for_delivery": StepKind(wait_for_delivery, ("mailbox", "subject"), ("folder", "timeout")),
    "process": StepKind(process, ("mailbox",), ("folder", "mark_read", "move_to", "top")),
    "folder": StepKind(folder, ("mailbox",), ("folder",)),
    "log": StepKind(log, (), ("mailbox", "outcome", "kind")),
    "admin": StepKind(admin, ("action",)),
    "run": StepKind(daemons.run, ("command",), ("env", "timeout", "daemon")),
    "start": StepKind(daemons.start, ("command",), ("env", "daemon")),
    "stop": StepKind(daemons.stop, (), ("daemon",)),
    "wait": StepKind(conditions.wait, ("until",), ("timeout",)),
    "check": StepKind(conditions.check),
    "behaviour": StepKind(behaviour, (), ("daemon",)),
}
