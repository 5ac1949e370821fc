"""Query execution behind requests that name versions (issue 16's seam, :mod:`catalog.datastore.answers`),
in-process over real SQLite, SeaweedFS, the worker and DuckDB.

A version whose Parquet object is gone from storage (removed behind the platform's back) is refused
to every kind of read with one clear 503, nothing recorded as read; an export, which takes the
caller's query slot before loading the version's table, gives the slot back, so they can still run as
many queries at once as before. A search and a query name the version only
by its key and the reader's column scope: a column-scoped reader's page, SQL and export never hold a
hidden column.
"""
from __future__ import annotations

import html
import io

import pytest
import requests
from sqlalchemy import func, select

from catalog.actions import call
from catalog.actions.datastore import datastore_export
from catalog.actions.sql import datastore_sql_export
from catalog.core.errors import QueryRejected, StoredDataMissing, http_status
from catalog.datastore import answers, searchspec
from catalog.datastore.tablecache import ROW_ID, TableRef
from catalog.db.models import AuditEvent, Resource, ResourceVersion
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import restricted_dataset, s3_settings, upload

CSV = b"city,value,secret\n" + b"".join(f"{c},{i},s{i}\n".encode() for i, c in enumerate(["Oslo", "Lima", "Pune"] * 4))


@pytest.fixture
def world(s3, tmp_path):
    platform = Platform.open(s3_settings(s3, tmp_path / "data", query_max_concurrent_per_caller=2))
    platform.store.ensure_bucket()
    owner, users, pkg = restricted_dataset(platform, "qa")
    rid = call(owner, "resource_create", {"package_id": pkg["id"], "name": "table", "upload": Upload(
        io.BytesIO(CSV), "table.csv", "text/csv")})["id"]
    while Worker(platform).run_once():
        pass
    with platform.read() as s:
        key = s.get(ResourceVersion, s.get(Resource, rid).current_version_id).parquet_key
    yield {"platform": platform, "owner": owner, "rid": rid, "key": key}
    platform.close()


def test_a_version_missing_from_storage_is_a_clear_503_and_gives_its_slot_back(world):
    platform, owner, rid = world["platform"], world["owner"], world["rid"]
    platform.store.remove(world["key"])  # never loaded into this process's table cache: it must be fetched
    slots = platform.query.slots
    with platform.read() as s:
        events = s.scalar(select(func.count()).select_from(AuditEvent))
    reads = [lambda: datastore_export(owner, {"resource_id": rid, "format": "csv"}),
             lambda: datastore_sql_export(owner, {"sql": f'SELECT city FROM "{rid}"', "format": "csv"}),
             lambda: call(owner, "datastore_search_sql", {"sql": f'SELECT city FROM "{rid}"'}),
             lambda: call(owner, "datastore_search", {"resource_id": rid, "limit": 5}),  # row groups, no cache
             lambda: call(owner, "datastore_search", {"resource_id": rid, "sort": "city"})]
    for read in reads:
        for _ in range(3):  # more times than the caller's two slots
            with pytest.raises(StoredDataMissing) as failed:
                read()
            assert http_status(failed.value) == (503, "Service Unavailable Error")
            assert str(failed.value) == ("The stored data of this version is missing from object storage, so it "
                                         "cannot be served; the site's operators have been told")
            assert slots.running == 0
    with slots.acquire(owner.caller), slots.acquire(owner.caller):
        assert slots.running == 2  # both of the caller's slots are free to take
    with platform.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == events  # nothing was read


def test_a_scoped_reference_never_reaches_a_hidden_column(world):
    query, key = world["platform"].query, world["key"]
    ref = TableRef(key, frozenset({"city"}))
    assert answers.schemas(query, {"t": ref})["t"].names == [ROW_ID, "city"]
    assert [f["id"] for f in answers.page(query, ref, 5, 0).fields] == ["city"]  # _id: the caller numbers a page
    spec = searchspec.parse({"sort": "city desc", "limit": 3}, [ROW_ID, "city"])
    result, total = answers.search(query, ref, spec)
    assert (result.names, total) == ([ROW_ID, "city"], 12)
    assert [row[1] for row in result.rows] == ["Pune", "Pune", "Pune"]
    with pytest.raises(QueryRejected, match="secret") as failed:
        answers.sql(query, {"t": ref}, "SELECT secret FROM t", max_rows=10)
    assert "s1" not in str(failed.value)
    whole = answers.sql(query, {"t": TableRef(key)}, "SELECT count(DISTINCT secret) FROM t", max_rows=10)
    assert whole.rows == [(12,)]
    reader = answers.export_sql(query, {"t": ref}, "SELECT * FROM t", slot=None)
    assert reader.read_all().column_names == [ROW_ID, "city"]


def test_over_http_a_missing_version_is_a_503_with_its_message_on_the_api_and_the_page(mosu):
    admin = mosu.admin_with_dataset("qa-gone")
    rid = upload(admin, CSV, "gone.csv", dataset="qa-gone")["id"]
    platform = mosu.inspect()
    with platform.read() as s:
        key = s.get(ResourceVersion, s.get(Resource, rid).current_version_id).parquet_key
    platform.store.remove(key)
    message = "The stored data of this version is missing from object storage, so it cannot be served"
    api = requests.get(f"{mosu.url}/api/3/action/datastore_search", params={"resource_id": rid}, timeout=30)
    assert api.status_code == 503, api.text[:300]
    assert api.json()["error"]["message"].startswith(message) and key not in api.text
    page = requests.get(f"{mosu.url}/dataset/qa-gone/resource/{rid}", timeout=30)
    assert page.status_code == 503, page.text[:300]
    assert message in html.unescape(page.text) and key not in page.text and "Traceback" not in page.text
