"""The contact-centre connector as it often ships first: it works on a quiet test tenant, and misbehaves on a
busy one. Kept as an example of what the behaviour report finds; do not copy it. Its flaws, on purpose:

1. token-not-cached: a new token for every request (a POST to the token endpoint by hand, nothing kept), where
   MSAL's acquire_token_for_client would reuse one for an hour.
2. retried-403: a 403 is retried at once, again and again (a tight loop, capped at FORBIDDEN_RETRIES tries a poll
   so that it ends), and again on every poll: an access policy does not change because you ask again.
3. full-listing: every poll lists the whole Inbox, page by page, where a delta round would give only the changes.
4. no-select: listings ask for every property of every message, bodies included, instead of $select.
5. unbounded-top: listings give no $top, so the page size is the service's default.
6. retry-after-ignored: a 429 or 503 is retried after a fixed 0.2 s, whatever Retry-After says.
7. no-client-request-id: no request carries a client-request-id, so none can be traced with Microsoft support.

It reads the same environment as daemon.py (M365_MOCK_AUTHORITY, M365_MOCK_CLIENT_ID, M365_MOCK_CLIENT_SECRET,
M365_MOCK_GRAPH_URL, QUEUE_MAILBOX, MAILBOXES, POLL_SECONDS, ATTACHMENTS_DIR, ONCE) and does the same work.
"""

from __future__ import annotations

import base64
import os
import signal
import sys
import time
from pathlib import Path

import requests

FORBIDDEN_RETRIES = 10
BUSY_RETRIES = 50

AUTHORITY = os.environ["M365_MOCK_AUTHORITY"].rstrip("/")
GRAPH = os.environ.get("M365_MOCK_GRAPH_URL", "https://graph.microsoft.com/v1.0").rstrip("/")


def token() -> str:
    response = requests.post(
        f"{AUTHORITY}/oauth2/v2.0/token",
        data={
            "client_id": os.environ["M365_MOCK_CLIENT_ID"],
            "client_secret": os.environ["M365_MOCK_CLIENT_SECRET"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=30,
    )
    if response.status_code != 200:
        sys.exit(f"token request failed: {response.text}")
    return response.json()["access_token"]


def graph(method: str, url: str, **kwargs) -> dict | None:
    url = url if url.startswith("https://") else GRAPH + url
    forbidden = busy = 0
    while True:
        response = requests.request(method, url, headers={"Authorization": f"Bearer {token()}"}, timeout=30, **kwargs)
        if response.status_code in (429, 503) and busy < BUSY_RETRIES:
            busy += 1
            time.sleep(0.2)
            continue
        if response.status_code == 403 and forbidden < FORBIDDEN_RETRIES:
            forbidden += 1
            continue
        if response.status_code >= 400:
            print(f"{method} {url}: {response.status_code} {response.text[:200]}", file=sys.stderr)
            return None
        return response.json() if response.content else {}


def poll(mailbox: str, attachments: Path) -> None:
    url = f"/users/{mailbox}/mailFolders/inbox/messages"
    messages = []
    while url:
        page = graph("GET", url)
        if page is None:
            return
        messages += page["value"]
        url = page.get("@odata.nextLink")
    for message in messages:
        if message["isRead"]:
            continue
        path = f"/users/{mailbox}/messages/{message['id']}"
        for attachment in (graph("GET", f"{path}/attachments") or {}).get("value", []):
            if "contentBytes" in attachment:
                attachments.mkdir(parents=True, exist_ok=True)
                (attachments / attachment["name"]).write_bytes(base64.b64decode(attachment["contentBytes"]))
        graph("POST", f"{path}/reply", json={"comment": "Thank you, we will be in touch."})
        graph("PATCH", path, json={"isRead": True})
        folders = (graph("GET", f"/users/{mailbox}/mailFolders") or {}).get("value", [])
        processed = next((f["id"] for f in folders if f["displayName"] == "Processed"), None)
        if processed is None:
            processed = (graph("POST", f"/users/{mailbox}/mailFolders", json={"displayName": "Processed"}) or {})["id"]
        graph("POST", f"{path}/move", json={"destinationId": processed})
        print(f"{mailbox}: answered {message['subject']!r}", flush=True)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    mailboxes = [os.environ["QUEUE_MAILBOX"], *filter(None, os.environ.get("MAILBOXES", "").split(","))]
    attachments = Path(os.environ.get("ATTACHMENTS_DIR", "attachments"))
    while True:
        for mailbox in mailboxes:
            poll(mailbox.strip(), attachments)
        if os.environ.get("ONCE", "").lower() in ("1", "true", "yes"):
            break
        time.sleep(float(os.environ.get("POLL_SECONDS", "5")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
