"""The tamper-evident audit log: an append-only hash chain in the catalog database.

Each event's hash covers its content and the previous event's hash, so changing,
removing or reordering any event breaks every later link; :func:`verify` finds
the first broken one. Events are written inside the transaction of the action
they record, so an action and its audit event commit together or not at all.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from catalog.db.models import AuditEvent, new_id, utcnow

GENESIS = "0" * 64


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """Pure: the SHA-256 of the previous hash and the canonical JSON of the event."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _fields(ev: AuditEvent) -> dict[str, Any]:
    return {"id": ev.id, "ts": ev.ts.isoformat(), "actor": ev.actor, "action": ev.action,
            "object_type": ev.object_type, "object_id": ev.object_id, "detail": ev.detail}


def record(session: Session, actor: str | None, action: str, object_type: str,
           object_id: str | None, detail: dict[str, Any] | None = None) -> str:
    """Append one event and return its hash. Call inside a writing session (it serialises on
    the last link). A plain INSERT: this runs in every write, so it skips the ORM's bookkeeping."""
    if session.get_bind().dialect.name == "postgresql":
        # SQLite writers are serialised by BEGIN IMMEDIATE; on PostgreSQL take a lock so two
        # transactions never link to the same predecessor and fork the chain.
        session.execute(text("SELECT pg_advisory_xact_lock(7208311)"))
    conn = session.connection()  # Core on the session's connection: same transaction, less overhead
    prev = conn.execute(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).scalar() or GENESIS
    ev = AuditEvent(id=new_id(), ts=utcnow(), actor=actor, action=action,
                    object_type=object_type, object_id=object_id, detail=detail or {})
    digest = event_hash(prev, _fields(ev))
    conn.execute(insert(AuditEvent).values(
        id=ev.id, ts=ev.ts, actor=actor, action=action, object_type=object_type, object_id=object_id,
        detail=ev.detail, prev_hash=prev, hash=digest))
    return digest


def verify(events: Iterable[AuditEvent]) -> tuple[bool, int | None]:
    """Check the chain in ``seq`` order; returns (ok, seq of the first bad event)."""
    prev = GENESIS
    for ev in events:
        if ev.prev_hash != prev or ev.hash != event_hash(prev, _fields(ev)):
            return False, ev.seq
        prev = ev.hash
    return True, None
