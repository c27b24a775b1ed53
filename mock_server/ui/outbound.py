"""The dashboard's Outbound page: the mail sent to addresses outside every tenant (the mail catcher), newest
first, and each message with its body.

It reads the outbound log the control API's `GET /_m365/outbound` shows (`MailStore.outbound()`); a message is
named by its place in that log (`seq`).
"""

from __future__ import annotations

from typing import Any

from flask import abort, request

from m365_mock.clock import iso_z
from m365_mock.state.mailstore import OutboundMail
from m365_mock.ui.base import page, takes, ui
from m365_mock.web import current_emulator

PAGE_SIZE = 100


def addresses(entries: list[dict[str, Any]]) -> list[str]:
    """Recipients as `Name <address>` (or the address alone), as a mail client writes them."""
    shown = []
    for entry in entries:
        email = entry.get("emailAddress") or {}
        address, name = email.get("address") or "", email.get("name") or ""
        shown.append(f"{name} <{address}>" if name and name != address else address)
    return shown


def _row(mail: OutboundMail) -> dict[str, Any]:
    return {
        "seq": mail.seq,
        "sent": iso_z(mail.sent),
        "sender": mail.sender,
        "to": addresses(mail.to),
        "cc": addresses(mail.cc),
        "bcc": addresses(mail.bcc),
        "subject": mail.subject,
    }


def _page_number() -> int:
    given = request.args.get("page", "1")
    if not (given.isascii() and given.isdigit()) or int(given) < 1:
        abort(404, f"There is no page '{given}' of the outbound mail: pages are numbered from 1.")
    return int(given)


@ui.get("/outbound")
@takes("page")
def outbound() -> str:
    caught = current_emulator().mail.outbound()
    number = _page_number()
    pages = max(1, -(-len(caught) // PAGE_SIZE))
    if number > pages:
        abort(404, f"The outbound mail has {pages} page{'s' if pages > 1 else ''}; there is no page {number}.")
    newest_first = caught[::-1][(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    return page(
        "outbound.html",
        rows=[_row(mail) for mail in newest_first],
        total=len(caught),
        number=number,
        pages=pages,
    )


@ui.get("/outbound/<int:seq>")
def outbound_message(seq: int) -> str:
    caught = current_emulator().mail.outbound()
    if not 1 <= seq <= len(caught) or caught[seq - 1].seq != seq:
        abort(404, f"The outbound mail has no message {seq}.")
    mail = caught[seq - 1]
    return page(
        "outbound.html",
        message={
            **_row(mail),
            "recipients": mail.recipients,
            "internet_message_id": mail.internet_message_id,
            "body_type": mail.body_type.lower(),
            "body": mail.body_content,
        },
    )
