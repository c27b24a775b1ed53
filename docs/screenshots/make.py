"""Take the dashboard screenshots shown in README.md and docs/dashboard.md, from a real emulator and Chromium.

    python docs/screenshots/make.py [--chromium /usr/bin/chromium]

Starts `m365-mock serve` on the demo tenant in a temporary folder, has the demo app read an allowed and a
restricted mailbox and send mail outside (so the live log, the access matrix and the outbound page have
something to show), delivers a message with an image attachment, and saves one PNG per page beside this file.
"""

from __future__ import annotations

import argparse
import base64
import struct
import tempfile
import zlib
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
SUPPORT = "support@contoso.onmicrosoft.com"
SALES = "sales@contoso.onmicrosoft.com"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small solid-colour PNG."""
    row = b"\x00" + bytes(rgb) * width
    body = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def traffic(emulator) -> None:
    """What a daemon does: a token, an allowed read, a denied read, a message sent outside."""
    app, tenant = emulator.app, emulator.tenant
    token = requests.post(
        tenant["token_endpoint"],
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=emulator.ca_file,
        timeout=30,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for mailbox in (SUPPORT, SALES, SUPPORT):
        requests.get(
            f"{emulator.base_url}/v1.0/users/{mailbox}/messages?$top=5&$select=subject",
            headers=headers,
            verify=emulator.ca_file,
            timeout=30,
        )
    message = {
        "subject": "Your ticket #4711 has been received",
        "body": {"contentType": "HTML", "content": "<p>Thank you, we are on it.</p>"},
        "toRecipients": [{"emailAddress": {"address": "customer@example.org", "name": "A Customer"}}],
    }
    requests.post(
        f"{emulator.base_url}/v1.0/users/{SUPPORT}/sendMail",
        json={"message": message},
        headers=headers,
        verify=emulator.ca_file,
        timeout=30,
    )


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from m365_mock.tools.control_client import ControlClient
    from m365_mock.tools.process import start_emulator

    parser = argparse.ArgumentParser(prog="python docs/screenshots/make.py", description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="m365-shots-") as tmp, start_emulator(Path(tmp)) as emulator:
        control = ControlClient(emulator.base_url, emulator.facts["admin_key"], ca_file=emulator.ca_file)
        control.deliver(
            SUPPORT,
            {
                "subject": "Printer on floor 3 is jammed again",
                "from": {"emailAddress": {"address": "erin@fabrikam.example", "name": "Erin Fabrikam"}},
                "body": {
                    "contentType": "HTML",
                    "content": "<p>Hello,</p><p>the printer is <b>jammed</b>. Photo attached.</p>",
                },
                "attachments": [
                    {
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": "printer.png",
                        "contentType": "image/png",
                        "contentBytes": base64.b64encode(png(64, 48, (15, 108, 189))).decode(),
                    }
                ],
            },
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_context(ignore_https_errors=True, viewport={"width": 1440, "height": 860}).new_page()
            ui = emulator.base_url + "/_m365/ui"
            page.goto(ui + "/login")
            page.fill("#key", emulator.facts["admin_key"])
            page.click("button[type=submit]")
            page.wait_for_url(ui + "/mailboxes**")
            page.screenshot(path=HERE / "mailboxes.png")
            page.click("text=Customer Support")
            page.wait_for_selector("text=Printer on floor 3 is jammed again")
            page.screenshot(path=HERE / "mailbox.png")
            page.click("text=Printer on floor 3 is jammed again")
            page.frame_locator("iframe").locator("text=jammed").wait_for()
            page.screenshot(path=HERE / "message.png")
            page.goto(ui + "/log")
            page.wait_for_selector("#log-state:has-text('live')")
            traffic(emulator)
            page.wait_for_selector('#log-rows tr[data-status="403"]')
            page.locator('#log-rows tr[data-status="403"]').first.click()
            page.screenshot(path=HERE / "live-log.png")
            page.goto(ui + "/access")
            page.screenshot(path=HERE / "access.png", full_page=True)
            page.goto(ui + "/outbound")
            page.screenshot(path=HERE / "outbound.png")
            page.goto(ui + "/emulator")
            page.screenshot(path=HERE / "emulator.png", full_page=True)
            browser.close()
    for name in ("mailboxes", "mailbox", "message", "live-log", "access", "outbound", "emulator"):
        print(HERE / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
