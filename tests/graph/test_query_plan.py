"""Listing from indexes gives what evaluating every message gives: $filter, $orderby and $search, old way and new.

The old way is the reference: every message of the folder (or mailbox) in the default order, the filter or the
search asked of each through the getter, then `query.order` (a full stable sort), then the page. The new way is
`plan.list_page`: indexes, value entries, early stops and bounded heaps. Both run over the same mail: generated
mail plus hand-made messages with the awkward cases (ties in received time, no sent time, no sender, markup and
entities, case-folding letters, attachments, messages moved out of view).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from m365_mock.graph import kql, query
from m365_mock.graph.query import plan
from m365_mock.graph.serializers import getter
from m365_mock.state.content import generate_messages, pools
from m365_mock.state.mailstore import VALUE_FIELDS, MailboxStore, recipient
from m365_mock.state.mailstore.attachments import file_attachment
from tests.graph.test_odata import mutate, random_filter
from tests.helpers import SUPPORT

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
GENERATED = 300


def attachment(name: str) -> dict[str, Any]:
    return file_attachment(name, b"%PDF", "application/pdf", modified=NOW)


def fill(store: MailboxStore) -> None:
    inbox, archive = store.well_known["inbox"], store.well_known["archive"]
    generate_messages(store, inbox, GENERATED, now=NOW - timedelta(days=1), seed=365)
    tie = NOW - timedelta(hours=5)
    hand_made: list[tuple[Any, dict[str, Any]]] = [
        (inbox, {"subject": "Quarterly report", "received": tie, "has_attachments": True,
                 "attachments": [attachment("q1-figures.pdf")],
                 "body_content": "<html><p>Numbers for&nbsp;<b>Q1</b> &amp; Q2 attached</p></html>",
                 "from_": recipient("adelev@contoso.com", "Adele Vance")}),
        (inbox, {"subject": "quarterly REPORT", "received": tie, "is_read": True,
                 "from_": recipient("AdeleV@Contoso.com", "adele vance")}),
        (inbox, {"subject": "Straße closed", "received": tie, "body_type": "text",
                 "body_content": "The STRASSE is closed; see <not a tag", "sent": None}),
        (inbox, {"subject": "İstanbul trip", "received": tie - timedelta(microseconds=1),
                 "body_content": "<p>Flights &lt;booked&gt;</p>", "importance": "high"}),
        (inbox, {"subject": "", "received": NOW - timedelta(hours=2), "from_": None, "sender": None, "sent": None}),
        (inbox, {"subject": "Invoice 1001 overdue", "received": NOW - timedelta(hours=1), "has_attachments": True,
                 "attachments": [attachment("invoice-1001.pdf")], "from_": recipient("ap@fabrikam.example", "AP"),
                 "cc": [recipient("cara@contoso.com", "Cara Diaz")], "bcc": [recipient("dan@contoso.com")]}),
        (archive, {"subject": "Invoice 1002", "received": NOW - timedelta(minutes=30),
                   "from_": recipient("ap@fabrikam.example", "Fabrikam AP"), "is_read": True}),
        (archive, {"subject": "Re: password reset", "received": NOW - timedelta(minutes=20),
                   "from_": recipient("ann@example.org", "Ann"), "sent": NOW - timedelta(minutes=25)}),
        (inbox, {"subject": "Lunch? Let's meet", "received": NOW, "sent": NOW - timedelta(days=3),
                 "body_content": "Pizza at noon, meet in the lobby", "body_type": "text"}),
    ]  # fmt: skip
    made = []
    for folder, fields in hand_made:
        fields.setdefault("sent", fields["received"] - timedelta(seconds=30))
        fields.setdefault("from_", recipient("customer@example.org", "A Customer"))
        fields.setdefault("to", [recipient(SUPPORT, "Support")])
        made.append(store.add_message(folder, **fields))
    generated = list(store.well_known["inbox"].all)
    rng = random.Random(5)
    for message in rng.sample(generated, 12):
        store.delete_message(message.id)  # into Deleted Items, still in the mailbox's view
    for message in rng.sample(list(store.well_known["deleteditems"].all), 4):
        store.delete_message(message.id)  # out of view
    for message in rng.sample(list(store.well_known["inbox"].all), 20):
        store.update_message(message.id, lambda m: setattr(m, "is_read", not m.is_read))
    store.update_message(made[0].id, lambda m: setattr(m, "subject", "Quarterly report (final)"))


@pytest.fixture
def store(emulator, tenant) -> MailboxStore:
    box = emulator.mail.store(tenant.mailbox(SUPPORT))
    fill(box)
    return box


def reference(store, folder, *, flt=None, orderby=(), search=None, skip=0, top=10, count=True):
    """The old evaluation: every message, the getter, a full stable sort."""
    items = list(folder.all if folder else store.all)
    if flt is not None:
        items = [m for m in items if flt.matches(getter(m))]
    if search is not None:
        items = [m for m in items if search.matches(getter(m))]
        orderby = [("sentDateTime", True)]
    if orderby:
        items = query.order(items, orderby, getter)
    return [m.id for m in items[skip : skip + top]], len(items) if count else None, skip + top < len(items)


def planned(store, folder, *, flt=None, orderby=(), search=None, skip=0, top=10, count=True):
    page = plan.list_page(store, folder, skip=skip, top=top, count=count, flt=flt, orderby=orderby, search=search)
    return [m.id for m in page.items], page.total, page.has_more


def same(store, folder, **options) -> None:
    assert planned(store, folder, **options) == reference(store, folder, **options), options


def instants(store) -> list[str]:
    """Received times that some message has exactly, to test bounds on both sides of a tie."""
    moments = sorted({m.received for m in store.all})
    picks = [moments[0], moments[len(moments) // 2], moments[-5], moments[-1], NOW - timedelta(hours=5)]
    return [p.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for p in picks]


FILTERS = [
    "isRead eq false",
    "isRead eq true",
    "false eq isRead",
    "hasAttachments eq true",
    "hasAttachments eq false",
    "subject eq 'quarterly report'",
    "subject eq 'QUARTERLY REPORT (FINAL)'",
    "subject eq 'straße closed'",
    "subject eq 'no such subject'",
    "subject eq ''",
    "subject eq null",
    "from/emailAddress/address eq 'ADELEV@contoso.com'",
    "from/emailAddress/address eq 'ap@fabrikam.example' and isRead eq true",
    "from/emailAddress/address eq 'nobody@nowhere.example'",
    "isRead eq false and hasAttachments eq true",
    "isRead eq true and isRead eq false",
    "isRead eq false and (importance eq 'high' or hasAttachments eq true)",
    "not(isRead eq false)",
    "startswith(subject,'invoice')",
    "receivedDateTime ge 2026-05-04",
    "receivedDateTime lt 2026-05-04 and isRead eq false",
    "receivedDateTime ge 2026-05-03T12:00:00Z and receivedDateTime lt 2026-05-04T06:00:00Z",
    "receivedDateTime gt 2026-05-03T12:00:00Z or isRead eq true",
    "receivedDateTime ge 2030-01-01",
    "receivedDateTime le 2020-01-01",
    "2026-05-04 le receivedDateTime",
    "subject eq 'Invoice 1002' and receivedDateTime ge 2026-05-04T11:00:00Z",
]
ORDERS = [
    [],
    [("receivedDateTime", True)],
    [("receivedDateTime", False)],
    [("subject", False)],
    [("subject", True)],
    [("sentDateTime", True)],
    [("importance", True), ("receivedDateTime", False)],
    [("isRead", False), ("subject", True), ("receivedDateTime", True)],
    [("from/emailAddress/address", False)],
    [("bodyPreview", False)],
]
PAGES = [(0, 10), (3, 7), (0, 1000), (150, 25), (2**31 - 1, 5)]


@pytest.mark.parametrize("scope", [None, "inbox", "deleteditems", "archive", "recoverableitemsdeletions"])
def test_filters_from_indexes_match_the_full_evaluation(store, scope):
    folder = store.folder(scope) if scope else None
    bounds = instants(store)
    texts = FILTERS + [f"receivedDateTime {op} {b}" for b in bounds for op in ("eq", "ge", "gt", "le", "lt")]
    texts += [f"receivedDateTime ge {bounds[0]} and receivedDateTime le {bounds[2]} and isRead eq false"]
    for text in texts:
        flt = query.parse_filter(text)
        for skip, top in PAGES:
            same(store, folder, flt=flt, skip=skip, top=top, count=skip == 0)


@pytest.mark.parametrize("scope", [None, "inbox", "archive"])
def test_many_matches_are_found_walking_the_index(store, scope):
    folder = store.folder(scope) if scope else None
    senders = Counter(m.from_["emailAddress"]["address"] for m in store.all if m.from_)
    common, newest = senders.most_common(1)[0][0], store.all.slice(0, 1)[0].subject.replace("'", "''")
    for text in (f"from/emailAddress/address eq '{common.upper()}'", f"subject eq '{newest}'"):
        flt = query.parse_filter(text)
        for orderby in ([], [("receivedDateTime", False)]):
            for skip, top in [(0, 1), (1, 1), (2, 3), (0, 2)]:
                same(store, folder, flt=flt, orderby=orderby, skip=skip, top=top, count=False)


@pytest.mark.parametrize("scope", [None, "inbox", "deleteditems"])
def test_orders_match_the_full_sort(store, scope):
    folder = store.folder(scope) if scope else None
    for orderby in ORDERS:
        for skip, top in PAGES:
            same(store, folder, orderby=orderby, skip=skip, top=top)
        for text in ("receivedDateTime ge 2026-05-03T20:00:00Z", "isRead eq false", "subject eq 'quarterly report'"):
            same(store, folder, flt=query.parse_filter(text), orderby=orderby, top=15)


def test_ties_in_received_time_keep_the_order_a_stable_sort_gives(store):
    tie = NOW - timedelta(hours=5)
    tied = [m for m in store.all if m.received == tie]
    assert len(tied) == 3
    newest = planned(store, None, orderby=[("receivedDateTime", True)], top=1000)[0]
    oldest = planned(store, None, orderby=[("receivedDateTime", False)], top=1000)[0]
    ids = [m.id for m in sorted(tied, key=lambda m: -m.seq)]  # newest created first, either direction
    assert [i for i in newest if i in ids] == ids == [i for i in oldest if i in ids]


def search_words() -> list[str]:
    paragraphs = pools(365).paragraphs
    words = sorted({w.strip(".,").lower() for p in paragraphs[:6] for w in p.split()})
    return words[:12] + [w[:3] for w in words[:5]]


SEARCHES = [
    '"quarterly"', "quarterly", '"QUARTERLY report"', '"quart"', '"arterly"', '"numbers for q1"', '"q1 & q2"',
    '"\\"for Q1\\""', '"adele"', '"adelev@contoso.com"', '"contoso.com"', '"@contoso"', '"fabrikam"', '"strasse"',
    '"straße"', '"istanbul"', '"i̇stanbul"', '"<booked>"', '"booked"', '"not a tag"', '"lobby NOT pizza"',
    '"NOT lobby"', "NOT lobby", '"(quarterly OR lunch) AND pizza"', '"subject:invoice"', '"subject:\\"let\'s meet\\""',
    '"body:lobby"', '"from:ap@fabrikam.example"', '"from:ann"', '"to:support"', '"cc:cara"', '"bcc:dan"',
    '"recipients:cara"', '"participants:ann"', '"hasAttachments:true"', '"hasattachment:no"', '"importance:high"',
    '"kind:email"', '"attachment:invoice"', '"received:2026-05-04"', '"received>=2026-05-04"', '"sent<2026-05-02"',
    '"size>600"', '"size<100"', '"isRead:false"', '""', '"*"', '"quart*"', '"invoice" OR "lunch"', '"invoice" "1002"',
    '"invoice AND size>1"', '"invoice OR size>100000"', '"NOT invoice AND NOT lunch"', '"subject:invoice NOT ap"',
    '"subject>invoice"', '"from<>ap"', "a OR NOT b",
]  # fmt: skip


@pytest.mark.parametrize("scope", [None, "inbox", "archive", "deleteditems"])
def test_searches_from_value_indexes_match_the_full_evaluation(store, scope):
    folder = store.folder(scope) if scope else None
    texts = SEARCHES + [f'"{w}"' for w in search_words()] + [w for w in search_words() if w.isalpha()]
    for text in texts:
        search = kql.parse_search(text)
        for skip, top in [(0, 10), (5, 1000)]:
            same(store, folder, search=search, skip=skip, top=top)


def test_select_is_the_set_matches_passes(store):
    source = plan.MailboxSearch(store, None)
    rng = random.Random(3)
    words = search_words()
    fragments = [*words, "AND", "OR", "NOT", "(", ")", "subject:", "from:", "body:", "size>", "700", "invoice", '"']
    for _ in range(300):
        text = " ".join(rng.choices(fragments, k=rng.randint(1, 6))).replace('"', "")
        search = kql.parse_search(f'"{text}"')
        assert search.select(source) == {m for m in store.all if search.matches(getter(m))}, text


def test_random_filters_match_the_full_evaluation(store):
    rng = random.Random(11)
    checked = 0
    for _ in range(1500):
        try:
            flt = query.parse_filter(mutate(rng, random_filter(rng)))
        except query.ODataQueryError:
            continue
        same(store, None, flt=flt, top=20)
        checked += 1
    assert checked > 100


def test_random_conjunctions_of_indexed_conditions_match_the_full_evaluation(store):
    rng = random.Random(29)
    bounds = [*instants(store), "2026-05-04", "2026-05-03T23:59:59.999999Z"]
    subjects = sorted({m.subject for m in store.all})
    senders = sorted({m.from_["emailAddress"]["address"] for m in store.all if m.from_})
    conditions = [
        lambda: f"isRead eq {rng.choice(['true', 'false'])}",
        lambda: f"hasAttachments eq {rng.choice(['true', 'false'])}",
        lambda: f"receivedDateTime {rng.choice(['eq', 'ge', 'gt', 'le', 'lt'])} {rng.choice(bounds)}",
        lambda: "subject eq '{}'".format(rng.choice(subjects).upper().replace("'", "''")),
        lambda: f"from/emailAddress/address eq '{rng.choice(senders).swapcase()}'",
        lambda: "importance eq 'high'",
        lambda: "startswith(subject,'in')",
        lambda: f"not(isRead eq {rng.choice(['true', 'false'])})",
    ]
    for _ in range(400):
        parts = [rng.choice(conditions)() for _ in range(rng.randint(1, 4))]
        text = " and ".join(parts) if rng.random() < 0.85 else " or ".join(parts)
        flt = query.parse_filter(text)
        orderby = rng.choice([[], [("receivedDateTime", True)], [("receivedDateTime", False)], [("subject", False)]])
        scope = rng.choice([None, store.well_known["inbox"], store.well_known["deleteditems"]])
        skip, top = rng.choice([(0, 10), (0, 1), (4, 3), (0, 1000)])
        same(store, scope, flt=flt, orderby=orderby, skip=skip, top=top, count=rng.random() < 0.5)


def value_index_is_true(store: MailboxStore) -> None:
    """Every index agrees with the messages as they are now."""
    for name, read in VALUE_FIELDS.items():
        expected: dict[str, set[int]] = {}
        for m in store.immutable.values():
            value = read(m)
            if isinstance(value, str):
                expected.setdefault(value, set()).add(id(m))
        actual = {value: {id(m) for m in entry.messages} for value, entry in store.values[name].items()}
        assert actual == expected, name
    for name, folded in store.folded.items():
        spellings: dict[str, set[str]] = {}
        for value in store.values[name]:
            spellings.setdefault(value.casefold(), set()).add(value)
        assert {k: set(v) for k, v in folded.items()} == spellings, name
    assert store.attached == {m for m in store.immutable.values() if m.has_attachments}
    for folder in [None, *store.folders.values()]:
        index = folder.all if folder else store.all
        keys = index._keys
        assert keys == sorted(keys) and all(index._by_key[k]._key == k for k in keys)


def test_indexes_stay_true_under_concurrent_changes(store):
    value_index_is_true(store)
    errors: list[BaseException] = []
    stop = threading.Event()
    ids = [m.immutable_id for m in store.immutable.values()]
    folders = [store.well_known[n] for n in ("inbox", "archive", "deleteditems")]

    def change(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for i in range(300):
                key = rng.choice(ids)
                roll = rng.random()
                if roll < 0.4:
                    store.update_message(key, lambda m: setattr(m, "is_read", not m.is_read))
                elif roll < 0.6:
                    store.update_message(key, lambda m, i=i: setattr(m, "subject", f"changed {i % 7}"))
                elif roll < 0.8:
                    store.move_message(key, rng.choice(folders), keep_id=rng.random() < 0.5)
                else:
                    store.add_message(rng.choice(folders), subject=f"new {i % 5}", has_attachments=i % 2 == 0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read(seed: int) -> None:
        rng = random.Random(seed)
        texts = ("isRead eq false", "subject eq 'changed 3'", "hasAttachments eq true")
        filters = [query.parse_filter(t) for t in texts]
        searches = [kql.parse_search(t) for t in ('"changed"', '"new"', '"invoice OR changed"')]
        try:
            while not stop.is_set():
                folder = rng.choice([None, *folders])
                plan.list_page(store, folder, skip=0, top=10, count=True, flt=rng.choice(filters))
                plan.list_page(store, folder, skip=0, top=10, count=True, search=rng.choice(searches))
                plan.list_page(store, folder, skip=0, top=10, count=False, orderby=[("receivedDateTime", False)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(n,)) for n in range(2)]
    writers = [threading.Thread(target=change, args=(n,)) for n in range(3)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    value_index_is_true(store)
    for text in ("isRead eq false", "subject eq 'changed 3'", "hasAttachments eq true and isRead eq true"):
        same(store, None, flt=query.parse_filter(text), top=50)
    for text in ('"changed"', '"new"', '"changed OR invoice"'):
        same(store, store.well_known["archive"], search=kql.parse_search(text), top=50)


class _Entry:
    def __init__(self) -> None:
        self.derived: Any = None
        self.messages: tuple[Any, ...] = ()


def test_joined_texts_find_what_each_text_would():
    rng = random.Random(17)
    alphabet = "aab1 -_.@éßİ\u00a0\x00"
    for _ in range(300):
        raws = ["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(rng.randint(1, 8))]
        entries = {raw: _Entry() for raw in raws}
        joined = kql._Joined(entries, markup=False)
        for _ in range(10):
            needle = kql._needle("".join(rng.choices(alphabet, k=rng.randint(1, 4))))
            if not needle:
                continue
            expected = [e for raw, e in entries.items() if kql._found(needle, kql.plain(raw))]
            assert list(joined.matching(needle)) == expected, (raws, needle)


def test_searches_stay_right_as_values_come_and_go(store):
    inbox, archive = store.well_known["inbox"], store.well_known["archive"]
    searches = [kql.parse_search(t) for t in ('"zebra"', '"quarterly"', '"from:okapi"', '"body:gnu"', '"NOT zebra"')]

    def check() -> None:
        for search in searches:
            same(store, None, search=search, top=1000)
            same(store, archive, search=search, top=1000)

    check()  # the joined texts are built here
    first = store.add_message(inbox, subject="Zebra crossing", from_=recipient("okapi@zoo.example", "Okapi"))
    second = store.add_message(archive, subject="zebra", body_content="<p>a gnu</p>")
    check()  # found among the values that came since
    store.update_message(first.id, lambda m: setattr(m, "subject", "Horse crossing"))
    store.delete_message(second.id)
    store.delete_message(store.message(second.immutable_id).id)  # out of view; its values gone
    check()
    store.add_message(inbox, subject="zebra", body_content="<p>a gnu again</p>")  # a value back after it went
    check()
    for i in range(200):  # enough new values that the joined texts are built again
        store.add_message(inbox, subject=f"zebra {i}", body_content=f"<p>gnu {i}</p>")
    check()
    assert "created" not in store.value_caches["subject"] or len(store.value_caches["subject"]["created"]) < 100
