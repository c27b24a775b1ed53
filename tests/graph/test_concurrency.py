"""Many threads sending to and reading from the same mailboxes: nothing lost, nothing twice, counts true."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from m365_mock.state.throttling import ThrottlingSettings
from tests.helpers import GraphClient

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_throttling(emulator):
    """These tests are about state under many threads at once; Outlook's 4-at-once limit is tested on its own."""
    emulator.settings.throttling = ThrottlingSettings(enabled=False)
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


def run_together(count: int, work) -> list:
    """`work(i)` in `count` threads started together; their results in order."""
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_draft_sent_by_many_threads_at_once_is_delivered_once(app, graph):
    support, sales = MAILBOXES[0], MAILBOXES[1]
    draft = graph.post(
        f"/users/{support}/messages",
        json={"subject": "send me once", "toRecipients": [{"emailAddress": {"address": sales}}]},
    ).get_json()
    statuses = run_together(
        8,
        lambda i: (
            GraphClient(app.test_client(), graph.token)
            .post(f"/users/{support}/messages/{draft['id']}/send")
            .status_code
        ),
    )
    assert statuses.count(202) == 1, statuses
    inbox = graph.get(f"/users/{sales}/mailFolders/inbox/messages?$filter=subject eq 'send me once'").get_json()
    assert len(inbox["value"]) == 1
    sent = graph.get(f"/users/{support}/mailFolders/sentitems/messages?$filter=subject eq 'send me once'").get_json()
    assert len(sent["value"]) == 1


def test_attachments_added_by_many_threads_are_all_kept(app, graph):
    import base64

    support = MAILBOXES[0]
    draft = graph.post(f"/users/{support}/messages", json={"subject": "many files"}).get_json()

    def add(i: int) -> int:
        client = GraphClient(app.test_client(), graph.token)
        return client.post(
            f"/users/{support}/messages/{draft['id']}/attachments",
            json={
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": f"f{i}.bin",
                "contentBytes": base64.b64encode(bytes([i]) * 1000).decode(),
            },
        ).status_code

    assert run_together(12, add) == [201] * 12
    listed = graph.get(f"/users/{support}/messages/{draft['id']}/attachments").get_json()["value"]
    assert sorted(a["name"] for a in listed) == sorted(f"f{i}.bin" for i in range(12))
    assert {base64.b64decode(a["contentBytes"]) for a in listed} == {bytes([i]) * 1000 for i in range(12)}


def test_drafts_sent_crosswise_at_once_do_not_deadlock(app, graph):
    """support@ and sales@ send drafts to each other at the same moment, many times: each send holds its own
    mailbox only while it claims the draft, so neither waits for the other forever."""
    support, sales = MAILBOXES[0], MAILBOXES[1]
    rounds = 20
    drafts = {
        (source, target): [
            graph.post(
                f"/users/{source}/messages",
                json={"subject": f"x-{source[:5]}-{n}", "toRecipients": [{"emailAddress": {"address": target}}]},
            ).get_json()["id"]
            for n in range(rounds)
        ]
        for source, target in ((support, sales), (sales, support))
    }

    def send_all(i: int) -> list[int]:
        source, target = ((support, sales), (sales, support))[i]
        client = GraphClient(app.test_client(), graph.token)
        return [client.post(f"/users/{source}/messages/{d}/send").status_code for d in drafts[(source, target)]]

    results: list = []
    worker = threading.Thread(target=lambda: results.extend(run_together(2, send_all)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the crosswise sends deadlocked"
    assert results == [[202] * rounds, [202] * rounds]
