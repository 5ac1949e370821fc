"""Keeps one process's :class:`SearchIndex` in step with the catalog database."""
from __future__ import annotations

import logging
import time

from sqlalchemy import func, select

from catalog.db.models import SearchChange
from catalog.search import changes, documents
from catalog.search.index import SearchIndex, SearchRequest, SearchResult, Visibility

log = logging.getLogger(__name__)


class SearchService:
    def __init__(self, platform) -> None:
        self.platform = platform
        self.index = SearchIndex()

    def refresh(self) -> None:
        """Apply the catalog changes made since the index last looked (one tiny query if none)."""
        with self.index.lock, self.platform.read() as s:
            current = changes.current(s)
            if current == self.index.seq:
                return
            oldest = s.scalar(select(func.min(SearchChange.seq))) or 0
            live = len(self.index.slot_of)
            if self.index.seq < 0 or oldest > self.index.seq + 1 or self.index.dead > max(10_000, live):
                started = time.perf_counter()
                fresh = SearchIndex()
                fresh.apply(documents.load(s))
                fresh.seq = current
                fresh.lock = self.index.lock
                self.index = fresh
                log.info("search index built: %d datasets in %.1f s", len(fresh.slot_of),
                         time.perf_counter() - started)
                return
            newest, ids = changes.since(s, self.index.seq)
            docs = list(documents.load(s, ids))
            self.index.apply(docs, gone=ids - {d.id for d in docs})
            self.index.seq = newest

    def search(self, request: SearchRequest, visibility: Visibility) -> SearchResult:
        self.refresh()
        return self.index.search(request, visibility)
