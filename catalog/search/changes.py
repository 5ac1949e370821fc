"""The search change log: every dataset write notes the dataset under a new change number.

The number comes from one counter row updated inside the writing transaction,
so change numbers are gap-free in commit order on SQLite (writers are
serialised) and unique on PostgreSQL (row lock). An index in any process
catches up by reading the changes after the last number it has seen.
"""
from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from catalog.db.models import Counter, SearchChange

COUNTER = "search"
KEEP, PRUNE_EVERY = 100_000, 1000


def mark(session: Session, package_id: str) -> int:
    """Record that ``package_id`` changed (created, edited, deleted or purged)."""
    conn = session.connection()
    seq = conn.execute(update(Counter).where(Counter.name == COUNTER)
                       .values(value=Counter.value + 1).returning(Counter.value)).scalar()
    if seq is None:  # created with the schema; only a hand-made database lacks it
        conn.execute(insert(Counter).values(name=COUNTER, value=1))
        seq = 1
    conn.execute(insert(SearchChange).values(seq=seq, package_id=package_id))
    if seq % PRUNE_EVERY == 0:  # an index further behind than KEEP rebuilds from scratch
        conn.execute(delete(SearchChange).where(SearchChange.seq <= seq - KEEP))
    return seq


def current(session: Session) -> int:
    return session.scalar(select(Counter.value).where(Counter.name == COUNTER)) or 0


def since(session: Session, seq: int) -> tuple[int, set[str]]:
    """(newest change number, the datasets changed after ``seq``)."""
    rows = session.execute(select(SearchChange.seq, SearchChange.package_id)
                           .where(SearchChange.seq > seq)).all()
    if not rows:
        return seq, set()
    return max(r[0] for r in rows), {r[1] for r in rows}
