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

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog.core.errors import AuditUnavailable
from catalog.db.models import AuditEvent, new_id, utcnow

if TYPE_CHECKING:
    from catalog.access.context import Actor, Context

log = logging.getLogger(__name__)
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
        session.execute(text("SELECT pg_advisory_xact_lock(7208311)"))
    conn = session.connection()  # Core on the session's connection: same transaction, less overhead
    last = conn.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    values: dict[str, Any] = {"id": new_id(), "ts": utcnow(), "action": action, "object_type": object_type,
                              "object_id": object_id, "detail": detail or {}, "outcome": outcome,
                              **envelope(who), **{k: v for k, v in refs.items() if v is not None}}
    row = AuditEvent(**values)
    digest = event_hash(prev, fields_of(row))
    conn.execute(insert(AuditEvent).values(seq=seq, prev_hash=prev, hash=digest, **values))
    return digest


def record_read(ctx: "Context", action: str, object_type: str, object_id: str | None,
                detail: dict[str, Any] | None = None, **refs: str | None) -> str:
    """Record a read of data before the data leaves: its own transaction, durable when this
    returns. A read whose event cannot be written is refused with :class:`AuditUnavailable`
    (503), never served unrecorded."""
    try:
        with ctx.platform.write.begin() as s:
            return record(s, ctx, action, object_type, object_id, detail, **refs)
    except SQLAlchemyError as exc:
        log.error("audit event %s could not be written: %s", action, exc)
        raise AuditUnavailable("The access log cannot be written at the moment, so the data is not served; "
                               "try again later") from exc


def verify(events: Iterable[AuditEvent]) -> tuple[bool, int | None]:
    """Check the chain in ``seq`` order; returns (ok, seq of the first bad event)."""
    prev = GENESIS
    for ev in events:
        if ev.prev_hash != prev or ev.hash != event_hash(prev, fields_of(ev)):
            return False, ev.seq
        prev = ev.hash
    return True, None
