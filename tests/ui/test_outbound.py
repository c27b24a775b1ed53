"""The dashboard's Outbound page: the mail caught on its way out of the tenants, newest first, each message with
its body (HTML only in a sandboxed frame) and Internet message id."""

from __future__ import annotations

import pytest
import requests
from markupsafe import escape

from tests.helpers import ADMIN_KEY, SALES, SUPPORT

UI = "/_m365/ui"


def send(graph, subject: str, body: dict[str, str], **recipients: list[str]) -> None:
    message = {"subject": subject, "body": body} | {
        f"{kind}Recipients": [{"emailAddress": {"address": a, "name": a.split("@")[0]}} for a in addresses]
        for kind, addresses in recipients.items()
    }
    assert graph.post(f"/users/{SUPPORT}/sendMail", json={"message": message}).status_code == 202


def test_outbound_mail_is_listed_newest_first_and_opens_to_its_body(ui, graph):
    send(graph, "First <b>plain</b>", {"contentType": "text", "content": "Line <one>\n& two"}, to=["a@example.org"])
    hostile = '<p onclick="x()">Hi</p><script>alert(1)</script><img src="https://evil.example/t.png">'
    send(graph, "Second", {"contentType": "html", "content": hostile}, to=["b@example.org", SALES], bcc=["c@x.org"])
    caught = ui.get("/_m365/outbound", headers={"X-M365-Admin-Key": ADMIN_KEY}).get_json()["value"]

    listing = ui.get(f"{UI}/outbound").get_data(as_text=True)
    assert listing.index("Second</a>") < listing.index("First &lt;b&gt;plain&lt;/b&gt;</a>")
    assert "b &lt;b@example.org&gt;, sales &lt;sales@contoso.onmicrosoft.com&gt;" in listing
    assert "c &lt;c@x.org&gt;" in listing and "<b>plain" not in listing

    text = ui.get(f"{UI}/outbound/1").get_data(as_text=True)
    assert '<pre class="body-text">Line &lt;one&gt;\n&amp; two</pre>' in text and "<iframe" not in text
    assert f'id="internet-message-id">{escape(caught[0]["internetMessageId"])}</dd>' in text

    page = ui.get(f"{UI}/outbound/2")
    rendered = page.get_data(as_text=True)
    assert f'<iframe class="body" sandbox srcdoc="{escape(hostile)}"' in rendered
    assert "allow-" not in rendered and "<script>alert" not in rendered
    assert "img-src 'self' data:" in page.headers["Content-Security-Policy"]
    assert "<dt>Outside the tenants</dt><dd>b@example.org, c@x.org</dd>" in rendered


@pytest.mark.parametrize("path", ["/outbound/1", "/outbound/0", "/outbound/x", "/outbound?page=2", "/outbound?page=x"])
def test_unknown_outbound_messages_and_pages_are_the_dashboards_404(ui, path):
    answer = ui.get(UI + path)
    assert answer.status_code == 404
    assert "<h1>404 Not Found</h1>" in answer.get_data(as_text=True)


def test_an_unknown_message_says_so(ui, graph):
    send(graph, "Only", {"contentType": "text", "content": "x"}, to=["a@example.org"])
    assert "The outbound mail has no message 2." in ui.get(f"{UI}/outbound/2").get_data(as_text=True)


@pytest.mark.slow
def test_the_page_shows_mail_sent_outside(dashboard, api, served, ui_url):
    app = served.app
    token = requests.post(
        served.tenant["token_endpoint"],
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=served.ca_file,
        timeout=30,
    ).json()["access_token"]
    subject = "<i>Your order</i> & more"
    message = {"subject": subject, "toRecipients": [{"emailAddress": {"address": "customer@example.org"}}]}
    sent = requests.post(
        f"{served.base_url}/v1.0/users/{SUPPORT}/sendMail",
        json={"message": message},
        headers={"Authorization": f"Bearer {token}"},
        verify=served.ca_file,
        timeout=30,
    )
    assert sent.status_code == 202
    dashboard.goto(ui_url + "/outbound")
    link = dashboard.locator("#outbound-rows tbody tr").first.locator("a")
    assert link.inner_text() == subject
    link.click()
    assert dashboard.locator("h2.subject").inner_text() == subject
    assert dashboard.locator("#internet-message-id").inner_text() == api.outbound()[0]["internetMessageId"]
