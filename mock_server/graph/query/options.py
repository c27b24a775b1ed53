"""The simple query options: $select, $top, $skip and $count, and which options $search excludes."""

from __future__ import annotations

import re

from m365_mock.graph.errors import InvalidQueryOptionValue, ParseUriError, SearchWithFilter, SearchWithOrderBy
from m365_mock.graph.query.edm import DEFAULT_PROPERTIES, MESSAGE_TYPE, parse_int64, resolve

TOP_MAX = 1000
SKIP_MAX = 2**31 - 1  # Exchange pages with Int32 offsets; ODataLib itself reads $skip as Int64

_SELECT_ITEM_CHARS = re.compile(r"[^\w/$*]")


def parse_select(text: str) -> list[str]:
    """Parse a $select value into canonical top-level property names (``id`` is not added here).

    ``*`` stands for the default property set; a sub-path such as ``from/emailAddress`` selects its top-level
    property; an empty value gives an empty list (no projection).
    """
    if not text.strip():
        return []
    names: list[str] = []
    offset = 0
    for raw in text.split(","):
        start = offset + len(raw) - len(raw.lstrip())
        item = raw.strip()
        offset += len(raw) + 1
        if not item:
            raise ParseUriError.syntax(start, text)
        bad = _SELECT_ITEM_CHARS.search(item)
        if bad:
            if bad.group(0).isspace():
                raise ParseUriError.syntax(start + bad.start(), text)
            raise ParseUriError.invalid_character(bad.group(0), start + bad.start(), text)
        if item == "*":
            names.extend(DEFAULT_PROPERTIES)
            continue
        segments = item.split("/")
        if any(not s or "*" in s or s[0].isdigit() for s in segments):
            raise ParseUriError.syntax(start + len(item), text)
        # fidelity: chosen (sub-paths, even through collections, select their top-level property)
        path, _ = resolve(segments, MESSAGE_TYPE, through_collections=True)
        names.append(path.split("/")[0])
    return list(dict.fromkeys(names))


def parse_top(text: str) -> int:
    """Parse $top: an integer from 1 to 1000."""
    value = parse_int64(text)
    if value is None or value < 0:
        # Observed on /users/{id}/messages (dcblogdev/laravel-microsoft-graph#90).
        raise InvalidQueryOptionValue(
            f"Invalid value '{text}' for $top query option found. "
            "The $top query option requires a non-negative integer value."
        )
    if value == 0:
        raise InvalidQueryOptionValue(  # fidelity: chosen
            f"Invalid value '{text}' for $top query option found. "
            f"The $top query option requires a value between 1 and {TOP_MAX}."
        )
    if value > TOP_MAX:
        raise InvalidQueryOptionValue(  # fidelity: chosen (wording as Graph's chats API words its limit)
            f"The query specified in the URI is not valid. The limit of '{TOP_MAX}' for Top query has been "
            f"exceeded. The value from the incoming request is '{value}'."
        )
    return value


def parse_skip(text: str) -> int:
    """Parse $skip: a non-negative integer no larger than Int32's maximum (Exchange's paging offset)."""
    value = parse_int64(text)
    if value is None or value < 0:
        raise InvalidQueryOptionValue(  # ODataLib's text; the code follows the observed $top error
            f"Invalid value '{text}' for $skip query option found. "
            "The $skip query option requires a non-negative integer value."
        )
    if value > SKIP_MAX:
        raise InvalidQueryOptionValue(  # fidelity: chosen (Web API OData's MaxSkip text, as for $top)
            f"The query specified in the URI is not valid. The limit of '{SKIP_MAX}' for Skip query has been "
            f"exceeded. The value from the incoming request is '{value}'."
        )
    return value


def parse_count(text: str) -> bool:
    """$count: `true` in any case asks for `@odata.count`; any other value is ignored."""
    return text.lower() == "true"


def check_search_combination(*, has_search: bool, has_filter: bool, has_orderby: bool) -> None:
    """$search cannot be combined with $filter or $orderby (SearchWithFilter is reported first)."""
    if has_search and has_filter:
        raise SearchWithFilter()
    if has_search and has_orderby:
        raise SearchWithOrderBy()
