"""msgraph-sdk's message delta against a served emulator: the `delta()` request builder, then its own links.

A module of its own (its own emulator with empty mailboxes), so that the rounds see only what this test changes.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.message import Message
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import DeltaRequestBuilder

from m365_mock.tools.process import RunningEmulator
from tests.compat.conftest import empty_contoso, seed
from tests.compat.test_msgraph_sdk import SUPPORT, incoming, with_client

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with empty_contoso(tmp_path_factory.mktemp("msgraph-sdk-delta-emulator")) as running:
        yield running


def test_delta_rounds_through_the_sdk(emu: RunningEmulator, trust, monkeypatch: pytest.MonkeyPatch) -> None:
    trust(emu)
    seen: list[httpx.Request] = []
    real_send = httpx.AsyncClient.send

    async def spy(self: httpx.AsyncClient, request: httpx.Request, *args, **kwargs) -> httpx.Response:
        seen.append(request)
        return await real_send(self, request, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", spy)
    for i in range(3):
        seed(emu, SUPPORT, incoming(f"delta {i}", f"2024-02-0{i + 1}T09:00:00Z", is_read=False))

    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["subject", "isRead"])
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", "odata.maxpagesize=2")

    async def first_round(client: GraphServiceClient) -> tuple[list[Message], str]:
        delta = client.users.by_user_id(SUPPORT).mail_folders.by_mail_folder_id("inbox").messages.delta
        page = await delta.get(request_configuration=config)
        assert page is not None and page.value is not None
        items = list(page.value)
        while page.odata_next_link:
            page = await delta.with_url(page.odata_next_link).get()
            assert page is not None and page.value is not None
            items += page.value
        assert page.odata_delta_link
        return items, page.odata_delta_link

    items, delta_link = with_client(emu, first_round)
    assert [m.subject for m in items] == ["delta 2", "delta 1", "delta 0"]
    assert all(m.body is None for m in items), "$select went into the tokens"
    assert seen[0].url.path == f"/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/delta()"
    assert seen[0].url.params["$select"] == "subject,isRead"
    assert "$skiptoken" in seen[1].url.params

    seed(emu, SUPPORT, incoming("delta 3", "2024-02-04T09:00:00Z", is_read=False))

    async def next_round(client: GraphServiceClient) -> list[Message]:
        delta = client.users.by_user_id(SUPPORT).mail_folders.by_mail_folder_id("inbox").messages.delta
        page = await delta.with_url(delta_link).get()
        assert page is not None and page.value is not None and page.odata_delta_link
        return list(page.value)

    assert [m.subject for m in with_client(emu, next_round)] == ["delta 3"]
