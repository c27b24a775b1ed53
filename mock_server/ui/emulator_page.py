"""The dashboard's Emulator page."""

from __future__ import annotations

from m365_mock.ui.base import page, ui


@ui.get("/emulator")
def emulator() -> str:
    return page("emulator.html")
