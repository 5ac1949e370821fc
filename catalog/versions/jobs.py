"""The ingest queue: a table in the catalog database, claimed under a lease.

A claim is one conditional UPDATE (``state`` still claimable, checked by row
count), so two workers can never both own a job, on SQLite or PostgreSQL. A
worker that dies stops renewing its lease; once the lease runs out, another
worker claims the job again (at-least-once delivery; publishing is idempotent).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from catalog.db.models import IngestJob, utcnow
from catalog.versions.lifecycle import IllegalMove, JobState, check_job_move


@dataclass(frozen=True)
class Claim:
    job_id: str
    resource_id: str
    version_id: str
    attempt: int
    worker_id: str
    kind: str = "ingest"


def enqueue(session: Session, resource_id: str, version_id: str, kind: str = "ingest") -> IngestJob:
    """Queue an ingest (or, with ``kind="validate"``, a re-validation of a published version)
    in the caller's transaction (the one that records the upload or the new suite)."""
    job = IngestJob(resource_id=resource_id, version_id=version_id, kind=kind, state=JobState.QUEUED.value)
    session.add(job)
    session.flush()
    return job


def _claimable(now: dt.datetime):
    """The jobs a worker may move to ``running`` (:data:`catalog.versions.lifecycle.JOB_MOVES`): queued
    and due, or running under a lease that ran out (its worker died)."""
    return or_(
        and_(IngestJob.state == JobState.QUEUED.value, IngestJob.not_before <= now),
        and_(IngestJob.state == JobState.RUNNING.value, IngestJob.lease_until < now),
    )


def pending(session: Session) -> bool:
    """Whether any job is claimable: a read, so idle workers never take the write lock."""
    return session.scalar(select(IngestJob.id).where(_claimable(utcnow())).limit(1)) is not None


def claim(session: Session, worker_id: str, lease_seconds: int) -> Claim | None:
    """Take the oldest claimable job, or None. Commits nothing: the caller does."""
    now = utcnow()
    query = select(IngestJob.id).where(_claimable(now)).order_by(IngestJob.created).limit(5)
    if session.get_bind().dialect.name == "postgresql":
        # Many workers on many machines: each skips rows another is claiming instead of queueing.
        query = query.with_for_update(skip_locked=True)
    candidates = session.scalars(query).all()
    for job_id in candidates:
        result = session.execute(
            update(IngestJob)
            .where(IngestJob.id == job_id, _claimable(now))
            .values(state=JobState.RUNNING.value, stage="starting", worker_id=worker_id,
                    attempts=IngestJob.attempts + 1,
                    lease_until=now + dt.timedelta(seconds=lease_seconds), updated=now)
        )
        if result.rowcount == 1:
            job = session.get(IngestJob, job_id)
            session.refresh(job)
            return Claim(job.id, job.resource_id, job.version_id, job.attempts, worker_id, job.kind)
    return None


def heartbeat(session: Session, claim: Claim, lease_seconds: int, stage: str | None = None) -> bool:
    """Extend the lease; False means the job was lost to another worker."""
    values: dict = {"lease_until": utcnow() + dt.timedelta(seconds=lease_seconds), "updated": utcnow()}
    if stage:
        values["stage"] = stage
    result = session.execute(update(IngestJob).where(*owned(claim)).values(**values))
    return result.rowcount == 1


def report(session: Session, claim: Claim, stage: str, progress: dict) -> bool:
    """Record the stage the job is in and what it has done so far (shown to providers at once)."""
    result = session.execute(update(IngestJob).where(*owned(claim))
                             .values(stage=stage, progress=progress, updated=utcnow()))
    return result.rowcount == 1


def owned(claim: Claim) -> tuple:
    """The WHERE clause that says this worker still holds this attempt of the job."""
    return (IngestJob.id == claim.job_id, IngestJob.state == JobState.RUNNING.value,
            IngestJob.worker_id == claim.worker_id, IngestJob.attempts == claim.attempt)


def finish(session: Session, claim: Claim, state: JobState, error: str | None = None,
           progress: dict | None = None) -> bool:
    """Mark the job ``done`` or ``failed`` if this worker still owns it (with its final progress)."""
    state = check_job_move(JobState.RUNNING, state)  # owned() below: the job is still running
    if state not in (JobState.DONE, JobState.FAILED):
        raise IllegalMove(f"a job finishes done or failed, not {state.value!r}")
    values: dict = {"state": state.value, "stage": state.value, "error": error, "lease_until": None,
                    "updated": utcnow()}
    if progress is not None:
        values["progress"] = progress
    result = session.execute(update(IngestJob).where(*owned(claim)).values(**values))
    return result.rowcount == 1


def retry_later(session: Session, claim: Claim, delay_seconds: float, error: str) -> bool:
    """Give a transiently failed job back to the queue after a back-off."""
    now = utcnow()
    state = check_job_move(JobState.RUNNING, JobState.QUEUED)
    result = session.execute(
        update(IngestJob).where(*owned(claim))
        .values(state=state.value, stage="waiting to retry", error=error, lease_until=None,
                not_before=now + dt.timedelta(seconds=delay_seconds), updated=now)
    )
    return result.rowcount == 1
