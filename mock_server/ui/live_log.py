"""The dashboard's Live log page."""

from __future__ import annotations

from m365_mock.ui.base import page, ui


@ui.get("/log")
def live_log() -> str:
    return page("live_log.html")
