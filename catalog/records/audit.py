"""The tamper-evident audit log: an append-only hash chain in the catalog database.

Each event's hash covers its content and the previous event's hash, so changing,
removing or reordering any event breaks every later link; signed Merkle checkpoints
(:mod:`catalog.records.checkpoints`) commit to the chain from outside the database, so
truncating it or re-hashing all of it shows too. Events of changes are written inside the
transaction of the action they record, so an action and its event commit together or not
at all; events of reads are written (:func:`record_read`) before the data leaves, and a read
whose event cannot be written is refused (:class:`~catalog.core.errors.AuditUnavailable`).

Every event name has one definition in :mod:`catalog.records.events`; :func:`record` refuses a
name or a detail field the vocabulary does not define, so reports can rely on both.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from catalog.core.errors import AuditUnavailable
from catalog.db.engine import sqlite_write
from catalog.db.models import AuditEvent, new_id, utcnow

if TYPE_CHECKING:
    from catalog.access.context import Actor, Context

log = logging.getLogger(__name__)
CHAIN_LOCK = 7208311
"""The PostgreSQL advisory lock (transaction-scoped) that every writer of the chain takes before it
reads the last event and links to it (:func:`record`, the batch writer), and the pruner, which must
see a chain no writer is extending (:func:`catalog.records.audit_export.lock_chain`). One number in
one place: a second copy that drifted would let two writers fork the chain. SQLite needs none (BEGIN
IMMEDIATE serialises its writers)."""
LOCK_CHAIN = text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")


GENESIS = "0" * 64
ENVELOPE = ("actor_id", "role", "client", "user_agent", "request_id", "outcome", "package_id", "resource_id",
            "org_id", "grant_id", "agreement_version_id")
"""Columns of an event beyond the original seven; the hash covers each one that is set (events
written before they existed have them null and keep their hashes)."""
REFS = ("package_id", "resource_id", "org_id", "grant_id", "agreement_version_id")
OUTCOMES = ("ok", "refused", "failed")


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """Pure: the SHA-256 of the previous hash and the canonical JSON of the event."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def fields_of(ev: Any) -> dict[str, Any]:
    """Pure: what an event's hash covers, from an :class:`AuditEvent` or a row with its columns."""
    out = {"id": ev.id, "ts": ev.ts.isoformat(), "actor": ev.actor, "action": ev.action,
           "object_type": ev.object_type, "object_id": ev.object_id, "detail": ev.detail}
    for name in ENVELOPE:
        value = getattr(ev, name, None)
        if value is not None:
            out[name] = value
    return out


_fields = fields_of  # the name older code and tests use


def envelope(who: "Context | Actor | str | None") -> dict[str, Any]:
    """Pure: the actor, role, address, user agent and request id of ``who`` — the action
    :class:`Context` of a request, an :class:`Actor`, or a plain name (``worker:<name>``, ``site``)."""
    from catalog.access.context import Actor, Context

    if isinstance(who, Context):
        actor = who.actor
        return {"actor": actor.name if actor else None, "actor_id": actor.id if actor else None,
                "role": who.role, "client": who.client or None, "user_agent": who.user_agent or None,
                "request_id": who.request_id}
    if isinstance(who, Actor):
        return {"actor": who.name, "actor_id": who.id, "role": who.role}
    if isinstance(who, str):
        return {"actor": who, "role": "worker" if who.startswith("worker:") else "site" if who == "site" else None}
    return {"actor": None, "role": "anonymous"}


def record(session: Session, who: "Context | Actor | str | None", action: str, object_type: str,
           object_id: str | None, detail: dict[str, Any] | None = None, *, outcome: str = "ok",
           **refs: str | None) -> str:
    """Append one event and return its hash. Call inside a writing session (it serialises on
    the last link). ``refs`` are the object ids reports filter on (:data:`REFS`). A plain
    INSERT: this runs in every write, so it skips the ORM's bookkeeping."""
    from catalog.records import events

    events.check(action, detail or {})
    unknown = set(refs) - set(REFS)
    if unknown or outcome not in OUTCOMES:
        raise ValueError(f"audit event {action}: unknown reference {sorted(unknown)} or outcome {outcome!r}")
    if session.get_bind().dialect.name == "postgresql":
        # SQLite writers are serialised by BEGIN IMMEDIATE; on PostgreSQL take a lock so two
        # transactions never link to the same predecessor and fork the chain.
        session.execute(LOCK_CHAIN)
    # Core on the session's connection (same transaction), with statements built once: building a
    # select, an ORM object and an ORM insert for each event made 1,000 small actions (the tamper
    # log's mix) take 3.4 s instead of 2.5 s.
    conn = session.connection()
    last = conn.execute(_LAST).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    values: dict[str, Any] = dict.fromkeys(_COLUMNS)
    values.update({"id": new_id(), "ts": utcnow(), "action": action, "object_type": object_type,
                   "object_id": object_id, "detail": detail or {}, "outcome": outcome, **envelope(who), **refs})
    digest = event_hash(prev, fields_of(SimpleNamespace(**values)))
    conn.execute(_INSERT, {**values, "seq": seq, "prev_hash": prev, "hash": digest})
    return digest


def record_read(ctx: "Context", action: str, object_type: str, object_id: str | None,
                detail: dict[str, Any] | None = None, **refs: str | None) -> str:
    """Record a read of data before the data leaves: committed when this returns. A read whose
    event cannot be written is refused with :class:`AuditUnavailable` (503), never served
    unrecorded. Concurrent reads of one platform are committed together (:class:`ReadLog`)."""
    from catalog.records import events

    events.check(action, detail or {})
    unknown = set(refs) - set(REFS)
    if unknown:
        raise ValueError(f"audit event {action}: unknown reference {sorted(unknown)}")
    values: dict[str, Any] = {name: None for name in _COLUMNS}
    values.update({"id": new_id(), "action": action, "object_type": object_type, "object_id": object_id,
                   "detail": detail or {}, "outcome": "ok", **envelope(ctx), **refs})
    return ctx.platform.read_log.append(values)


_COLUMNS = ("id", "ts", "actor", "action", "object_type", "object_id", "detail", *ENVELOPE)
_INSERT = insert(AuditEvent.__table__)
_LAST = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_ROW = ("seq", "prev_hash", "hash", *_COLUMNS)
_SQLITE_LAST = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
_SQLITE_INSERT = f"INSERT INTO audit_events ({', '.join(_ROW)}) VALUES ({', '.join('?' for _ in _ROW)})"


class _Pending:
    __slots__ = ("values", "done", "digest", "failed")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.done = False
        self.digest = ""
        self.failed = False


class ReadLog:
    """Group commit of one platform's read events: whoever finds no batch being written writes
    every event pending at that moment (its own among them) in one transaction — one chain lock,
    one commit — and then wakes the others. A caller returns only once the batch holding its event
    has committed; if that transaction fails, every caller of the batch gets
    :class:`AuditUnavailable`. Alone, a caller writes its own event at once (no hand-off, no wait);
    under load, the events that arrive while one batch commits go in the next.

    Events of changes (:func:`record`) stay inside their action's transaction; only reads come here.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine.execution_options(sqlite_immediate=True)  # BEGIN IMMEDIATE on SQLite
        self._postgres = engine.dialect.name == "postgresql"
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._writing = False
        self._closed = False

    def append(self, values: dict[str, Any]) -> str:
        """Write one event (every column but ``seq``, ``ts`` and the hashes) and return its hash
        once committed."""
        mine = _Pending(values)
        with self._cond:
            if self._closed:
                raise _unavailable(values["action"], "the platform is closed")
            self._pending.append(mine)
            while self._writing and not mine.done:
                self._cond.wait()
            if not mine.done:  # nobody is writing: write everything pending, this event included
                batch, self._pending, self._writing = self._pending, [], True
        if not mine.done:
            error: BaseException | None = None
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it, whatever it is
                error = exc
            with self._cond:
                for entry in batch:
                    entry.done, entry.failed = True, error is not None
                self._writing = False
                self._cond.notify_all()
            if error is not None:
                log.error("%d audit event(s) of reads could not be written: %s", len(batch), error)
                if not isinstance(error, Exception):
                    raise error
                del error  # break the cycle error -> traceback -> this frame (which holds the callers' frames)
        if mine.failed:
            raise _unavailable(values["action"], None)
        return mine.digest

    def _write(self, batch: list[_Pending]) -> None:
        ts = utcnow()
        if self._postgres:
            with self._engine.begin() as conn:
                conn.execute(LOCK_CHAIN)  # the chain's lock, as record()'s
                last = conn.execute(_LAST).first()
                conn.execute(_INSERT, self._link(batch, last, ts))
            return
        # SQLite: the driver directly, in one BEGIN IMMEDIATE (the chain's lock on SQLite); SQLAlchemy's
        # own work per statement cost as much as the insert itself (bench/audit.py).
        with sqlite_write(self._engine) as conn:
            last = conn.execute(_SQLITE_LAST).fetchone()
            rows = self._link(batch, last, ts)
            stamp = ts.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime storage format
            conn.executemany(_SQLITE_INSERT, [tuple(stamp if c == "ts" else json.dumps(r[c]) if c == "detail"
                                                    else r[c] for c in _ROW) for r in rows])

    @staticmethod
    def _link(batch: list[_Pending], last: Any, ts: dt.datetime) -> list[dict[str, Any]]:
        """The rows of ``batch`` chained after ``last`` (seq, hash), each entry given its hash."""
        seq, prev = (last[0], last[1]) if last else (0, GENESIS)
        rows = []
        for entry in batch:
            seq += 1
            row = {**entry.values, "ts": ts}
            digest = event_hash(prev, fields_of(SimpleNamespace(**row)))
            rows.append({**row, "seq": seq, "prev_hash": prev, "hash": digest})
            entry.digest, prev = digest, digest
        return rows

    def close(self) -> None:
        """Let a batch being written finish; later reads are refused (the platform is closing)."""
        with self._cond:
            self._closed = True
            while self._writing:
                self._cond.wait()


def _unavailable(action: str, why: str | None) -> AuditUnavailable:
    if why:
        log.error("audit event %s could not be written: %s", action, why)
    return AuditUnavailable("The access log cannot be written at the moment, so the data is not served; "
                            "try again later")


def verify(events: Iterable[AuditEvent]) -> tuple[bool, int | None]:
    """Check the chain in ``seq`` order; returns (ok, seq of the first bad event)."""
    prev = GENESIS
    for ev in events:
        if ev.prev_hash != prev or ev.hash != event_hash(prev, fields_of(ev)):
            return False, ev.seq
        prev = ev.hash
    return True, None
