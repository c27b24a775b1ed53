"""OData query options on message lists: $select, $orderby, $filter, $top, $skip and $count ($search is kql).

Pure Python, no Flask. It parses the subset that real mail clients send to ``GET /users/{u}/messages`` and
``/mailFolders/{id}/messages``, raises Graph's error codes (texts from ODataLib's resource strings where the
real service passes them through), and evaluates filters against one message through a getter.

The getter, ``get(canonical_path)``, is supplied by the caller and returns the message's value as Graph JSON
shows it, except that DateTimeOffset properties come back as timezone-aware ``datetime`` (UTC). It must return
``None`` for a value that is missing. Paths asked for:

* ``$filter``: the canonical path of every message property the filter names, e.g. ``"isRead"``,
  ``"subject"``, ``"receivedDateTime"``, ``"from/emailAddress/address"``, ``"flag/flagStatus"``,
  ``"body/content"``; for a lambda the collection itself: ``"categories"`` (list of str) or
  ``"toRecipients"`` / ``"ccRecipients"`` / ``"bccRecipients"`` / ``"replyTo"`` (lists of recipient dicts).
* ``order()`` and ``order_key()``: the canonical ``$orderby`` paths.

Rooms: ``edm`` (the message type, literals, the lexer), ``nodes`` (filter nodes and their evaluation),
``filter`` ($filter parsing, and the `Narrowing` the mail store's indexes use), ``options`` ($select, $top,
$skip, $count) and ``ordering`` ($orderby).
"""

from m365_mock.graph.errors import (
    InefficientFilter,
    InvalidQueryOptionValue,
    InvalidUrlQueryFilter,
    ODataQueryError,
    ParseUriError,
    SearchWithFilter,
    SearchWithOrderBy,
)
from m365_mock.graph.query.edm import DEFAULT_PROPERTIES, MESSAGE_PROPERTIES, PropertySpec
from m365_mock.graph.query.filter import FilterExpr, Narrowing, check_filter_orderby, parse_filter
from m365_mock.graph.query.nodes import Getter
from m365_mock.graph.query.options import (
    SKIP_MAX,
    TOP_MAX,
    check_search_combination,
    parse_count,
    parse_select,
    parse_skip,
    parse_top,
)
from m365_mock.graph.query.ordering import order, order_key, parse_orderby, sort_key

__all__ = [
    "DEFAULT_PROPERTIES",
    "MESSAGE_PROPERTIES",
    "SKIP_MAX",
    "TOP_MAX",
    "FilterExpr",
    "Getter",
    "InefficientFilter",
    "InvalidQueryOptionValue",
    "InvalidUrlQueryFilter",
    "Narrowing",
    "ODataQueryError",
    "ParseUriError",
    "PropertySpec",
    "SearchWithFilter",
    "SearchWithOrderBy",
    "check_filter_orderby",
    "check_search_combination",
    "order",
    "order_key",
    "parse_count",
    "parse_filter",
    "parse_orderby",
    "parse_select",
    "parse_skip",
    "parse_top",
    "sort_key",
]
