"""The world kept on disk (`serve --persist`): an SQLite file in the state folder, written in the background.

Every change to the mail is noted as it happens (a dictionary entry, under a lock of its own: nothing on the
request path touches the disk). A writer thread turns what was noted into one transaction every
`interval` seconds, reading each changed message's state under its mailbox's lock, and writes the directory
(tenants, rules, settings) again whenever a tenant's published version or a setting changed. A `kill -9` loses
at most the changes of the last interval; a clean stop writes everything first.

Messages, folders and mailboxes are rows, so a change costs a few rows whatever the mailbox size. The records
are `mailstate`'s, so the world read back is the tenant-file world an export would give.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from m365_mock.state.directory import Directory
from m365_mock.state.faults import FaultBook
from m365_mock.state.mailstate import dump_mail, folder_record, message_record, outbound_record, paused_gc
from m365_mock.state.mailstore import Folder, MailStore, Message, OutboundMail
from m365_mock.state.tenantfile import LoadedWorld, Settings, dump_world, load_world

log = logging.getLogger("m365_mock.persistence")

FORMAT = "1"
DEFAULT_INTERVAL = 0.5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mailboxes (tenant TEXT, mailbox TEXT, next_seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, mailbox));
CREATE TABLE IF NOT EXISTS folders (tenant TEXT, mailbox TEXT, id TEXT, position INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (tenant, mailbox, id));
CREATE TABLE IF NOT EXISTS messages (tenant TEXT, mailbox TEXT, seq INTEGER, data TEXT NOT NULL,
    PRIMARY KEY (tenant, mailbox, seq));
CREATE TABLE IF NOT EXISTS outbound (position INTEGER PRIMARY KEY, data TEXT NOT NULL);
"""

MailboxKey = tuple[str, str]


class PersistenceError(RuntimeError):
    """The world file cannot be opened, read or written; the message names the file."""


def _json(value: Any) -> str:
    """Compact JSON in ASCII: any text a client sent (a lone surrogate too) goes into the file as it came."""
    return json.dumps(value, separators=(",", ":"))


class WorldFile:
    """The SQLite file that holds one emulator's world."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            stored = self._meta("format")
        except sqlite3.Error as exc:
            raise PersistenceError(f"{path}: cannot open the world file: {exc}") from None
        if stored not in (None, FORMAT):
            raise PersistenceError(f"{path}: written in format {stored}; this version reads format {FORMAT}")
        self._lock = threading.Lock()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def holds_world(self) -> bool:
        return self._meta("world") is not None

    def read(self) -> dict[str, Any]:
        """The kept world as tenant-file data: directory, settings, each mailbox's `mail`, and `outbound`."""
        with paused_gc():
            return self._read()

    def _read(self) -> dict[str, Any]:
        try:
            world = json.loads(self._meta("world") or "{}")
            mail: dict[MailboxKey, dict[str, Any]] = {}
            for tenant, mailbox, next_seq in self._db.execute("SELECT tenant, mailbox, next_seq FROM mailboxes"):
                mail[(tenant, mailbox)] = {"next_seq": next_seq, "folders": [], "messages": []}
            for tenant, mailbox, data in self._db.execute(
                "SELECT tenant, mailbox, data FROM folders ORDER BY tenant, mailbox, position"
            ):
                if (tenant, mailbox) in mail:
                    mail[(tenant, mailbox)]["folders"].append(json.loads(data))
            for tenant, mailbox, data in self._db.execute(
                "SELECT tenant, mailbox, data FROM messages ORDER BY tenant, mailbox, seq"
            ):
                if (tenant, mailbox) in mail:
                    mail[(tenant, mailbox)]["messages"].append(json.loads(data))
            outbound = [json.loads(d) for (d,) in self._db.execute("SELECT data FROM outbound ORDER BY position")]
        except (sqlite3.Error, ValueError) as exc:
            raise PersistenceError(f"{self.path}: cannot read the world file: {exc}") from None
        for tenant in world.get("tenants", []):
            for mailbox in tenant.get("mailboxes", []):
                state = mail.get((tenant.get("id"), mailbox.get("id")))
                if state is not None:
                    mailbox["mail"] = state
        if outbound:
            world["outbound"] = outbound
        return world

    def write(self, batch: Batch) -> None:
        """One transaction: all of the batch, or (on failure) none of it."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN")
                if batch.rewrite:
                    for table in ("mailboxes", "folders", "messages", "outbound"):
                        db.execute(f"DELETE FROM {table}")
                if batch.world is not None:
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('world', ?)", (batch.world,))
                for tenant, mailbox in batch.dropped:
                    for table in ("mailboxes", "folders", "messages"):
                        db.execute(f"DELETE FROM {table} WHERE tenant = ? AND mailbox = ?", (tenant, mailbox))
                db.executemany("INSERT OR REPLACE INTO mailboxes VALUES (?, ?, ?)", batch.mailboxes)
                db.executemany("INSERT OR REPLACE INTO folders VALUES (?, ?, ?, ?, ?)", batch.folders)
                db.executemany("INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?)", batch.messages)
                db.executemany("INSERT OR REPLACE INTO outbound VALUES (?, ?)", batch.outbound)
                db.execute("COMMIT")
            except Exception as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise PersistenceError(f"{self.path}: cannot write the world file: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Batch:
    """Rows for one transaction."""

    def __init__(self) -> None:
        self.rewrite = False
        self.world: str | None = None
        self.dropped: list[MailboxKey] = []
        self.mailboxes: list[tuple[str, str, int]] = []
        self.folders: list[tuple[str, str, str, int, str]] = []
        self.messages: list[tuple[str, str, int, str]] = []
        self.outbound: list[tuple[int, str]] = []  # (its place in the outbound log, the record)

    def __bool__(self) -> bool:
        return bool(
            self.rewrite
            or self.world is not None
            or self.dropped
            or self.mailboxes
            or self.folders
            or self.messages
            or self.outbound
        )


class Persistence:
    """Keeps `mail` and the world `describe_world()` gives in `file`, after every change (the mail's journal).

    `world_version()` is cheap and changes whenever the directory or the settings change; `describe_world()`
    gives them as tenant-file data (without mail) and is called only then.
    """

    def __init__(
        self,
        file: WorldFile,
        mail: MailStore,
        *,
        describe_world: Callable[[], dict[str, Any]],
        world_version: Callable[[], Any],
        interval: float = DEFAULT_INTERVAL,
        holds_it_already: bool = False,
    ) -> None:
        self.file, self.mail = file, mail
        self.describe_world, self.world_version = describe_world, world_version
        self.interval = interval
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        # A world just read from `file` is not written again; any other is written whole first.
        self._rewrite = not holds_it_already
        self._messages: dict[MailboxKey, dict[str, Message]] = {}
        self._folders: dict[MailboxKey, dict[str, Folder]] = {}
        self._dropped: set[MailboxKey] = set()
        self._outbound: list[OutboundMail] = []
        self._written_version: Any = world_version() if holds_it_already else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: Exception | None = None

    # ------------------------------------------------------------ the journal (called on the request path)

    def message_changed(self, key: MailboxKey, message: Message) -> None:
        with self._lock:
            self._messages.setdefault(key, {})[message.immutable_id] = message

    def folder_changed(self, key: MailboxKey, folder: Folder) -> None:
        with self._lock:
            self._folders.setdefault(key, {})[folder.id] = folder

    def mailbox_dropped(self, key: MailboxKey) -> None:
        with self._lock:
            self._messages.pop(key, None)
            self._folders.pop(key, None)
            self._dropped.add(key)

    def outbound_added(self, mail: OutboundMail) -> None:
        with self._lock:
            self._outbound.append(mail)

    def everything_changed(self) -> None:
        with self._lock:
            self._rewrite = True
            self._messages.clear()
            self._folders.clear()
            self._dropped.clear()
            self._outbound.clear()

    # ------------------------------------------------------------ writing

    def start(self) -> None:
        """Listen to the mail and write in the background from now on (the first write holds everything)."""
        self.mail.journal = self
        for store in self.mail.stores():
            store.journal = self
        self._thread = threading.Thread(target=self._run, name="m365-persist", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:  # the writer never dies: what failed is kept and written next time
                self.failure = exc if isinstance(exc, PersistenceError) else PersistenceError(str(exc))
                log.error("%s (changes are kept in memory and retried)", self.failure)

    def flush(self) -> None:
        """Write what changed since the last flush, now, in one transaction."""
        with self._flushing:
            with self._lock:
                rewrite, self._rewrite = self._rewrite, False
                messages, self._messages = self._messages, {}
                folders, self._folders = self._folders, {}
                dropped, self._dropped = self._dropped, set()
                outbound, self._outbound = self._outbound, []
            try:
                batch = self._batch(rewrite, messages, folders, dropped, outbound)
                if batch:
                    self.file.write(batch)
            except BaseException:
                with self._lock:  # nothing is lost: the next flush writes it again
                    self._rewrite = self._rewrite or rewrite
                    for key, changed in messages.items():
                        self._messages.setdefault(key, {}).update(changed)
                    for key, changed_folders in folders.items():
                        self._folders.setdefault(key, {}).update(changed_folders)
                    self._dropped |= dropped
                    self._outbound[:0] = outbound
                    self._written_version = None
                raise

    def _batch(
        self,
        rewrite: bool,
        messages: dict[MailboxKey, dict[str, Message]],
        folders: dict[MailboxKey, dict[str, Folder]],
        dropped: set[MailboxKey],
        outbound: list[OutboundMail],
    ) -> Batch:
        batch = Batch()
        version = self.world_version()
        if rewrite or version != self._written_version:
            batch.world = _json(self.describe_world())
            self._written_version = version
        if rewrite:
            batch.rewrite = True
            for store in self.mail.stores():
                self._whole_store(batch, store.key, dump_mail(store))
            outbound = self.mail.outbound()
        batch.dropped = sorted(dropped)
        stores = {store.key: store for store in self.mail.stores()}
        for key in set(messages) | set(folders):
            changed = stores.get(key)
            if changed is None or rewrite:
                continue
            store = changed
            with store.lock:
                positions = {folder_id: i for i, folder_id in enumerate(store.folders)}
                for folder in folders.get(key, {}).values():
                    batch.folders.append((*key, folder.id, positions.get(folder.id, 0), _json(folder_record(folder))))
                for message in messages.get(key, {}).values():
                    batch.messages.append((*key, message.seq, _json(message_record(message))))
                batch.mailboxes.append((*key, store.next_seq))
        batch.outbound = [(m.seq, _json(outbound_record(m))) for m in outbound]
        return batch

    def _whole_store(self, batch: Batch, key: MailboxKey, state: dict[str, Any]) -> None:
        batch.mailboxes.append((*key, state["next_seq"]))
        for position, record in enumerate(state["folders"]):
            batch.folders.append((*key, record["id"], position, _json(record)))
        for record in state["messages"]:
            batch.messages.append((*key, record["seq"], _json(record)))

    def close(self) -> None:
        """Stop the writer after a last flush (a clean stop keeps every change)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
        finally:
            self.mail.journal = None
            for store in self.mail.stores():
                store.journal = None
            self.file.close()


WORLD_FILE = "world.sqlite"


def read_kept_world(path: Path) -> LoadedWorld | None:
    """The world kept in `path`, loaded as an import would load it; None when there is none yet."""
    if not path.exists():
        return None
    file = WorldFile(path)
    try:
        if not file.holds_world():
            return None
        data = file.read()
    finally:
        file.close()
    return load_world(data, mail_written_here=True)


class WorldKeeper:
    """Keeps one emulator's world (directory, settings, mail, fault rules) in `path`, from `start` to `stop`.

    `write_now` writes the whole world at once (before serving, so the file holds the world from the first
    answer on); `start` and `stop` run in the process that holds the world and serves it. A world `restored`
    from `path`, or written by `write_now`, is not written whole again.
    """

    def __init__(
        self,
        directory: Directory,
        settings: Settings,
        mail: MailStore,
        path: Path,
        *,
        restored: bool,
        faults: FaultBook | None = None,
    ) -> None:
        self.directory, self.settings, self.mail, self.path = directory, settings, mail, path
        self.faults = faults or FaultBook()
        self.restored = restored
        self.persistence: Persistence | None = None

    def world_version(self) -> tuple[Any, ...]:
        tenants = tuple((tenant.id, tenant.version) for tenant in self.directory.tenants)
        return tenants, tuple(sorted(self.settings.to_dict().items())), self.faults.version

    def describe_world(self) -> dict[str, Any]:
        """The world without its mail, as tenant-file data."""
        return dump_world(self.directory, self.settings, faults=self.faults.rules)

    def write_now(self) -> None:
        """Write the whole world now, in this thread (before the server forks its worker)."""
        persistence = Persistence(
            WorldFile(self.path),
            self.mail,
            describe_world=self.describe_world,
            world_version=self.world_version,
        )
        try:
            persistence.flush()
        finally:
            persistence.file.close()
        self.restored = True

    def start(self) -> None:
        self.persistence = Persistence(
            WorldFile(self.path),
            self.mail,
            describe_world=self.describe_world,
            world_version=self.world_version,
            holds_it_already=self.restored,
        )
        self.persistence.start()

    def stop(self) -> None:
        if self.persistence is not None:
            self.persistence.close()
            self.persistence = None
