"""The dashboard's Access page."""

from __future__ import annotations

from m365_mock.ui.base import page, ui


@ui.get("/access")
def access() -> str:
    return page("access.html")
