"""`$count` of a message list: `GET /users/{u}/messages/$count` and `/users/{u}/mailFolders/{id}/messages/$count`.

The count is the list's: the same query options, parsed and checked by the list's own `list_query`, with `$filter`
and `$search` applied (OData: `$top`, `$skip`, `$orderby` and `$select` do not change a count). The answer is the
number as `text/plain`, as Graph's `/$count` segment answers.
"""

from __future__ import annotations

from flask import Response

from m365_mock.graph.query import plan
from m365_mock.graph.routes import (
    LIST_OPTIONS,
    MailboxRequest,
    allow_query,
    authorize,
    find_folder,
    list_query,
    static_segment_route,
)
from m365_mock.state.access import Operation
from m365_mock.state.mailstore import Folder

COUNT_TYPE = "text/plain"


def count_of(req: MailboxRequest, folder: Folder | None) -> Response:
    """The number of messages the list route would list (every page), as Graph's `text/plain` count."""
    allow_query(req, *LIST_OPTIONS)
    options = list_query(req)
    page = plan.list_page(
        req.store, folder, skip=0, top=0, count=True, flt=options.flt, orderby=options.orderby, search=options.search
    )
    return Response(str(page.total), content_type=COUNT_TYPE)


def count_messages(user: str) -> Response:
    return count_of(authorize(user, Operation.READ_BASIC), None)


def count_folder_messages(user: str, folder_id: str) -> Response:
    req = authorize(user, Operation.READ_BASIC)
    return count_of(req, find_folder(req, folder_id))


static_segment_route("/users/<user>/messages/$count", "count_messages", count_messages)
static_segment_route(
    "/users/<user>/mailFolders/<folder_id>/messages/$count", "count_folder_messages", count_folder_messages
)
