"""The dashboard's Mailboxes page: every tenant's mailboxes, a mailbox's folder tree and message list (paged,
searched with Graph's `$search`), a message (rendered body, text, headers, raw MIME, attachments) and the
routes that serve an attachment's bytes and a raster image's thumbnail.

The page reads the mail store as Graph's routes do: the counts are the folders' own (as mailFolders reports
them), a page is `plan.list_page` over the store's sorted indexes, a search is parsed by `kql.parse_search`.
Reading a message here changes nothing (it stays unread).
"""

from __future__ import annotations

import functools
import unicodedata
from typing import NoReturn
from urllib.parse import quote

from flask import Response, abort, make_response, request

from m365_mock.graph import kql
from m365_mock.graph.errors import GraphError
from m365_mock.graph.query import plan
from m365_mock.state.directory import Mailbox, Tenant
from m365_mock.state.mailstore import Folder, ItemNotFound, MailboxStore, MalformedId, Message
from m365_mock.state.mailstore.attachments import Attachment
from m365_mock.ui import messageview as view
from m365_mock.ui.base import PAGE_POLICY, page, takes, ui
from m365_mock.web import current_emulator

TABS = ("body", "text", "source", "headers", "raw")
# What an attachment's bytes or a thumbnail answer with: nothing in it may run or load anything, even opened
# directly in the browser's own tab.
CONTENT_POLICY = "default-src 'none'; sandbox"
# The message view's HTML body is an `<iframe sandbox srcdoc>`, which runs under the page's own policy: mail
# keeps its inline styles (CSS loads nothing: images, fonts and imports are still 'self' at most), while no
# script runs anywhere (scripts are 'self' only, and the sandbox allows none).
MESSAGE_POLICY = PAGE_POLICY.format(nonce=" 'unsafe-inline'")
_MAX_PAGE_DIGITS = 7

_parse_search = functools.lru_cache(maxsize=256)(kql.parse_search)


# ---------------------------------------------------------------- every mailbox


@ui.get("/mailboxes")
def mailboxes() -> str:
    emulator = current_emulator()
    tenants = []
    for tenant in emulator.directory.tenants:
        rows = []
        for mailbox in sorted(tenant.mailboxes.values(), key=lambda m: m.address):
            store = emulator.mail.existing(mailbox)
            total, unread = store.counts() if store is not None else (0, 0)
            rows.append({"mailbox": mailbox, "total": total, "unread": unread})
        tenants.append({"tenant": tenant, "mailboxes": rows})
    return page("mailboxes.html", tenants=tenants)


# ---------------------------------------------------------------- one mailbox


@ui.get("/mailboxes/<tenant_id>/<address>")
@takes("search", "page")
def mailboxes_mailbox(tenant_id: str, address: str) -> str:
    return _mailbox_page(tenant_id, address, "inbox")


@ui.get("/mailboxes/<tenant_id>/<address>/folders/<folder_id>")
@takes("search", "page")
def mailboxes_folder(tenant_id: str, address: str, folder_id: str) -> str:
    return _mailbox_page(tenant_id, address, folder_id)


def _mailbox_page(tenant_id: str, address: str, folder_key: str) -> str:
    tenant, mailbox, store = _mailbox(tenant_id, address)
    folder = _folder(store, mailbox, folder_key)
    number = _page_number()
    text = request.args.get("search", "").strip()
    search, search_error = None, None
    if text:
        try:
            search = _parse_search(text)
        except GraphError as refused:  # Graph's own refusal of this $search, shown as Graph words it
            search_error = f"{refused.code}: {refused.message}"
    listing = None
    if search_error is None:
        listing = plan.list_page(
            store,
            folder,
            skip=(number - 1) * view.PAGE_SIZE,
            top=view.PAGE_SIZE,
            count=search is not None,
            search=search,
        )
    root, outside = view.folder_tree(store)
    total = listing.total if listing is not None and listing.total is not None else folder.total_count
    return page(
        "mailbox.html",
        tenant=tenant,
        mailbox=mailbox,
        folder=folder,
        root=root,
        outside=outside,
        rows=view.message_rows(store, listing.items) if listing is not None else [],
        has_more=listing is not None and listing.has_more,
        page_number=number,
        page_size=view.PAGE_SIZE,
        total=total,
        search=text,
        search_error=search_error,
    )


def _page_number() -> int:
    given = request.args.get("page", "1")
    if not given.isascii() or not given.isdigit() or len(given) > _MAX_PAGE_DIGITS or int(given) < 1:
        abort(400, f"'{given}' is not a page number: pages are numbered from 1.")
    return int(given)


# ---------------------------------------------------------------- one message


@ui.get("/mailboxes/<tenant_id>/<address>/messages/<message_id>")
@takes("tab")
def mailboxes_message(tenant_id: str, address: str, message_id: str) -> Response:
    tenant, mailbox, store = _mailbox(tenant_id, address)
    message = _message(store, mailbox, message_id)
    tab = request.args.get("tab", "body")
    if tab not in TABS:
        abort(404, f"A message has no tab '{tab}': its tabs are {', '.join(TABS)}.")
    shown = view.message_view(store, message)
    folder = store.folders.get(shown.folder_id)
    response = make_response(
        page("message.html", tenant=tenant, mailbox=mailbox, folder=folder, message=shown, tab=tab, tabs=TABS)
    )
    if tab == "body" and shown.body_type == "html":
        response.headers["Content-Security-Policy"] = MESSAGE_POLICY
    return response


@ui.get("/mailboxes/<tenant_id>/<address>/messages/<message_id>/mime")
def mailboxes_mime(tenant_id: str, address: str, message_id: str) -> Response:
    """The message as an .eml file: the RFC 5322 bytes Graph's `$value` answers."""
    _, mailbox, store = _mailbox(tenant_id, address)
    message = _message(store, mailbox, message_id)
    name = view.download_name(message.subject)[:80].strip(" .") or "message"
    return _content(view.raw_mime(store, message), "message/rfc822", f"{name}.eml", "attachment")


@ui.get("/mailboxes/<tenant_id>/<address>/messages/<message_id>/attachments/<attachment_id>")
def mailboxes_attachment(tenant_id: str, address: str, message_id: str, attachment_id: str) -> Response:
    _, mailbox, store = _mailbox(tenant_id, address)
    attachment = _attachment(store, _message(store, mailbox, message_id), attachment_id)
    if not view.attachment_info(attachment).downloadable:
        abort(404, f"Attachment '{attachment.name}' is a {attachment.kind} attachment: it has no content here.")
    data, media_type, name = view.download(attachment, store)
    return _content(data, media_type, name, "attachment")


@ui.get("/mailboxes/<tenant_id>/<address>/messages/<message_id>/attachments/<attachment_id>/thumbnail")
def mailboxes_thumbnail(tenant_id: str, address: str, message_id: str, attachment_id: str) -> Response:
    _, mailbox, store = _mailbox(tenant_id, address)
    attachment = _attachment(store, _message(store, mailbox, message_id), attachment_id)
    media_type = view.raster_type(attachment)
    if media_type is None:
        abort(404, f"Attachment '{attachment.name}' is not a PNG, JPEG, GIF or WebP image: it has no thumbnail.")
    return _content(attachment.content, media_type, view.download_name(attachment.name), "inline")


def _content(data: bytes, media_type: str, name: str, disposition: str) -> Response:
    """Bytes of mail for the browser: typed as given (never sniffed), sandboxed, named."""
    response = Response(data, content_type=media_type)
    simple = view.download_name(unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii"))
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename=\"{simple}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    response.headers["Content-Security-Policy"] = CONTENT_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


# ---------------------------------------------------------------- finding what the URL names


def _not_found(what: str) -> NoReturn:
    abort(404, what)


def _mailbox(tenant_id: str, address: str) -> tuple[Tenant, Mailbox, MailboxStore]:
    emulator = current_emulator()
    tenant = emulator.directory.tenant(tenant_id) or _not_found(f"This emulator has no tenant '{tenant_id}'.")
    mailbox = tenant.mailbox(address) or _not_found(
        f"Tenant {tenant.display_name or tenant.id} has no mailbox '{address}'."
    )
    return tenant, mailbox, emulator.mail.store(mailbox)


def _folder(store: MailboxStore, mailbox: Mailbox, key: str) -> Folder:
    try:
        return store.folder(key)
    except (MalformedId, ItemNotFound):
        _not_found(f"Mailbox {mailbox.address} has no folder '{key}'.")


def _message(store: MailboxStore, mailbox: Mailbox, key: str) -> Message:
    try:
        return store.message(key)
    except (MalformedId, ItemNotFound):
        _not_found(f"Mailbox {mailbox.address} has no message '{key}'.")


def _attachment(store: MailboxStore, message: Message, key: str) -> Attachment:
    try:
        return store.attachment(message, key)
    except (MalformedId, ItemNotFound):
        _not_found(f"The message has no attachment '{key}'.")
