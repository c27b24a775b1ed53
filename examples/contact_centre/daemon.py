"""Contact-centre mail connector: answers customers who write to the queue mailbox.

Every poll, for each mailbox it watches, it reads what is new in the Inbox (a delta round, with $select and $top),
and for each unread message: saves its file attachments, replies to the customer, marks it read and moves it to
the "Processed" folder (made when missing).

Configuration, from the environment only:
  M365_MOCK_AUTHORITY       https://login.microsoftonline.com/<tenant> in production, the emulator's in tests
  M365_MOCK_CLIENT_ID       the app registration's client id
  M365_MOCK_CLIENT_SECRET   its client secret
  M365_MOCK_GRAPH_URL       https://graph.microsoft.com/v1.0 by default
  REQUESTS_CA_BUNDLE        the CA bundle to trust (requests reads it itself)
  QUEUE_MAILBOX             the queue mailbox (required); MAILBOXES: more, comma separated
  POLL_SECONDS              seconds between polls (30); ATTACHMENTS_DIR: where attachments go (./attachments)
  ONCE                      1: one poll of every mailbox, then exit

Exit status: 0 when stopped (SIGTERM, Ctrl+C) or after ONCE; 1 when it cannot get a token or may read none of
its mailboxes; 2 when its configuration is incomplete.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import signal
import sys
import threading
import uuid
from pathlib import Path

import msal
import requests

log = logging.getLogger("connector")
SCOPES = ["https://graph.microsoft.com/.default"]
SELECT = "subject,from,isRead,hasAttachments,receivedDateTime"
PAGE_SIZE = 25
MAX_RETRIES = 5
REPLY_TEXT = "Thank you for contacting Customer Support. We have received your message and will answer within a day."


class Stopping(Exception):
    """SIGTERM arrived while waiting."""


class TokenError(Exception):
    """The token endpoint refused us: a wrong or expired secret, a disabled app. Nothing to retry."""


class AccessDenied(Exception):
    """403 on a mailbox: an access policy or missing permission. Retrying will not change it."""


class Graph:
    """Microsoft Graph with an app-only token from MSAL (cached by MSAL until shortly before it expires)."""

    def __init__(self, stop: threading.Event) -> None:
        self.base = os.environ.get("M365_MOCK_GRAPH_URL", "https://graph.microsoft.com/v1.0").rstrip("/")
        self.app = msal.ConfidentialClientApplication(
            os.environ["M365_MOCK_CLIENT_ID"],
            client_credential=os.environ["M365_MOCK_CLIENT_SECRET"],
            authority=os.environ["M365_MOCK_AUTHORITY"],
            instance_discovery=False,  # the authority is given in full; no lookup at login.microsoftonline.com
        )
        self.session = requests.Session()
        self.stop = stop

    def token(self) -> str:
        result = self.app.acquire_token_for_client(scopes=SCOPES)
        if "access_token" not in result:
            raise TokenError(f"{result.get('error')}: {result.get('error_description')}")
        return result["access_token"]

    def forget_token(self) -> None:
        for entry in list(self.app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            self.app.token_cache.remove_at(entry)

    def call(self, method: str, url: str, **kwargs) -> dict:
        """One Graph call, retried on 429/503/504 after Retry-After (or a growing backoff); 401 gets one new token."""
        url = url if url.startswith("https://") else self.base + url
        retries, renewed = 0, False
        while True:
            headers = {"Authorization": f"Bearer {self.token()}", "client-request-id": str(uuid.uuid4())}
            response = self.session.request(method, url, headers=headers, timeout=30, **kwargs)
            status = response.status_code
            if status in (429, 503, 504) and retries < MAX_RETRIES:
                wait = float(response.headers.get("Retry-After") or min(2**retries, 30))
                retries += 1
                log.warning("%s %s: %s, retrying in %g s", method, url, status, wait)
                if self.stop.wait(wait):
                    raise Stopping
                continue
            if status == 401 and not renewed:
                renewed = True
                self.forget_token()
                continue
            if status == 403:
                raise AccessDenied(error_text(response))
            if status >= 400:
                raise requests.HTTPError(f"{method} {url}: {status} {error_text(response)}", response=response)
            return response.json() if response.content else {}


def error_text(response: requests.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


class Mailbox:
    """One watched mailbox and what we remember about it between polls."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.delta_link: str | None = None
        self.processed_id: str | None = None
        self.denied = False


class Connector:
    def __init__(self, graph: Graph, mailboxes: list[str], attachments: Path) -> None:
        self.graph = graph
        self.mailboxes = [Mailbox(address) for address in mailboxes]
        self.attachments = attachments

    def poll(self) -> None:
        for box in self.mailboxes:
            if box.denied:
                continue
            try:
                for message in self.new_messages(box):
                    if self.graph.stop.is_set():
                        return
                    self.handle(box, message)
            except AccessDenied as denied:
                box.denied = True
                log.error("access to %s denied (%s); leaving it alone", box.address, denied)
            except (requests.RequestException, KeyError, ValueError) as exc:
                box.delta_link = box.processed_id = None  # start afresh next poll; unread mail is still there
                log.error("%s: poll failed, will retry: %s", box.address, exc)
        if all(box.denied for box in self.mailboxes):
            raise AccessDenied("every configured mailbox refused access")

    def new_messages(self, box: Mailbox) -> list[dict]:
        """Unread messages new to the Inbox since the last round (the first round sees the whole Inbox)."""
        url = box.delta_link or f"/users/{box.address}/mailFolders/inbox/messages/delta"
        params = None if box.delta_link else {"$select": SELECT, "$top": PAGE_SIZE}
        found = []
        while True:
            page = self.graph.call("GET", url, params=params)
            found += [m for m in page["value"] if "@removed" not in m and not m.get("isRead", True)]
            if "@odata.nextLink" not in page:
                box.delta_link = page["@odata.deltaLink"]
                return found
            url, params = page["@odata.nextLink"], None

    def handle(self, box: Mailbox, message: dict) -> None:
        path = f"/users/{box.address}/messages/{message['id']}"
        if message.get("hasAttachments"):
            self.save_attachments(path, message)
        self.graph.call("POST", f"{path}/reply", json={"comment": REPLY_TEXT})
        self.graph.call("PATCH", path, json={"isRead": True})
        self.graph.call("POST", f"{path}/move", json={"destinationId": self.processed_folder(box)})
        sender = (message.get("from") or {}).get("emailAddress", {}).get("address", "?")
        log.info("%s: answered %s about %r", box.address, sender, message.get("subject"))

    def save_attachments(self, path: str, message: dict) -> None:
        folder = self.attachments / hashlib.sha1(message["id"].encode()).hexdigest()[:12]
        for attachment in self.graph.call("GET", f"{path}/attachments")["value"]:
            if attachment["@odata.type"] != "#microsoft.graph.fileAttachment" or attachment.get("isInline"):
                continue
            content = base64.b64decode(attachment["contentBytes"])
            name = re.sub(r"[^\w.\- ]", "_", attachment["name"]).lstrip(".") or "attachment"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
            digest = hashlib.sha256(content).hexdigest()
            log.info("saved %s (%d bytes, sha256 %s) to %s", name, len(content), digest, folder)

    def processed_folder(self, box: Mailbox) -> str:
        if box.processed_id is None:
            folders = self.graph.call("GET", f"/users/{box.address}/mailFolders", params={"$top": 100})["value"]
            found = [f["id"] for f in folders if f["displayName"].lower() == "processed"]
            if found:
                box.processed_id = found[0]
            else:
                made = self.graph.call("POST", f"/users/{box.address}/mailFolders", json={"displayName": "Processed"})
                box.processed_id = made["id"]
        return box.processed_id


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    required = ["M365_MOCK_AUTHORITY", "M365_MOCK_CLIENT_ID", "M365_MOCK_CLIENT_SECRET", "QUEUE_MAILBOX"]
    missing = [name for name in required if not os.environ.get(name)]
    if missing:
        log.error("missing configuration: %s", ", ".join(missing))
        return 2
    extra = [a.strip() for a in os.environ.get("MAILBOXES", "").split(",") if a.strip()]
    mailboxes = list(dict.fromkeys([os.environ["QUEUE_MAILBOX"], *extra]))
    poll_seconds = float(os.environ.get("POLL_SECONDS", "30"))
    once = os.environ.get("ONCE", "").lower() in ("1", "true", "yes")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    authority = os.environ["M365_MOCK_AUTHORITY"]
    try:
        graph = Graph(stop)  # MSAL reads the authority's OpenID configuration here
    except (requests.RequestException, ValueError) as exc:
        log.error("cannot use the authority %s: %s", authority, exc)
        return 1
    connector = Connector(graph, mailboxes, Path(os.environ.get("ATTACHMENTS_DIR", "attachments")))
    log.info("watching %s every %g s", ", ".join(mailboxes), poll_seconds)
    try:
        while not stop.is_set():
            connector.poll()
            if once or stop.wait(poll_seconds):
                break
    except TokenError as exc:
        log.error("cannot get a token from %s: %s", authority, exc)
        return 1
    except AccessDenied as exc:
        log.error("nothing left to watch: %s", exc)
        return 1
    except (Stopping, KeyboardInterrupt):
        pass
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
