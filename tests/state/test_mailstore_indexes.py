"""The mail store's indexes: received-time spans and walks, value entries, and freezing long-lived mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from m365_mock.state.directory import Mailbox
from m365_mock.state.mailstore import NEWEST, OLDEST, SENT, MailboxStore, Selection, ValueEntry, indexes, recipient

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> MailboxStore:
    box = Mailbox(id="0f8fad5b-d9cb-469f-a165-70867728950e", address="a@contoso.example", display_name="A")
    box.tenant_id = "9188040d-6c67-4c5b-b112-36a304b66dad"
    return MailboxStore(box, lambda: T0)


def received(store: MailboxStore, *offsets_in_minutes: int) -> list:
    inbox = store.well_known["inbox"]
    return [
        store.add_message(inbox, subject=f"m{i}", received=T0 + timedelta(minutes=m))
        for i, m in enumerate(offsets_in_minutes)
    ]


def subjects(messages) -> list[str]:
    return [m.subject for m in messages]


def test_span_bounds_are_inclusive_or_not_on_both_sides_of_ties(store):
    received(store, 0, 10, 10, 20, 30)  # m0 .. m4; m1 and m2 tie
    index = store.all
    ten = (T0 + timedelta(minutes=10)).timestamp()
    assert subjects(index.walk(*index.span((ten, True), None))) == ["m4", "m3", "m2", "m1"]
    assert subjects(index.walk(*index.span((ten, False), None))) == ["m4", "m3"]
    assert subjects(index.walk(*index.span(None, (ten, True)))) == ["m2", "m1", "m0"]
    assert subjects(index.walk(*index.span(None, (ten, False)))) == ["m0"]
    assert subjects(index.walk(*index.span((ten, True), (ten, True)))) == ["m2", "m1"]
    start, stop = index.span((ten + 3600, True), (ten, True))  # after is later than before: nothing
    assert start == stop and list(index.walk(start, stop)) == []


def test_walking_oldest_first_keeps_ties_newest_created_first(store):
    received(store, 5, 0, 5, 5, 9)  # m0, m2, m3 received at the same instant
    assert subjects(store.all.walk()) == ["m4", "m3", "m2", "m0", "m1"]
    assert subjects(store.all.walk(oldest_first=True)) == ["m1", "m3", "m2", "m0", "m4"]
    assert subjects(store.all.walk(1, 4, oldest_first=True)) == ["m3", "m2", "m0"]


def test_listing_orders_and_pages(store):
    made = received(store, 0, 1, 2, 3, 4, 5)
    store.update_message(made[0].id, lambda m: setattr(m, "sent", T0 + timedelta(days=1)))
    page = store.list_messages(None, skip=1, top=2, count=True, order=OLDEST)
    assert (subjects(page.items), page.total, page.has_more) == (["m1", "m2"], 6, True)
    page = store.list_messages(None, skip=0, top=2, count=False, order=SENT)
    assert subjects(page.items) == ["m0", "m5"]  # sent first; the others have no sent time: default order
    page = store.list_messages(None, skip=4, top=5, count=True, where=Selection(is_read=False), order=NEWEST)
    assert (subjects(page.items), page.total, page.has_more) == (["m1", "m0"], 6, False)


def test_value_entries_follow_every_change(store):
    inbox, archive = store.well_known["inbox"], store.well_known["archive"]
    one = store.add_message(inbox, subject="Hello", from_=recipient("x@example.org", "X"))
    two = store.add_message(inbox, subject="Hello", from_=recipient("y@example.org", "Y"), has_attachments=True)
    assert set(store.values["subject"]["Hello"].messages) == {one, two}
    assert set(store.values["from_address"]) == {"x@example.org", "y@example.org"}
    assert store.attached == {two}
    store.update_message(two.id, lambda m: setattr(m, "subject", "Bye"))
    assert list(store.values["subject"]["Hello"].messages) == [one]
    assert list(store.values["subject"]["Bye"].messages) == [two]
    store.move_message(one.id, archive)
    store.update_message(one.id, lambda m: setattr(m, "subject", "Moved"))
    assert "Hello" not in store.values["subject"] and store.attached == {two}
    assert store.folded["subject"] == {"bye": ["Bye"], "moved": ["Moved"]}
    page = store.list_messages(archive, skip=0, top=10, where=Selection(equals=(("subject", "MOVED"),)))
    assert page.items == [one]
    store.update_message(one.id, lambda m: setattr(m, "subject", "moved"))
    store.update_message(two.id, lambda m: setattr(m, "subject", "MOVED"))
    assert store.folded["subject"] == {"moved": ["moved", "MOVED"]}
    page = store.list_messages(None, skip=0, top=10, where=Selection(equals=(("subject", "Moved"),)))
    assert set(page.items) == {one, two}


def test_a_value_entry_holds_one_message_without_a_set():
    entry = ValueEntry()
    first, second = object(), object()
    entry.add(first)  # type: ignore[arg-type]
    assert entry.messages == (first,) and entry._many is None
    entry.add(second)  # type: ignore[arg-type]
    assert set(entry.messages) == {first, second}
    assert not entry.discard(first)  # type: ignore[arg-type]
    assert entry.discard(second)  # type: ignore[arg-type]


def test_long_lived_mail_is_frozen_out_of_full_collections(store, monkeypatch):
    frozen: list[int] = []
    monkeypatch.setattr(indexes, "FREEZE_EVERY", 5)
    monkeypatch.setattr(indexes, "_changed_since_freeze", 0)
    monkeypatch.setattr(indexes.gc, "freeze", lambda: frozen.append(len(store.immutable)))
    made = received(store, 0, 1, 2, 3)
    assert frozen == []
    store.update_message(made[0].id, lambda m: setattr(m, "is_read", True))  # changes count too
    assert frozen == [4]
    store.add_messages(store.well_known["inbox"], [{"subject": f"bulk {i}"} for i in range(7)])
    assert frozen == [4, 11]  # a bulk load freezes once it is in
