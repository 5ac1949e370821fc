"""Removes what crashed ingests and abandoned uploads leave behind.

Staging Parquet of jobs no worker holds any more, and multipart uploads that a
client started and never completed.
A worker killed between writing its staging object and removing it leaves the
object behind; the job itself is retried under a new attempt (a new key), so
an old staging object is garbage once its attempt is no longer the running one.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from catalog.db.models import IngestJob
from catalog.platform import Platform
from catalog.versions.lifecycle import JobState

log = logging.getLogger("ingest.janitor")


def clean_staging(platform: Platform, max_age_seconds: int, now: dt.datetime | None = None) -> list[str]:
    """Remove staging objects older than ``max_age_seconds`` whose attempt is not running now.

    ``now`` (an aware time; default the clock) is the moment ages are taken at: a test asks what a
    later run would remove instead of waiting for objects to age.
    """
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(seconds=max_age_seconds)
    store, removed = platform.store, []
    with platform.read() as s:
        running = {(job_id, attempts) for job_id, attempts in s.execute(
            select(IngestJob.id, IngestJob.attempts).where(IngestJob.state == JobState.RUNNING.value))}
    for key, modified in store.list_with_times("staging/"):
        parts = key.split("/")  # staging/<job id>/<attempt>.parquet
        attempt = parts[2].split(".")[0] if len(parts) == 3 else ""
        if modified > cutoff or (parts[1], int(attempt) if attempt.isdigit() else -1) in running:
            continue
        store.remove(key)
        removed.append(key)
    if removed:
        log.info("removed %d abandoned staging object(s)", len(removed))
    return removed


def expire_uploads(platform: Platform, max_age_seconds: int, now: dt.datetime | None = None) -> list[str]:
    """Abort multipart uploads left open longer than ``max_age_seconds``, freeing their parts.

    ``now`` (an aware time; default the clock): as in :func:`clean_staging`.
    """
    from catalog.db.models import MultipartUpload

    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(tzinfo=None)
    cutoff = now - dt.timedelta(seconds=max_age_seconds)  # naive UTC, as the catalog stores times
    expired = []
    with platform.write.begin() as s:
        for up in s.scalars(select(MultipartUpload).where(MultipartUpload.state == "open",
                                                          MultipartUpload.created < cutoff)):
            try:
                platform.store.multipart_abort(up.key, up.s3_upload_id)
            except Exception:  # already gone on the store: still expire the record
                log.warning("could not abort multipart upload %s", up.id, exc_info=True)
            up.state = "expired"
            expired.append(up.id)
    if expired:
        log.info("expired %d abandoned multipart upload(s)", len(expired))
    return expired
