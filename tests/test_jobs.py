"""The ingest queue on a real SQLite catalog: exclusive claims, leases, retries."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import update

from catalog.core.settings import Settings
from catalog.db.models import Group, IngestJob, Package, Resource, ResourceVersion, utcnow
from catalog.platform import Platform
from catalog.versions import jobs


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_db(request, tmp_path):
    """The same queue tests on the embedded SQLite and on a real PostgreSQL."""
    url = request.getfixturevalue("postgres")() if request.param == "postgresql" else None
    platform = Platform.open(Settings(data_dir=tmp_path, database_url=url))
    yield platform
    platform.close()


def _dataset(s) -> Package:
    """An organization and a dataset to hang resources and uploads on."""
    org = Group(name="o", is_organization=True)
    s.add(org)
    s.flush()
    pkg = Package(name="p", owner_org=org.id)
    s.add(pkg)
    s.flush()
    return pkg


def _queue(platform: Platform, n: int) -> list[str]:
    with platform.write.begin() as s:
        pkg = _dataset(s)
        ids = []
        for i in range(n):
            res = Resource(package_id=pkg.id, position=i)
            s.add(res)
            s.flush()
            v = ResourceVersion(resource_id=res.id, number=1, sha256="0" * 64, size=0, raw_key="k")
            s.add(v)
            s.flush()
            ids.append(jobs.enqueue(s, res.id, v.id).id)
        return ids


def test_racing_workers_claim_every_job_exactly_once(catalog_db):
    ids = _queue(catalog_db, 40)
    claimed: dict[str, list[str]] = {"w1": [], "w2": [], "w3": []}

    def work(name: str) -> None:
        while True:
            with catalog_db.write.begin() as s:
                claim = jobs.claim(s, name, lease_seconds=60)
            if claim is None:
                return
            claimed[name].append(claim.job_id)
            with catalog_db.write.begin() as s:
                assert jobs.finish(s, claim, "done")

    threads = [threading.Thread(target=work, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [j for js in claimed.values() for j in js]
    assert sorted(everything) == sorted(ids)
    assert len(set(everything)) == len(everything)


def test_an_expired_lease_passes_the_job_on_and_fences_the_old_owner(catalog_db):
    _queue(catalog_db, 1)
    with catalog_db.write.begin() as s:
        first = jobs.claim(s, "slow", lease_seconds=0)
    assert first is not None
    time.sleep(0.01)
    with catalog_db.read() as s:
        assert jobs.pending(s), "an expired lease makes the job claimable again"
    with catalog_db.write.begin() as s:
        second = jobs.claim(s, "fast", lease_seconds=60)
    assert second.job_id == first.job_id and second.attempt == 2
    with catalog_db.write.begin() as s:
        assert not jobs.heartbeat(s, first, 60), "the old owner learns it lost the job"
        assert not jobs.finish(s, first, "done"), "and cannot publish"
        assert jobs.finish(s, second, "done")


def test_retry_later_waits_for_the_backoff(catalog_db):
    [job_id] = _queue(catalog_db, 1)
    with catalog_db.write.begin() as s:
        claim = jobs.claim(s, "w", lease_seconds=60)
        assert (claim.job_id, claim.attempt) == (job_id, 1)
        assert jobs.retry_later(s, claim, delay_seconds=3600, error="S3Error")
    with catalog_db.read() as s:
        assert not jobs.pending(s)
        job = s.get(IngestJob, job_id)
        assert (job.state, job.attempts, job.error, job.lease_until) == ("queued", 1, "S3Error", None)
        assert job.not_before > utcnow() + dt.timedelta(seconds=3500)
    with catalog_db.write.begin() as s:
        assert jobs.claim(s, "w2", lease_seconds=60) is None, "not before the back-off ends"
        # The hour has passed: the job's due time is now in the past (no sleep needed).
        s.execute(update(IngestJob).where(IngestJob.id == job_id)
                  .values(not_before=utcnow() - dt.timedelta(seconds=1)))
    with catalog_db.read() as s:
        assert jobs.pending(s)
    with catalog_db.write.begin() as s:
        again = jobs.claim(s, "w2", lease_seconds=60)
        assert (again.job_id, again.attempt, again.worker_id) == (job_id, 2, "w2")
        job = s.get(IngestJob, job_id)
        assert (job.state, job.attempts, job.error) == ("running", 2, "S3Error"), "the last error is kept"


def test_janitor_removes_abandoned_staging_objects_only(platform):
    import io

    from catalog.core import keys
    from ingest.janitor import clean_staging

    ids = _queue(platform, 2)
    with platform.write.begin() as s:
        running = jobs.claim(s, "w1", lease_seconds=600)
    stale = ids[1] if running.job_id == ids[0] else ids[0]
    live_key = keys.staging_parquet(running.job_id, running.attempt)
    dead_keys = [keys.staging_parquet(stale, 1), keys.staging_parquet(running.job_id, running.attempt - 1 or 9)]
    for key in [live_key, *dead_keys]:
        platform.store.put_stream(key, io.BytesIO(b"PAR1"))
    assert clean_staging(platform, max_age_seconds=3600) == [], "young objects are left alone"
    assert sorted(platform.store.list("staging/")) == sorted([live_key, *dead_keys])
    # Two hours later (the janitor's clock moved on; nothing waits for it).
    removed = clean_staging(platform, max_age_seconds=3600,
                            now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    assert sorted(removed) == sorted(dead_keys)
    assert list(platform.store.list("staging/")) == [live_key], "the running attempt keeps its object"


def _open_uploads(platform: Platform, prefix: str) -> set[str]:
    """The S3 upload ids of the multipart uploads open under ``prefix``, as the object store lists them."""
    store = platform.store
    return {u.upload_id for u in store.client._list_multipart_uploads(store.bucket, prefix=prefix).uploads}


def test_abandoned_multipart_uploads_expire(platform):
    """README: an upload left open longer than MOSU_UPLOAD_MAX_AGE_SECONDS is aborted and its parts freed
    on the object store, not only marked in the catalog."""
    import requests
    from minio.error import S3Error

    from catalog.db.models import MultipartUpload
    from ingest.janitor import expire_uploads

    key = "raw/00000000-0000-0000-0000-000000000001/00000000-0000-0000-0000-000000000002"
    s3_id = platform.store.multipart_start(key)
    part = requests.put(platform.store.multipart_part_url(key, s3_id, 1, dt.timedelta(minutes=5)),
                        data=b"0123456789", timeout=30)
    assert part.status_code == 200, part.text
    with platform.write.begin() as s:
        pkg = _dataset(s)
        up = MultipartUpload(package_id=pkg.id, resource_id="r", version_id="v", new_resource=True, key=key,
                             s3_upload_id=s3_id, size=10, part_size=10, state="open")
        s.add(up)
        s.flush()
        up_id = up.id
    assert expire_uploads(platform, max_age_seconds=3600) == []
    assert _open_uploads(platform, "raw/") == {s3_id}
    assert [(n, size) for n, size, _ in platform.store.multipart_parts(key, s3_id)] == [(1, 10)]
    # A day later: the upload is past its age.
    assert expire_uploads(platform, max_age_seconds=3600,
                          now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)) == [up_id]
    with platform.read() as s:
        assert s.get(MultipartUpload, up_id).state == "expired"
    assert _open_uploads(platform, "raw/") == set(), "the store no longer holds the upload"
    with pytest.raises(S3Error) as err:
        platform.store.multipart_parts(key, s3_id)
    assert err.value.code == "NoSuchUpload", "nor its part"
    assert list(platform.store.list("raw/")) == [], "and no object was made of it"
