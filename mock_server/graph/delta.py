"""Graph's message delta: `GET /users/{u}/mailFolders/{id}/messages/delta`, a folder's changes in rounds.

The first round pages through the folder's messages; it ends with an `@odata.deltaLink` whose token the next
round starts from, and that round gives only what changed since: messages created or updated (as they are now)
and `@removed` entries for those deleted or moved out. Each change is told once across rounds, also when mail
changes while a round is paged: the round's span of changes is fixed when it starts, and a message changed
after that waits for the next round. What a page costs follows the changes it covers, not the folder's size
(`state.mailstore.changes`). The query options go on the first request only and travel in the tokens
(`graph.deltatoken`), which are sealed with the emulator's key and bound to one folder of one mailbox.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from flask import Response
from werkzeug.datastructures import MultiDict

from m365_mock.graph import errors, query
from m365_mock.graph.deltatoken import DELTA, SKIP, BadToken, DeltaQuery, DeltaState, seal, unseal
from m365_mock.graph.query.nodes import Comparison
from m365_mock.graph.routes import (
    DEFAULT_PAGE,
    MailboxRequest,
    authorize,
    bearer_token,
    find_folder,
    graph_page,
    static_segment_route,
    wants_text_body,
)
from m365_mock.graph.serializers import message_fragment
from m365_mock.state.access import Operation
from m365_mock.state.mailstore import Folder
from m365_mock.state.mailstore.changes import Change, changes_page, initial_page
from m365_mock.web import current_emulator, origin_of

# `/delta` is Graph's shortcut for the function's full name; msgraph-sdk's request builder sends `delta()`.
DELTA_SEGMENTS = ("delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()")
FILTER_CAP = 5_000  # "Applying $filter in a delta query returns only up to 5,000 messages."
CHANGE_TYPES = ("created", "updated", "deleted")
_FIRST_REQUEST_OPTIONS = ("$select", "$top", "$filter", "$orderby", "changetype")
_TAKES = ("$select", "$top", "$filter", "$orderby", "changeType", "$skiptoken", "$deltatoken")
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*\"?([^\",;\s]*)\"?", re.I)
_TYPE = '{"@odata.type":"#microsoft.graph.message",'
_FILTER_REFUSED = (
    "The '$filter' parameter value is not supported for 'Messages' resource; "
    "only a value of 'receivedDateTime ge value' is supported."
)
_ORDERBY_REFUSED = (  # fidelity: chosen (worded as the documented $filter refusal)
    "The '$orderby' parameter value is not supported for 'Messages' resource; "
    "only a value of 'receivedDateTime desc' is supported."
)


def message_delta(user: str, folder_id: str) -> Response:
    """One page of a round: the first round's without a token, else the round its token continues."""
    req = authorize(user, Operation.READ_BASIC)
    folder = find_folder(req, folder_id)
    args = _arguments(req.http.args)
    page_size, applied = _preferred_page_size(req.http.headers.get("Prefer", ""))
    key = current_emulator().delta_key
    store = req.store
    with store.lock:
        state = _round_state(req, folder, args, key, page_size)
        size = page_size or state.query.page_size or DEFAULT_PAGE
        if state.phase == "initial":
            changes, state = _initial(folder, state, size)
        else:
            changes, state = _changes(req, folder, state, size)
        headers = wants_text_body(req.http)
        items = _render(req, changes, state.query, as_text=bool(headers))
    if applied:
        headers["Preference-Applied"] = ", ".join(filter(None, [applied, headers.get("Preference-Applied")]))
    link = _link(req, folder_id, state, key)
    head = json.dumps(
        {
            "@odata.context": f"{origin_of(req.http)}/v1.0/$metadata#Collection(message)",
            "@odata.nextLink" if state.kind == SKIP else "@odata.deltaLink": link,
        },
        separators=(",", ":"),
    )
    return graph_page(f'{head[:-1]},"value":[{items}]}}', headers)


for _number, _segment in enumerate(DELTA_SEGMENTS):
    static_segment_route(
        f"/users/<user>/mailFolders/<folder_id>/messages/{_segment}", f"message_delta_{_number}", message_delta
    )


def mailbox_messages_delta(user: str) -> Response:
    """Graph tracks message changes per folder only."""
    bearer_token()
    raise errors.ChangeTrackingNotSupported()


for _number, _segment in enumerate(DELTA_SEGMENTS):
    static_segment_route(
        f"/users/<user>/messages/{_segment}", f"mailbox_messages_delta_{_number}", mailbox_messages_delta
    )


# ---------------------------------------------------------------- the request's options and token


def _arguments(args: MultiDict[str, str]) -> dict[str, tuple[str, str]]:
    """The query parameters by lower-cased name: (name as sent, value); one of a name given twice is refused."""
    found: dict[str, tuple[str, str]] = {}
    for name, value in args.items(multi=True):
        folded = name.lower()
        if folded in found:
            raise errors.BadRequest(f"The query parameter '{name}' is given more than once.")  # fidelity: chosen
        found[folded] = (name, value)
    return found


def _preferred_page_size(prefer: str) -> tuple[int | None, str]:
    """`Prefer: odata.maxpagesize=N`: the page size asked for (at most 1,000) and its `Preference-Applied`."""
    match = _MAXPAGESIZE.search(prefer)
    if match is None:
        return None, ""
    text = match.group(1)
    if not text.isdigit() or int(text) < 1:
        raise errors.BadRequest(  # fidelity: chosen
            f"The value '{text}' of the odata.maxpagesize preference is not valid; it must be a positive integer."
        )
    size = min(int(text), query.TOP_MAX)
    return size, f"odata.maxpagesize={size}"


def _round_state(
    req: MailboxRequest, folder: Folder, args: dict[str, tuple[str, str]], key: bytes, preferred_size: int | None
) -> DeltaState:
    """Where the request stands: a first round from its query options (the page size from `$top`, else from the
    first request's preference), or the round its token continues (a $deltatoken starts the next round: the
    changes after the last one, up to the latest)."""
    log = req.store.changes
    tokens = [args[name] for name in (SKIP, DELTA) if name in args]
    if not tokens:
        return DeltaState(
            kind=SKIP,
            tenant=req.token.tenant.id,
            mailbox=req.mailbox.id,
            folder=folder.id,
            epoch=log.epoch,
            query=_first_query(args, req.immutable_ids, preferred_size),
            phase="initial",
            since=0,
            until=log.seq,
        )
    name, text = tokens[0]
    others = [sent for folded, (sent, _) in args.items() if folded != name.lower()]
    if others:
        raise errors.BadRequest(
            f"The query parameter '{others[0]}' cannot be combined with '{name}': the token holds the query of the "
            "round's first request."
        )  # fidelity: chosen
    state = _open(req, folder, key, name.lower(), text)
    if state.kind == DELTA:
        return replace(state, kind=SKIP, until=log.seq)
    return state


def _open(req: MailboxRequest, folder: Folder, key: bytes, kind: str, text: str) -> DeltaState:
    """The token's state, checked against the request: issued for this folder of this mailbox, by this run of the
    emulator (an earlier run's or a replaced mail store's token must resync), for the same kind of ids."""
    log = req.store.changes
    try:
        state = unseal(key, text)
    except BadToken as bad:
        raise errors.BadSyncToken(bad.detail) from None
    if (state.tenant, state.mailbox) != (req.token.tenant.id, req.mailbox.id):
        raise errors.BadSyncToken("the token was issued for another mailbox.")
    if not state.sealed or state.epoch != log.epoch:
        # Issued before the emulator restarted, or before the mailbox's mail was reset, imported or restored
        # (its folders may have new ids since).
        raise errors.SyncStateNotFound(state.since, log.seq)
    if state.folder != folder.id:
        raise errors.BadSyncToken("the token was issued for another folder.")
    if state.kind != kind:
        raise errors.BadSyncToken(f"a {state.kind} was given as {kind}.")
    if state.query.immutable_ids != req.immutable_ids:
        raise errors.SyncStateInvalid(
            "The sync state was made "
            + ("with" if state.query.immutable_ids else "without")
            + ' Prefer: IdType="ImmutableId" and cannot be used '
            + ("without" if state.query.immutable_ids else "with")
            + " it; start a new round without a token."
        )
    return state


def _first_query(args: dict[str, tuple[str, str]], immutable_ids: bool, preferred_size: int | None) -> DeltaQuery:
    """The first request's query options, as delta on messages takes them; anything else is refused."""
    for folded, (name, _) in args.items():
        if folded == "$search":
            raise errors.InvalidUrlQuery(  # fidelity: chosen
                "The '$search' parameter is not supported for delta query on 'Messages' resource."
            )
        if folded not in _FIRST_REQUEST_OPTIONS:
            raise errors.UnsupportedQueryOption(name, _TAKES)
    value = {folded: text for folded, (_, text) in args.items()}
    select = tuple(query.parse_select(value["$select"])) if "$select" in value else None
    top = query.parse_top(value["$top"]) if "$top" in value else preferred_size
    change_type = None
    if "changetype" in value:
        change_type = value["changetype"].lower()
        if change_type not in CHANGE_TYPES:
            raise errors.BadRequest(  # fidelity: chosen
                f"The value '{value['changetype']}' of changeType is not supported; use created, updated or deleted."
            )
    received_after = _received_filter(value["$filter"]) if value.get("$filter") else None
    if value.get("$orderby") and query.parse_orderby(value["$orderby"]) != [("receivedDateTime", True)]:
        raise errors.InvalidUrlQuery(_ORDERBY_REFUSED)
    return DeltaQuery(select, top, change_type, received_after, immutable_ids)


def _received_filter(text: str) -> tuple[float, bool]:
    """`receivedDateTime ge|gt {value}`, the one filter delta on messages takes: (instant, inclusive)."""
    parsed = query.parse_filter(text)
    bound = parsed.narrowing.after
    if (
        not isinstance(parsed._root, Comparison)
        or parsed._root.op not in ("ge", "gt")
        or bound is None
        or parsed.narrowing.before is not None
        or not parsed.narrowing.exact
    ):
        raise errors.InvalidUrlQuery(_FILTER_REFUSED)
    moment, inclusive = bound
    return moment.timestamp(), inclusive


# ---------------------------------------------------------------- pages


def _initial(folder: Folder, state: DeltaState, size: int) -> tuple[list[Change], DeltaState]:
    """A page of the first round and the state after it (the next page's, or the next round's)."""
    received_after = state.query.received_after
    limit = size if received_after is None else min(size, FILTER_CAP - state.given)
    after = state.after if isinstance(state.after, tuple) else None
    messages, last = initial_page(folder.all, until=state.until, after=after, size=limit, received_after=received_after)
    given = state.given + len(messages)
    if last is not None and (received_after is None or given < FILTER_CAP):
        return [Change(message=m) for m in messages], _after(state, last, given)
    return [Change(message=m) for m in messages], _next_round(state)


def _changes(req: MailboxRequest, folder: Folder, state: DeltaState, size: int) -> tuple[list[Change], DeltaState]:
    """A page of a later round; SyncStateNotFound when the folder's departures from before it were let go."""
    log = req.store.changes
    after = state.after if isinstance(state.after, int) else state.since
    if after < log.floor(folder.id):
        raise errors.SyncStateNotFound(after, log.seq)
    page, last = changes_page(
        log,
        folder.id,
        since=state.since,
        until=state.until,
        after=after,
        size=size,
        change_type=state.query.change_type,
        received_after=state.query.received_after,
        immutable_ids=state.query.immutable_ids,
    )
    return page, _next_round(state) if last is None else _after(state, last, state.given)


def _after(state: DeltaState, after: int | tuple[float, int], given: int) -> DeltaState:
    """The round goes on: its next page starts after `after`."""
    return replace(state, kind=SKIP, after=after, given=given)


def _next_round(state: DeltaState) -> DeltaState:
    """The round is over: its deltatoken starts the next one after its last change."""
    return replace(state, kind=DELTA, phase="changes", since=state.until, after=state.until, given=0)


def _render(req: MailboxRequest, changes: list[Change], delta_query: DeltaQuery, *, as_text: bool) -> str:
    """The page's items as JSON text: messages as the list routes show them (body fields only with Mail.Read),
    each typed; departures as `@removed`. Under the store's lock."""
    select = list(delta_query.select) if delta_query.select is not None else None
    visible, immutable = req.decision.content_visible, delta_query.immutable_ids
    parts = []
    for change in changes:
        if change.message is not None:
            fragment = message_fragment(
                change.message, select=select, as_text=as_text, content_visible=visible, immutable_ids=immutable
            )
            parts.append(_TYPE + fragment[1:])
        else:
            assert change.departure is not None
            removed: dict[str, Any] = {
                "@odata.type": "#microsoft.graph.message",
                "id": change.departure.shown_id(immutable),
                "@removed": {"reason": "deleted"},
            }
            parts.append(json.dumps(removed, separators=(",", ":")))
    return ",".join(parts)


def _link(req: MailboxRequest, folder_key: str, state: DeltaState, key: bytes) -> str:
    """The absolute next or delta link, on the emulator's origin, for the folder as the client named it."""
    user = quote(req.user_segment, safe="@")
    folder = quote(folder_key, safe="=")
    return (
        f"{origin_of(req.http)}/v1.0/users/{user}/mailFolders('{folder}')/messages/delta"
        f"?{state.kind}={seal(key, state)}"
    )
