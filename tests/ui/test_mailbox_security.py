"""Hostile mail on the Mailboxes page: nothing in a message runs or loads anything, in a real browser; the routes
that serve an attachment's bytes or a thumbnail answer with headers that keep them inert, only to a session."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from m365_mock.state.mailstore import recipient
from m365_mock.state.mailstore.attachments import REFERENCE, Attachment, file_attachment

SUPPORT = "support@contoso.onmicrosoft.com"
UI = "/_m365/ui"
WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HOSTILE_HTML = (
    '<meta http-equiv="refresh" content="0;url=https://attacker.example/away">'
    '<p id="greeting">Hello from the attacker</p>'
    '<img src="https://attacker.example/x.png">'
    '<img src=x onerror="window.top.pwned=1;alert(1)">'
    "<script>window.top.pwned=1;alert(2)</script>"
    '<div style="background:url(https://attacker.example/bg.png)">styled</div>'
    '<link rel="stylesheet" href="https://attacker.example/s.css">'
    '<iframe src="https://attacker.example/frame"></iframe>'
)
HOSTILE_SUBJECT = '<script>window.pwned=1</script><img src=x onerror="alert(3)">'
HOSTILE_NAME = '<img src=x onerror="window.pwned=1">Mallory'


@pytest.fixture
def message_url(tenant) -> str:
    return f"{UI}/mailboxes/{tenant.id}/{SUPPORT}/messages"


def attached(deliver, *attachments: Attachment):
    return deliver(SUPPORT, attachments=list(attachments), has_attachments=True)


def test_an_attachment_downloads_as_an_inert_attachment(ui, deliver, message_url):
    message = attached(
        deliver,
        file_attachment('re"port/<1>.html', b"<script>alert(1)</script>", "text/html", modified=WHEN),
        file_attachment("Übersicht.bin", b"\x00\x01", "not a media type\r\nX-Injected: 1", modified=WHEN),
    )
    report, overview = message.attachments

    answer = ui.get(f"{message_url}/{message.id}/attachments/{report.id}")

    assert answer.status_code == 200 and answer.get_data() == b"<script>alert(1)</script>"
    assert answer.headers["Content-Type"] == "text/html"
    assert answer.headers["Content-Disposition"] == (
        "attachment; filename=\"re_port__1_.html\"; filename*=UTF-8''re_port__1_.html"
    )
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"

    odd = ui.get(f"{message_url}/{message.id}/attachments/{overview.id}")
    assert odd.status_code == 200 and odd.get_data() == b"\x00\x01"
    assert odd.headers["Content-Type"] == "application/octet-stream" and "X-Injected" not in odd.headers
    assert odd.headers["Content-Disposition"] == (
        "attachment; filename=\"Ubersicht.bin\"; filename*=UTF-8''%C3%9Cbersicht.bin"
    )


@pytest.mark.parametrize(
    ("name", "content_type", "content", "served"),
    [
        ("a.png", "image/png", PNG, "image/png"),
        ("a.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"),
        ("a.gif", "image/gif", b"GIF89a" + bytes(20), "image/gif"),
        ("a.webp", "image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20), "image/webp"),
        ("a.svg", "image/svg+xml", SVG, None),
        ("svg-as.png", "image/png", SVG, None),
        ("html-as.gif", "image/gif", b"<html><script>alert(1)</script>", None),
        ("riff.webp", "image/webp", b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(20), None),
        ("png-as.bin", "application/octet-stream", PNG, None),
    ],
)
def test_thumbnails_are_only_raster_images_whose_bytes_agree(
    ui, deliver, message_url, name, content_type, content, served
):
    message = attached(deliver, file_attachment(name, content, content_type, modified=WHEN))
    attachment = message.attachments[0]
    thumbnail = f"{message_url}/{message.id}/attachments/{attachment.id}/thumbnail"

    answer = ui.get(thumbnail)
    text = ui.get(f"{message_url}/{message.id}").get_data(as_text=True)

    if served is None:
        assert answer.status_code == 404 and f'src="{thumbnail}"' not in text
        assert "has no thumbnail" in answer.get_data(as_text=True)
        return
    assert answer.status_code == 200 and answer.get_data() == content
    assert answer.headers["Content-Type"] == served
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert answer.headers["Content-Disposition"].startswith("inline;")
    assert f'<img class="thumb" alt="" src="{thumbnail}">' in text


def test_unknown_attachments_and_references_are_404_pages(ui, deliver, message_url):
    reference = Attachment(id="", kind=REFERENCE, name="On the share", content_type=None, modified=WHEN)
    message = attached(deliver, file_attachment("a.txt", b"a", "text/plain", modified=WHEN), reference)
    known, shared = message.attachments
    unknown = known.id[:-8] + "AAAAAA=="
    base = f"{message_url}/{message.id}/attachments"

    for url in (f"{base}/{unknown}", f"{base}/{unknown}/thumbnail", f"{base}/nope", f"{base}/{shared.id}"):
        answer = ui.get(url)
        assert answer.status_code == 404, url
        assert answer.headers["Content-Type"].startswith("text/html")
    assert "is a reference attachment: it has no content here." in ui.get(f"{base}/{shared.id}").get_data(as_text=True)
    assert ui.get(f"{message_url}/{message.id[:-4]}AAAA/attachments/{known.id}").status_code == 404


def test_mail_content_needs_a_session(client, deliver, message_url):
    message = attached(deliver, file_attachment("a.png", PNG, "image/png", modified=WHEN))
    attachment = message.attachments[0]
    base = f"{message_url}/{message.id}"

    for url in (
        base,
        f"{base}/mime",
        f"{base}/attachments/{attachment.id}",
        f"{base}/attachments/{attachment.id}/thumbnail",
    ):
        answer = client.get(url)
        assert answer.status_code == 303, url
        assert answer.headers["Location"].startswith(f"{UI}/login?next=")
        assert PNG not in answer.get_data() and b"From:" not in answer.get_data()


def test_hostile_mail_is_escaped_and_its_body_framed_in_a_sandbox(ui, deliver, message_url):
    message = deliver(
        SUPPORT, subject=HOSTILE_SUBJECT, body_content=HOSTILE_HTML, from_=recipient("m@attacker.example", HOSTILE_NAME)
    )

    answer = ui.get(f"{message_url}/{message.id}")
    text = answer.get_data(as_text=True)

    assert "<script>" not in text and "onerror=" not in text.replace("onerror=&#34;", "")
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in text
    frames = re.findall(r"<iframe[^>]*>", text)
    assert len(frames) == 1 and re.search(r"\ssandbox\s", frames[0]) and "allow-" not in frames[0]
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "img-src 'self' data:;" in policy and "default-src 'none'" in policy


# ---------------------------------------------------------------- in the browser


@pytest.mark.slow
def test_hostile_mail_runs_nothing_and_loads_nothing_in_the_browser(dashboard, api, served, ui_url):
    origin = served.base_url.rstrip("/")
    api.deliver(
        SUPPORT,
        {
            "subject": HOSTILE_SUBJECT,
            "from": {"emailAddress": {"name": HOSTILE_NAME, "address": "m@attacker.example"}},
            "body": {"contentType": "html", "content": HOSTILE_HTML},
        },
    )
    page = dashboard
    context = page.context
    requested: list[str] = []
    failed: dict[str, str | None] = {}
    answered: list[str] = []
    left_the_browser: list[str] = []
    dialogs: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    context.on("requestfailed", lambda request: failed.__setitem__(request.url, request.failure))
    context.on("response", lambda response: answered.append(response.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    def only_the_emulator(route):
        """Every request that goes to the network passes here: any for elsewhere is noted and stopped."""
        if route.request.url.startswith(origin + "/"):
            route.continue_()
        else:
            left_the_browser.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_emulator)

    page.goto(ui_url + "/mailboxes")
    page.get_by_role("link", name="Customer Support").click()
    subject_link = page.locator("table.messages .subject a").first
    assert subject_link.inner_text() == HOSTILE_SUBJECT
    assert page.locator("table.messages td.from").first.inner_text() == f"{HOSTILE_NAME} <m@attacker.example>"
    subject_link.click()
    frame = page.frame_locator("iframe.body")
    assert frame.locator("#greeting").inner_text() == "Hello from the attacker"
    assert frame.locator("div").inner_text() == "styled"
    page.wait_for_load_state("networkidle")

    assert page.locator("h1.subject").inner_text() == HOSTILE_SUBJECT
    assert page.locator("dd.from").inner_text() == f"{HOSTILE_NAME} <m@attacker.example>"
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert dialogs == []
    # Chromium reports some fetches the page's CSP refuses (a CSS background, now and then an <img>) as requests
    # that fail with "csp" before they leave the browser: those are the only requests for anywhere else.
    elsewhere = [url for url in requested if not url.startswith(origin + "/")]
    assert {failed.get(url) for url in elsewhere} <= {"csp"}, elsewhere
    assert left_the_browser == [] and answered and all(url.startswith(origin + "/") for url in answered)
