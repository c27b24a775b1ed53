"""Message delta: a folder's changes in rounds, each change told once, with Graph's links, shapes and errors."""

from __future__ import annotations

import base64
import json
import random
import secrets
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from m365_mock.graph.deltatoken import seal, unseal
from tests.helpers import BASE, GROUP, RAOP, SALES, SUPPORT, error_of

INBOX = f"/users/{SUPPORT}/mailFolders/inbox/messages/delta"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PAGE_2 = {"Prefer": "odata.maxpagesize=2"}
BADLY_FORMED = "Badly formed token: the token is not one this service issued."


def run_round(graph: Any, url: str, headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str, int]:
    """Follow the nextLinks of one round: (every item, the deltaLink, the number of pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = graph.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


@pytest.fixture
def five(deliver):
    """Five inbox messages received a minute apart; index 4 is the newest."""
    return [deliver(SUPPORT, subject=f"Ticket {i}", received=START + timedelta(minutes=i)) for i in range(5)]


# ---------------------------------------------------------------- shapes and paging


def test_first_page_shape_links_and_types(graph, five):
    response = graph.get(f"{INBOX}?$select=subject,isRead", headers=PAGE_2)
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=2"
    body = response.get_json()
    assert list(body) == ["@odata.context", "@odata.nextLink", "value"]
    assert body["@odata.context"] == f"{BASE}/v1.0/$metadata#Collection(message)"
    prefix = f"{BASE}/v1.0/users/{SUPPORT}/mailFolders('inbox')/messages/delta?$skiptoken="
    assert body["@odata.nextLink"].startswith(prefix)
    newest = five[4]
    assert body["value"][0] == {
        "@odata.type": "#microsoft.graph.message",
        "@odata.etag": f'W/"{newest.change_key}"',
        "id": newest.id,
        "subject": "Ticket 4",
        "isRead": False,
    }
    assert list(body["value"][0])[:2] == ["@odata.type", "@odata.etag"]


def test_a_round_pages_through_the_folder_newest_first(graph, five):
    items, delta_link, pages = run_round(graph, INBOX, PAGE_2)
    assert ids(items) == [m.id for m in reversed(five)]
    assert pages == 3
    assert delta_link.startswith(f"{BASE}/v1.0/users/{SUPPORT}/mailFolders('inbox')/messages/delta?$deltatoken=")


def test_the_first_request_sets_the_page_size_for_the_round(graph, five):
    first = graph.get(f"{INBOX}?$top=3").get_json()
    assert len(first["value"]) == 3 and "@odata.nextLink" in first
    rest = graph.get(first["@odata.nextLink"]).get_json()
    assert len(rest["value"]) == 2 and "@odata.deltaLink" in rest
    by_preference = graph.get(INBOX, headers={"Prefer": "odata.maxpagesize=4"}).get_json()
    assert len(by_preference["value"]) == 4
    following = graph.get(by_preference["@odata.nextLink"])
    assert len(following.get_json()["value"]) == 1 and "Preference-Applied" not in following.headers


def test_a_later_preference_sets_that_page_and_the_default_is_ten(graph, deliver):
    for i in range(12):
        deliver(SUPPORT, subject=f"n{i}", received=START + timedelta(minutes=i))
    first = graph.get(INBOX).get_json()
    assert len(first["value"]) == 10
    response = graph.get(first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=1"})
    assert len(response.get_json()["value"]) == 1
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=1"
    capped = graph.get(INBOX, headers={"Prefer": 'odata.maxpagesize=5000, IdType="ImmutableId"'})
    assert capped.headers["Preference-Applied"] == "odata.maxpagesize=1000"
    assert len(capped.get_json()["value"]) == 12


@pytest.mark.parametrize(
    "path",
    [
        "/users/{u}/mailFolders/inbox/messages/delta",
        "/users/{u}/mailFolders/Inbox/messages/delta()",
        "/users/{u}/mailFolders('Inbox')/messages/delta()",
        "/users/{u}/mailFolders('inbox')/messages/delta",
        "/users/{u}/mailFolders/inbox/messages/microsoft.graph.delta()",
        "/users/{u}/mailFolders/{inbox}/messages/delta",
        "/users/{u}/mailFolders('{inbox}')/messages/delta()",
        "/users('{u}')/mailFolders/INBOX/messages/delta",
    ],
)
def test_every_way_to_name_the_folder_and_the_function(graph, five, path):
    inbox_id = graph.get(f"/users/{SUPPORT}/mailFolders/inbox").get_json()["id"]
    items, delta_link, _ = run_round(graph, path.format(u=SUPPORT, inbox=inbox_id))
    assert ids(items) == [m.id for m in reversed(five)]
    assert graph.get(delta_link).get_json()["value"] == []


def test_delta_is_not_taken_for_a_message_id(graph, five):
    response = graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages/delta")
    assert response.status_code == 200
    assert "@odata.deltaLink" in response.get_json()


def test_mailbox_wide_message_delta_is_refused_as_graph_does(graph):
    for path in ("/messages/delta", "/messages/delta()"):
        assert error_of(graph.get(f"/users/{SUPPORT}{path}")) == (
            400,
            "BadRequest",
            "Unsupported request: Change tracking is not supported against 'microsoft.graph.message'.",
        )


def test_body_fields_need_mail_read(graph_as, deliver):
    deliver(SUPPORT, subject="secret", body_content="<p>the body</p>")
    basic = graph_as("Mail.ReadBasic.All").get(INBOX).get_json()["value"][0]
    assert "body" not in basic and "bodyPreview" not in basic and basic["subject"] == "secret"
    full = graph_as("Mail.Read").get(INBOX).get_json()["value"][0]
    assert full["body"]["content"] == "<p>the body</p>"
    assert error_of(graph_as().get(INBOX))[:2] == (403, "ErrorAccessDenied")


def test_text_body_preference_applies_beside_the_page_size(graph, deliver):
    deliver(SUPPORT, body_content="<p>Hello <b>there</b></p>")
    response = graph.get(INBOX, headers={"Prefer": 'outlook.body-content-type="text", odata.maxpagesize=3'})
    assert response.headers["Preference-Applied"] == 'odata.maxpagesize=3, outlook.body-content-type="text"'
    assert response.get_json()["value"][0]["body"]["contentType"] == "text"


# ---------------------------------------------------------------- later rounds


def test_the_next_round_tells_only_what_changed(graph, five):
    _, delta_link, _ = run_round(graph, f"{INBOX}?$select=subject,isRead", PAGE_2)
    assert graph.get(delta_link).get_json()["value"] == []
    gone = five[2].id
    graph.patch(f"/users/{SUPPORT}/messages/{five[1].id}", json={"isRead": True})
    graph.delete(f"/users/{SUPPORT}/messages/{gone}")
    items, delta_link, _ = run_round(graph, delta_link)
    assert items == [
        {
            "@odata.type": "#microsoft.graph.message",
            "@odata.etag": f'W/"{five[1].change_key}"',
            "id": five[1].id,
            "subject": "Ticket 1",
            "isRead": True,
        },
        {"@odata.type": "#microsoft.graph.message", "id": gone, "@removed": {"reason": "deleted"}},
    ]
    assert graph.get(delta_link).get_json()["value"] == []


def test_a_deleted_message_is_removed_under_the_id_the_folder_showed(graph, five):
    _, delta_link, _ = run_round(graph, INBOX)
    shown = five[2].id
    graph.delete(f"/users/{SUPPORT}/messages/{shown}")
    items, _, _ = run_round(graph, delta_link)
    assert items == [{"@odata.type": "#microsoft.graph.message", "id": shown, "@removed": {"reason": "deleted"}}]


def test_a_move_is_a_removal_here_and_a_new_message_there(graph, five):
    archive = f"/users/{SUPPORT}/mailFolders/archive/messages/delta"
    _, inbox_link, _ = run_round(graph, INBOX)
    _, archive_link, _ = run_round(graph, archive)
    old_id = five[0].id
    moved = graph.post(f"/users/{SUPPORT}/messages/{old_id}/move", json={"destinationId": "archive"}).get_json()
    assert ids(run_round(graph, inbox_link)[0]) == [old_id]
    assert run_round(graph, inbox_link)[0][0]["@removed"] == {"reason": "deleted"}
    arrived, _, _ = run_round(graph, archive_link)
    assert ids(arrived) == [moved["id"]] and "@removed" not in arrived[0]


def test_a_message_created_and_deleted_between_rounds_is_not_told(graph, five, deliver):
    _, delta_link, _ = run_round(graph, INBOX)
    passing = deliver(SUPPORT, subject="here and gone")
    graph.delete(f"/users/{SUPPORT}/messages/{passing.id}")
    assert run_round(graph, delta_link)[0] == []


def test_an_update_that_moves_back_and_forth_with_immutable_ids_is_one_update(graph, five):
    immutable = {"Prefer": 'IdType="ImmutableId"'}
    _, delta_link, _ = run_round(graph, INBOX, immutable)
    message = five[3]
    graph.post(f"/users/{SUPPORT}/messages/{message.immutable_id}/move", json={"destinationId": "archive"},
               headers=immutable)  # fmt: skip
    graph.post(f"/users/{SUPPORT}/messages/{message.immutable_id}/move", json={"destinationId": "inbox"},
               headers=immutable)  # fmt: skip
    items, _, _ = run_round(graph, delta_link, immutable)
    assert ids(items) == [message.immutable_id] and "@removed" not in items[0]


def test_drafts_attachments_and_permanent_deletes_are_changes_like_any_other(graph):
    drafts = f"/users/{SUPPORT}/mailFolders/drafts/messages/delta"
    _, delta_link, _ = run_round(graph, drafts)
    draft = graph.post(f"/users/{SUPPORT}/messages", json={"subject": "Quote"}).get_json()
    items, delta_link, _ = run_round(graph, delta_link)
    assert ids(items) == [draft["id"]] and items[0]["isDraft"] is True
    attachment = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentBytes": "aGk="}
    assert graph.post(f"/users/{SUPPORT}/messages/{draft['id']}/attachments", json=attachment).status_code == 201
    items, delta_link, _ = run_round(graph, delta_link)
    assert ids(items) == [draft["id"]] and items[0]["hasAttachments"] is True
    assert graph.post(f"/users/{SUPPORT}/messages/{draft['id']}/permanentDelete").status_code == 204
    items, _, _ = run_round(graph, delta_link)
    assert items == [{"@odata.type": "#microsoft.graph.message", "id": draft["id"], "@removed": {"reason": "deleted"}}]


def test_a_round_inside_a_batch_is_the_same_round(graph, five):
    inner = {"id": "1", "method": "GET", "url": f"{INBOX}?$select=subject", "headers": PAGE_2}
    answer = graph.post("/$batch", json={"requests": [inner]}).get_json()["responses"][0]
    assert answer["status"] == 200 and answer["headers"]["Preference-Applied"] == "odata.maxpagesize=2"
    assert ids(answer["body"]["value"]) == [five[4].id, five[3].id]
    rest, _, _ = run_round(graph, answer["body"]["@odata.nextLink"])
    assert ids(rest) == [five[2].id, five[1].id, five[0].id]


@pytest.mark.parametrize(
    ("change_type", "expected"),
    [("created", ["new"]), ("updated", ["Ticket 1"]), ("deleted", ["@removed"]), ("Created", ["new"])],
)
def test_change_type_keeps_one_kind_of_change_after_the_first_round(graph, five, deliver, change_type, expected):
    items, delta_link, _ = run_round(graph, f"{INBOX}?changeType={change_type}")
    assert len(items) == 5, "the first round gives the whole folder"
    graph.patch(f"/users/{SUPPORT}/messages/{five[1].id}", json={"isRead": True})
    graph.delete(f"/users/{SUPPORT}/messages/{five[2].id}")
    deliver(SUPPORT, subject="new")
    items, _, _ = run_round(graph, delta_link)
    assert [item.get("subject", "@removed") for item in items] == expected


def test_receivedDateTime_filter_narrows_every_round(graph, deliver):
    old = deliver(SUPPORT, subject="old", received=START - timedelta(days=2))
    recent = deliver(SUPPORT, subject="recent", received=START + timedelta(hours=1))
    since = START.strftime("%Y-%m-%dT%H:%M:%SZ")
    items, delta_link, _ = run_round(graph, f"{INBOX}?$filter=receivedDateTime ge {since}")
    assert ids(items) == [recent.id]
    graph.patch(f"/users/{SUPPORT}/messages/{old.id}", json={"isRead": True})
    graph.patch(f"/users/{SUPPORT}/messages/{recent.id}", json={"isRead": True})
    at_the_bound = deliver(SUPPORT, subject="at the bound", received=START)
    items, _, _ = run_round(graph, delta_link)
    assert ids(items) == [recent.id, at_the_bound.id]
    strictly, _, _ = run_round(graph, f"{INBOX}?$filter=receivedDateTime gt {since}&$orderby=receivedDateTime desc")
    assert ids(strictly) == [recent.id]


def test_a_filtered_first_round_gives_at_most_5000_messages(graph, emulator, tenant):
    store = emulator.mail.store(tenant.mailbox(SUPPORT))
    batch = [{"subject": f"bulk {i}", "received": START + timedelta(seconds=i)} for i in range(5003)]
    store.add_messages(store.folder("inbox"), batch)
    since = (START - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items, delta_link, _ = run_round(
        graph, f"{INBOX}?$filter=receivedDateTime ge {since}&$select=subject", {"Prefer": "odata.maxpagesize=1000"}
    )
    assert len(items) == 5000 and items[0]["subject"] == "bulk 5002" and items[-1]["subject"] == "bulk 3"
    later = store.add_message(store.folder("inbox"), subject="later", received=START + timedelta(days=1))
    assert ids(run_round(graph, delta_link)[0]) == [later.id]


def test_a_message_changed_while_the_first_round_pages_comes_once_in_the_next(graph, five):
    first = graph.get(INBOX, headers=PAGE_2).get_json()
    assert ids(first["value"]) == [five[4].id, five[3].id]
    graph.patch(f"/users/{SUPPORT}/messages/{five[0].id}", json={"isRead": True})  # not reached yet
    graph.patch(f"/users/{SUPPORT}/messages/{five[4].id}", json={"isRead": True})  # given already
    rest, delta_link, _ = run_round(graph, first["@odata.nextLink"], PAGE_2)
    assert ids(rest) == [five[2].id, five[1].id]
    following, _, _ = run_round(graph, delta_link, PAGE_2)
    assert ids(following) == [five[0].id, five[4].id]
    assert all(item["isRead"] for item in following)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("immutable", [False, True], ids=["ids", "immutable ids"])
def test_every_change_is_told_exactly_once_while_changes_interleave(graph, deliver, emulator, tenant, immutable, seed):
    """Creates, updates, moves in and out and deletes, between rounds and between the pages of a round: a
    client applying what it is told ends with the folder as it is, is never told the same version of a message
    twice, nor a departure twice (an id is removed no more often than it left the folder)."""
    rng = random.Random(seed)
    prefer = {"Prefer": 'odata.maxpagesize=3, IdType="ImmutableId"' if immutable else "odata.maxpagesize=3"}
    store = emulator.mail.store(tenant.mailbox(SUPPORT))
    for i in range(30):
        deliver(SUPPORT, subject=f"inbox {i}", received=START + timedelta(minutes=i))
    for i in range(6):
        deliver(SUPPORT, "archive", subject=f"archive {i}", received=START + timedelta(minutes=30 + i))
    shown = (lambda m: m.immutable_id) if immutable else (lambda m: m.id)
    counter = iter(range(10_000))
    departures: Counter[str] = Counter()

    def in_folder(name: str) -> list[Any]:
        return list(store.folder(name).all)

    def change_something() -> None:
        inbox, archive = in_folder("inbox"), in_folder("archive")
        kind = rng.choice(["create", "update", "update", "out", "in", "delete", "elsewhere"])
        if kind == "create" or (not inbox and kind != "in"):
            deliver(SUPPORT, subject=f"new {next(counter)}", received=START + timedelta(hours=rng.randrange(48)))
        elif kind == "update":
            target = rng.choice(inbox)
            graph.patch(f"/users/{SUPPORT}/messages/{target.id}", json={"categories": [f"c{next(counter)}"]})
        elif kind == "out":
            target = rng.choice(inbox)
            departures[shown(target)] += 1
            graph.post(f"/users/{SUPPORT}/messages/{target.id}/move", json={"destinationId": "archive"},
                       headers=prefer)  # fmt: skip
        elif kind == "in" and archive:
            target = rng.choice(archive)
            graph.post(f"/users/{SUPPORT}/messages/{target.id}/move", json={"destinationId": "inbox"},
                       headers=prefer)  # fmt: skip
        elif kind == "delete":
            target = rng.choice(inbox)
            departures[shown(target)] += 1
            graph.delete(f"/users/{SUPPORT}/messages/{target.id}")
        elif archive:
            target = rng.choice(archive)
            graph.patch(f"/users/{SUPPORT}/messages/{target.id}", json={"isRead": True})

    replica: dict[str, str] = {}
    versions: set[tuple[str, str]] = set()
    removals: Counter[str] = Counter()

    def apply(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "@removed" in item:
                removals[item["id"]] += 1
                assert removals[item["id"]] <= departures[item["id"]], f"a departure told twice: {item}"
                replica.pop(item["id"], None)
            else:
                version = (item["id"], item["changeKey"])
                assert version not in versions, f"a version told twice: {item}"
                versions.add(version)
                replica[item["id"]] = item["changeKey"]

    def actual() -> dict[str, str]:
        return {shown(m): m.change_key for m in in_folder("inbox")}

    url = f"{INBOX}?$select=subject,changeKey"
    for _round in range(12):
        while True:
            body = graph.get(url, headers=prefer).get_json()
            assert len(set(ids(body["value"]))) == len(body["value"]), "an id twice in one page"
            apply(body["value"])
            for _ in range(rng.randrange(1, 4)):
                change_something()
            if "@odata.deltaLink" in body:
                url = body["@odata.deltaLink"]
                break
            url = body["@odata.nextLink"]
        for _ in range(rng.randrange(5)):
            change_something()
    items, _, _ = run_round(graph, url, prefer)  # nothing changes during this one
    apply(items)
    assert replica == actual()
    assert sum(removals.values()) > 3
    assert len(actual()) > 5


# ---------------------------------------------------------------- refused query options and headers


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("$filter=isRead eq false", ("ErrorInvalidUrlQuery", "The '$filter' parameter value is not supported for "
         "'Messages' resource; only a value of 'receivedDateTime ge value' is supported.")),
        ("$filter=receivedDateTime lt 2026-01-01T00:00:00Z", ("ErrorInvalidUrlQuery", "The '$filter' parameter "
         "value is not supported for 'Messages' resource; only a value of 'receivedDateTime ge value' is supported.")),
        ("$filter=receivedDateTime ge 2026-01-01T00:00:00Z and isRead eq true", ("ErrorInvalidUrlQuery", "The "
         "'$filter' parameter value is not supported for 'Messages' resource; only a value of 'receivedDateTime ge "
         "value' is supported.")),
        ("$orderby=subject", ("ErrorInvalidUrlQuery", "The '$orderby' parameter value is not supported for "
         "'Messages' resource; only a value of 'receivedDateTime desc' is supported.")),
        ("$orderby=receivedDateTime", ("ErrorInvalidUrlQuery", "The '$orderby' parameter value is not supported "
         "for 'Messages' resource; only a value of 'receivedDateTime desc' is supported.")),
        ('$search="refund"', ("ErrorInvalidUrlQuery",
         "The '$search' parameter is not supported for delta query on 'Messages' resource.")),
        ("$skip=10", ("BadRequest", "The query parameter '$skip' is not supported here; "
         "this request takes $select, $top, $filter, $orderby, changeType, $skiptoken, $deltatoken.")),
        ("$count=true", ("BadRequest", "The query parameter '$count' is not supported here; "
         "this request takes $select, $top, $filter, $orderby, changeType, $skiptoken, $deltatoken.")),
        ("$expand=attachments", ("BadRequest", "The query parameter '$expand' is not supported here; "
         "this request takes $select, $top, $filter, $orderby, changeType, $skiptoken, $deltatoken.")),
        ("changeTyp=created", ("BadRequest", "The query parameter 'changeTyp' is not supported here; "
         "this request takes $select, $top, $filter, $orderby, changeType, $skiptoken, $deltatoken.")),
        ("changeType=moved", ("BadRequest",
         "The value 'moved' of changeType is not supported; use created, updated or deleted.")),
        ("$top=0", ("BadRequest", "Invalid value '0' for $top query option found. "
         "The $top query option requires a value between 1 and 1000.")),
        ("$select=subject&$select=isRead", ("BadRequest", "The query parameter '$select' is given more than once.")),
    ],
)  # fmt: skip
def test_query_options_delta_does_not_take_are_refused(graph, query, expected):
    assert error_of(graph.get(f"{INBOX}?{query}")) == (400, *expected)


def test_a_token_with_other_query_options_is_refused(graph, five):
    first = graph.get(INBOX, headers=PAGE_2).get_json()
    assert error_of(graph.get(first["@odata.nextLink"] + "&$select=subject")) == (
        400,
        "BadRequest",
        "The query parameter '$select' cannot be combined with '$skiptoken': the token holds the query of the "
        "round's first request.",
    )
    delta_link = run_round(graph, first["@odata.nextLink"], PAGE_2)[1]
    both = f"{delta_link}&$skiptoken={token_of(first['@odata.nextLink'])}"
    assert error_of(graph.get(both))[:2] == (400, "BadRequest")


def test_a_bad_page_size_preference_is_refused(graph):
    assert error_of(graph.get(INBOX, headers={"Prefer": "odata.maxpagesize=none"})) == (
        400,
        "BadRequest",
        "The value 'none' of the odata.maxpagesize preference is not valid; it must be a positive integer.",
    )


# ---------------------------------------------------------------- tokens


def test_garbled_tokens_are_refused(graph, five):
    _, delta_link, _ = run_round(graph, INBOX)
    base = delta_link.split("?", 1)[0]
    for token in ("x", "", "a.b", "%%%", "eyJmb28iOjF9.AAAA", base64.urlsafe_b64encode(b"[1,2]").decode() + ".AA"):
        status, code, message = error_of(graph.get(f"{base}?$deltatoken={token}"))
        assert (status, code) == (400, "BadRequest") and message.startswith("Badly formed token: "), token


def test_an_altered_token_is_refused(graph, five):
    _, delta_link, _ = run_round(graph, INBOX)
    body, mac = token_of(delta_link).split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["s"] = 0
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=") + "." + mac
    assert error_of(graph.get(delta_link.replace(token_of(delta_link), forged))) == (
        400,
        "BadRequest",
        "Badly formed token: the token has been altered.",
    )


def test_a_token_of_another_mailbox_folder_or_tenant_is_refused(graph, emulator, five, deliver):
    deliver(SALES, subject="sales mail")
    _, delta_link, _ = run_round(graph, INBOX)
    token = token_of(delta_link)
    another_mailbox = graph.get(f"/users/{SALES}/mailFolders/inbox/messages/delta?$deltatoken={token}")
    assert error_of(another_mailbox) == (
        400,
        "BadRequest",
        "Badly formed token: the token was issued for another mailbox.",
    )
    another_folder = graph.get(f"/users/{SUPPORT}/mailFolders/archive/messages/delta?$deltatoken={token}")
    assert error_of(another_folder) == (
        400,
        "BadRequest",
        "Badly formed token: the token was issued for another folder.",
    )
    state = unseal(emulator.delta_key, token)
    other_tenant = seal(emulator.delta_key, replace(state, tenant="00000000-0000-0000-0000-000000000000"))
    assert error_of(graph.get(f"{INBOX}?$deltatoken={other_tenant}"))[2] == (
        "Badly formed token: the token was issued for another mailbox."
    )


def test_a_skiptoken_is_not_a_deltatoken(graph, five):
    first = graph.get(INBOX, headers=PAGE_2).get_json()
    token = token_of(first["@odata.nextLink"])
    assert error_of(graph.get(f"{INBOX}?$deltatoken={token}")) == (
        400,
        "BadRequest",
        "Badly formed token: a $skiptoken was given as $deltatoken.",
    )


def test_a_token_from_before_the_changes_history_must_resync(graph, emulator, tenant, deliver):
    store = emulator.mail.store(tenant.mailbox(SUPPORT))
    store.changes.history = 4
    messages = [deliver(SUPPORT, subject=f"m{i}") for i in range(8)]
    _, old_link, _ = run_round(graph, INBOX)
    graph.delete(f"/users/{SUPPORT}/messages/{messages[0].id}")
    _, recent_link, _ = run_round(graph, old_link)
    for message in messages[1:7]:
        graph.delete(f"/users/{SUPPORT}/messages/{message.id}")
    status, code, message = error_of(graph.get(old_link))
    assert (status, code) == (410, "SyncStateNotFound")
    assert message.startswith("The sync state generation is not found; generation=")
    assert error_of(graph.get(recent_link))[:2] == (410, "SyncStateNotFound")
    items, _, _ = run_round(graph, INBOX)
    assert ids(items) == [messages[7].id]


def test_tokens_from_before_a_reset_an_import_or_a_restart_must_resync(graph, admin, emulator, five):
    _, delta_link, _ = run_round(graph, INBOX)
    emulator.delta_key = secrets.token_bytes(32)  # what a restart does
    assert error_of(graph.get(delta_link))[:2] == (410, "SyncStateNotFound")
    _, delta_link, _ = run_round(graph, INBOX)
    admin.api.import_world(admin.api.export())
    assert error_of(graph.get(delta_link))[:2] == (410, "SyncStateNotFound")
    restored, delta_link, _ = run_round(graph, INBOX)
    assert sorted(ids(restored)) == sorted(m.id for m in five), "imported mail is tracked"
    admin.api.reset()
    assert error_of(graph.get(delta_link))[:2] == (410, "SyncStateNotFound")


def test_a_round_begun_with_immutable_ids_continues_with_them(graph, five):
    first = graph.get(INBOX, headers={"Prefer": 'odata.maxpagesize=2, IdType="ImmutableId"'}).get_json()
    assert ids(first["value"]) == [five[4].immutable_id, five[3].immutable_id]
    status, code, message = error_of(graph.get(first["@odata.nextLink"], headers=PAGE_2))
    assert (status, code) == (410, "SyncStateInvalid")
    assert 'made with Prefer: IdType="ImmutableId"' in message


# ---------------------------------------------------------------- access on every round


def test_an_access_policy_applies_to_every_round(graph, admin, demo_app, five, clock):
    admin.call("PATCH", "/_m365/settings", {"propagationDelay": 60}, expect=200)
    _, delta_link, _ = run_round(graph, f"/users/{SALES}/mailFolders/inbox/messages/delta")
    admin.policy(demo_app.app_id, GROUP)  # SALES is not in the group
    assert graph.get(delta_link).status_code == 200, "not in force yet"
    clock.advance(61)
    assert error_of(graph.get(delta_link)) == (403, "ErrorAccessDenied", RAOP)
    assert graph.get(INBOX).status_code == 200
