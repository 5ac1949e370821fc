"""The running parts of the catalog core, wired once from :class:`Settings`.

Workers, the CLI and the web app each open one :class:`Platform`; nothing here
imports Flask.
"""
from __future__ import annotations

import threading
from functools import cached_property

from sqlalchemy.orm import Session, sessionmaker

from catalog.core.settings import Settings
from catalog.db.engine import init_schema, make_engine, session_factory
from catalog.records.audit import ReadLog
from catalog.storage.objects import ObjectStore


class Platform:
    """Database sessions, object storage and the query service of one deployment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.effective_database_url, settings.database_busy_timeout_seconds)
        # Sessions carry the settings: notify() is handed only a session, and queues e-mail per them.
        self.read: sessionmaker[Session] = session_factory(self.engine, info={"settings": settings})
        self.write: sessionmaker[Session] = session_factory(self.engine, write=True, info={"settings": settings})
        # The group commit of this platform's read events (made here, not on first use: two threads
        # must not each make one).
        self.read_log = ReadLog(self.engine)
        self._lock = threading.Lock()
        self._query = None
        self._search = None

    @classmethod
    def open(cls, settings: Settings) -> "Platform":
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        platform = cls(settings)
        init_schema(platform.engine)
        return platform

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore.from_settings(self.settings)

    @property
    def query(self):
        """The DuckDB query service, opened once on first use (the CLI and workers never need it)."""
        if self._query is None:
            with self._lock:
                if self._query is None:
                    from catalog.datastore.sandbox import QueryService

                    self._query = QueryService(self.store, self.settings)
        return self._query

    @property
    def search(self):
        """This process's search index service (built on first use from the catalog)."""
        if self._search is None:
            with self._lock:
                if self._search is None:
                    from catalog.search.service import SearchService

                    self._search = SearchService(self)
        return self._search

    def close(self) -> None:
        self.read_log.close()
        self.engine.dispose()
