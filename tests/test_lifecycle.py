"""The version lifecycle: the allowed moves of versions and jobs, the one resolver of "which version
does this call read", and the worker keeping a published version published when its re-check fails.

The tables are pure and tested exhaustively; the resolver runs over a real SQLite catalog, and the
worker over real SQLite and SeaweedFS.
"""
from __future__ import annotations

import io
import itertools

import pytest
from sqlalchemy import select

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.core import keys
from catalog.core.errors import NotAuthorized, NotFound
from catalog.db.models import AuditEvent, Group, IngestJob, Package, Resource, ResourceVersion, utcnow
from catalog.platform import Platform
from catalog.versions import jobs, lifecycle
from catalog.versions.lifecycle import JOB_MOVES, VERSION_MOVES, IllegalMove, JobState, State
from catalog.versions.resolve import NoPublishedVersion, NotPublished, Read, version_to_read
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import s3_settings

# -- the tables (pure) -------------------------------------------------------------------------

VERSION_ALLOWED = {("queued", "ready"), ("queued", "held"), ("queued", "failed"), ("held", "ready")}
JOB_ALLOWED = {("queued", "running"), ("running", "running"), ("running", "done"), ("running", "failed"),
               ("running", "queued")}


def test_the_tables_are_exactly_the_moves_the_platform_makes():
    assert {(a.value, b.value) for a, targets in VERSION_MOVES.items() for b in targets} == VERSION_ALLOWED
    assert {(a.value, b.value) for a, targets in JOB_MOVES.items() for b in targets} == JOB_ALLOWED
    assert [s.value for s in State] == ["queued", "running", "held", "ready", "failed"], "the stored strings"
    assert [s.value for s in JobState] == ["queued", "running", "done", "failed"]


@pytest.mark.parametrize(("current", "to"), sorted(itertools.product([s.value for s in State], repeat=2)))
def test_every_version_move_is_allowed_or_refused_by_the_table(current, to):
    if (current, to) in VERSION_ALLOWED:
        assert lifecycle.check_version_move(current, State(to)) == to
    else:
        with pytest.raises(IllegalMove, match=f"from '{current}' to '{to}'|unknown state '{current}'"):
            lifecycle.check_version_move(current, State(to))


@pytest.mark.parametrize(("current", "to"), sorted(itertools.product([s.value for s in JobState], repeat=2)))
def test_every_job_move_is_allowed_or_refused_by_the_table(current, to):
    if (current, to) in JOB_ALLOWED:
        assert lifecycle.check_job_move(current, JobState(to)) == to
    else:
        with pytest.raises(IllegalMove, match=f"from '{current}' to '{to}'"):
            lifecycle.check_job_move(current, JobState(to))


def test_refused_moves_name_the_states_and_leave_the_row_unchanged():
    v = ResourceVersion(status="ready", error=None)
    with pytest.raises(IllegalMove, match="a version cannot move from 'ready' to 'failed'"):
        lifecycle.move_version(v, State.FAILED, "boom")  # a published version never fails afterwards
    assert (v.status, v.error) == ("ready", None)
    with pytest.raises(IllegalMove, match="unknown state 'publishd'"):
        lifecycle.check_version_move("publishd", State.READY)
    with pytest.raises(IllegalMove, match="unknown state None"):
        lifecycle.check_version_move(None, State.READY)
    with pytest.raises(ValueError):
        lifecycle.check_version_move("queued", "publishd")  # not a state at all


def test_only_held_and_failed_carry_a_reason():
    v = ResourceVersion(status="queued")
    with pytest.raises(IllegalMove, match="carries no error"):
        lifecycle.move_version(v, State.READY, "why")
    lifecycle.move_version(v, State.HELD, "personal information")
    assert (v.status, v.error) == ("held", "personal information") and type(v.status) is str
    res = Resource(ingest_status="held", ingest_error="summary")
    with pytest.raises(IllegalMove, match="carries no error"):
        lifecycle.show(res, State.RUNNING, "summary")
    lifecycle.show(res, State.QUEUED)
    assert (res.ingest_status, res.ingest_error) == ("queued", None)


def test_only_a_ready_version_with_its_parquet_is_published():
    assert lifecycle.is_published(ResourceVersion(status="ready", parquet_key="p"))
    assert not lifecycle.is_published(ResourceVersion(status="held", parquet_key="p")), "held: Parquet, not public"
    assert not lifecycle.is_published(ResourceVersion(status="ready", parquet_key=None))
    assert not lifecycle.is_published(ResourceVersion(status="failed", parquet_key=None))


# -- the resolver, over a real SQLite catalog ---------------------------------------------------

@pytest.fixture
def catalog(tmp_path):
    """A catalog database only (no object store needed to choose a version)."""
    from catalog.core.settings import Settings

    platform = Platform.open(Settings(data_dir=tmp_path))
    yield platform
    platform.close()


def _resource(s, statuses: list[str], current: int | None) -> str:
    """A resource whose versions 1..n have ``statuses`` (ready and held ones have Parquet)."""
    org = s.scalar(select(Group).where(Group.name == "o"))
    if org is None:
        org = Group(name="o", is_organization=True)
        s.add(org)
        s.flush()
        s.add(Package(name="p", owner_org=org.id))
        s.flush()
    pkg = s.scalar(select(Package).where(Package.name == "p"))
    res = Resource(package_id=pkg.id)
    s.add(res)
    s.flush()
    for number, status in enumerate(statuses, 1):
        v = ResourceVersion(resource_id=res.id, number=number, status=status, sha256="0" * 64, size=1,
                            raw_key=f"raw/{res.id}/{number}",
                            parquet_key=f"pq/{res.id}/{number}" if status in ("ready", "held") else None,
                            published=utcnow() if status == "ready" else None)
        s.add(v)
        s.flush()
        if number == current:
            res.current_version_id = v.id
    return res.id


def _read(platform, rid, key, policy, editor=False) -> int:
    with platform.read() as s:
        return version_to_read(s, s.get(Resource, rid), key, policy, editor=editor).number


def test_published_reads_the_current_version_or_a_named_published_one(catalog):
    with catalog.write.begin() as s:
        rid = _resource(s, ["ready", "failed", "held", "ready", "queued"], current=4)
    assert _read(catalog, rid, None, Read.PUBLISHED) == 4
    assert _read(catalog, rid, "", Read.PUBLISHED) == 4
    assert _read(catalog, rid, 1, Read.PUBLISHED) == 1
    assert _read(catalog, rid, "1", Read.PUBLISHED) == 1
    for unpublished, status in ((2, "failed"), (3, "held"), (5, "queued")):
        for editor in (False, True):  # not even the dataset's editors read unpublished rows
            with pytest.raises(NotPublished, match=f"Version {unpublished} is {status}, not published"):
                _read(catalog, rid, unpublished, Read.PUBLISHED, editor=editor)
    with pytest.raises(NotFound, match="Version 9 of this resource not found"):
        _read(catalog, rid, 9, Read.PUBLISHED)
    with pytest.raises(NotFound, match="Version 99999999999 of this resource not found"):
        _read(catalog, rid, "99999999999", Read.PUBLISHED)


def test_published_with_nothing_published_is_not_found(catalog):
    with catalog.write.begin() as s:
        failed_only = _resource(s, ["failed"], current=None)
        s.get(Resource, failed_only).ingest_status = "failed"
        nothing = _resource(s, [], current=None)
    with pytest.raises(NoPublishedVersion, match=r"was not found in the datastore \(ingest failed\)"):
        _read(catalog, failed_only, None, Read.PUBLISHED, editor=True)
    with pytest.raises(NoPublishedVersion):
        _read(catalog, nothing, None, Read.PUBLISHED)


def test_editors_read_unpublished_versions_and_others_are_refused(catalog):
    with catalog.write.begin() as s:
        rid = _resource(s, ["ready", "failed", "held"], current=1)
        first_failed = _resource(s, ["failed", "failed"], current=None)
        nothing = _resource(s, [], current=None)
    assert _read(catalog, rid, None, Read.EDITORS) == 1, "the current one, for anyone"
    assert _read(catalog, rid, 1, Read.EDITORS) == 1
    for number in (2, 3):
        assert _read(catalog, rid, number, Read.EDITORS, editor=True) == number
        with pytest.raises(NotAuthorized, match=f"version {number} is .*, not published; only the dataset's edit"):
            _read(catalog, rid, number, Read.EDITORS)
    assert _read(catalog, first_failed, None, Read.EDITORS, editor=True) == 2, "nothing current: the latest upload"
    with pytest.raises(NotAuthorized):
        _read(catalog, first_failed, None, Read.EDITORS)
    with pytest.raises(NotFound, match="This resource has no upload yet"):
        _read(catalog, nothing, None, Read.EDITORS, editor=True)


def test_pending_reads_the_latest_held_version_first(catalog):
    with catalog.write.begin() as s:
        held = _resource(s, ["ready", "held", "held", "failed"], current=1)
        none_held = _resource(s, ["ready", "failed"], current=1)
    assert _read(catalog, held, None, Read.PENDING, editor=True) == 3
    assert _read(catalog, held, 2, Read.PENDING, editor=True) == 2
    assert _read(catalog, none_held, None, Read.PENDING, editor=True) == 1, "none held: the current one"


# -- the worker keeps a published version published ---------------------------------------------

def test_a_failed_revalidation_leaves_the_published_version_and_the_resource_as_they_were(s3, tmp_path):
    """A changed suite re-checks the current version; if that job fails for good (its Parquet cannot
    be read, say), the version stays published and the resource keeps showing ``ready``. Before the
    lifecycle, the worker marked the current version ``failed`` (and the resource ``queued`` while it
    retried), though researchers were still reading it."""
    platform = Platform.open(s3_settings(s3, tmp_path / "data", job_max_attempts=2))
    try:
        platform.store.ensure_bucket()
        site = Context(platform=platform, actor=Actor.site())
        call(site, "organization_create", {"name": "org"})
        call(site, "package_create", {"name": "pkg", "owner_org": "org"})
        res = call(site, "resource_create", {"package_id": "pkg", "upload": Upload(io.BytesIO(b"a,b\n1,2\n3,4\n"),
                                                                                 "t.csv")})
        assert Worker(platform).run_once()
        assert call(site, "resource_show", {"id": res["id"]})["ingest_status"] == "ready"
        with platform.write.begin() as s:
            version = s.get(ResourceVersion, s.get(Resource, res["id"]).current_version_id)
            version_id, parquet_key = version.id, version.parquet_key
            job_id = jobs.enqueue(s, res["id"], version_id, kind="validate").id
        platform.store.remove(parquet_key)  # the re-check cannot download it: a transient error, twice
        assert Worker(platform).run_once()
        with platform.read() as s:
            assert s.get(IngestJob, job_id).state == "queued", "first attempt: back to the queue"
            assert s.get(Resource, res["id"]).ingest_status == "ready", "a re-check does not requeue the resource"
        with platform.write.begin() as s:
            s.get(IngestJob, job_id).not_before = utcnow()
        assert Worker(platform).run_once()
        with platform.read() as s:
            job, version, resource = s.get(IngestJob, job_id), s.get(ResourceVersion, version_id), \
                s.get(Resource, res["id"])
            assert job.state == "failed" and "after 2 attempts" in job.error
            assert (version.status, version.error) == ("ready", None)
            assert (resource.ingest_status, resource.ingest_error, resource.current_version_id) == \
                ("ready", None, version_id)
            events = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.object_id == res["id"]))]
        assert "quality_revalidation_failed" in events and "resource_ingest_failed" not in events
        assert keys.version_parquet(res["id"], version_id) == parquet_key
    finally:
        platform.close()
