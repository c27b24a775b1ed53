"""The dashboard's Mailboxes page."""

from __future__ import annotations

from m365_mock.ui.base import page, ui


@ui.get("/mailboxes")
def mailboxes() -> str:
    return page("mailboxes.html")
