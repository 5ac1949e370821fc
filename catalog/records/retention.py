"""Retention of the audit log: pruning its oldest events without breaking verification.

Events older than ``audit_retention_days`` (MOSU_AUDIT_RETENTION_DAYS, three years by default: PIPL
art. 56 keeps processing records three years) may be deleted, never younger than six months
(:data:`MIN_RETENTION_DAYS`; Cybersecurity Law art. 21 keeps network logs six months): a setting or
a ``--before`` date below it is refused, not clamped, so an operator learns it.

A prune goes only up to the size of a stored signed checkpoint, so the pruned range stays
committed by that signed head; in the same transaction as the delete it stores an
:class:`AuditPrune` row with what verification needs to go on without the pruned events: the
last pruned event's hash (the chain continues from it) and the Merkle :class:`~merkle.Frontier` of
the pruned leaves (whose root is the checkpoint's, and from which later roots and inclusion proofs
are computed). Before deleting anything it checks the range it deletes — every hash, the links, the
root against the checkpoint and the checkpoint's signature — so a prune never destroys the evidence
of tampering: a log that would not verify is not pruned. The prune is itself an audit event.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from catalog.core.errors import ValidationError
from catalog.db.models import AuditCheckpoint, AuditEvent, AuditPrune, utcnow
from catalog.records import audit, checkpoints, merkle
from catalog.records.audit_export import LogMismatch, frontier_of, head_of, latest_prune, lock_chain
from catalog.records.checkpoints import SignedTreeHead

if TYPE_CHECKING:
    from catalog.platform import Platform

log = logging.getLogger(__name__)
MIN_RETENTION_DAYS = 183
"""Six months: the shortest retention a prune accepts."""


@dataclass(frozen=True)
class Pruned:
    """A prune that happened: events up to ``upto_seq`` (the checkpoint's size) are gone."""

    upto_seq: int
    events: int
    cutoff: dt.datetime


def cutoff(retention_days: int, before: dt.datetime | None = None, now: dt.datetime | None = None) -> dt.datetime:
    """Pure: the time (naive UTC) before which events may be pruned. ``before`` may only prune less
    than the retention allows; a retention under :data:`MIN_RETENTION_DAYS` is refused."""
    if retention_days < MIN_RETENTION_DAYS:
        raise ValidationError({"audit_retention_days": [
            f"MOSU_AUDIT_RETENTION_DAYS is {retention_days}: audit events are kept at least {MIN_RETENTION_DAYS} "
            "days (six months, PRC Cybersecurity Law art. 21); nothing was pruned"]})
    limit = (now or utcnow()) - dt.timedelta(days=retention_days)
    if before is None:
        return limit
    if before > limit:
        raise ValidationError({"before": [
            f"events of the last {retention_days} days are kept (MOSU_AUDIT_RETENTION_DAYS): the date must be "
            f"on or before {limit:%Y-%m-%d %H:%M:%S} UTC; nothing was pruned"]})
    return before


PRUNE_BATCH = 100_000
"""Events one prune transaction deletes at most (when the checkpoints allow): the chain's write lock
is held only for the delete, and a long backlog goes in steps, each committed on its own."""


def prune(platform: "Platform", *, before: dt.datetime | None = None, now: dt.datetime | None = None,
          who: str = "site", batch: int = PRUNE_BATCH) -> Pruned | None:
    """Delete the events older than the retention (or ``before``), up to the largest stored
    checkpoint that has only such events; None when there is nothing to prune. ``now`` (naive UTC,
    default the clock) lets a caller ask what a later run would do. Goes in steps of about ``batch``
    events (checkpoint to checkpoint), each its own transaction with its own :class:`AuditPrune`."""
    cut = cutoff(platform.settings.audit_retention_days, before, now)
    done: Pruned | None = None
    while (step := _prune_step(platform, cut, now, who, batch)) is not None:
        done = Pruned(step.upto_seq, step.events + (done.events if done else 0), cut)
    if done is not None:
        log.info("pruned %d audit event(s) up to %d (older than %s)", done.events, done.upto_seq, cut)
    return done


def _prune_step(platform: "Platform", cut: dt.datetime, now: dt.datetime | None, who: str,
                batch: int) -> Pruned | None:
    # What to delete is chosen and checked in a read snapshot, without the chain's write lock (events
    # up to a checkpoint never change, unless tampered with); the write transaction only re-checks that
    # nobody pruned meanwhile, then stores the prune and deletes.
    with platform.read() as s:
        last = latest_prune(s)
        after = last.upto_seq if last is not None else 0
        first_young = s.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.ts >= cut))
        old_end = first_young - 1 if first_young is not None else s.scalar(select(func.max(AuditEvent.seq))) or 0
        sizes = list(s.scalars(select(AuditCheckpoint.tree_size).where(AuditCheckpoint.tree_size > after,
                                                                      AuditCheckpoint.tree_size <= old_end)
                               .order_by(AuditCheckpoint.tree_size)))
        if not sizes:
            return None
        within = [size for size in sizes if size - after <= batch]
        head = head_of(s.get(AuditCheckpoint, within[-1] if within else sizes[0]))
        frontier, prev = _checked_range(platform, s, last, head)
    with platform.write.begin() as s:
        lock_chain(s)
        current = latest_prune(s)
        if (current.upto_seq if current is not None else 0) != after:
            return None  # another process pruned meanwhile; the caller's next step starts from there
        s.add(AuditPrune(upto_seq=head.tree_size, last_hash=prev, frontier=frontier.dump(), ts=now or utcnow()))
        s.execute(delete(AuditEvent).where(AuditEvent.seq <= head.tree_size))
        audit.record(s, who, "audit_prune", "audit_log", None,
                     {"upto_seq": head.tree_size, "events": head.tree_size - after,
                      "before": cut.isoformat(timespec="seconds"),
                      "retention_days": platform.settings.audit_retention_days})
    return Pruned(head.tree_size, head.tree_size - after, cut)


def _checked_range(platform: "Platform", s: Session, last: AuditPrune | None,
                   head: SignedTreeHead) -> tuple[merkle.Frontier, str]:
    """The frontier and last hash after the events up to ``head``, once every one of them is checked:
    contiguous, hashing to its hash, linked, with the checkpoint's root and the site's signature.
    A prune never destroys the evidence of tampering: a range that does not verify is refused."""
    try:
        public = checkpoints.load_key(platform.settings, create=False).public_key()
    except FileNotFoundError as exc:
        raise LogMismatch(f"{exc}: the checkpoints cannot be checked; nothing was pruned") from None
    if not checkpoints.signature_ok(head, public):
        raise LogMismatch(f"the checkpoint of size {head.tree_size} is not signed by this site's key: "
                          "run mosu audit verify; nothing was pruned")
    frontier = frontier_of(last)
    prev = last.last_hash if last is not None else audit.GENESIS
    expected = frontier.size + 1
    events = s.scalars(select(AuditEvent).where(AuditEvent.seq >= expected, AuditEvent.seq <= head.tree_size)
                       .order_by(AuditEvent.seq).execution_options(yield_per=1000))
    for ev in events:
        if ev.seq != expected or ev.prev_hash != prev or ev.hash != audit.event_hash(prev, audit.fields_of(ev)):
            raise LogMismatch(f"audit event {expected} is missing or does not hash as it should: run mosu "
                              "audit verify; nothing was pruned")
        frontier.append(merkle.event_leaf(ev.hash))
        prev, expected = ev.hash, expected + 1
    if frontier.size != head.tree_size or frontier.root().hex() != head.root_hash:
        raise LogMismatch(f"the audit log does not match its checkpoint of size {head.tree_size}: run mosu "
                          "audit verify; nothing was pruned")
    return frontier, prev
