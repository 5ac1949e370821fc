"""Answers of researcher queries kept for an identical query over the same versions (issue 16).

A dashboard or notebook often sends the same ``datastore_search_sql`` again and again; the versions
it reads never change, so the answer of a repeatable query (no random, now or sample: see
:func:`catalog.datastore.sqlcheck._repeatable`) is the same each time. The key is DuckDB's parse
tree of the query without source positions (whitespace, comments and the case of keywords do not
change it), the row cap, and for each table its resource id, version id and the caller's column
scope: a scoped reader's answer is never given to a caller with another scope, nor the other way
round. Only the answer is kept: the caller's authorization and the audit event of the read are
made on every call, whether the answer came from here or from DuckDB.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


def key_of(normalized: str, max_rows: int | None,
           tables: list[tuple[str, str, frozenset[str] | None]]) -> Hashable:
    """The cache key of a query (pure): its normalized form, the row cap, and for each table read
    (resource id, version id, column scope or None for every column), in the query's order."""
    return (normalized, max_rows,
            tuple((rid, version_id, None if scope is None else tuple(sorted(scope)))
                  for rid, version_id, scope in tables))


class ResultCache:
    """Answers by key, least recently used dropped past ``max_bytes`` (an answer larger than that is
    not kept). ``hits`` and ``misses`` count lookups (how tests see that a repeat was reused)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The kept answer of ``key``, or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep ``value`` (about ``size`` bytes) under ``key``, dropping the least recently used."""
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    @property
    def bytes(self) -> int:
        """Bytes of the answers kept."""
        with self._lock:
            return self._bytes
