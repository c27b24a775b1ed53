"""The dashboard's Outbound page."""

from __future__ import annotations

from m365_mock.ui.base import page, ui


@ui.get("/outbound")
def outbound() -> str:
    return page("outbound.html")
