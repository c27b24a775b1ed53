"""msgraph-sdk against a served emulator for what is not mail itself: directory users, message `$count`, and a
`$batch` (raw JSON over the same HTTPS server: msgraph-core's `BatchRequestContent` imports the undeclared
`deprecated` package and writes `depends_on` where Graph reads `dependsOn`, so it cannot be the client here).

This module starts its own emulator on a tenant file whose app holds `Mail.ReadWrite` and `User.Read.All`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from m365_mock.tools.process import RunningEmulator, start_emulator
from tests.compat.conftest import seed
from tests.compat.test_msgraph_sdk import with_client

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]

DOMAIN = "contoso.onmicrosoft.com"
SUPPORT = f"support@{DOMAIN}"
SALES = f"sales@{DOMAIN}"
ADDRESSES = [SUPPORT, SALES, f"billing@{DOMAIN}", f"ann.lee@{DOMAIN}"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    folder = tmp_path_factory.mktemp("msgraph-sdk-directory")
    tenant_file = folder / "tenant.yaml"
    tenant_file.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "name": "Contoso",
                        "domains": [DOMAIN],
                        "mailboxes": [
                            {"address": SUPPORT, "display_name": "Customer Support", "type": "shared"},
                            {"address": SALES, "display_name": "Sales", "type": "shared"},
                            {"address": f"billing@{DOMAIN}", "display_name": "Billing", "type": "shared"},
                            {"address": f"ann.lee@{DOMAIN}", "display_name": "Ann Lee", "type": "user"},
                        ],
                        "applications": [
                            {
                                "display_name": "Directory Reader",
                                "permissions": ["Mail.ReadWrite", "User.Read.All"],
                                "admin_consent": True,
                                "secrets": [{"display_name": "compat"}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    with start_emulator(folder / "state", "--config", str(tenant_file)) as running:
        yield running


@pytest.fixture
def graph(emu: RunningEmulator, trust: Callable[[RunningEmulator], Path]) -> RunningEmulator:
    trust(emu)
    return emu


def test_list_users_with_select_top_and_next_link(graph: RunningEmulator) -> None:
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=3, select=["id", "displayName", "mail"])

    async def work(client: GraphServiceClient) -> list[User]:
        first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert first is not None and first.value is not None and first.odata_next_link
        rest = await client.users.with_url(first.odata_next_link).get()
        assert rest is not None and rest.value is not None and rest.odata_next_link is None
        return first.value + rest.value

    users = with_client(graph, work)
    assert sorted(u.mail or "" for u in users) == sorted(ADDRESSES)
    assert all(u.id and u.display_name for u in users)
    assert all(u.user_principal_name is None for u in users)  # not selected


def test_get_a_user_by_upn_and_by_id(graph: RunningEmulator) -> None:
    async def work(client: GraphServiceClient) -> tuple[User, User]:
        by_upn = await client.users.by_user_id(SUPPORT).get()
        assert by_upn is not None and by_upn.id
        by_id = await client.users.by_user_id(by_upn.id).get()
        assert by_id is not None
        return by_upn, by_id

    by_upn, by_id = with_client(graph, work)
    assert by_upn.user_principal_name == by_upn.mail == SUPPORT
    assert by_upn.display_name == "Customer Support"
    assert by_upn.business_phones == []
    assert by_id.id == by_upn.id


def test_unknown_user_is_request_resource_not_found(graph: RunningEmulator) -> None:
    async def work(client: GraphServiceClient) -> ODataError:
        with pytest.raises(ODataError) as caught:
            await client.users.by_user_id(f"nobody@{DOMAIN}").get()
        return caught.value

    error = with_client(graph, work)
    assert error.response_status_code == 404
    assert error.error is not None and error.error.code == "Request_ResourceNotFound"


def test_count_of_users_and_of_messages(graph: RunningEmulator) -> None:
    seed(graph, SALES, {"count": 4})

    async def work(client: GraphServiceClient) -> tuple[int | None, int | None, int | None]:
        eventual = RequestConfiguration()
        eventual.headers.add("ConsistencyLevel", "eventual")
        users = await client.users.count.get(request_configuration=eventual)
        messages = await client.users.by_user_id(SALES).messages.count.get()
        inbox = await client.users.by_user_id(SALES).mail_folders.by_mail_folder_id("inbox").messages.count.get()
        return users, messages, inbox

    assert with_client(graph, work) == (len(ADDRESSES), 4, 4)


def test_a_raw_json_batch_over_https(graph: RunningEmulator) -> None:
    verify = ssl.create_default_context(cafile=graph.ca_file)
    token = httpx.post(
        f"{graph.base_url}/{graph.tenant['id']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": graph.app["app_id"],
            "client_secret": graph.app["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=verify,
    ).json()["access_token"]
    response = httpx.post(
        f"{graph.base_url}/v1.0/$batch",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/users/{SUPPORT}?$select=displayName"},
                {"id": "2", "method": "GET", "url": f"/users/{SUPPORT}/mailFolders/inbox/messages/$count"},
                {"id": "3", "method": "GET", "url": "/users/nobody@contoso.onmicrosoft.com", "dependsOn": ["1"]},
                {"id": "4", "method": "GET", "url": "/users", "dependsOn": ["3"]},
            ]
        },
        verify=verify,
    )
    assert response.status_code == 200, response.text
    by_id = {entry["id"]: entry for entry in response.json()["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["displayName"] == "Customer Support"
    assert (by_id["2"]["status"], by_id["2"]["body"]) == (200, "0")
    assert by_id["3"]["status"] == 404 and by_id["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["4"]["status"] == 424
