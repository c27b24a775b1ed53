"""Shared fixtures: an in-process app on the demo tenant (Flask test client) and a real served emulator."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from m365_mock.app import create_app
from m365_mock.clock import Clock
from m365_mock.emulator import Emulator
from m365_mock.identity.keys import SigningKey
from m365_mock.state.directory import GRAPH_RESOURCE, Application, Tenant
from m365_mock.state.mailstore import Message, recipient
from m365_mock.state.tenantfile import load_demo_world
from m365_mock.tools.process import RunningEmulator, start_emulator
from tests.helpers import ADMIN_KEY, Admin, GraphClient, issue_token

# The suite starts hundreds of Python processes (emulators, CLI runs, pytest runs) that import the package: let
# them keep its compiled modules, as an installed package has them, even where the machine sets
# PYTHONDONTWRITEBYTECODE (each start would otherwise compile the whole package again, about 0.15 s).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@functools.cache
def shared_signing_key() -> SigningKey:
    """One token-signing key per test run: RSA key generation is the slow part of building an app."""
    return SigningKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def empty_demo_world():
    """The demo tenant without its sample mail and its access policy: empty mailboxes the demo app may all reach.

    Tests of access control start from `load_demo_world()` itself or add their own rules.
    """
    world = load_demo_world()
    world.mail = []
    for tenant in world.directory.tenants:
        tenant.rules.policies.clear()
    return world


@pytest.fixture
def app(clock: Clock):
    flask_app = create_app(empty_demo_world(), signing_key=shared_signing_key(), clock=clock, admin_key=ADMIN_KEY)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def emulator(app) -> Emulator:
    return app.extensions["m365"]


@pytest.fixture
def tenant(emulator: Emulator) -> Tenant:
    return emulator.directory.tenants[0]


@pytest.fixture
def demo_app(tenant: Tenant) -> Application:
    return next(iter(tenant.applications.values()))


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[RunningEmulator]:
    """The real `m365-mock serve` (granian, HTTPS) on the demo tenant, shared by the tests of a session."""
    with start_emulator(tmp_path_factory.mktemp("served-state")) as running:
        yield running


@pytest.fixture
def token_for(emulator, tenant) -> Callable[..., str]:
    """A token for a new app in the demo tenant holding exactly `permissions`."""
    return lambda *permissions, consent=True: issue_token(emulator, tenant, list(permissions), consent=consent)


@pytest.fixture
def graph(client, emulator, tenant, demo_app) -> GraphClient:
    """Graph as the demo app (Mail.ReadWrite + Mail.Send)."""
    return GraphClient(client, emulator.issuer.issue(tenant, demo_app, GRAPH_RESOURCE, "1").access_token)


@pytest.fixture
def graph_as(client, token_for) -> Callable[..., GraphClient]:
    return lambda *permissions, consent=True: GraphClient(client, token_for(*permissions, consent=consent))


@pytest.fixture
def deliver(emulator, tenant) -> Callable[..., Message]:
    """Put a received message into a mailbox folder directly, as if mail had arrived from outside."""

    def put(address: str, folder: str = "inbox", **fields: Any) -> Message:
        mailbox = tenant.mailbox(address)
        store = emulator.mail.store(mailbox)
        fields.setdefault("subject", "Hello")
        fields.setdefault("body_type", "html")
        fields.setdefault("body_content", "<html><body><p>Hi there</p></body></html>")
        sender = fields.pop("sender_address", "customer@example.org")
        fields.setdefault("from_", recipient(sender, "A Customer"))
        fields.setdefault("sender", recipient(sender, "A Customer"))
        fields.setdefault("to", [recipient(mailbox.address, mailbox.display_name)])
        fields.setdefault("sent", emulator.mail.now())
        return store.add_message(store.folder(folder), **fields)

    return put


@pytest.fixture
def admin(client) -> Admin:
    """The control API with the admin key, for the demo tenant."""
    return Admin(client)
