"""Generated mail content: Faker with a fixed seed, drawn from prepared pools so that filling a mailbox with
100,000 messages takes seconds, not minutes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from m365_mock.state.mailstate import paused_gc, restore_mail
from m365_mock.state.mailstore import Folder, MailboxStore, MailStore, recipient
from m365_mock.state.tenantfile import MailboxContent

POOL_SIZE = 96


@dataclass(frozen=True)
class ContentPools:
    subjects: list[str]
    paragraphs: list[str]
    senders: list[tuple[str, str]]


_pools: dict[int, ContentPools] = {}


def pools(seed: int) -> ContentPools:
    """Subjects, bodies and senders made once per seed with Faker."""
    if seed not in _pools:
        from faker import Faker

        fake = Faker("en_US")
        fake.seed_instance(seed)
        subjects = [fake.sentence(nb_words=6).rstrip(".") for _ in range(POOL_SIZE)]
        paragraphs = [fake.paragraph(nb_sentences=4) for _ in range(POOL_SIZE)]
        senders = []
        for _ in range(POOL_SIZE // 4):
            name = fake.name()
            senders.append((name, f"{name.split()[0].lower()}.{name.split()[-1].lower()}@{fake.free_email_domain()}"))
        _pools[seed] = ContentPools(subjects, paragraphs, senders)
    return _pools[seed]


def generate_messages(
    store: MailboxStore,
    folder: Folder,
    count: int,
    *,
    seed: int = 365,
    now: datetime,
    unread_ratio: float = 0.3,
    spacing: timedelta = timedelta(minutes=7),
) -> list[str]:
    """Fill `folder` with `count` received messages, newest `now`, older ones `spacing` apart; returns ids."""
    content = pools(seed)
    rng = random.Random(seed * 1_000_003 + count)
    # Recipient values are replaced, never changed in place, so generated messages can share them.
    owner = [recipient(store.mailbox.address, store.mailbox.display_name)]
    senders = [recipient(address, name) for name, address in content.senders]
    bodies = [f"<html><body><p>{paragraph}</p></body></html>" for paragraph in content.paragraphs]
    not_flagged = {"flagStatus": "notFlagged"}
    batch: list[dict[str, Any]] = []
    for i in range(count):
        pick = rng.randrange(len(content.senders))
        address = content.senders[pick][1]
        received = now - spacing * (count - 1 - i)
        fields: dict[str, Any] = {
            "subject": content.subjects[rng.randrange(POOL_SIZE)],
            "body_type": "html",
            "body_content": bodies[rng.randrange(POOL_SIZE)],
            "flag": not_flagged,
            "sender": senders[pick],
            "from_": senders[pick],
            "to": owner,
            "is_read": rng.random() >= unread_ratio,
            "importance": "high" if rng.random() < 0.05 else "normal",
            "internet_message_id": f"<{rng.getrandbits(64):016X}.{i}@{address.split('@')[1]}>",
            "sent": received - timedelta(seconds=rng.randrange(1, 90)),
            "received": received,
            "created": received,
            "modified": received,
        }
        batch.append(fields)
    with paused_gc():
        return [message.id for message in store.add_messages(folder, batch)]


def seed_mailboxes(mail: MailStore, contents: list[MailboxContent], now: datetime) -> None:
    """Put a tenant file's messages into their mailboxes; folders named but missing are made under the root."""
    for content in contents:
        if content.state is not None:
            restored, content.store = content.store, None  # a restored store is adopted once, then rebuilt
            if restored is None:
                where = f"{content.where}.mail"
                restored = restore_mail(content.mailbox, mail.now, content.state, where)
            mail.adopt(restored)
            continue
        store = mail.store(content.mailbox)
        if content.generate:
            generate_messages(store, store.well_known["inbox"], content.generate, now=now)
        for seed in content.messages:
            folder = store.well_known.get(seed.folder.lower()) or store.folder_by_name(store.root, seed.folder)
            if folder is None:
                folder = store.create_folder(store.root, seed.folder)
            received = seed.received or now
            sender = recipient(seed.sender[1], seed.sender[0])
            store.add_message(
                folder,
                subject=seed.subject,
                body_type=seed.body_type,
                body_content=seed.body,
                sender=sender,
                from_=dict(sender),
                to=[recipient(address) for address in seed.to],
                is_read=seed.is_read,
                importance=seed.importance,
                categories=list(seed.categories),
                sent=received,
                received=received,
                created=received,
                modified=received,
            )
