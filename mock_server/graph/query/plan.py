"""A message list's query options as the mail store answers them.

$filter: what its `Narrowing` says becomes the store's `Selection` (an index span, the unread or attached
messages, a value index), and the filter itself is asked only of the candidates those leave, or not at all when
the narrowing is exact. $orderby: receivedDateTime either way is an order the store's indexes already keep;
anything else is a key for choosing the first page without sorting the rest. $search: its messages are found
through the value indexes (`kql.SearchExpr.select`), then ordered by sentDateTime as Graph orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from m365_mock.graph.kql import SearchExpr
from m365_mock.graph.query.filter import FilterExpr
from m365_mock.graph.query.ordering import order_key
from m365_mock.graph.serializers import getter, read
from m365_mock.state.mailstore import NEWEST, OLDEST, SENT, Folder, MailboxStore, Message, Page, Selection, ValueEntry

_EQUALITY_FIELDS = {"subject": "subject", "from/emailAddress/address": "from_address"}


def selection(flt: FilterExpr | None) -> Selection:
    if flt is None:
        return Selection()
    narrowing = flt.narrowing
    return Selection(
        after=narrowing.after,
        before=narrowing.before,
        is_read=narrowing.flags.get("isRead"),
        has_attachments=narrowing.flags.get("hasAttachments"),
        equals=tuple((_EQUALITY_FIELDS[path], literal) for path, literal in narrowing.equals),
        predicate=None if narrowing.exact else (lambda m: flt.matches(getter(m))),
    )


def ordering(orderby: Sequence[tuple[str, bool]]) -> str | Callable[[Message], Any]:
    if not orderby or list(orderby) == [("receivedDateTime", True)]:
        return NEWEST
    if list(orderby) == [("receivedDateTime", False)]:
        return OLDEST
    return order_key(orderby, read)


class MailboxSearch:
    """A mailbox (or one folder of it) as a `kql.SearchSource`. Use it under the mailbox's lock."""

    def __init__(self, store: MailboxStore, folder: Folder | None) -> None:
        self.store, self.folder = store, folder

    def scope(self) -> set[Message]:
        return set((self.folder or self.store).all.walk())

    def restrict(self, found: set[Message]) -> set[Message]:
        if self.folder is not None:
            folder_id = self.folder.id
            return {m for m in found if m.folder_id == folder_id}
        view = {f.id for f in self.store.folders.values() if f.in_mailbox_view}
        return {m for m in found if m.folder_id in view}

    def entries(self, field: str) -> dict[str, ValueEntry]:
        return self.store.values[field]

    def cache(self, field: str) -> dict[str, Any]:
        return self.store.value_caches[field]

    def getter(self, message: Message) -> Callable[[str], Any]:
        return getter(message)


def list_page(
    store: MailboxStore,
    folder: Folder | None,
    *,
    skip: int,
    top: int,
    count: bool,
    flt: FilterExpr | None = None,
    orderby: Sequence[tuple[str, bool]] = (),
    search: SearchExpr | None = None,
) -> Page:
    """One page of the folder's (or the mailbox's) messages as the query options ask; checks done by the caller."""
    order: str | Callable[[Message], Any] = SENT
    with store.lock:
        if search is not None:
            where = Selection(among=search.select(MailboxSearch(store, folder)))
        else:
            where, order = selection(flt), ordering(orderby)
        return store.list_messages(folder, skip=skip, top=top, count=count, where=where, order=order)
