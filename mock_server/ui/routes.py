"""The dashboard's blueprint with every page registered (importing this module registers them all)."""

from m365_mock.ui import access, emulator_page, live_log, mailboxes, outbound  # noqa: F401
from m365_mock.ui.base import UI_PREFIX, error_page, ui

__all__ = ["UI_PREFIX", "error_page", "ui"]
