"""The Mailboxes page: every tenant's mailboxes, a folder tree with Graph's counts, a message list that pages and
searches as Graph's `$search` does, a message's views, and 404s for what does not exist. In process (the Flask
test client) except the last test, which reads mail in a real browser."""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import quote

import pytest

from m365_mock.state.directory import Mailbox, Tenant
from m365_mock.state.mailstore import recipient
from m365_mock.state.mailstore.attachments import file_attachment

SUPPORT = "support@contoso.onmicrosoft.com"
UI = "/_m365/ui"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def support_url(tenant) -> str:
    return f"{UI}/mailboxes/{tenant.id}/{SUPPORT}"


def page_of(ui, url: str, status: int = 200) -> str:
    answer = ui.get(url)
    assert answer.status_code == status, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def listed_ids(text: str) -> list[str]:
    return re.findall(r'<td class="subject"><a href="[^"]*/messages/([^"/?]+)"', text)


def error_detail(text: str) -> str:
    return html.unescape(re.search(r"<p>(.*?)</p>", text, re.S).group(1))


def folder_count(text: str, name: str) -> str:
    """The count shown beside a folder of the tree, as text ("3 / 7", or "7" with nothing unread)."""
    found = re.search(rf'data-folder="{re.escape(name)}"[^>]*>[^<]*</a>\s*<span class="count"[^>]*>(.*?)</span>', text)
    assert found, name
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def fill(deliver, count: int, **fields: Any) -> list[str]:
    """`count` messages into support's inbox, one minute apart (the last is the newest); their ids, oldest first."""
    return [
        deliver(SUPPORT, subject=f"Parcel {i}", received=START + timedelta(minutes=i), **fields).id
        for i in range(count)
    ]


def test_every_tenants_mailboxes_are_listed_with_their_type_and_a_link(ui, emulator, tenant, deliver):
    other = Tenant(
        id="00000000-0000-0000-0000-00000000f00d", domains=["fabrikam.onmicrosoft.com"], display_name="Fabrikam"
    )
    other.add_mailbox(
        Mailbox(id="f00d", address="ops@fabrikam.onmicrosoft.com", display_name="Operations", kind="shared")
    )
    emulator.directory.add_tenant(other)
    deliver(SUPPORT, is_read=False)
    deliver(SUPPORT, is_read=True)

    text = page_of(ui, f"{UI}/mailboxes")

    for each in (tenant, other):
        assert f"<h2>{each.display_name} " in text
        for mailbox in each.mailboxes.values():
            link = f'href="{UI}/mailboxes/{each.id}/{mailbox.address}"'
            row = re.search(rf"<tr>\s*<td><a {re.escape(link)}>.*?</tr>", text, re.S)
            assert row, mailbox.address
            kind = "Shared" if mailbox.kind == "shared" else "User"
            assert f">{kind}</span>" in row.group(0)
    support_row = re.search(rf'{re.escape(SUPPORT)}/?">.*?</tr>', text, re.S).group(0)
    assert re.findall(r'<td class="num">([\d,]+)</td>', support_row) == ["2", "1"]
    assert "ops@fabrikam.onmicrosoft.com" in text and ">Shared</span>" in text and ">User</span>" in text


def test_the_folder_tree_shows_the_counts_graph_reports(ui, graph, deliver, emulator, tenant, support_url):
    store = emulator.mail.store(tenant.mailbox(SUPPORT))
    projects = store.create_folder(store.folder("inbox"), "Projects")
    fill(deliver, 3)
    deliver(SUPPORT, is_read=True)
    deliver(SUPPORT, folder=projects.id)
    deliver(SUPPORT, folder="archive", is_read=True)

    text = page_of(ui, support_url)

    folders = graph.get(f"/users/{SUPPORT}/mailFolders?$top=50").get_json()["value"]
    folders += graph.get(f"/users/{SUPPORT}/mailFolders/inbox/childFolders").get_json()["value"]
    for folder in folders:
        total, unread = folder["totalItemCount"], folder["unreadItemCount"]
        assert folder_count(text, folder["displayName"]) == (f"{unread} / {total}" if unread else str(total))
    assert folder_count(text, "Inbox") == "3 / 4" and folder_count(text, "Projects") == "1 / 1"
    assert folder_count(text, "Archive") == "1"
    assert 'data-folder="Inbox" class="current"' in text


def test_the_list_pages_newest_first_in_graphs_order(ui, graph, deliver, support_url):
    ids = fill(deliver, 120)
    url = f"{support_url}/folders/inbox"

    pages = [page_of(ui, f"{url}?page={n}") for n in (1, 2, 3)]

    graph_ids = [
        m["id"] for m in graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages?$top=120").get_json()["value"]
    ]
    assert [listed_ids(p) for p in pages] == [graph_ids[:50], graph_ids[50:100], graph_ids[100:]]
    assert graph_ids == ids[::-1]
    assert 'rel="next"' in pages[0] and 'rel="prev"' not in pages[0]
    assert 'rel="next"' in pages[1] and 'rel="prev"' in pages[1]
    assert 'rel="next"' not in pages[2] and "Page 3 of 3" in pages[2]
    assert listed_ids(page_of(ui, f"{url}?page=4")) == []


def test_search_finds_what_graphs_search_finds(ui, graph, deliver, support_url):
    fill(deliver, 60)
    for i in range(70):
        deliver(
            SUPPORT,
            subject=f"Invoice {i}",
            body_content=f"<p>amount {i}</p>",
            received=START + timedelta(hours=2, minutes=i),
        )
    deliver(SUPPORT, subject="Not here", body_content="<p>invoice</p>", folder="archive")

    for query in ('"subject:invoice"', "invoice", '"invoice AND amount"', '"parcel OR invoice"'):
        graph_ids = [
            m["id"]
            for m in graph.get(
                f"/users/{SUPPORT}/mailFolders/inbox/messages?$search={quote(query)}&$top=200"
            ).get_json()["value"]
        ]
        shown: list[str] = []
        for number in (1, 2, 3):
            shown += listed_ids(page_of(ui, f"{support_url}/folders/inbox?search={quote(query)}&page={number}"))
        assert shown == graph_ids, query
    text = page_of(ui, f"{support_url}/folders/inbox?search={quote(chr(34) + 'subject:invoice' + chr(34))}")
    assert "70 messages match" in text and 'rel="next"' in text


@pytest.mark.parametrize("query", ["(invoice", '"unterminated', "from:alice", "invoice AND"])
def test_a_bad_search_shows_graphs_error_on_the_page(ui, graph, support_url, query):
    refused = graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages?$search={quote(query)}")
    assert refused.status_code == 400
    error = refused.get_json()["error"]

    text = page_of(ui, f"{support_url}/folders/inbox?search={quote(query)}")

    shown = re.search(r'<p class="error search-error" role="alert">(.*?)</p>', text).group(1)
    assert html.unescape(shown) == f"{error['code']}: {error['message']}"
    assert listed_ids(text) == []


def test_unknown_tenants_mailboxes_folders_and_messages_are_404_pages(ui, deliver, tenant, support_url):
    message = deliver(SUPPORT)
    unknown_message = message.id[:-4] + ("AAAA" if not message.id.endswith("AAAA") else "BBBB")
    unknown_folder = message.folder_id[:-4] + ("AAAA" if not message.folder_id.endswith("AAAA") else "BBBB")
    nobody = "nobody@contoso.onmicrosoft.com"
    cases = {
        f"{UI}/mailboxes/no-such-tenant/{SUPPORT}": "This emulator has no tenant 'no-such-tenant'.",
        f"{UI}/mailboxes/{tenant.id}/{nobody}": f"Tenant Contoso has no mailbox '{nobody}'.",
        f"{support_url}/folders/nope": f"Mailbox {SUPPORT} has no folder 'nope'.",
        f"{support_url}/folders/{unknown_folder}": f"Mailbox {SUPPORT} has no folder '{unknown_folder}'.",
        f"{support_url}/messages/nope": f"Mailbox {SUPPORT} has no message 'nope'.",
        f"{support_url}/messages/{unknown_message}": f"Mailbox {SUPPORT} has no message '{unknown_message}'.",
        f"{support_url}/messages/{message.id}?tab=nope": (
            "A message has no tab 'nope': its tabs are body, text, source, headers, raw."
        ),
    }
    for url, detail in cases.items():
        text = page_of(ui, url, 404)
        assert error_detail(text) == detail, url
    assert (
        error_detail(page_of(ui, f"{support_url}?page=0", 400))
        == "'0' is not a page number: pages are numbered from 1."
    )


def test_a_message_shows_its_facts_text_headers_and_raw_mime_as_graph_writes_them(ui, graph, deliver, support_url):
    message = deliver(
        SUPPORT,
        subject="Quarterly report",
        body_content="<html><body><p>Numbers &amp; <b>words</b></p></body></html>",
        from_=recipient("ada@example.org", "Ada Lovelace"),
        sender_address="ada@example.org",
        cc=[recipient("bob@example.org", "Bob")],
        internet_message_headers=[{"name": "X-Ticket", "value": "T-42"}],
    )
    url = f"{support_url}/messages/{message.id}"

    body = page_of(ui, url)
    assert '<h1 class="subject">Quarterly report</h1>' in body
    assert '<dd class="from">Ada Lovelace &lt;ada@example.org&gt;</dd>' in body
    assert "<dd>Bob &lt;bob@example.org&gt;</dd>" in body
    assert 'sandbox srcdoc="&lt;html&gt;&lt;body&gt;&lt;p&gt;Numbers &amp;amp; &lt;b&gt;words' in body

    text = page_of(ui, f"{url}?tab=text")
    assert re.search(r'<pre class="body-text">Numbers &amp;\s+words</pre>', text)
    source = page_of(ui, f"{url}?tab=source")
    assert "&lt;p&gt;Numbers &amp;amp; &lt;b&gt;words&lt;/b&gt;&lt;/p&gt;" in source

    value = graph.get(f"/users/{SUPPORT}/messages/{message.id}/$value").get_data()
    expected = [(n, v) for n, v in BytesHeaderParser().parsebytes(value).items() if n != "Content-Type"]
    headers = page_of(ui, f"{url}?tab=headers")
    shown = [
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(r'<tr><th class="mono">(.*?)</th><td class="mono">(.*?)</td></tr>', headers)
    ]
    assert [pair for pair in shown if pair[0] != "Content-Type"] == expected
    assert ("X-Ticket", "T-42") in shown and ("Subject", "Quarterly report") in shown

    raw = html.unescape(re.search(r'<pre class="raw">(.*?)</pre>', page_of(ui, f"{url}?tab=raw"), re.S).group(1))
    eml = ui.get(f"{url}/mime")
    assert eml.headers["Content-Type"] == "message/rfc822"
    assert eml.headers["Content-Disposition"].startswith('attachment; filename="Quarterly report.eml"')
    assert same_mime(raw.encode(), value) and same_mime(eml.get_data(), value)


def same_mime(one: bytes, other: bytes) -> bool:
    """Equal but for the MIME boundaries, which are random per rendering."""
    boundary = re.compile(rb"={15}\d+==")
    return boundary.sub(b"B", one).replace(b"\r\n", b"\n") == boundary.sub(b"B", other).replace(b"\r\n", b"\n")


def test_a_text_message_shows_its_text_and_reading_it_leaves_it_unread(ui, graph, deliver, support_url):
    message = deliver(SUPPORT, body_type="text", body_content="line one\n<b>not bold</b>")

    text = page_of(ui, f"{support_url}/messages/{message.id}")

    assert '<pre class="body-text">line one\n&lt;b&gt;not bold&lt;/b&gt;</pre>' in text
    assert "<iframe" not in text and 'data-tab="source"' not in text
    assert graph.get(f"/users/{SUPPORT}/messages/{message.id}").get_json()["isRead"] is False


def test_attachments_are_listed_with_name_type_size_and_links(ui, deliver, clock, support_url):
    png = b"\x89PNG\r\n\x1a\n" + bytes(40)
    message = deliver(
        SUPPORT,
        attachments=[
            file_attachment("report.pdf", b"%PDF-1.7 " * 300, "application/pdf", modified=START),
            file_attachment("chart.png", png, "image/png", modified=START),
        ],
        has_attachments=True,
    )
    text = page_of(ui, f"{support_url}/messages/{message.id}")

    cells = r"\s*".join([r'<td class="thumb-cell">(.*?)</td>', r'<td class="name">(.*?)</td>',
                         r'<td class="mono">(.*?)</td>', r'<td class="num">(.*?)</td>', r"<td>(.*?)</td>"])  # fmt: skip
    rows = re.findall(r"<tr>\s*" + cells, text, re.S)
    assert [(name, kind, size) for _, name, kind, size, _ in rows] == [
        ("report.pdf", "application/pdf", "2.6 KB"),
        ("chart.png", "image/png", "48 B"),
    ]
    pdf, chart = message.attachments
    assert rows[0][0] == "" and f"/attachments/{pdf.id}" in rows[0][4]
    assert f'src="{support_url}/messages/{message.id}/attachments/{chart.id}/thumbnail"' in rows[1][0]
    assert ui.get(re.search(r'href="([^"]+)"', rows[0][4]).group(1)).get_data() == b"%PDF-1.7 " * 300


# ---------------------------------------------------------------- in the browser

pdf_bytes = b"%PDF-1.4\n" + bytes(range(256)) * 8


@pytest.mark.slow
def test_reading_mail_in_the_browser(dashboard, api, ui_url):
    address = "ui-reader@contoso.onmicrosoft.com"
    api.add_mailbox(address, display_name="UI Reader")
    api.generate(address, 60, unread_ratio=0.0)
    api.deliver(
        address,
        {
            "subject": "Quarterly figures",
            "from": {"emailAddress": {"name": "Ada Lovelace", "address": "ada@example.org"}},
            "body": {"contentType": "html", "content": "<p>The figures are <b>attached</b>.</p>"},
            "attachments": [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "figures.pdf",
                    "contentType": "application/pdf",
                    "contentBytes": base64.b64encode(pdf_bytes).decode(),
                }
            ],
        },
    )
    page = dashboard
    page.goto(ui_url + "/mailboxes")
    page.get_by_role("link", name="UI Reader").click()
    page.locator('.folders a[data-folder="Inbox"]').click()
    assert page.locator(".folders a.current").inner_text() == "Inbox"
    assert page.locator('.folders a[data-folder="Inbox"] + .count').inner_text() == "1 / 61"
    rows = page.locator("table.messages tbody tr")
    assert rows.count() == 50 and rows.first.locator(".subject a").inner_text() == "Quarterly figures"

    page.click("a[rel=next]")
    assert rows.count() == 11 and page.locator(".page-number").inner_text() == "Page 2 of 2"
    page.click("a[rel=prev]")
    assert rows.count() == 50 and page.locator(".page-number").inner_text() == "Page 1 of 2"

    page.fill("input[name=search]", '"subject:quarterly"')
    page.click("form.search button")
    assert rows.count() == 1
    page.locator("table.messages .subject a").click()

    assert page.locator("h1.subject").inner_text() == "Quarterly figures"
    assert page.locator("dd.from").inner_text() == "Ada Lovelace <ada@example.org>"
    assert page.frame_locator("iframe.body").locator("p").inner_text() == "The figures are attached."
    with page.expect_download() as started:
        page.get_by_role("link", name="Download", exact=True).click()
    download = started.value
    assert download.suggested_filename == "figures.pdf"
    with open(download.path(), "rb") as saved:
        assert saved.read() == pdf_bytes
