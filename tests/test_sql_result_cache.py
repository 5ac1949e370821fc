"""Answers of identical ``datastore_search_sql`` queries over the same versions are kept (issue 16,
"Repeated work made cheap"), in-process over real SQLite, SeaweedFS, the worker and DuckDB.

The second identical query, and one that differs only in whitespace, comments and the case of its
keywords, is answered from the cache (``query.results.hits``) with an equal answer, and each call
still writes its own audit event with the columns it read. A new version of a table, a query that may
answer differently each time (random, now, a sample) and a caller with another column scope are
never given a kept answer.
"""
from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.datastore import sqlcheck
from catalog.db.models import AccessGrant, AuditEvent, utcnow
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import restricted_dataset, s3_settings

CSV = b"city,value,secret\n" + b"".join(f"{c},{i},s{i}\n".encode() for i, c in enumerate(["Oslo", "Lima", "Pune"] * 5))


def _ingest(platform: Platform) -> None:
    while Worker(platform).run_once():
        pass


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("sqlcache") / "data"))
    platform.store.ensure_bucket()
    owner, users, pkg = restricted_dataset(platform, "rc")
    rid = call(owner, "resource_create", {"package_id": pkg["id"], "name": "table", "upload": Upload(
        io.BytesIO(CSV), "table.csv", "text/csv")})["id"]
    _ingest(platform)
    assert call(owner, "resource_show", {"id": rid})["ingest_status"] == "ready"
    with platform.write.begin() as s:
        s.add(AccessGrant(package_id=pkg["id"], grantee_type="user", grantee_id=users["scoped"].id,
                          expires=utcnow() + dt.timedelta(days=90), columns=["city", "value"],
                          approved_by=users["owner"].id))
    scoped = Context(platform=platform, actor=Actor.of(users["scoped"]), client="rc-scoped")
    yield {"platform": platform, "owner": owner, "scoped": scoped, "rid": rid}
    platform.close()


def run_sql(ctx: Context, query: str) -> dict:
    return call(ctx, "datastore_search_sql", {"sql": query})


def _events(platform: Platform, after: int) -> list[AuditEvent]:
    with platform.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.seq > after,
                                                       AuditEvent.action == "datastore_search_sql")
                              .order_by(AuditEvent.seq)))


def _last(platform: Platform) -> int:
    with platform.read() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


def test_normalized_form_ignores_whitespace_comments_and_keyword_case():
    rid = "0e1f1b1e-1111-4222-8333-444455556666"
    a = sqlcheck.check(f'SELECT city, sum(value) FROM "{rid}" WHERE value > 1 GROUP BY city ORDER BY 2')
    b = sqlcheck.check(f'select  city,sum(value)  -- total\n from "{rid}" /* c */ where value>1 '
                       'group  by city order by 2')
    assert a.normalized is not None and a.normalized == b.normalized
    assert sqlcheck.check(f'SELECT city FROM "{rid}" WHERE value > 2').normalized != a.normalized
    for query in ("SELECT random()", "SELECT now()", "SELECT current_date", "SELECT CURRENT_TIMESTAMP",
                  "SELECT uuid()", f'SELECT * FROM "{rid}" USING SAMPLE 10%',
                  f'SELECT * FROM "{rid}" TABLESAMPLE reservoir(3 ROWS)'):
        assert sqlcheck.check(query).normalized is None, query


def test_a_repeated_query_is_answered_from_the_cache_and_still_audited(world):
    platform, owner, rid = world["platform"], world["owner"], world["rid"]
    results = platform.query.results
    first_sql = f'SELECT city, sum(value) AS total FROM "{rid}" WHERE value > 1 GROUP BY city ORDER BY city'
    same = [first_sql, f'select city, sum(value) as total\n  from "{rid}" -- by city\n where value>1 '
                       f'/* again */ group by city order by city']
    before, hits, misses = _last(platform), results.hits, results.misses
    first = run_sql(owner, first_sql)
    assert (results.hits, results.misses) == (hits, misses + 1)
    assert first["records"] == [{"city": "Lima", "total": 34}, {"city": "Oslo", "total": 30},
                                {"city": "Pune", "total": 40}]
    for n, query in enumerate(same, start=1):
        again = run_sql(owner, query)
        assert results.hits == hits + n, "answered from the cache"
        assert again["records"] == first["records"] and again["fields"] == first["fields"]
        assert again["sql"] == query, "the caller's own query is echoed"
    events = _events(platform, before)
    assert len(events) == 3, "every call is a recorded read, cached or not"
    for event, query in zip(events, [first_sql, *same]):
        assert event.actor == "rc-owner" and event.detail["sql"] == query
        assert event.detail["columns_read"] == {rid: ["city", "value"]}
        assert event.detail["rows"] == 3


def test_a_query_that_may_answer_otherwise_is_run_each_time(world):
    platform, owner, rid = world["platform"], world["owner"], world["rid"]
    results = platform.query.results
    query = f'SELECT city, random() AS r FROM "{rid}"'
    run_sql(owner, query)
    hits = results.hits
    assert run_sql(owner, query)["records"] != run_sql(owner, query)["records"]
    assert results.hits == hits


def test_a_column_scoped_caller_never_shares_an_answer(world):
    platform, owner, scoped, rid = world["platform"], world["owner"], world["scoped"], world["rid"]
    results = platform.query.results
    star = f'SELECT * FROM "{rid}" ORDER BY _id LIMIT 3'
    full = run_sql(owner, star)
    assert [f["id"] for f in full["fields"]] == ["_id", "city", "value", "secret"]
    hits = results.hits
    narrow = run_sql(scoped, star)
    assert results.hits == hits, "the unscoped answer is not the scoped caller's"
    assert [f["id"] for f in narrow["fields"]] == ["_id", "city", "value"] and "s0" not in repr(narrow)
    assert run_sql(scoped, star) == narrow and results.hits == hits + 1, "their own answer is kept for them"
    # and the other way round: a query first answered for the scoped caller
    count = f'SELECT count(*) AS n, max(value) AS m FROM "{rid}"'
    run_sql(scoped, count)
    hits = results.hits
    run_sql(owner, count)
    assert results.hits == hits
    assert run_sql(owner, star) == full and results.hits == hits + 1


def test_a_new_version_is_a_miss(world):
    """On a table of its own: the module's table must keep its one version for the other tests."""
    platform, owner = world["platform"], world["owner"]
    rid = call(owner, "resource_create", {"package_id": "rc-data", "name": "versioned", "upload": Upload(
        io.BytesIO(CSV), "versioned.csv", "text/csv")})["id"]
    _ingest(platform)
    results = platform.query.results
    query = f'SELECT count(*) AS n FROM "{rid}"'
    assert run_sql(owner, query)["records"] == [{"n": 15}]
    hits = results.hits
    assert run_sql(owner, query)["records"] == [{"n": 15}] and results.hits == hits + 1
    call(owner, "resource_patch", {"id": rid, "upload": Upload(io.BytesIO(CSV + b"Kobe,99,s99\n"), "table.csv",
                                                               "text/csv")})
    _ingest(platform)
    assert len(call(owner, "resource_version_list", {"id": rid})) == 2
    misses = results.misses
    assert run_sql(owner, query)["records"] == [{"n": 16}]
    assert results.hits == hits + 1 and results.misses == misses + 1


def test_the_cache_keeps_at_most_its_bytes_least_recently_used_dropped():
    from catalog.datastore.resultcache import ResultCache
    cache = ResultCache(100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # now b is the least recently used
    cache.put("c", "C", 40)
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C" and cache.bytes == 80
    cache.put("huge", "H", 101)
    assert cache.get("huge") is None and cache.bytes == 80
