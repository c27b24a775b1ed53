"""The SDKs' retry handlers against the emulator's throttling: a 429 with `Retry-After` is waited out and retried.

msgraph-sdk retries 429, 503 and 504 up to three times (POST included), waiting `Retry-After`; O365 retries GETs
through urllib3's `Retry(respect_retry_after_header=True)`, which reads whole seconds only. The limit is scaled
down through the control API (2 requests a window of 2 s), so the third listing is throttled and retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from msgraph import GraphServiceClient

from m365_mock.tools.process import RunningEmulator
from tests.compat.conftest import empty_contoso, seed
from tests.compat.test_msgraph_sdk import with_client
from tests.compat.test_o365 import emulator_account

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]

SUPPORT = "support@contoso.onmicrosoft.com"
WINDOW = 2


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with empty_contoso(tmp_path_factory.mktemp("sdk-retries")) as running:
        seed(running, SUPPORT, {"count": 3})
        yield running


@pytest.fixture
def throttled(emu: RunningEmulator, trust: Callable[[RunningEmulator], Path]) -> Iterator[RunningEmulator]:
    """2 requests per app and mailbox in a window of 2 s, back to the defaults afterwards."""
    trust(emu)
    settings(emu, {"mailboxRequests": 2, "mailboxWindow": WINDOW})
    time.sleep(WINDOW)  # an earlier test's requests leave the window
    try:
        yield emu
    finally:
        settings(emu, {"mailboxRequests": 10_000, "mailboxWindow": 600})


def settings(running: RunningEmulator, throttling: dict) -> None:
    response = requests.patch(
        f"{running.base_url}/_m365/settings",
        headers={"X-M365-Admin-Key": running.facts["admin_key"]},
        json={"throttling": throttling},
        verify=running.ca_file,
        timeout=10,
    )
    assert response.status_code == 200, response.text


def statuses_since(running: RunningEmulator, since: int) -> list[int]:
    """The statuses of the emulator's logged requests on SUPPORT's messages after the first `since` of them."""
    response = requests.get(
        f"{running.base_url}/_m365/log",
        params={"mailbox": SUPPORT},
        headers={"X-M365-Admin-Key": running.facts["admin_key"]},
        verify=running.ca_file,
        timeout=10,
    )
    records = [r for r in response.json()["value"] if "/messages" in r["path"]]
    return [r["status"] for r in records[since:]]


def test_msgraph_sdk_waits_out_retry_after_and_succeeds(throttled: RunningEmulator) -> None:
    """The retry handler is transport middleware, below the client: the emulator's request log shows its tries."""
    before = len(statuses_since(throttled, 0))

    async def work(client: GraphServiceClient) -> list[int]:
        counts = []
        for _ in range(3):
            page = await client.users.by_user_id(SUPPORT).messages.get()
            assert page is not None and page.value is not None
            counts.append(len(page.value))
        return counts

    started = time.monotonic()
    assert with_client(throttled, work) == [3, 3, 3]
    statuses = statuses_since(throttled, before)
    assert statuses[:2] == [200, 200] and 429 in statuses and statuses[-1] == 200, statuses
    assert time.monotonic() - started >= 1, "the SDK waited Retry-After before retrying"


def test_o365_waits_out_retry_after_and_succeeds(throttled: RunningEmulator) -> None:
    account = emulator_account(throttled)
    assert account.authenticate() is True
    before = len(statuses_since(throttled, 0))
    mailbox = account.mailbox(resource=SUPPORT)
    started = time.monotonic()
    counts = [len(list(mailbox.get_messages(limit=10))) for _ in range(3)]
    assert counts == [3, 3, 3]
    assert time.monotonic() - started >= 1, "urllib3 waited Retry-After before retrying"
    statuses = statuses_since(throttled, before)
    assert statuses[:2] == [200, 200] and 429 in statuses and statuses[-1] == 200, statuses
