"""How many researcher queries and exports run at once: per caller and on the whole site.

Each one holds a web server thread and up to the DuckDB threads while it computes; eight slow
exports blocked every waitress thread (``status_show`` waited 23.8 s). A slot is taken before a
query starts and given back when its answer is complete, or when its stream ends or is closed; a
caller past either cap is refused at once (429) instead of queueing behind the others.
"""
from __future__ import annotations

import threading
from collections import Counter

from catalog.core.errors import TooManyRequests


class Slot:
    """One running query or export; :meth:`release` (idempotent) gives the slot back."""

    def __init__(self, slots: "QuerySlots", caller: str) -> None:
        self._slots, self._caller, self._held = slots, caller, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._release(self._caller)

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class QuerySlots:
    """At most ``total`` queries at once, and at most ``per_caller`` for any one caller."""

    def __init__(self, total: int, per_caller: int) -> None:
        self.total, self.per_caller = max(1, total), max(1, per_caller)
        self._lock = threading.Lock()
        self._by_caller: Counter[str] = Counter()

    @property
    def running(self) -> int:
        with self._lock:
            return sum(self._by_caller.values())

    def acquire(self, caller: str) -> Slot:
        """A slot for ``caller`` (a user id, or the client address of an anonymous caller), or
        :class:`TooManyRequests` naming the cap that was reached."""
        with self._lock:
            if self._by_caller[caller] >= self.per_caller:
                raise TooManyRequests(f"Too many queries at once: you already have {self.per_caller} running "
                                      "(query_max_concurrent_per_caller); try again when one has finished",
                                      limit="query_slots_caller")
            if sum(self._by_caller.values()) >= self.total:
                raise TooManyRequests(f"Too many queries at once: the site is running {self.total}, its limit "
                                      "(query_max_concurrent); try again in a moment", limit="query_slots_site")
            self._by_caller[caller] += 1
        return Slot(self, caller)

    def _release(self, caller: str) -> None:
        with self._lock:
            self._by_caller[caller] -= 1
            if self._by_caller[caller] <= 0:
                del self._by_caller[caller]
