"""The Emulator model: everything one running emulator holds (tenant world, mail, clock, keys, request log).

No Flask here: the app serves an Emulator, the tools and tests build one directly.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m365_mock.clock import Clock
from m365_mock.identity.keys import SigningKey
from m365_mock.identity.tokens import TokenIssuer, TokenVerifier
from m365_mock.state.content import seed_mailboxes
from m365_mock.state.directory import Directory
from m365_mock.state.faults import FaultBook
from m365_mock.state.mailstore import MailStore, OutboundMail
from m365_mock.state.requestlog import RequestLog
from m365_mock.state.tenantfile import LoadedWorld, MailboxContent, Settings, dump_world, load_world
from m365_mock.state.throttling import Throttle
from m365_mock.state.uploads import UploadSessions
from m365_mock.ui.session import DashboardSessions


def new_admin_key() -> str:
    """A random admin key; never starting with '-', so `--admin-key KEY` is not taken for an option."""
    key = secrets.token_urlsafe(24)
    while key.startswith("-"):
        key = secrets.token_urlsafe(24)
    return key


@dataclass
class Emulator:
    """Everything one running emulator holds: the tenant world, its mail, its clock, and its keys."""

    directory: Directory
    settings: Settings
    clock: Clock
    signing_key: SigningKey
    issuer: TokenIssuer
    verifier: TokenVerifier
    mail: MailStore
    admin_key: str
    log: RequestLog
    initial: tuple[dict[str, Any], list[MailboxContent]] = ((), [])  # type: ignore[assignment]
    initial_outbound: list[OutboundMail] = field(default_factory=list)
    uploads: UploadSessions = field(default_factory=UploadSessions)
    faults: FaultBook = field(default_factory=FaultBook)
    sessions: DashboardSessions = field(default_factory=DashboardSessions)
    # The CA certificate the served TLS certificate chains to (the dashboard offers it); None over plain HTTP.
    ca_file: Path | None = None
    # Signs message delta's state tokens; made at start, so tokens of an earlier run are not this run's.
    delta_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    throttle: Throttle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.throttle = Throttle(lambda: self.settings.throttling, self.clock.now)

    def load(self, world: LoadedWorld) -> None:
        """Make `world` the emulator's world: its tenants, settings, mail, outbound log and fault rules (counted
        from zero); the log starts over."""
        self.mail.reset()
        self.uploads.clear()
        self.throttle.clear()
        self.directory.replace_with(world.directory)
        self.settings.__dict__.update(world.settings.__dict__)
        self.issuer.lifetime = world.settings.token_lifetime
        seed_mailboxes(self.mail, world.mail, self.mail.now())
        self.mail.restore_outbound(world.outbound)
        self.faults.replace(world.faults)
        self.log.clear()

    def reset(self) -> None:
        """Back to the world loaded at start-up (the same ids and secrets, the start-up mail)."""
        data, mail = self.initial
        world = load_world(data)
        by_key = {c.mailbox.store_key: c for c in mail}
        world.mail = []
        for tenant in world.directory.tenants:
            for mailbox in tenant.mailboxes.values():
                content = by_key.get(mailbox.store_key)
                if content is not None:
                    world.mail.append(
                        MailboxContent(
                            mailbox, content.messages, content.generate, state=content.state, where=content.where
                        )
                    )
        world.outbound = list(self.initial_outbound)
        self.load(world)
        self.clock.reset()

    @classmethod
    def build(
        cls,
        world: LoadedWorld,
        *,
        signing_key: SigningKey | None = None,
        clock: Clock | None = None,
        admin_key: str | None = None,
    ) -> Emulator:
        clock = clock or Clock()
        signing_key = signing_key or SigningKey.generate()
        emulator = cls(
            directory=world.directory,
            settings=world.settings,
            clock=clock,
            signing_key=signing_key,
            issuer=TokenIssuer(signing_key, clock, world.settings.token_lifetime),
            verifier=TokenVerifier(signing_key, clock, world.directory),
            mail=MailStore(lambda: clock.now_datetime().replace(microsecond=0)),
            admin_key=admin_key or new_admin_key(),
            log=RequestLog(),
            faults=FaultBook(world.faults),
        )
        emulator.initial = (dump_world(world.directory, world.settings, faults=world.faults), list(world.mail))
        emulator.initial_outbound = list(world.outbound)
        return emulator
