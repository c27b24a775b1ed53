"""MailClient: the Graph v1.0 mail operations a mail-processing daemon needs, app-only, for any mailbox."""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import Iterable, Iterator
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from m365_mock.client.auth import TokenProvider
from m365_mock.client.errors import GraphError
from m365_mock.client.settings import ClientSettings
from m365_mock.client.transport import Transport

# Graph's well-known folder names (v1.0), usable wherever a folder id is.
WELL_KNOWN_FOLDERS = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)
FOLDER_PAGE = 100

Attachment = str | os.PathLike[str] | tuple[str, bytes] | tuple[str, bytes, str]
Recipients = str | Iterable[str]


def _segment(value: str) -> str:
    """A path segment sent as given: a UPN keeps its `@` (as msgraph-sdk sends it); `/`, `?`, `#` are encoded."""
    return quote(value, safe="@=+-_.~!$&'()*,;:")


def _looks_like_id(key: str) -> bool:
    """Graph ids are long base64url strings; display names usually are not."""
    return len(key) >= 16 and not any(c.isspace() for c in key)


def _recipients(value: Recipients) -> list[dict[str, Any]]:
    """`addr`, `Name <addr>` or a list of them, as Graph recipients."""
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        name, address = parseaddr(item)
        if not address or "@" not in address:
            raise ValueError(f"not an e-mail address: {item!r}")
        entry: dict[str, Any] = {"address": address}
        if name:
            entry["name"] = name
        out.append({"emailAddress": entry})
    return out


def file_attachment(item: Attachment) -> dict[str, Any]:
    """A Graph fileAttachment from a path or `(name, bytes[, content_type])`."""
    if isinstance(item, tuple):
        name, content = item[0], item[1]
        content_type = item[2] if len(item) > 2 else None
    else:
        path = Path(item)
        name, content, content_type = path.name, path.read_bytes(), None
    if not isinstance(content, bytes | bytearray):
        raise TypeError(f"attachment {name!r}: content must be bytes")
    content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentType": content_type,
        "contentBytes": base64.b64encode(bytes(content)).decode("ascii"),
    }


DIRECT_ATTACHMENT_LIMIT = 3 * 2**20  # at or above: an upload session (Graph: "under 3 MB" in one POST)
UPLOAD_CHUNK = 4 * 2**20  # Graph: keep each chunk at most 4 MB


def _file_parts(item: Attachment) -> tuple[str, bytes, str]:
    """(name, bytes, content type) of a path or `(name, bytes[, content_type])`."""
    attachment = file_attachment(item)
    return attachment["name"], base64.b64decode(attachment["contentBytes"]), attachment["contentType"]


class MailClient:
    """Graph mail for an app-only daemon. Every failure is a GraphError (or AuthError from the token).

    Requests carry a fresh `client-request-id`; 429/503/504 are retried as ClientSettings says; a 401 drops the
    cached token and the request is sent once more with a new one.
    """

    def __init__(
        self, settings: ClientSettings, tokens: TokenProvider | None = None, session: requests.Session | None = None
    ) -> None:
        self.settings = settings
        self.transport = Transport(settings, session)
        self.tokens = tokens or TokenProvider(settings, transport=self.transport)

    def close(self) -> None:
        """Close the HTTP session if this client made it."""
        self.transport.close()

    def __enter__(self) -> MailClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing

    def url(self, mailbox: str, *parts: str) -> str:
        """`{graph_url}/users/{mailbox}/part/...`, each part one encoded path segment."""
        tail = "/".join(_segment(p) for p in parts)
        return f"{self.settings.graph_url}/users/{_segment(mailbox)}" + (f"/{tail}" if tail else "")

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one Graph request with the bearer token; raise GraphError for any 4xx/5xx answer."""
        renewed = False
        sent: list[str] = []

        def auth() -> dict[str, str]:  # per attempt: a token may be renewed while a retry waits
            sent.append(self.tokens.token())
            return {"Authorization": f"Bearer {sent[-1]}"}

        while True:
            try:
                response = self.transport.request(method, url, auth=auth, **kwargs)
            except requests.RequestException as exc:
                raise GraphError(0, "NetworkError", f"{method} {url}: {exc}") from exc
            if response.status_code == 401 and not renewed:
                self.tokens.invalidate(sent[-1])
                renewed = True
                continue
            if response.status_code >= 400:
                raise GraphError.from_response(response)
            return response

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", url, params=params).json()

    def pages(self, url: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """The items of a collection, page by page, following `@odata.nextLink` exactly as given."""
        page = self.get_json(url, params)
        while True:
            yield from page.get("value", [])
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self.get_json(link)

    # ------------------------------------------------------------ folders

    def folders(self, mailbox: str) -> list[dict[str, Any]]:
        """The folders directly under the mailbox root (Inbox, Sent Items, ... and user folders), all pages."""
        return list(self.pages(self.url(mailbox, "mailFolders"), {"$top": FOLDER_PAGE}))

    def folder(self, mailbox: str, name_or_id: str) -> dict[str, Any] | None:
        """A folder by well-known name (`inbox`), id, or display name under the root (any case); None if absent."""
        key = name_or_id.strip()
        if key.lower() in WELL_KNOWN_FOLDERS:
            return self.get_json(self.url(mailbox, "mailFolders", key.lower()))
        for found in self.folders(mailbox):
            if found.get("id") == key or str(found.get("displayName", "")).lower() == key.lower():
                return found
        if _looks_like_id(key):  # maybe the id of a folder deeper down
            try:
                return self.get_json(self.url(mailbox, "mailFolders", key))
            except GraphError as exc:
                if exc.status not in (400, 404):
                    raise
        return None

    def ensure_folder(self, mailbox: str, name: str) -> dict[str, Any]:
        """The folder `name` (as `folder` finds it), created under the root when it does not exist."""
        found = self.folder(mailbox, name)
        if found is not None:
            return found
        try:
            return self.request("POST", self.url(mailbox, "mailFolders"), json={"displayName": name}).json()
        except GraphError as exc:
            if exc.code != "ErrorFolderExists":
                raise
        found = self.folder(mailbox, name)  # created meanwhile by someone else
        if found is None:
            raise GraphError(409, "ErrorFolderExists", f"Folder '{name}' exists but could not be found.")
        return found

    def _folder_key(self, mailbox: str, folder: str) -> str:
        """A key Graph takes in a path or as destinationId: a well-known name as is, else the folder's id."""
        if folder.strip().lower() in WELL_KNOWN_FOLDERS:
            return folder.strip().lower()
        found = self.folder(mailbox, folder)
        if found is None:
            raise GraphError(404, "ErrorItemNotFound", f"Mailbox {mailbox} has no folder '{folder}'.")
        return str(found["id"])

    # ------------------------------------------------------------ messages

    def messages(
        self,
        mailbox: str,
        *,
        folder: str | None = None,
        unread: bool | None = None,
        top: int = 50,
        select: str | Iterable[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Messages of the mailbox (or of `folder`), `top` per page, at most `limit`, all pages otherwise.

        `unread=True/False` adds `isRead eq false/true` after `filter`. Graph refuses ($filter + $orderby)
        unless the $orderby properties come first in $filter (InefficientFilter): that is left to the caller.
        """
        if limit is not None and limit <= 0:
            return
        parts = ["mailFolders", self._folder_key(mailbox, folder), "messages"] if folder else ["messages"]
        params: dict[str, Any] = {"$top": top if limit is None else min(top, limit)}
        clauses = []
        if filter:
            clauses.append(f"({filter})" if " or " in filter.lower() else filter)
        if unread is not None:
            clauses.append(f"isRead eq {'false' if unread else 'true'}")
        if clauses:
            params["$filter"] = " and ".join(clauses)
        if select:
            params["$select"] = select if isinstance(select, str) else ",".join(select)
        if orderby:
            params["$orderby"] = orderby
        for count, message in enumerate(self.pages(self.url(mailbox, *parts), params), start=1):
            yield message
            if limit is not None and count >= limit:
                return

    def message(self, mailbox: str, message_id: str) -> dict[str, Any]:
        """One message by id."""
        return self.get_json(self.url(mailbox, "messages", message_id))

    def mark_read(self, mailbox: str, message_id: str, read: bool = True) -> dict[str, Any]:
        """Set `isRead`; returns the updated message."""
        return self.request("PATCH", self.url(mailbox, "messages", message_id), json={"isRead": read}).json()

    def move(self, mailbox: str, message_id: str, folder: str, create: bool = True) -> dict[str, Any]:
        """Move a message to `folder` (well-known name, id or display name; created under the root when missing
        and `create`); returns the moved message, which has a new id."""
        key = folder.strip()
        if key.lower() in WELL_KNOWN_FOLDERS:
            return self._move(mailbox, message_id, key.lower())
        if _looks_like_id(key):  # try it as an id first: one request when it is one
            try:
                return self._move(mailbox, message_id, key)
            except GraphError as exc:
                if exc.status not in (400, 404):
                    raise
        destination = str(self.ensure_folder(mailbox, key)["id"]) if create else self._folder_key(mailbox, key)
        return self._move(mailbox, message_id, destination)

    def _move(self, mailbox: str, message_id: str, destination: str) -> dict[str, Any]:
        url = self.url(mailbox, "messages", message_id, "move")
        return self.request("POST", url, json={"destinationId": destination}).json()

    def send(
        self,
        mailbox: str,
        *,
        to: Recipients,
        subject: str,
        body: str,
        cc: Recipients = (),
        bcc: Recipients = (),
        html: bool = False,
        attachments: Iterable[Attachment] = (),
        save_to_sent: bool = True,
    ) -> None:
        """Send mail as `mailbox` (sendMail: 202, nothing returned); attachments go inline as base64."""
        message: dict[str, Any] = {
            "subject": subject,
            "body": {"contentType": "html" if html else "text", "content": body},
            "toRecipients": _recipients(to),
        }
        if cc:
            message["ccRecipients"] = _recipients(cc)
        if bcc:
            message["bccRecipients"] = _recipients(bcc)
        files = [file_attachment(a) for a in attachments]
        if files:
            message["attachments"] = files
        payload = {"message": message, "saveToSentItems": save_to_sent}
        self.request("POST", self.url(mailbox, "sendMail"), json=payload)

    # ------------------------------------------------------------ attachments, replies, MIME

    def attachments(self, mailbox: str, message_id: str) -> list[dict[str, Any]]:
        """The message's attachments (their metadata and, for files, `contentBytes`)."""
        return list(self.pages(self.url(mailbox, "messages", message_id, "attachments")))

    def download_attachment(self, mailbox: str, message_id: str, attachment_id: str) -> bytes:
        """An attachment's raw bytes (`.../attachments/{id}/$value`)."""
        url = self.url(mailbox, "messages", message_id, "attachments", attachment_id) + "/$value"
        return self.request("GET", url).content

    def add_attachment(self, mailbox: str, message_id: str, item: Attachment) -> str:
        """Attach a file to a draft: one POST under 3 MB, an upload session in 4 MB chunks above; its id."""
        name, content, content_type = _file_parts(item)
        if len(content) < DIRECT_ATTACHMENT_LIMIT:
            attachment = file_attachment((name, content, content_type))
            created = self.request("POST", self.url(mailbox, "messages", message_id, "attachments"), json=attachment)
            return str(created.json()["id"])
        return self._upload(mailbox, message_id, name, content, content_type)

    def _upload(self, mailbox: str, message_id: str, name: str, content: bytes, content_type: str) -> str:
        item = {"attachmentType": "file", "name": name, "size": len(content), "contentType": content_type}
        url = self.url(mailbox, "messages", message_id, "attachments") + "/createUploadSession"
        upload_url = self.request("POST", url, json={"AttachmentItem": item}).json()["uploadUrl"]
        response = None
        for start in range(0, len(content), UPLOAD_CHUNK):
            chunk = content[start : start + UPLOAD_CHUNK]
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(content)}",
            }
            # The upload URL is pre-authenticated: no bearer token goes with it.
            response = self.transport.request("PUT", upload_url, headers=headers, data=chunk)
            if response.status_code >= 400:
                raise GraphError.from_response(response)
        location = response.headers.get("Location", "") if response is not None else ""
        return location.rsplit("Attachments('", 1)[-1].rstrip("')")

    def reply(
        self,
        mailbox: str,
        message_id: str,
        comment: str,
        *,
        reply_all: bool = False,
        attachments: Iterable[Attachment] = (),
    ) -> dict[str, Any]:
        """Answer in the message's thread: createReply (or createReplyAll), attach, send; the sent draft."""
        action = "createReplyAll" if reply_all else "createReply"
        draft = self.request("POST", self.url(mailbox, "messages", message_id, action), json={"comment": comment})
        draft_json = draft.json()
        for item in attachments:
            self.add_attachment(mailbox, draft_json["id"], item)
        self.request("POST", self.url(mailbox, "messages", draft_json["id"], "send"))
        return draft_json

    def mime(self, mailbox: str, message_id: str) -> bytes:
        """The message as RFC 5322 bytes (`.../messages/{id}/$value`)."""
        return self.request("GET", self.url(mailbox, "messages", message_id) + "/$value").content

    def batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One JSON batch (`POST /$batch`, at most 20 requests with relative URLs); the inner responses."""
        answer = self.request("POST", f"{self.settings.graph_url}/$batch", json={"requests": requests})
        return list(answer.json()["responses"])

    def sync(
        self, mailbox: str, folder: str = "inbox", delta_link: str | None = None, *, page_size: int | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """One delta round of a folder: every page, from `delta_link` (the last round's) or from the start.

        Returns the changes (messages created or updated since the last round, and `{"id", "@removed"}` for those
        deleted or moved out) and the `@odata.deltaLink` to keep for the next round.
        """
        url = delta_link or self.url(mailbox, "mailFolders", folder, "messages") + "/delta"
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size and not delta_link else None
        changes: list[dict[str, Any]] = []
        while True:
            page = self.request("GET", url, headers=headers).json()
            changes.extend(page.get("value", []))
            if page.get("@odata.nextLink"):
                url = page["@odata.nextLink"]
                continue
            link = page.get("@odata.deltaLink")
            if not link:
                raise GraphError(0, "NoDeltaLink", f"the last page of {url} has neither a nextLink nor a deltaLink")
            return changes, str(link)
