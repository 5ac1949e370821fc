"""Parse CKAN/Solr search syntax (``q``, ``fq``, ``sort``) into a small tree (pure).

Supported: words, "phrases", ``field:value``, ``field:"a phrase"``, ``field:[a TO b]``,
``field:(a OR b)``, ``AND``/``OR``/``NOT``/``&&``/``||``, ``+term``/``-term``,
parentheses, trailing ``*`` wildcards and ``*:*``. Words next to each other must
all match (AND), as users of a catalog expect. Anything else is a
:class:`SearchQueryError` naming what is wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.core.errors import SearchQueryError

TEXT_FIELDS = frozenset({"text", "title", "notes", "res_name", "res_description", "author", "maintainer",
                         "extras"})
KEYWORD_FIELDS = frozenset({"name", "id", "tags", "organization", "owner_org", "groups", "license_id",
                            "access_level", "res_format", "type", "state", "capacity", "creator_user_id", "private"})
RANGE_FIELDS = frozenset({"metadata_modified", "metadata_created", "quality_score"})
SORT_FIELDS = frozenset({"score", "metadata_modified", "metadata_created", "name", "title_string", "id",
                         "quality_score"})
_TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; CJK runs become single characters (no spaces to split on)."""
    words = _TOKEN_RE.findall(text.lower())
    if not _CJK.search(text):
        return words
    out: list[str] = []
    for tok in words:
        if _CJK.search(tok):
            out.extend(ch for ch in tok)
        else:
            out.append(tok)
    return out


# -- the tree --------------------------------------------------------------------------------

@dataclass(frozen=True)
class All:
    pass


@dataclass(frozen=True)
class Term:
    field: str | None  # None: the full text of the dataset
    value: str
    prefix: bool = False  # a trailing * wildcard


@dataclass(frozen=True)
class Phrase:
    field: str | None
    words: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    field: str
    low: str | None  # None: open (*)
    high: str | None


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: object


Node = All | Term | Phrase | Range | And | Or | Not

# -- lexing ----------------------------------------------------------------------------------

_LEX = re.compile(r'''
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<lbrack>[\[{])
  | (?P<rbrack>[\]}])
  | (?P<phrase>"(?:[^"\\]|\\.)*")
  | (?P<quote>")
  | (?P<op>&&|\|\|)
  | (?P<word>(?:[^\s()\[\]{}"\\:]|\\.)+)
  | (?P<colon>:)
''', re.VERBOSE)


def _lex(text: str) -> list[tuple[str, str, int, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _LEX.match(text, pos)
        if m is None:  # pragma: no cover - every character matches some group
            raise SearchQueryError(f"Cannot parse the query near {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        if kind == "quote":
            raise SearchQueryError("Unbalanced quotes in the query")
        if kind != "ws":
            tokens.append((kind, m.group(), m.start(), m.end()))
        pos = m.end()
    return tokens


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


# Parentheses and NOTs nested deeper than this are refused: each level costs the parser four
# stack frames and the index one, so 5,000 nested parentheses hit Python's recursion limit (a 500).
MAX_DEPTH = 50


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int, int]:
        tok = self.peek()
        if tok is None:
            raise SearchQueryError("The query ends too early")
        self.i += 1
        return tok

    def is_op(self, *names: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] in ("word", "op") and tok[1] in names

    def parse(self) -> Node:
        if not self.tokens:
            return All()
        node = self.or_expr()
        if self.peek() is not None:
            raise SearchQueryError(f"Unexpected {self.peek()[1]!r} in the query")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_op("OR", "||"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.peek() is not None and self.peek()[0] != "rparen" and not self.is_op("OR", "||"):
            if self.is_op("AND", "&&"):
                self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SearchQueryError(f"The query nests parentheses or NOT more than {MAX_DEPTH} levels deep")
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        if self.is_op("NOT"):
            self.take()
            return Not(self.unary())
        tok = self.peek()
        if tok is not None and tok[0] == "word" and tok[1] in ("-", "+"):
            raise SearchQueryError(f"Dangling {tok[1]!r} in the query")
        if tok is not None and tok[0] == "word" and tok[1][0] in "+-" and len(tok[1]) > 1:
            self.tokens[self.i] = ("word", tok[1][1:], tok[2] + 1, tok[3])
            node = self.primary()
            return Not(node) if tok[1][0] == "-" else node
        return self.primary()

    def primary(self) -> Node:
        kind, value, *_ = self.take()
        if kind == "lparen":
            node = self.or_expr()
            if self.take()[0] != "rparen":
                raise SearchQueryError("Unbalanced parentheses in the query")
            return node
        if kind == "phrase":
            return _phrase(None, value)
        if kind != "word":
            raise SearchQueryError(f"Unexpected {value!r} in the query")
        if value in ("AND", "OR", "&&", "||"):
            raise SearchQueryError(f"{value} needs a term on both sides")
        nxt = self.peek()
        if nxt is not None and nxt[0] == "colon":
            self.take()
            return self.field_value(_unescape(value))
        if value == "*":
            return All()
        return _term(None, value)

    def field_value(self, field: str) -> Node:
        if field == "*":
            kind, value, *_ = self.take()
            if value != "*":
                raise SearchQueryError("Use *:* to match every dataset")
            return All()
        if field not in TEXT_FIELDS | KEYWORD_FIELDS | RANGE_FIELDS:
            raise SearchQueryError(f"undefined field {field}")
        kind, value, _, end = self.take()
        if kind == "phrase":
            return _phrase(field, value)
        if kind == "lbrack":
            return self.range(field, end)
        if kind == "lparen":
            items = []
            while self.peek() is not None and self.peek()[0] != "rparen":
                if self.is_op("OR", "||", "AND", "&&"):
                    self.take()
                    continue
                k, v, *_ = self.take()
                if k not in ("word", "phrase"):
                    raise SearchQueryError(f"Unexpected {v!r} in {field}:(...)")
                items.append(_phrase(field, v) if k == "phrase" else _term(field, v))
            if self.peek() is None:
                raise SearchQueryError("Unbalanced parentheses in the query")
            self.take()
            if not items:
                raise SearchQueryError(f"{field}:() is empty")
            return items[0] if len(items) == 1 else Or(tuple(items))
        if kind != "word":
            raise SearchQueryError(f"{field}: needs a value")
        if field in RANGE_FIELDS and value != "*":
            return Range(field, _unescape(value), _unescape(value))
        return All() if value == "*" else _term(field, value)

    def range(self, field: str, start: int) -> Node:
        while self.peek() is not None and self.peek()[0] != "rbrack":
            self.take()
        if self.peek() is None:
            raise SearchQueryError("Unclosed range: use [low TO high]")
        joined = self.text[start:self.take()[2]].split()
        if len(joined) != 3 or joined[1] != "TO":
            raise SearchQueryError(f"Malformed range for {field}: use [low TO high]")
        if field not in RANGE_FIELDS:
            raise SearchQueryError(f"{field} does not support ranges")
        low, high = (None if v == "*" else _unescape(v) for v in (joined[0], joined[2]))
        return Range(field, low, high)


def _term(field: str | None, raw: str) -> Node:
    value = _unescape(raw)
    prefix = value.endswith("*") and len(value) > 1
    value = value.rstrip("*") if prefix else value
    if field in KEYWORD_FIELDS:
        return Term(field, value.lower(), prefix)
    words = tokenize(value)
    if not words:
        return All()
    if len(words) > 1:  # e.g. "covid-19" is the phrase covid 19
        return Phrase(field, tuple(words))
    return Term(field, words[0], prefix)


def _phrase(field: str | None, raw: str) -> Node:
    inner = _unescape(raw[1:-1])
    if field in KEYWORD_FIELDS:
        return Term(field, inner.lower())
    words = tuple(tokenize(inner))
    if not words:
        return All()
    return Term(field, words[0]) if len(words) == 1 else Phrase(field, words)


def parse_query(text: str | None) -> Node:
    """Parse a ``q`` or ``fq`` string."""
    text = (text or "").strip()
    if text in ("", "*:*", "*"):
        return All()
    return _Parser(text).parse()


def parse_sort(text: str | None) -> list[tuple[str, bool]]:
    """``"score desc, metadata_modified desc"`` -> [(field, descending)]."""
    text = (text or "score desc, metadata_modified desc").strip()
    out = []
    for part in text.split(","):
        bits = part.split()
        if not bits:
            continue
        if len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
            raise SearchQueryError(f"Invalid sort {part.strip()!r}: use 'field asc' or 'field desc'")
        field = {"title": "title_string"}.get(bits[0], bits[0])
        if field not in SORT_FIELDS:
            raise SearchQueryError(f"Can not sort on field {bits[0]}")
        out.append((field, len(bits) == 2 and bits[1].lower() == "desc"))
    return out or [("score", True)]
