"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright), against the served
emulator; and in-process fixtures for what needs no browser (headers, refusals, rendered HTML)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from m365_mock.tools.control_client import ControlClient

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """Debian's Chromium, or the one M365_MOCK_CHROMIUM names; the tests fail (never skip) without one."""
    path = os.environ.get("M365_MOCK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "The dashboard's browser tests need Chromium: install Debian's package (apt-get install chromium) or "
            "set M365_MOCK_CHROMIUM to a Chromium binary. .ci/run installs it when missing.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def ui(client, emulator):
    """The Flask test client (in-process, the demo tenant) logged in to the dashboard."""
    assert client.post("/_m365/ui/login", data={"key": emulator.admin_key}).status_code == 303
    return client


@pytest.fixture
def api(served) -> Iterator[ControlClient]:
    """The served emulator's control API; the world put back afterwards."""
    client = ControlClient(served.base_url, served.facts["admin_key"], ca_file=served.ca_file)
    yield client
    client.reset()


@pytest.fixture
def ui_url(served) -> str:
    return served.base_url + "/_m365/ui"


@pytest.fixture
def anonymous(browser, served) -> Iterator[Any]:
    """A browser page with no session. A request to anywhere but the emulator is refused, and fails the test:
    the dashboard loads nothing from elsewhere."""
    context = browser.new_context(ignore_https_errors=True)
    elsewhere: list[str] = []

    def only_the_emulator(route: Any) -> None:
        url = route.request.url
        if url.startswith(served.base_url + "/") or url.startswith(("data:", "about:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    context.route("**/*", only_the_emulator)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert elsewhere == [], f"the dashboard asked for something outside the emulator: {elsewhere}"


@pytest.fixture
def dashboard(anonymous, served, ui_url) -> Any:
    """A browser page logged in to the served emulator's dashboard."""
    anonymous.goto(ui_url + "/login")
    anonymous.fill("#key", served.facts["admin_key"])
    anonymous.click("button[type=submit]")
    anonymous.wait_for_url(ui_url + "/mailboxes**")
    return anonymous
