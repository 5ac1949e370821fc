"""How many researcher queries and exports run at once: per caller and on the whole site.

Each one holds a web server thread and up to the DuckDB threads while it computes; eight slow
exports blocked every waitress thread (``status_show`` waited 23.8 s). A slot is taken before a
query starts and given back when its answer is complete, or when its stream ends or is closed.

A caller past its own cap is refused at once (429): waiting would only queue it behind itself.
When the site is full, a few queries (``waiting``) wait up to ``wait_seconds`` for a slot, so a
burst of page requests is answered a little later instead of refused (20 clients of mixed pages got
571 refusals in 60 s); any more, or one that waited that long, are refused (429). The waiters hold
web threads too, so the web server has threads for the running, the waiting and everyone else.
"""
from __future__ import annotations

import threading
import time
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
    """At most ``total`` queries at once, at most ``per_caller`` for any one caller, and at most
    ``waiting`` more waiting up to ``wait_seconds`` for the site to have a free slot."""

    def __init__(self, total: int, per_caller: int, waiting: int = 0, wait_seconds: float = 0.0) -> None:
        self.total, self.per_caller = max(1, total), max(1, per_caller)
        self.waiting, self.wait_seconds = max(0, waiting), max(0.0, wait_seconds)
        self._cond = threading.Condition(threading.Lock())
        self._by_caller: Counter[str] = Counter()
        self._running = 0
        self._waiters = 0

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def acquire(self, caller: str) -> Slot:
        """A slot for ``caller`` (a user id, or the client address of an anonymous caller), after a wait
        for the site's if it is full and the queue is not, or :class:`TooManyRequests` naming the cap."""
        with self._cond:
            self._check_caller(caller)
            if self._running >= self.total:
                if self._waiters >= self.waiting or self.wait_seconds <= 0:
                    raise self._site_full("try again in a moment")
                self._waiters += 1
                try:
                    deadline = time.monotonic() + self.wait_seconds
                    while self._running >= self.total:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise self._site_full(f"none finished within {self.wait_seconds:g} s; try again "
                                                  "in a moment")
                        self._cond.wait(left)
                finally:
                    self._waiters -= 1
                self._check_caller(caller)  # its other requests may have taken slots meanwhile
            self._by_caller[caller] += 1
            self._running += 1
        return Slot(self, caller)

    def _check_caller(self, caller: str) -> None:
        if self._by_caller[caller] >= self.per_caller:
            raise TooManyRequests(f"Too many queries at once: you already have {self.per_caller} running "
                                  "(query_max_concurrent_per_caller); try again when one has finished",
                                  limit="query_slots_caller")

    def _site_full(self, then: str) -> TooManyRequests:
        return TooManyRequests(f"Too many queries at once: the site is running {self.total}, its limit "
                               f"(query_max_concurrent); {then}", limit="query_slots_site")

    def _release(self, caller: str) -> None:
        with self._cond:
            self._by_caller[caller] -= 1
            if self._by_caller[caller] <= 0:
                del self._by_caller[caller]
            self._running -= 1
            self._cond.notify()
