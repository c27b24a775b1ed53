"""The mail of every mailbox together: delivery of sent mail to the tenant's mailboxes, and the outbound log."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from m365_mock.ids import new_uuid, random_bytes
from m365_mock.state.directory import Mailbox, Tenant
from m365_mock.state.mailstore.attachments import FILE, Attachment
from m365_mock.state.mailstore.messages import _ID_PREFIX_MESSAGE, Message, _clone, _graph_id, recipient
from m365_mock.state.mailstore.store import MailboxStore, MailJournal


@dataclass
class OutboundMail:
    """A message sent to recipients outside every tenant of the emulator (the mail catcher)."""

    sent: datetime
    sender: str
    recipients: list[str]
    subject: str
    body_type: str
    body_content: str
    internet_message_id: str
    to: list[dict[str, Any]]
    cc: list[dict[str, Any]]
    bcc: list[dict[str, Any]]
    # What it carried: {name, content_type, size, sha256} each (sha256 of a file's bytes; None for other kinds).
    attachments: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0  # its place in the outbound log, set when the log takes it


@dataclass
class SendResult:
    internet_message_id: str
    delivered_to: list[str]
    external: list[str]
    sent_copy: Message | None


class MailStore:
    """The mail of every mailbox of the emulator, and the outbound log."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._now = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], MailboxStore] = {}
        self._outbound: list[OutboundMail] = []
        self.journal: MailJournal | None = None

    def now(self) -> datetime:
        return self._now()

    def reset(self) -> None:
        """Drop every mailbox's mail and the outbound log."""
        with self._lock:
            self._stores.clear()
            self._outbound.clear()
            if self.journal is not None:
                self.journal.everything_changed()

    def forget(self, mailbox: Mailbox) -> None:
        with self._lock:
            self._stores.pop(mailbox.store_key, None)
            if self.journal is not None:
                self.journal.mailbox_dropped(mailbox.store_key)

    def existing(self, mailbox: Mailbox) -> MailboxStore | None:
        """The mailbox's store if it has one (nothing is made)."""
        return self._stores.get(mailbox.store_key)

    def stores(self) -> list[MailboxStore]:
        with self._lock:
            return list(self._stores.values())

    def adopt(self, store: MailboxStore) -> None:
        """Take a store rebuilt from stored state in place of the mailbox's current one.

        The journal hears of it whole: the mailbox's old rows go, then every folder and message of the store.
        """
        store.journal, store._now = self.journal, self._now
        with self._lock:
            self._stores[store.key] = store
            journal = self.journal
            if journal is not None:
                with store.lock:
                    journal.mailbox_dropped(store.key)
                    for folder in store.folders.values():
                        journal.folder_changed(store.key, folder)
                    for message in store.immutable.values():
                        journal.message_changed(store.key, message)

    def restore_outbound(self, records: Iterable[OutboundMail]) -> None:
        with self._lock:
            for caught in records:
                self._catch(caught)

    def _catch(self, caught: OutboundMail) -> None:
        """Append to the outbound log (under `_lock`): its place in the log is its `seq`."""
        caught.seq = len(self._outbound) + 1
        self._outbound.append(caught)
        if self.journal is not None:
            self.journal.outbound_added(caught)

    def store(self, mailbox: Mailbox) -> MailboxStore:
        """The mailbox's store, created with its well-known folders on first use.

        Stores are filed per tenant and mailbox id: two tenants never share mail, whatever ids they use.
        """
        key = mailbox.store_key
        if not key[0]:
            raise ValueError(f"mailbox {mailbox.address} belongs to no tenant")
        store = self._stores.get(key)
        if store is None:
            with self._lock:
                store = self._stores.get(key)
                if store is None:
                    store = self._stores[key] = MailboxStore(mailbox, self._now, self.journal)
        return store

    def outbound(self) -> list[OutboundMail]:
        with self._lock:
            return list(self._outbound)

    def send(self, tenant: Tenant, sender: Mailbox, fields: dict[str, Any], save_to_sent: bool) -> SendResult:
        """Submit a message from `sender`: a copy in Sent Items, one in each internal recipient's Inbox.

        The message keeps the Internet message id and conversation `fields` give (a draft's, a reply's thread);
        others are made. Attachments arrive in every copy with the same bytes.

        Recipients are matched to mailboxes by address or alias ignoring case; a mail-enabled group expands to
        its members (nested groups too). Other addresses go to the outbound log. Each mailbox receives one copy
        however often it is addressed. Access policies do not apply: they limit API access, not mail flow.
        """
        now = self._now()
        domain = sender.address.split("@", 1)[1]
        internet_message_id = fields.get("internet_message_id") or f"<{new_uuid().replace('-', '').upper()}@{domain}>"
        sender_recipient = recipient(sender.address, sender.display_name)
        content = {
            **fields,
            "sender": sender_recipient,
            "from_": _clone(sender_recipient),
            "internet_message_id": internet_message_id,
            "conversation_id": fields.get("conversation_id") or _graph_id(_ID_PREFIX_MESSAGE, sender.id),
            "conversation_index": fields.get("conversation_index")
            or base64.b64encode(random_bytes(22)).decode("ascii"),
            "sent": now,
            "received": now,
            "is_draft": False,
        }
        targets: dict[str, Mailbox] = {}
        external: list[str] = []
        for entry in [*content.get("to", []), *content.get("cc", []), *content.get("bcc", [])]:
            address = entry["emailAddress"]["address"]
            members = resolve_recipient(tenant, address)
            if members is None and address.lower() not in (e.lower() for e in external):
                external.append(address)
            for member in members or []:
                targets.setdefault(member.id, member)
        sent_copy = None
        if save_to_sent:
            sender_store = self.store(sender)
            sent_copy = sender_store.add_message(
                sender_store.well_known["sentitems"], **_clone_fields(content), is_read=True
            )
        for mailbox in targets.values():
            store = self.store(mailbox)
            delivered = _clone_fields(content)
            delivered["bcc"] = []
            store.add_message(store.well_known["inbox"], **delivered, is_read=False)
        if external:
            caught = OutboundMail(
                sent=now,
                sender=sender.address,
                recipients=external,
                subject=content.get("subject", ""),
                body_type=content.get("body_type", "html"),
                body_content=content.get("body_content", ""),
                internet_message_id=internet_message_id,
                to=_clone(content.get("to", [])),
                cc=_clone(content.get("cc", [])),
                bcc=_clone(content.get("bcc", [])),
                attachments=[attachment_summary(a) for a in content.get("attachments", [])],
            )
            with self._lock:
                self._catch(caught)
        return SendResult(internet_message_id, [m.address for m in targets.values()], external, sent_copy)


def attachment_summary(attachment: Attachment) -> dict[str, Any]:
    """What the outbound log keeps of an attachment: its name, type, size and (a file's) SHA-256."""
    digest = hashlib.sha256(attachment.content).hexdigest() if attachment.kind == FILE else None
    return {"name": attachment.name, "content_type": attachment.content_type, "size": attachment.size, "sha256": digest}


def _clone_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: _clone(v) for k, v in fields.items()}


def resolve_recipient(tenant: Tenant, address: str) -> list[Mailbox] | None:
    """The tenant's mailboxes an address delivers to (a group expands to its members), or None if external."""
    mailbox = tenant.mailbox(address)
    if mailbox is not None:
        return [mailbox]
    group = tenant.group(address) if "@" in address else None
    if group is None or group.address.lower() != address.strip().lower():
        return None
    members = tenant.group_members(group, nested=True)
    return [box for box in tenant.mailboxes.values() if box.id in members]
