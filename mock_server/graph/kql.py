"""$search: ODataLib's $search grammar around Exchange's KQL, and how a search finds its messages.

A search is answered two ways that give the same messages:

* ``SearchExpr.matches(get)`` evaluates it against one message through a getter (see ``query``), asking for
  ``"subject"``, ``"body/content"`` (HTML is reduced to text), ``"from/emailAddress/name"``,
  ``"from/emailAddress/address"``, the recipient lists, ``"hasAttachments"``, ``"importance"``,
  ``"receivedDateTime"``, ``"sentDateTime"``, and only when the query uses them ``"attachments"`` (list of
  dicts with ``"name"``) and ``"size"`` (int); ``None`` for those simply matches nothing.
* ``SearchExpr.select(source)`` finds the whole set at once from a `SearchSource`: the distinct values of the
  mailbox's subjects, bodies and senders, each with the messages that hold it. A word is matched once per
  distinct value (its normalized text is kept with the value), not once per message; the parts of a query
  that no value index answers (``size:``, ``received:``, ``to:`` ...) are evaluated per message as above.
"""

from __future__ import annotations

import bisect
import html
import re
import unicodedata
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from m365_mock.graph.errors import ParseUriError
from m365_mock.graph.query.edm import INT64, MAX_DEPTH, Token, TokenCursor, as_datetime, parse_int64
from m365_mock.graph.query.nodes import Getter, compare

M = TypeVar("M", bound=Hashable)
M_co = TypeVar("M_co", bound=Hashable, covariant=True)

_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_LETTER_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"})


def plain(text: Any, *, markup: bool = False) -> str:
    """Text as a search sees it: tags dropped and entities decoded (``markup``), spaces collapsed, case folded."""
    if not isinstance(text, str):
        return ""
    if markup and "<" in text:
        text = html.unescape(_TAG_RE.sub(" ", text))
    return _SPACE_RE.sub(" ", text).casefold()


def _needle(term: str) -> str:
    return _SPACE_RE.sub(" ", term.strip()).casefold().rstrip("*").strip()


def _found(needle: str, hay: str) -> bool:
    """``needle`` in ``hay`` at the start of a word (Exchange's prefix matching), both already normalized."""
    word_start = needle[0].isalnum()
    start = hay.find(needle)
    while start >= 0:
        if not word_start or start == 0 or not hay[start - 1].isalnum():
            return True
        start = hay.find(needle, start + 1)
    return False


def _text_match(term: str, haystacks: Iterable[str]) -> bool:
    """Case-insensitive match of ``term`` at the start of a word in any of ``haystacks``."""
    needle = _needle(term)
    return not needle or any(_found(needle, hay) for hay in haystacks)


def _recipient_texts(get: Getter, paths: Iterable[str]) -> list[str]:
    texts: list[str] = []
    for path in paths:
        recipients = get(path)
        if not isinstance(recipients, list | tuple):
            continue
        for recipient in recipients:
            address = recipient.get("emailAddress") if isinstance(recipient, dict) else None
            if isinstance(address, dict):
                texts += [plain(address.get("name")), plain(address.get("address"))]
    return texts


def _from_texts(get: Getter) -> list[str]:
    return [plain(get("from/emailAddress/name")), plain(get("from/emailAddress/address"))]


def _attachment_texts(get: Getter) -> list[str]:
    attachments = get("attachments")
    if not isinstance(attachments, list | tuple):
        return []
    return [plain(a.get("name")) for a in attachments if isinstance(a, dict)]


_TO, _CC, _BCC = ("toRecipients",), ("ccRecipients",), ("bccRecipients",)
_KQL_TEXT: dict[str, Callable[[Getter], list[str]]] = {
    "subject": lambda get: [plain(get("subject"))],
    "body": lambda get: [plain(get("body/content"), markup=True)],
    "from": _from_texts,
    "to": lambda get: _recipient_texts(get, _TO),
    "cc": lambda get: _recipient_texts(get, _CC),
    "bcc": lambda get: _recipient_texts(get, _BCC),
    "recipients": lambda get: _recipient_texts(get, _TO + _CC + _BCC),
    "participants": lambda get: _from_texts(get) + _recipient_texts(get, _TO + _CC + _BCC),
    "attachment": _attachment_texts,
}
_KQL_OTHER = ("hasattachment", "hasattachments", "importance", "kind", "received", "sent", "size")
_KQL_PROPERTIES = frozenset(_KQL_TEXT) | frozenset(_KQL_OTHER)
_KQL_WORD_RE = re.compile(r"([A-Za-z]+)(:|>=|<=|<>|=|>|<)(.*)\Z", re.S)
_US_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})\Z", re.ASCII)
_ISO_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})\Z", re.ASCII)
_TRUE_WORDS, _FALSE_WORDS = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})
_KIND_EMAIL = frozenset({"email", "emails", "mail", "message", "messages"})

# The value indexes a `SearchSource` offers (field -> whether the text is markup), and which a text property uses.
INDEXED_FIELDS = {"subject": False, "body": True, "from_name": False, "from_address": False}
_DEFAULT_FIELDS = ("subject", "body", "from_name", "from_address")
_PROPERTY_FIELDS = {"subject": ("subject",), "body": ("body",), "from": ("from_name", "from_address")}


def _default_texts(get: Getter) -> list[str]:
    return [*_KQL_TEXT["subject"](get), *_KQL_TEXT["body"](get), *_from_texts(get)]


def _kql_date(value: str) -> tuple[datetime, bool] | None:
    """(instant, is_whole_day) for a KQL date value; None when it is not one."""
    for pattern, order in ((_ISO_DATE_RE, (0, 1, 2)), (_US_DATE_RE, (2, 0, 1))):
        match = pattern.match(value)
        if match:
            parts = match.groups()
            try:
                day = date(int(parts[order[0]]), int(parts[order[1]]), int(parts[order[2]]))
            except ValueError:
                return None
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    if "T" in value or "t" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC), False
    return None


def _date_match(op: str, value: str, actual: Any) -> bool:
    parsed = _kql_date(value)
    moment = as_datetime(actual)
    if parsed is None or moment is None:
        return False
    start, whole_day = parsed
    end = start + timedelta(days=1) if whole_day else start
    within = start <= moment < end if whole_day else moment == start
    if op in (":", "="):
        return within
    if op == "<>":
        return not within
    if op == ">":
        return moment >= end if whole_day else moment > start
    if op == ">=":
        return moment >= start
    if op == "<":
        return moment < start
    return moment < end if whole_day else moment <= start  # <=


# --------------------------------------------------------------------------------------------- where a search runs


class ValueEntry(Protocol[M_co]):
    """One distinct value of an indexed field: the messages holding it, and a slot the search fills."""

    derived: Any

    @property
    def messages(self) -> Collection[M_co]: ...


class SearchSource(Protocol[M]):
    """The mail a search runs over, with the value indexes that answer words without reading every message."""

    def scope(self) -> set[M]:
        """Every message searched (a new set)."""
        ...

    def restrict(self, found: set[M]) -> set[M]:
        """The messages of `found` that are in scope."""
        ...

    def entries(self, field: str) -> Mapping[str, ValueEntry[M]]:
        """The distinct values of `field` (one of INDEXED_FIELDS) held by any message of the mailbox."""
        ...

    def cache(self, field: str) -> dict[str, Any]:
        """A place for what the search derives from all of `field`'s values. While it holds anything, each value
        that appears afterwards is added to its list "created"."""
        ...

    def getter(self, message: M) -> Getter:
        """The message's values for what no value index answers (see the module docstring)."""
        ...


def _text(raw: str, entry: ValueEntry[Any], markup: bool) -> str:
    text = entry.derived
    if text is None:
        text = entry.derived = plain(raw, markup=markup)
    return text


class _Joined:
    """The normalized texts of a field's distinct values in one string, so that a word is looked for by
    `str.find` over all of them at once; only the places it is found are looked at one by one. Values gone since
    stay in it (their entries hold no messages); values come since are looked at one by one until it is rebuilt."""

    def __init__(self, entries: Mapping[str, ValueEntry[Any]], markup: bool) -> None:
        texts: list[str] = []
        self.entries: list[ValueEntry[Any]] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        position = 0
        for raw, entry in entries.items():
            text = _text(raw, entry, markup)
            texts.append(text)
            self.entries.append(entry)
            self.starts.append(position)
            position += len(text)
            self.ends.append(position)
            position += 1
        self.text = "\x00".join(texts)

    def matching(self, needle: str) -> Iterator[ValueEntry[Any]]:
        """The entries whose text holds `needle` as `_found` finds it (within one text, at a word's start)."""
        text, starts, ends = self.text, self.starts, self.ends
        word_start = needle[0].isalnum()
        at = text.find(needle)
        while at >= 0:
            i = bisect.bisect_right(starts, at) - 1
            if at + len(needle) <= ends[i] and (not word_start or at == starts[i] or not text[at - 1].isalnum()):
                yield self.entries[i]
                at = text.find(needle, ends[i])  # the next text's
            else:
                at = text.find(needle, at + 1)


def _matching(source: SearchSource[M], fields: Iterable[str], term: str) -> set[M]:
    """The messages in scope holding, in one of `fields`, a word that starts with `term`."""
    needle = _needle(term)
    if not needle:
        return source.scope()
    found: set[M] = set()
    for name in fields:
        markup, entries, cache = INDEXED_FIELDS[name], source.entries(name), source.cache(name)
        joined, created = cache.get("joined"), cache.get("created", ())
        if joined is None or len(created) > 16 + len(joined.entries) // 4:
            cache.clear()
            joined, created = _Joined(entries, markup), ()
            cache["joined"] = joined
        for entry in joined.matching(needle):
            found.update(entry.messages)
        for raw in created:
            entry = entries.get(raw)
            if entry is not None and _found(needle, _text(raw, entry, markup)):
                found.update(entry.messages)
    return source.restrict(found)


def _cached(get: Getter) -> Getter:
    cache: dict[str, Any] = {}

    def cached(path: str) -> Any:
        if path not in cache:
            cache[path] = get(path)
        return cache[path]

    return cached


def _passes(parts: list[_SearchNode], get: Getter) -> bool:
    return all(part.eval(get) for part in parts)


class _SearchNode:
    indexed = False  # whether `select` answers it from value indexes alone

    def eval(self, get: Getter) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, source: SearchSource[M]) -> set[M]:
        """The messages in scope that match: value indexes where they answer, else one message at a time."""
        return {m for m in source.scope() if self.eval(_cached(source.getter(m)))}


class _SearchAll(_SearchNode):
    indexed = True

    def eval(self, get: Getter) -> bool:
        return True

    def select(self, source: SearchSource[M]) -> set[M]:
        return source.scope()


class _SearchTerm(_SearchNode):
    indexed = True

    def __init__(self, text: str) -> None:
        self.text = text

    def eval(self, get: Getter) -> bool:
        return _text_match(self.text, _default_texts(get))

    def select(self, source: SearchSource[M]) -> set[M]:
        return _matching(source, _DEFAULT_FIELDS, self.text)


class _SearchRestriction(_SearchNode):
    def __init__(self, prop: str, op: str, value: str) -> None:
        self.prop, self.op, self.value = prop, op, value
        self.indexed = prop in _PROPERTY_FIELDS

    def eval(self, get: Getter) -> bool:
        prop, op, value = self.prop, self.op, self.value.strip()
        if prop in _KQL_TEXT:
            return op in (":", "=") and _text_match(value, _KQL_TEXT[prop](get))
        if prop in ("received", "sent"):
            return _date_match(op, value, get(f"{prop}DateTime"))
        if prop == "size":
            size, wanted = get("size"), parse_int64(value)
            if not isinstance(size, int) or isinstance(size, bool) or wanted is None:
                return False
            operator = {":": "eq", "=": "eq", "<>": "ne", ">": "gt", ">=": "ge", "<": "lt"}.get(op, "le")
            return compare(operator, size, wanted, INT64, True)
        if op not in (":", "="):
            return False
        word = value.casefold()
        if prop in ("hasattachment", "hasattachments"):
            actual = get("hasAttachments")
            return (word in _TRUE_WORDS and actual is True) or (word in _FALSE_WORDS and actual is False)
        if prop == "importance":
            importance = get("importance")
            return isinstance(importance, str) and importance.casefold() == word
        return word in _KIND_EMAIL  # kind

    def select(self, source: SearchSource[M]) -> set[M]:
        if not self.indexed:
            return super().select(source)
        if self.op not in (":", "="):
            return set()
        return _matching(source, _PROPERTY_FIELDS[self.prop], self.value.strip())


class _SearchAnd(_SearchNode):
    def __init__(self, parts: list[_SearchNode]) -> None:
        self.parts = parts
        self.indexed = all(part.indexed for part in parts)

    def eval(self, get: Getter) -> bool:
        return all(part.eval(get) for part in self.parts)

    def select(self, source: SearchSource[M]) -> set[M]:
        indexed = [part for part in self.parts if part.indexed]
        if not indexed:
            return super().select(source)
        found = sorted((part.select(source) for part in indexed), key=len)
        result = found[0].intersection(*found[1:])
        rest = [part for part in self.parts if not part.indexed]
        if rest and result:
            result = {m for m in result if _passes(rest, _cached(source.getter(m)))}
        return result


class _SearchOr(_SearchNode):
    def __init__(self, parts: list[_SearchNode]) -> None:
        self.parts = parts
        self.indexed = all(part.indexed for part in parts)

    def eval(self, get: Getter) -> bool:
        return any(part.eval(get) for part in self.parts)

    def select(self, source: SearchSource[M]) -> set[M]:
        if not self.indexed:
            return super().select(source)
        return set().union(*(part.select(source) for part in self.parts))


class _SearchNot(_SearchNode):
    def __init__(self, operand: _SearchNode) -> None:
        self.operand = operand
        self.indexed = operand.indexed

    def eval(self, get: Getter) -> bool:
        return not self.operand.eval(get)

    def select(self, source: SearchSource[M]) -> set[M]:
        if not self.indexed:
            return super().select(source)
        matched = self.operand.select(source)
        return source.scope() - matched


def _combine(cls: type[_SearchAnd] | type[_SearchOr], parts: list[_SearchNode]) -> _SearchNode:
    return parts[0] if len(parts) == 1 else cls(parts)


# --------------------------------------------------------------------------------------------- parsing


class _KqlParser:
    """Exchange's KQL inside a quoted $search phrase: lenient, it never raises."""

    def __init__(self, text: str) -> None:
        self.tokens = self.lex(text)
        self.i = 0
        self.depth = 0

    @staticmethod
    def lex(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
            elif c in "()":
                tokens.append((c, c))
                i += 1
            elif c == '"':
                j = text.find('"', i + 1)
                j = n if j < 0 else j
                tokens.append(("phrase", text[i + 1 : j]))
                i = j + 1
            else:
                j = i
                while j < n and not text[j].isspace() and text[j] not in '()"':
                    j += 1
                word = text[i:j]
                tokens.append((word, word) if word in ("AND", "OR", "NOT") else ("word", word))
                i = j
        return tokens

    def peek(self) -> str:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else "end"

    def parse(self) -> _SearchNode:
        parts: list[_SearchNode] = []
        while self.peek() != "end":
            if self.peek() == ")":
                self.i += 1
                continue
            node = self.parse_or()
            if node is not None:
                parts.append(node)
        return _combine(_SearchAnd, parts) if parts else _SearchAll()

    def parse_or(self) -> _SearchNode | None:
        parts = [p for p in [self.parse_and()] if p is not None]
        while self.peek() == "OR":
            self.i += 1
            part = self.parse_and()
            if part is not None:
                parts.append(part)
        return _combine(_SearchOr, parts) if parts else None

    def parse_and(self) -> _SearchNode | None:
        parts: list[_SearchNode] = []
        while self.peek() not in ("end", ")", "OR"):
            if self.peek() == "AND":
                self.i += 1
                continue
            part = self.parse_not()
            if part is not None:
                parts.append(part)
        return _combine(_SearchAnd, parts) if parts else None

    def parse_not(self) -> _SearchNode | None:
        nots = 0
        while self.peek() == "NOT":
            self.i += 1
            nots += 1
        node = self.parse_primary() if self.peek() not in ("end", ")", "OR", "AND") else None
        if node is not None and nots % 2:
            node = _SearchNot(node)
        return node

    def parse_primary(self) -> _SearchNode | None:
        kind, text = self.tokens[self.i]
        self.i += 1
        if kind == "(":
            if self.depth >= MAX_DEPTH:
                return None
            self.depth += 1
            node = self.parse_or()
            if self.peek() == ")":
                self.i += 1
            self.depth -= 1
            return node
        if kind == "phrase":
            return _SearchTerm(text)
        match = _KQL_WORD_RE.match(text)
        if match and match.group(1).lower() in _KQL_PROPERTIES:
            prop, op, value = match.group(1).lower(), match.group(2), match.group(3)
            if not value and self.peek() == "phrase":
                value = self.tokens[self.i][1]
                self.i += 1
            if value:
                return _SearchRestriction(prop, op, value)
        # fidelity: chosen (an unknown property such as isRead:false is searched as plain text, like KQL does)
        return _SearchTerm(text)


def _search_lex(text: str) -> list[Token]:
    """ODataLib's $search lexer: words of letters, "phrases" with \\" and \\\\ escapes, AND/OR/NOT, parens."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(Token(c, c, i, i + 1))
            i += 1
        elif c == '"':
            chars: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise ParseUriError.unterminated(n, text)
                ch = text[j]
                if ch == "\\":
                    if j + 1 >= n:
                        raise ParseUriError.unterminated(n, text)
                    if text[j + 1] not in '"\\':
                        raise ParseUriError(
                            f"An unrecognized escape sequence '\\{text[j + 1]}' was found at position {j} in '{text}'."
                        )
                    chars.append(text[j + 1])
                    j += 2
                    continue
                if ch == '"':
                    break
                chars.append(ch)
                j += 1
            tokens.append(Token("phrase", text[i : j + 1], i, j + 1, "".join(chars)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            word = text[i:j]
            for k, ch in enumerate(word):
                if unicodedata.category(ch) not in _LETTER_CATEGORIES:
                    raise ParseUriError.invalid_character(ch, i + k, text)
            kind = word if word in ("AND", "OR", "NOT") else "word"
            tokens.append(Token(kind, word, i, j, word))
            i = j
    tokens.append(Token("end", "", n, n))
    return tokens


class _SearchParser(TokenCursor):
    """ODataLib's $search grammar; each quoted phrase is then read as KQL by Exchange."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _search_lex(text)
        self.i = 0
        self.depth = 0

    def parse(self) -> _SearchNode:
        if self.tok.kind == "end":
            raise ParseUriError.expression_expected(self.tok.pos, self.text)
        node = self.parse_or()
        if self.tok.kind != "end":
            raise ParseUriError.syntax(self.tok.end, self.text)
        return node

    def parse_or(self) -> _SearchNode:
        parts = [self.parse_and()]
        while self.tok.kind == "OR":
            self.advance()
            parts.append(self.parse_and())
        return _combine(_SearchOr, parts)

    def parse_and(self) -> _SearchNode:
        parts = [self.parse_not()]
        while True:
            if self.tok.kind == "AND":
                self.advance()
            elif self.tok.kind not in ("word", "phrase", "(", "NOT"):
                break
            parts.append(self.parse_not())
        return _combine(_SearchAnd, parts)

    def parse_not(self) -> _SearchNode:
        nots = 0
        while self.tok.kind == "NOT":
            self.advance()
            nots += 1
        node = self.parse_primary()
        return _SearchNot(node) if nots % 2 else node

    def parse_primary(self) -> _SearchNode:
        token = self.tok
        if token.kind == "(":
            self.advance()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ParseUriError.too_deep()
            node = self.parse_or()
            if self.tok.kind != ")":
                raise ParseUriError.close_paren_or_operator(self.tok.pos, self.text)
            self.advance()
            self.depth -= 1
            return node
        if token.kind == "word":
            self.advance()
            return _SearchTerm(token.value)
        if token.kind == "phrase":
            self.advance()
            return _KqlParser(token.value).parse()
        raise ParseUriError.expression_expected(token.pos, self.text)


class SearchExpr:
    """A parsed $search: terms match subject, body or from (word-prefix, case-insensitive), AND by default."""

    def __init__(self, text: str, root: _SearchNode) -> None:
        self.text = text
        self._root = root

    def __repr__(self) -> str:
        return f"SearchExpr({self.text!r})"

    def matches(self, get: Getter) -> bool:
        """Whether the message behind ``get`` matches (see the module docstring for the paths)."""
        return self._root.eval(_cached(get))

    def select(self, source: SearchSource[M]) -> set[M]:
        """Every message of ``source`` in scope that matches: the set ``matches`` would pass, found at once."""
        return self._root.select(source)


def parse_search(text: str) -> SearchExpr:
    """Parse a $search value, quoted (``"hello world"``, read as KQL) or bare (ODataLib's word grammar)."""
    return SearchExpr(text, _SearchParser(text).parse())
