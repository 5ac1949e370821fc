"""The ingest worker loop: claim, convert, validate, publish; never lose or half-publish.

A job is held under a lease that a heartbeat thread renews. The raw upload is
only ever read. Parquet goes to a staging key first, is validated, then copied
to its immutable version key; one catalog transaction (guarded by the lease)
then makes it current. A worker that crashes anywhere leaves the published
state as it was, and the job is claimed again when its lease runs out.
"""
from __future__ import annotations

import io
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

from catalog.core import keys, levels
from catalog.core.dictionary import DictionaryError, parse_dictionary
from catalog.core.errors import IngestFailed, QualityGateFailed
from catalog.db.models import Package, QualitySuite, Resource, ResourceVersion
from catalog.platform import Platform
from catalog.records import audit, checkpoints, notify, retention
from catalog.search import changes
from catalog.versions import disclosure, jobs, lifecycle, unpublished
from catalog.versions.lifecycle import JobState, State
from catalog.versions.publish import publish_version
from ingest.convert import connect, to_parquet
from ingest.janitor import clean_staging, expire_uploads
from ingest.mailer import run_mailer
from ingest.prepare import prepare
from quality import report as quality

log = logging.getLogger("ingest.worker")
MAX_BACKOFF_SECONDS = 60.0
JANITOR_SECONDS = 300.0
AUDIT_PRUNE_SECONDS = 86400.0
"""How often a worker process prunes audit events past their retention (a no-op most days)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _refs(s, res: Resource) -> dict[str, str | None]:
    """The ids a worker's event about ``res`` is filed under: the resource, its dataset and organization."""
    pkg = s.get(Package, res.package_id)
    return {"resource_id": res.id, "package_id": res.package_id, "org_id": pkg.owner_org if pkg else None}


class _Heartbeat(threading.Thread):
    """Renews the lease every third of its length until stopped; notes a lost lease."""

    def __init__(self, platform: Platform, claim: jobs.Claim) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{claim.job_id[:8]}")
        self.platform, self.claim = platform, claim
        self.stage: str | None = None
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        lease = self.platform.settings.job_lease_seconds
        while not self._stop_event.wait(max(1.0, lease / 3)):
            try:
                with self.platform.write.begin() as s:
                    if not jobs.heartbeat(s, self.claim, lease, self.stage):
                        self.lost = True
                        return
            except Exception:  # a database blip: try again at the next beat
                log.warning("heartbeat failed for job %s", self.claim.job_id, exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()


class Worker:
    """One worker: processes jobs one at a time."""

    def __init__(self, platform: Platform, name: str | None = None) -> None:
        self.platform = platform
        self.name = name or worker_name()
        self._entered = 0.0  # when the current job entered its current stage
        self._stop = threading.Event()  # run_forever's: ends a test hold (see _test_hold)

    def run_once(self) -> bool:
        """Claim and process one job; False when the queue had nothing to do."""
        settings = self.platform.settings
        with self.platform.read() as s:
            if not jobs.pending(s):
                return False
        with self.platform.write.begin() as s:
            claim = jobs.claim(s, self.name, settings.job_lease_seconds)
            if claim is None:
                return False
            if claim.kind == "ingest":
                lifecycle.show(s.get(Resource, claim.resource_id), State.RUNNING)
        log.info("job %s: resource %s attempt %d", claim.job_id, claim.resource_id, claim.attempt)
        beat = _Heartbeat(self.platform, claim)
        beat.start()
        try:
            if not self._test_hold(claim, beat):
                return True
            if claim.kind == "validate":
                self._revalidate(claim, beat)
            else:
                self._process(claim, beat)
        except IngestFailed as exc:
            self._fail(claim, exc)
        except Exception as exc:  # noqa: BLE001 - transient (storage, database) or a bug: retry with back-off
            self._retry(claim, exc)
        finally:
            beat.stop()
        return True

    def run_forever(self, stop: threading.Event) -> None:
        self._stop = stop
        poll = self.platform.settings.worker_poll_seconds
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker %s: could not claim a job", self.name)
                busy = False
            if not busy:
                stop.wait(poll)

    def _test_hold(self, claim: jobs.Claim, beat: _Heartbeat) -> bool:
        """Tests only: with ``MOSU_TEST_HOLD_INGEST`` set, wait (lease renewed, stage ``test-hold``)
        until its file exists, so a test can kill this worker or stop the store while the job is
        provably held. False when the worker is stopped meanwhile: the job is left to its lease.
        Unset (every deployment), it returns True at once."""
        release = self.platform.settings.test_hold_ingest
        if release is None or release.exists():
            return True
        self._stage(claim, beat, "test-hold", {})
        log.info("job %s attempt %d: held until %s exists (MOSU_TEST_HOLD_INGEST)", claim.job_id,
                 claim.attempt, release)
        while not release.exists():
            if self._stop.wait(0.05):
                log.info("job %s: stopped while held; the job returns when its lease runs out", claim.job_id)
                return False
        return True

    # -- the stages -------------------------------------------------------------------------

    def _stage(self, claim: jobs.Claim, beat: _Heartbeat, stage: str | None, progress: dict) -> None:
        """Enter a stage: written at once (not at the next heartbeat) so providers see it live.

        How long each finished stage took goes into ``progress["seconds"]``: it tells a
        provider where a slow ingest spends its time, and the benchmarks read it.
        """
        now = time.monotonic()
        if beat.stage is not None:
            progress.setdefault("seconds", {})[beat.stage] = round(now - self._entered, 3)
        self._entered = now
        if stage is None:  # the last stage ended; the caller records the final state
            return
        beat.stage = stage
        try:
            with self.platform.write.begin() as s:
                jobs.report(s, claim, stage, progress)
        except Exception:  # progress is best effort; the heartbeat carries the stage too
            log.warning("job %s: could not record stage %s", claim.job_id, stage, exc_info=True)

    def _process(self, claim: jobs.Claim, beat: _Heartbeat) -> None:
        platform, settings = self.platform, self.platform.settings
        store = platform.store
        with platform.read() as s:
            version = s.get(ResourceVersion, claim.version_id)
            raw_key = version.raw_key
            progress = {"bytes_total": version.size}
            options = s.get(Resource, claim.resource_id).extras or {}
            encoding, sheet, table = options.get("encoding") or None, options.get("sheet"), options.get("table")
        dictionary = _dictionary(options.get("schema"))
        with tempfile.TemporaryDirectory(prefix="mosu-ingest-") as tmp:
            work = Path(tmp)
            raw = work / "raw"
            self._stage(claim, beat, "downloading", progress)
            store.download(raw_key, str(raw))
            progress["bytes_read"] = raw.stat().st_size
            self._stage(claim, beat, "unpacking", progress)
            prepared = prepare(raw, work, settings, encoding, table)
            progress.update(format=prepared.format, encoding=prepared.encoding,
                            bytes_unpacked=prepared.path.stat().st_size)
            if prepared.members:
                progress["archive"] = prepared.archive()
            self._stage(claim, beat, "converting", progress)
            parquet = work / "data.parquet"
            con = connect(work, settings.convert_memory_limit, settings.convert_threads)
            try:
                converted = to_parquet(con, prepared.format, prepared.path, parquet,
                                       settings.parquet_row_group_rows, sheet=prepared.sheet(sheet, table),
                                       max_line_bytes=settings.max_line_bytes, dictionary=dictionary)
            finally:
                con.close()
            progress["rows"] = converted.row_count
            if converted.odd_values:
                progress["odd_values"] = [o.as_dict() for o in converted.odd_values]
            if converted.row_count == 0:
                raise IngestFailed("The table has no data rows (only a header, or nothing).", public=True)
            self._stage(claim, beat, "validating", progress)
            report = self._quality(claim, parquet, [o.as_dict() for o in converted.odd_values])
            progress["quality"] = {"score": report["score"], **report["summary"], "pii": len(report["pii"])}
            blocking = quality.explain_blocking(report)
            if blocking:
                raise QualityGateFailed(blocking, report)
            self._stage(claim, beat, "publishing", progress)
            staging = keys.staging_parquet(claim.job_id, claim.attempt)
            final = keys.version_parquet(claim.resource_id, claim.version_id)
            store.put_file(staging, str(parquet), content_type="application/vnd.apache.parquet")
            try:
                store.copy(staging, final)
            finally:
                store.remove(staging)
            report_key = self._store_report(claim, report)
        if beat.lost:
            log.warning("job %s: lease lost before publishing; leaving it to its new owner", claim.job_id)
            return
        self._stage(claim, beat, None, progress)
        self._publish(claim, converted, report, report_key, final, prepared, progress)

    def _publish(self, claim, converted, report, report_key: str, parquet_key: str, prepared,
                 progress: dict) -> None:
        """The publish: one transaction, and only if this worker still owns the job."""
        with self.platform.write.begin() as s:
            if not jobs.finish(s, claim, JobState.DONE, progress=progress):
                log.warning("job %s: lost to another worker; not publishing", claim.job_id)
                return
            version = s.get(ResourceVersion, claim.version_id)
            res = s.get(Resource, claim.resource_id)
            version.parquet_key = parquet_key
            version.row_count = converted.row_count
            version.schema = [{"id": c.name, "type": c.type} for c in converted.parquet_columns]
            source = {"format": prepared.format, "encoding": prepared.encoding, "compression": prepared.compression}
            if prepared.members:
                source["archive"] = prepared.archive()
            version.validation = {"source": source}
            if converted.odd_values:
                version.validation["odd_values"] = [o.as_dict() for o in converted.odd_values]
                version.validation["warnings"] = [o.message() for o in converted.odd_values]
            self._keep_report(s, claim, version, report, report_key)
            held = self._pii_hold(s, res, report)
            if held:  # the detail (columns, shares) for editors; the resource row keeps the public summary
                summary = unpublished.held_summary(report["pii"])
                lifecycle.move_version(version, State.HELD, held)
                version.validation["summary"] = summary
                lifecycle.show(res, State.HELD, summary)
                audit.record(s, f"worker:{self.name}", "resource_held", "resource", res.id,
                             {"version_id": version.id, "pii": disclosure.pairs_list(report["pii"])}, **_refs(s, res))
                changes.mark(s, res.package_id)
                log.info("job %s: held for a personal-information acknowledgement", claim.job_id)
                return
            publish_version(s, res, version)
            audit.record(s, f"worker:{self.name}", "resource_publish", "resource", res.id,
                         {"version_id": version.id, "rows": converted.row_count, "quality_score": report["score"]},
                         **_refs(s, res))
        log.info("job %s: published %d rows", claim.job_id, converted.row_count)

    # -- quality ----------------------------------------------------------------------------

    def _quality(self, claim: jobs.Claim, parquet: Path, odd_values: list[dict],
                 profile: dict | None = None) -> dict:
        """The version's quality report, against the resource's suite (or a new default one)."""
        with self.platform.read() as s:
            suite = s.get(QualitySuite, claim.resource_id)
            number = s.get(ResourceVersion, claim.version_id).number
            suite_doc = suite.suite if suite is not None else None
        con = quality.connect(self.platform.settings.convert_memory_limit, self.platform.settings.convert_threads)
        try:
            return quality.build(con, parquet, claim.resource_id, number, claim.version_id, suite_doc,
                                 odd_values, profile)
        finally:
            con.close()

    def _store_report(self, claim: jobs.Claim, report: dict) -> str:
        """The report as a file next to the Parquet, for anyone who takes the data elsewhere; its key."""
        key = keys.quality_report(claim.resource_id, claim.version_id)
        body = json.dumps(report, ensure_ascii=False, default=str).encode()
        self.platform.store.put_stream(key, io.BytesIO(body))
        return key

    def _keep_report(self, s, claim: jobs.Claim, version: ResourceVersion, report: dict,
                     report_key: str | None) -> None:
        """Record the report (and where its file is) on the version; a first version's generated
        suite becomes the resource's."""
        version.quality = {k: v for k, v in report.items() if k != "suite"}
        version.quality_score = float(report["score"])
        version.report_key = report_key
        if report.get("suite_generated") and s.get(QualitySuite, claim.resource_id) is None:
            s.add(QualitySuite(resource_id=claim.resource_id, suite=report["suite"], source="generated",
                               updated_by=f"worker:{self.name}"))

    def _pii_hold(self, s, res: Resource, report: dict) -> str | None:
        """Why the version must wait for an acknowledgement (rows readable by the public: an open or
        registered dataset that is not private; new PII), or None."""
        pkg = s.get(Package, res.package_id)
        if not report["pii"] or not levels.needs_pii_acknowledgement(pkg.private, pkg.access_level):
            return None
        pending = disclosure.pending(s, res.id, report["pii"])
        return disclosure.hold_message(pending) if pending else None

    def _revalidate(self, claim: jobs.Claim, beat: _Heartbeat) -> None:
        """A changed suite: validate the published version again, without a re-upload."""
        with self.platform.read() as s:
            version = s.get(ResourceVersion, claim.version_id)
            parquet_key, previous = version.parquet_key, version.quality or {}
        progress: dict = {}
        with tempfile.TemporaryDirectory(prefix="mosu-validate-") as tmp:
            parquet = Path(tmp) / "data.parquet"
            self._stage(claim, beat, "downloading", progress)
            self.platform.store.download(parquet_key, str(parquet))
            self._stage(claim, beat, "validating", progress)
            report = self._quality(claim, parquet, previous.get("odd_values") or [], previous.get("profile"))
            report_key = self._store_report(claim, report)
        self._stage(claim, beat, None, progress)
        progress["quality"] = {"score": report["score"], **report["summary"], "pii": len(report["pii"])}
        with self.platform.write.begin() as s:
            if not jobs.finish(s, claim, JobState.DONE, progress=progress):
                return
            version = s.get(ResourceVersion, claim.version_id)
            self._keep_report(s, claim, version, report, report_key)
            res = s.get(Resource, claim.resource_id)
            audit.record(s, f"worker:{self.name}", "quality_revalidated", "resource", res.id,
                         {"version_id": version.id, "quality_score": report["score"],
                          "blocking_failed": report["summary"]["blocking_failed"]}, **_refs(s, res))
            changes.mark(s, res.package_id)

    def _fail(self, claim: jobs.Claim, exc: IngestFailed) -> None:
        """A permanent failure: record the reason; the raw upload and earlier versions stay."""
        report_key = None
        if isinstance(exc, QualityGateFailed):  # a blocked version's report is a file too
            try:
                report_key = self._store_report(claim, exc.report)
            except Exception:  # the report stays on the version row; only its copy is missing
                log.warning("job %s: could not store the quality report", claim.job_id, exc_info=True)
        with self.platform.write.begin() as s:
            if not jobs.finish(s, claim, JobState.FAILED, exc.message):
                return
            version = s.get(ResourceVersion, claim.version_id)
            res = s.get(Resource, claim.resource_id)
            if claim.kind == "validate":  # the published version stays published: only its re-check failed
                audit.record(s, f"worker:{self.name}", "quality_revalidation_failed", "resource", res.id,
                             {"version_id": version.id, "error": exc.message}, outcome="failed", **_refs(s, res))
                log.info("job %s: revalidation failed: %s", claim.job_id, exc.message)
                return
            # The message may quote the upload's values: it stays on the version and the job, for the
            # dataset's editors; the resource row and everyone else get a value-free summary.
            summary = (unpublished.gate_summary(exc.report) if isinstance(exc, QualityGateFailed)
                       else exc.message if exc.public else unpublished.FAILED)
            lifecycle.move_version(version, State.FAILED, exc.message)
            version.validation = {**(version.validation or {}), "summary": summary}
            if isinstance(exc, QualityGateFailed):  # the report is kept, so the provider sees why
                self._keep_report(s, claim, version, exc.report, report_key)
            lifecycle.show(res, State.FAILED, summary)
            # A blocking quality check is a rejection of the data; anything else, a failure to ingest it.
            event = "resource_rejected" if isinstance(exc, QualityGateFailed) else "resource_ingest_failed"
            audit.record(s, f"worker:{self.name}", event, "resource", res.id,
                         {"version_id": version.id, "error": exc.message}, outcome="failed", **_refs(s, res))
            changes.mark(s, res.package_id)
        log.info("job %s: failed: %s", claim.job_id, exc.message)

    def _retry(self, claim: jobs.Claim, exc: Exception) -> None:
        settings = self.platform.settings
        log.warning("job %s attempt %d: %s", claim.job_id, claim.attempt, exc, exc_info=True)
        if claim.attempt >= settings.job_max_attempts:
            self._fail(claim, IngestFailed(
                f"Ingest failed after {claim.attempt} attempts because of an internal error; "
                "the upload is kept and an administrator has the details.", public=True))
            return
        delay = min(MAX_BACKOFF_SECONDS, 2.0 ** claim.attempt)
        try:
            with self.platform.write.begin() as s:
                # a revalidation leaves the resource as it shows: its published version stays as it is
                if jobs.retry_later(s, claim, delay, type(exc).__name__) and claim.kind == "ingest":
                    lifecycle.show(s.get(Resource, claim.resource_id), State.QUEUED)
        except Exception:  # the database itself is away: the lease will expire and hand it back
            log.warning("job %s: could not schedule a retry", claim.job_id, exc_info=True)


def _dictionary(stored) -> list | None:
    """The resource's data dictionary (checked when it was saved; checked again, as data can age)."""
    if not stored:
        return None
    try:
        return parse_dictionary(stored)
    except DictionaryError as exc:
        raise IngestFailed(f"The resource's data dictionary cannot be used: {exc}") from None


def run_janitor(platform: Platform, stop: threading.Event) -> None:
    """Every few minutes, remove old staging objects and abandoned multipart uploads (one per process,
    not one per worker thread: they would list and delete the same objects at the same moment),
    checkpoint the audit log when its last checkpoint is older than ``audit_checkpoint_seconds``
    (two processes taking one at once keep one), and tell both sides of grants about to expire
    (once per grant, whichever process sees it first); once a day, prune audit events past their
    retention (:func:`retention.prune`: up to a signed checkpoint, never under six months)."""
    settings = platform.settings
    pruned_at: float | None = None
    while not stop.is_set():
        if pruned_at is None or time.monotonic() - pruned_at >= AUDIT_PRUNE_SECONDS:
            pruned_at = time.monotonic()
            try:
                retention.prune(platform, who=f"worker:{worker_name()}")
            except Exception:
                log.warning("could not prune the audit log", exc_info=True)
        try:
            clean_staging(platform, settings.staging_max_age_seconds)
            expire_uploads(platform, settings.upload_max_age_seconds)
        except Exception:
            log.warning("staging cleanup failed", exc_info=True)
        try:  # the audit log's signed checkpoint, at least every audit_checkpoint_seconds
            if checkpoints.due(platform, settings.audit_checkpoint_seconds):
                checkpoints.take(platform)
        except Exception:
            log.warning("could not take the audit log's checkpoint", exc_info=True)
        try:
            with platform.write.begin() as s:
                told = notify.expiring_grants(s)
            if told:
                log.info("told %d grant(s)' grantees and managers of their coming expiry", len(told))
        except Exception:
            log.warning("could not send the grant expiry notices", exc_info=True)
        stop.wait(min(JANITOR_SECONDS, settings.audit_checkpoint_seconds))


def run_workers(platform: Platform, concurrency: int, stop: threading.Event) -> None:
    """Run ``concurrency`` worker threads, and the janitor, until ``stop`` is set."""
    threads = [threading.Thread(target=Worker(platform).run_forever, args=(stop,), name=f"worker-{i}")
               for i in range(concurrency)]
    threads.append(threading.Thread(target=run_janitor, args=(platform, stop), name="janitor", daemon=True))
    if platform.settings.smtp_url:  # e-mail copies of notifications are queued only when it is set
        threads.append(threading.Thread(target=run_mailer, args=(platform, worker_name(), stop), name="mailer",
                                        daemon=True))
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
