"""Many threads sending to and reading from the same mailboxes: nothing lost, nothing twice, counts true."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from tests.helpers import GraphClient

pytestmark = pytest.mark.slow
MAILBOXES = ["support@contoso.onmicrosoft.com", "sales@contoso.onmicrosoft.com", "billing@contoso.onmicrosoft.com"]


def test_concurrent_sends_reads_and_updates(app, graph):
    senders, per_sender = 6, 15
    errors: list[str] = []

    def send(worker: int) -> None:
        client = GraphClient(app.test_client(), graph.token)
        for i in range(per_sender):
            source = MAILBOXES[(worker + i) % 3]
            targets = [m for m in MAILBOXES if m != source]
            response = client.post(
                f"/users/{source}/sendMail",
                json={
                    "message": {
                        "subject": f"w{worker}-{i}",
                        "toRecipients": [{"emailAddress": {"address": t}} for t in targets],
                    }
                },
            )
            if response.status_code != 202:
                errors.append(f"send {response.status_code} {response.get_data(as_text=True)}")

    def read_and_mark() -> None:
        client = GraphClient(app.test_client(), graph.token)
        for _ in range(30):
            for mailbox in MAILBOXES:
                page = client.get(f"/users/{mailbox}/mailFolders/inbox/messages?$filter=isRead eq false&$top=5")
                if page.status_code != 200:
                    errors.append(f"list {page.status_code}")
                    continue
                for message in page.get_json()["value"]:
                    client.patch(f"/users/{mailbox}/messages/{message['id']}", json={"isRead": True})

    threads = [threading.Thread(target=send, args=(w,)) for w in range(senders)]
    threads += [threading.Thread(target=read_and_mark) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    expected = Counter()
    for worker in range(senders):
        for i in range(per_sender):
            source = MAILBOXES[(worker + i) % 3]
            for target in MAILBOXES:
                if target != source:
                    expected[(target, f"w{worker}-{i}")] += 1
    delivered = Counter()
    for mailbox in MAILBOXES:
        url = f"/users/{mailbox}/mailFolders/inbox/messages?$top=50&$select=subject,isRead"
        unread_seen = 0
        while url:
            body = graph.get(url).get_json()
            for message in body["value"]:
                delivered[(mailbox, message["subject"])] += 1
                unread_seen += not message["isRead"]
            url = body.get("@odata.nextLink")
        folder = graph.get(f"/users/{mailbox}/mailFolders/inbox").get_json()
        assert folder["totalItemCount"] == sum(n for (box, _), n in expected.items() if box == mailbox)
        assert folder["unreadItemCount"] == unread_seen
        sent = graph.get(f"/users/{mailbox}/mailFolders/sentitems").get_json()["totalItemCount"]
        assert sent == sum(1 for w in range(senders) for i in range(per_sender) if MAILBOXES[(w + i) % 3] == mailbox)
    assert delivered == expected
