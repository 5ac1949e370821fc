"""Removes what crashed ingests leave behind: staging Parquet of jobs no worker holds any more.

A worker killed between writing its staging object and removing it leaves the
object behind; the job itself is retried under a new attempt (a new key), so
an old staging object is garbage once its attempt is no longer the running one.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from catalog.models import IngestJob
from catalog.platform import Platform

log = logging.getLogger("ingest.janitor")


def clean_staging(platform: Platform, max_age_seconds: int) -> list[str]:
    """Remove staging objects older than ``max_age_seconds`` whose attempt is not running now."""
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=max_age_seconds)
    store, removed = platform.store, []
    with platform.read() as s:
        running = {(job_id, attempts) for job_id, attempts in s.execute(
            select(IngestJob.id, IngestJob.attempts).where(IngestJob.state == "running"))}
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
