"""Fault tests with real processes: a worker killed while it holds a job, the object store going away,
several workers racing for the same jobs.

The server's workers run with ``MOSU_TEST_HOLD_INGEST``: while its release file is absent, a worker
that claimed a job waits before working on it, renewing its lease. :func:`held` takes the file away,
so each test acts on a job that is provably claimed and held (seen in the database), not on one it
hopes is still being decoded.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import ckanapi
import pytest
import requests
from sqlalchemy import func, select

from catalog.db.models import AuditEvent, Base, IngestJob, ResourceVersion, utcnow
from catalog.platform import Platform
from catalog.storage.seaweed import SeaweedServer
from tests.conftest import RunningMosu, upload, wait_for_ingest

T = TypeVar("T")
LEASE_SECONDS = 3


@dataclass
class FaultSite:
    running: RunningMosu
    admin: ckanapi.RemoteCKAN
    release: Path  # MOSU_TEST_HOLD_INGEST: present, jobs run; absent, a claimed job is held


@pytest.fixture(scope="module")
def own_s3(tmp_path_factory):
    """A SeaweedFS of this module alone: a test stops and restarts it."""
    server = SeaweedServer(tmp_path_factory.mktemp("fault-s3")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site(mosu_factory, own_s3, tmp_path_factory) -> FaultSite:
    """mosu up with three workers, a 3-second lease (a dead worker's job moves on quickly), and the
    test hold, released until a test takes it."""
    release = tmp_path_factory.mktemp("hold") / "release"
    release.touch()
    running = mosu_factory("--workers", "3", store=own_s3, job_lease_seconds=LEASE_SECONDS,
                           worker_poll_seconds=0.2, test_hold_ingest=release)
    return FaultSite(running, running.admin_with_dataset("faults"), release)


@contextlib.contextmanager
def held(site: FaultSite) -> Iterator[None]:
    """Inside the block, every job a worker claims waits before any work; leaving it releases them."""
    site.release.unlink()
    try:
        yield
    finally:
        site.release.touch()


def _wait_for(what: str, check: Callable[[], T | None], timeout: float = 60) -> T:
    """Poll ``check`` until it returns something true: a real state reached by other processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


@dataclass(frozen=True)
class Job:
    state: str
    stage: str
    attempts: int
    worker_id: str | None
    lease_until: dt.datetime | None
    error: str | None

    @property
    def pid(self) -> int:
        return int(self.worker_id.split(":")[1])


def _jobs(platform: Platform, resource_ids: list[str]) -> list[Job]:
    with platform.read() as s:
        rows = s.scalars(select(IngestJob).where(IngestJob.resource_id.in_(resource_ids))
                         .order_by(IngestJob.created)).all()
        return [Job(j.state, j.stage, j.attempts, j.worker_id, j.lease_until, j.error) for j in rows]


def _held(platform: Platform, resource_id: str) -> Job | None:
    job = _jobs(platform, [resource_id])[0]
    return job if (job.state, job.stage) == ("running", "test-hold") else None


def _publishes(platform: Platform, resource_ids: list[str]) -> list[AuditEvent]:
    with platform.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "resource_publish",
                                                       AuditEvent.object_id.in_(resource_ids))))


def _gone(pid: int) -> bool:
    """The process has ended (a zombie until mosu up reaps it counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _row_counts(platform: Platform) -> dict[str, int]:
    with platform.read() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_a_worker_killed_while_holding_a_job_is_replaced_and_the_job_published_once(site):
    platform = site.running.inspect()
    with held(site):
        res = upload(site.admin, "city,n\nZürich,1\nGenève,2\n".encode(), "held.csv", dataset="faults", wait=False)
        job = _wait_for("a worker holds the job", lambda: _held(platform, res["id"]))
        assert job.attempts == 1 and job.pid in site.running.worker_pids()
        # Alive and holding: its heartbeat pushes the lease forward.
        renewed = _wait_for("the lease is renewed", lambda: (j := _held(platform, res["id"])) and
                            j.lease_until > job.lease_until and j)
        assert renewed.worker_id == job.worker_id and renewed.lease_until > utcnow()
        os.kill(job.pid, signal.SIGKILL)
        _wait_for("the worker is dead", lambda: _gone(job.pid))
        last_lease = _jobs(platform, [res["id"]])[0].lease_until  # nobody renews it any more

    done = wait_for_ingest(site.admin, res["id"])
    assert done["ingest_status"] == "ready", done["ingest_error"]
    (final,) = _jobs(platform, [res["id"]])
    assert (final.state, final.attempts, final.error) == ("done", 2, None)
    assert final.worker_id != job.worker_id, "another worker finished it"
    (publish,) = _publishes(platform, [res["id"]])
    assert publish.ts > last_lease, "taken over only once the dead worker's lease ran out"
    with platform.read() as s:
        versions = s.scalars(select(ResourceVersion).where(ResourceVersion.resource_id == res["id"])).all()
        assert [(v.number, v.status) for v in versions] == [(1, "ready")]
    assert list(platform.store.list("staging/")) == [], "no staging object is left behind"
    assert site.admin.action.datastore_search(resource_id=res["id"])["records"] == [
        {"_id": 1, "city": "Zürich", "n": 1}, {"_id": 2, "city": "Genève", "n": 2}]
    workers = _wait_for("the killed worker is replaced", lambda: len(site.running.worker_pids()) == 3 and
                        site.running.worker_pids())
    assert job.pid not in workers


def test_racing_workers_ingest_every_upload_exactly_once(site):
    platform = site.running.inspect()
    with held(site):
        ids = [upload(site.admin, f"i,v\n{i},{i * i}\n".encode(), f"r{i}.csv", dataset="faults", name=f"race-{i}",
                      wait=False)["id"] for i in range(15)]
        holding = _wait_for("each worker holds a job", lambda: (
            jobs := _jobs(platform, ids)) and [j.stage for j in jobs].count("test-hold") == 3 and jobs)
        assert len({j.worker_id for j in holding if j.state == "running"}) == 3, "one job each"
        assert [(j.state, j.attempts) for j in holding].count(("queued", 0)) == 12, "the rest wait, unclaimed"
    for rid in ids:
        assert wait_for_ingest(site.admin, rid)["ingest_status"] == "ready"
    jobs = _jobs(platform, ids)
    assert [(j.state, j.attempts) for j in jobs] == [("done", 1)] * 15, "no job claimed twice"
    assert sorted(e.object_id for e in _publishes(platform, ids)) == sorted(ids), "each published once"
    assert len({j.worker_id for j in jobs}) == 3


def test_the_object_store_going_away_refuses_uploads_cleanly_and_delays_but_does_not_lose_an_ingest(site, own_s3):
    running, admin = site.running, site.admin
    platform = running.inspect()
    before, raw_before = _row_counts(platform), sorted(platform.store.list("raw/"))
    own_s3.stop()
    try:
        # The upload itself needs the store: refused with a 503 that says so, and nothing recorded.
        answer = requests.post(f"{running.url}/api/3/action/resource_create", data={"package_id": "faults"},
                               files={"upload": ("x.csv", b"a\n1\n")}, headers={"Authorization": admin.apikey},
                               timeout=120)
    finally:
        own_s3.start()
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == {"__type": "Service Unavailable Error", "message":
                                      "Object storage is unavailable: the upload was not stored. Try again later."}
    assert _row_counts(platform) == before
    assert sorted(platform.store.list("raw/")) == raw_before

    with held(site):
        res = upload(admin, "city,n\nSão Paulo,1\n".encode(), "later.csv", dataset="faults", wait=False)
        _wait_for("a worker holds the job", lambda: _held(platform, res["id"]))
        own_s3.stop()  # released with the store away: the download fails and the job waits for a retry
    try:
        failed = _wait_for("the attempt without a store is given back", lambda: (
            j := _jobs(platform, [res["id"]])[0]).error and j)
        assert (failed.attempts, failed.error) == (1, "StorageUnavailable")
        assert admin.action.resource_show(id=res["id"])["ingest_status"] in ("queued", "running")
        assert _publishes(platform, [res["id"]]) == []
    finally:
        own_s3.start()
    done = wait_for_ingest(admin, res["id"])
    assert done["ingest_status"] == "ready", done["ingest_error"]
    (final,) = _jobs(platform, [res["id"]])
    assert final.state == "done" and final.attempts >= 2, "the attempt that lost the store was retried"
    assert len(_publishes(platform, [res["id"]])) == 1
    assert admin.action.datastore_search(resource_id=res["id"])["records"] == [{"_id": 1, "city": "São Paulo", "n": 1}]
