"""`m365-mock client token|folders|fetch|send`: the mail client from the command line.

Configuration, highest first: flags; `--emulator [STATE_DIR]` (a running emulator's connection.json, which then
replaces the environment and profile); M365_* environment variables; a profile (`--profile NAME`,
`--profile-file`, default ~/.config/m365-mock/client.toml or client.ini, section `default`).
Errors print `error: <code>: <message>` on stderr: exit 1 for refusals, 2 for configuration problems.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from m365_mock.client.errors import AuthError, ConfigError, GraphError
from m365_mock.client.settings import (
    ClientSettings,
    default_profile_file,
    emulator_values,
    env_values,
    profile_values,
    read_connection,
)

FLAG_FIELDS = {
    "tenant": "tenant",
    "client_id": "client_id",
    "client_secret": "client_secret",
    "certificate": "certificate_file",
    "login_url": "login_url",
    "graph_url": "graph_url",
    "ca_file": "ca_file",
    "max_retries": "max_retries",
}
TABLE_SELECT = ("id", "receivedDateTime", "from", "subject", "isRead")


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("M365_MOCK_STATE_DIR") or Path.home() / ".m365-mock")


def _config_arguments() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("configuration (flags beat --emulator, which beats M365_* and the profile)")
    group.add_argument("--tenant", help="tenant id or domain (M365_TENANT)")
    group.add_argument("--client-id", help="application (client) id (M365_CLIENT_ID)")
    group.add_argument("--client-secret", help="client secret (M365_CLIENT_SECRET)")
    group.add_argument("--certificate", help="PEM with private key and certificate (M365_CERTIFICATE)")
    group.add_argument("--login-url", help="token service base URL (M365_LOGIN_URL)")
    group.add_argument("--graph-url", help="Graph base URL with version (M365_GRAPH_URL)")
    group.add_argument("--ca-file", help="CA bundle to trust (M365_CA_FILE)")
    group.add_argument("--max-retries", type=int, help="retries on 429/503/504 (default 3)")
    group.add_argument("--profile", help="profile (section) name in the profile file (default: default)")
    group.add_argument("--profile-file", help="profile file (default ~/.config/m365-mock/client.toml or .ini)")
    group.add_argument(
        "--emulator",
        nargs="?",
        const="",
        metavar="STATE_DIR",
        help="use a running emulator's connection.json (default state dir $M365_MOCK_STATE_DIR or ~/.m365-mock)",
    )
    return common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the verbs token, folders, fetch and send (each with the configuration flags) to `parser`."""
    common = _config_arguments()
    verbs = parser.add_subparsers(dest="client_command", required=True, metavar="{token,folders,fetch,send}")

    token = verbs.add_parser("token", parents=[common], help="print an app-only access token for Graph")
    token.add_argument("--claims", action="store_true", help="print the token's claims as JSON instead")

    folders = verbs.add_parser("folders", parents=[common], help="list the folders under a mailbox's root")
    folders.add_argument("--mailbox", required=True, help="mailbox address (UPN) or id")

    fetch = verbs.add_parser("fetch", parents=[common], help="list messages, optionally mark them read or move them")
    fetch.add_argument("--mailbox", required=True, help="mailbox address (UPN) or id")
    fetch.add_argument("--folder", default="inbox", help="folder: well-known name, id or display name (inbox)")
    fetch.add_argument("--unread", action="store_true", help="only unread messages")
    fetch.add_argument("--top", type=int, default=50, help="at most this many messages (default 50)")
    fetch.add_argument("--mark-read", action="store_true", help="mark each listed message read")
    fetch.add_argument("--move-to", metavar="FOLDER", help="move each listed message there (created if missing)")
    fetch.add_argument("--json", action="store_true", help="print the messages as JSON instead of a table")
    fetch.add_argument(
        "--save-mime", metavar="DIR", help="save each listed message's MIME ($value) as DIR/<internetMessageId>.eml"
    )

    sync = verbs.add_parser(
        "sync", parents=[common], help="one delta round of a folder: what changed since the last run (--state)"
    )
    sync.add_argument("--mailbox", required=True, help="mailbox address (UPN) or id")
    sync.add_argument("--folder", default="inbox", help="folder: well-known name or id (inbox)")
    sync.add_argument(
        "--state",
        required=True,
        metavar="FILE",
        help="file keeping the deltaLink between runs",
    )
    sync.add_argument("--json", action="store_true", help="print the changes as JSON instead of a table")

    send = verbs.add_parser("send", parents=[common], help="send a message as a mailbox")
    send.add_argument("--from", dest="sender", required=True, help="mailbox to send as")
    send.add_argument("--to", action="append", required=True, help="recipient (repeatable)")
    send.add_argument("--cc", action="append", default=[], help="copy recipient (repeatable)")
    send.add_argument("--bcc", action="append", default=[], help="blind copy recipient (repeatable)")
    send.add_argument("--subject", required=True)
    body = send.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="the body text")
    body.add_argument("--body-file", help="read the body from this file (- for standard input)")
    send.add_argument("--html", action="store_true", help="the body is HTML")
    send.add_argument("--attach", action="append", default=[], metavar="FILE", help="attach a file (repeatable)")
    send.add_argument("--no-save", action="store_true", help="do not keep a copy in Sent Items")


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ClientSettings:
    """ClientSettings from flags over (emulator facts | environment over profile)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if args.emulator is not None:
        state = Path(args.emulator).expanduser() if args.emulator else default_state_dir(environ)
        facts = read_connection(state)
        try:
            values.update(emulator_values(facts, app_id=args.client_id))
        except ConfigError:
            if args.client_id is None:
                raise
            # An app made after start-up is not in connection.json: take the emulator's place, not its secret.
            values.update(emulator_values(facts))
            values.pop("client_secret", None)
    else:
        path = Path(args.profile_file).expanduser() if args.profile_file else default_profile_file(environ)
        if args.profile and path is None:
            raise ConfigError(f"--profile {args.profile}: no profile file (~/.config/m365-mock/client.toml)")
        if path is not None:
            if args.profile or args.profile_file:
                values.update(profile_values(path, args.profile or "default"))
            else:
                try:
                    values.update(profile_values(path, "default"))
                except ConfigError as exc:
                    if "is not in" not in str(exc):  # a default file without a default profile is fine
                        raise
        values.update(env_values(environ))
    for flag, field in FLAG_FIELDS.items():
        if getattr(args, flag, None) is not None:
            values[field] = getattr(args, flag)
    return ClientSettings.from_values(values)


def _table(rows: list[list[str]], headers: list[str], out: TextIO) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip(), file=out)


def _received(message: dict[str, Any]) -> str:
    value = str(message.get("receivedDateTime") or "")
    return value[:16].replace("T", " ") if value else ""


def _sender(message: dict[str, Any]) -> str:
    address = (message.get("from") or message.get("sender") or {}).get("emailAddress") or {}
    return str(address.get("address") or address.get("name") or "")


def _subject(message: dict[str, Any], width: int = 60) -> str:
    subject = " ".join(str(message.get("subject") or "").split())
    return subject if len(subject) <= width else subject[: width - 1] + "…"


def cmd_token(args: argparse.Namespace, settings: ClientSettings, out: TextIO) -> int:
    from m365_mock.client.auth import TokenProvider

    provider = TokenProvider(settings)
    if args.claims:
        print(json.dumps(provider.claims(), indent=2, sort_keys=True), file=out)
    else:
        print(provider.token(), file=out)
    return 0


def cmd_folders(args: argparse.Namespace, settings: ClientSettings, out: TextIO) -> int:
    from m365_mock.client.mail import MailClient

    with MailClient(settings) as mail:
        folders = mail.folders(args.mailbox)
    rows = [
        [f.get("displayName", ""), str(f.get("totalItemCount", "")), str(f.get("unreadItemCount", ""))] for f in folders
    ]
    _table(rows, ["name", "total", "unread"], out)
    return 0


def cmd_fetch(args: argparse.Namespace, settings: ClientSettings, out: TextIO) -> int:
    from m365_mock.client.mail import WELL_KNOWN_FOLDERS, MailClient

    if args.top <= 0:
        raise ConfigError("--top must be a positive number")
    with MailClient(settings) as mail:
        listed = list(
            mail.messages(
                args.mailbox,
                folder=args.folder,
                unread=True if args.unread else None,
                top=min(args.top, 100),
                limit=args.top,
                select=None if args.json else (*TABLE_SELECT, "internetMessageId") if args.save_mime else TABLE_SELECT,
            )
        )
        destination = None
        if args.move_to and listed:
            wanted = args.move_to.strip()
            destination = wanted.lower() if wanted.lower() in WELL_KNOWN_FOLDERS else None
            destination = destination or str(mail.ensure_folder(args.mailbox, wanted)["id"])
        processed = []
        folder = _mime_folder(args.save_mime) if args.save_mime else None
        for message in listed:  # listed first, then processed: each message exactly once
            if folder is not None:
                _save_mime(folder, message, mail.mime(args.mailbox, message["id"]))
            if args.mark_read and not message.get("isRead"):
                message = mail.mark_read(args.mailbox, message["id"])
            if destination:
                message = mail.move(args.mailbox, message["id"], destination, create=False)
            processed.append(message)
    if args.json:
        print(json.dumps(processed, indent=2), file=out)
    else:
        rows = [[_received(m), _sender(m), _subject(m), "yes" if m.get("isRead") else "no"] for m in processed]
        _table(rows, ["received", "from", "subject", "read"], out)
    return 0


def _mime_folder(name: str) -> Path:
    folder = Path(name).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--save-mime {name}: cannot make the folder ({exc.strerror})") from None
    return folder


def _save_mime(folder: Path, message: dict[str, Any], mime: bytes) -> None:
    """`<internetMessageId>.eml` (its id when it has none), with characters a file name cannot hold replaced."""
    key = (message.get("internetMessageId") or message["id"]).strip("<>")
    name = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in key)[:200]
    (folder / f"{name}.eml").write_bytes(mime)


def cmd_send(args: argparse.Namespace, settings: ClientSettings, out: TextIO) -> int:
    from m365_mock.client.mail import MailClient

    try:
        if args.body_file == "-":
            body = sys.stdin.read()
        elif args.body_file:
            body = Path(args.body_file).read_text(encoding="utf-8")
        else:
            body = args.body
        for path in args.attach:
            if not Path(path).is_file():
                raise ConfigError(f"--attach {path}: no such file")
    except OSError as exc:
        raise ConfigError(f"--body-file {args.body_file}: {exc.strerror or exc}") from None
    try:
        with MailClient(settings) as mail:
            mail.send(
                args.sender,
                to=args.to,
                cc=args.cc,
                bcc=args.bcc,
                subject=args.subject,
                body=body,
                html=args.html,
                attachments=args.attach,
                save_to_sent=not args.no_save,
            )
    except ValueError as exc:  # a malformed address
        raise ConfigError(str(exc)) from None
    recipients = len(args.to) + len(args.cc) + len(args.bcc)
    print(f"sent as {args.sender} to {recipients} recipient(s)", file=out)
    return 0


def cmd_sync(args: argparse.Namespace, settings: ClientSettings, out: TextIO) -> int:
    """A delta round from the deltaLink in --state (or from the start), the new link written back only after the
    whole round came in, so an interrupted round is run again, never skipped."""
    from m365_mock.client.mail import MailClient

    state = Path(args.state).expanduser()
    link = _read_state(state, args.mailbox, args.folder)
    with MailClient(settings) as mail:
        changes, new_link = mail.sync(args.mailbox, args.folder, link)
    record = {"mailbox": args.mailbox, "folder": args.folder, "deltaLink": new_link}
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        temporary = state.with_name(state.name + ".tmp")
        temporary.write_text(json.dumps(record, indent=2) + "\n")
        temporary.replace(state)
    except OSError as exc:
        raise ConfigError(f"--state {args.state}: cannot write it ({exc.strerror})") from None
    if args.json:
        print(json.dumps(changes, indent=2), file=out)
    else:
        rows = [["removed" if "@removed" in m else "changed", _received(m), _sender(m), _subject(m)] for m in changes]
        _table(rows, ["change", "received", "from", "subject"], out)
    return 0


def _read_state(state: Path, mailbox: str, folder: str) -> str | None:
    """The deltaLink a previous run kept for this mailbox and folder; None for a first run (no file)."""
    if not state.exists():
        return None
    try:
        record = json.loads(state.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--state {state}: not a state file this command wrote ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("deltaLink"), str):
        raise ConfigError(f"--state {state}: not a state file this command wrote (no deltaLink)")
    if (record.get("mailbox"), record.get("folder")) != (mailbox, folder):
        raise ConfigError(
            f"--state {state} keeps the round of {record.get('mailbox')} {record.get('folder')}, "
            f"not of {mailbox} {folder}"
        )
    return str(record["deltaLink"])


COMMANDS = {"token": cmd_token, "folders": cmd_folders, "fetch": cmd_fetch, "sync": cmd_sync, "send": cmd_send}


def main(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run a parsed `client` command; 0 done, 1 refused by the service, 2 configuration problem."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        settings = settings_from_args(args)
        return COMMANDS[args.client_command](args, settings, out)
    except ConfigError as exc:
        print(f"error: config: {exc}", file=err)
        return 2
    except AuthError as exc:
        print(f"error: {exc.error}: {exc.message}", file=err)
        return 1
    except GraphError as exc:
        print(f"error: {exc.code}: {exc.message}", file=err)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="m365-mock client", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """`python -m client.cli ...` (the same as `m365-mock client ...`)."""
    return main(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
