"""azure-identity's EnvironmentCredential (AZURE_* variables), then requests: the Inbox's subjects. `sync` needs
disable_instance_discovery=True (MSAL would ask login.microsoftonline.com otherwise); `aio` runs unmodified."""

import asyncio
import os
import sys

import requests

SCOPE = "https://graph.microsoft.com/.default"


def sync_token() -> str:
    from azure.identity import EnvironmentCredential

    return EnvironmentCredential(disable_instance_discovery=True).get_token(SCOPE).token


async def aio_token() -> str:
    from azure.identity.aio import EnvironmentCredential

    async with EnvironmentCredential() as credential:
        return (await credential.get_token(SCOPE)).token


token = sync_token() if sys.argv[1] == "sync" else asyncio.run(aio_token())
url = f"{os.environ['M365_MOCK_GRAPH_URL']}/users/{os.environ['QUEUE_MAILBOX']}/mailFolders/inbox/messages"
page = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
page.raise_for_status()
print("\n".join(m["subject"] for m in page.json()["value"]))
