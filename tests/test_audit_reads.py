"""Every read of data is an audit event: datastore_search, the dump of a resource, the dump of a query.
A dump also leaves the event of its end (rows read, bytes sent), with the same request id.

README: "Every preview, query, export and download is an audit event", and of researcher SQL "Each
answer is audited with the resources read". Each call here is made over HTTP to a running
``mosu up``; the audit table is read before and after it, and exactly one new event must name the
call, the caller and what was read.
"""
from __future__ import annotations

import hashlib
import io
import uuid

import pytest
import requests
from sqlalchemy import func, select

from catalog.db.models import AuditEvent
from tests.conftest import wait_for_ingest

CITIES = "city,population\nOslo,709037\nBergen,291940\nTrondheim,212660\nStavanger,149048\n"
STATIONS = "city,station\nOslo,Blindern\nBergen,Florida\nOslo,Tryvann\n"


@pytest.fixture(scope="module")
def site(mosu):
    """A public dataset with two published resources, and a researcher with a token."""
    suffix = uuid.uuid4().hex[:8]
    admin = mosu.ckan(mosu.token(f"audit-admin-{suffix}", sysadmin=True))
    org = admin.action.organization_create(name=f"audit-org-{suffix}")
    pkg = admin.action.package_create(name=f"audit-reads-{suffix}", owner_org=org["id"])
    resources = {}
    for name, body in (("cities", CITIES), ("stations", STATIONS)):
        res = admin.action.resource_create(package_id=pkg["id"], upload=(f"{name}.csv", io.BytesIO(body.encode())))
        res = wait_for_ingest(admin, res["id"])
        assert res["ingest_status"] == "ready", res["ingest_error"]
        version = admin.action.resource_version_list(id=res["id"])[0]
        resources[name] = {"id": res["id"], "version_id": version["id"]}
    researcher = f"audit-researcher-{suffix}"
    admin.action.user_create(name=researcher, email=f"{researcher}@example.org")
    token = admin.action.api_token_create(user=researcher, name="notebook")["token"]
    return {"resources": resources, "researcher": researcher, "token": token}


def _last_seq(mosu) -> int:
    with mosu.inspect().read() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


def _events_after(mosu, seq: int) -> list[dict]:
    with mosu.inspect().read() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq))
        return [{"actor": e.actor, "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
                 "detail": e.detail} for e in events]


def _audited(mosu, call) -> tuple[object, list[dict]]:
    """Run ``call`` and return its answer with the audit events it added."""
    before = _last_seq(mosu)
    answer = call()
    return answer, _events_after(mosu, before)


@pytest.mark.parametrize("who", ["researcher", "anonymous"])
def test_a_page_of_datastore_search_is_one_audit_event(mosu, site, who):
    cities = site["resources"]["cities"]
    token = site["token"] if who == "researcher" else None
    answer, events = _audited(mosu, lambda: mosu.ckan(token).action.datastore_search(
        resource_id=cities["id"], limit=2, offset=1))
    assert [r["city"] for r in answer["records"]] == ["Bergen", "Trondheim"]
    assert events == [{"actor": site["researcher"] if token else None, "action": "datastore_search",
                       "object_type": "resource", "object_id": cities["id"],
                       "detail": {"version_id": cities["version_id"], "version": 1, "limit": 2, "offset": 1,
                                  "rows": 2, "fields": ["_id", "city", "population"], "via": "level:open"}}]


def test_a_filtered_datastore_search_is_one_audit_event(mosu, site):
    cities = site["resources"]["cities"]
    answer, events = _audited(mosu, lambda: mosu.ckan(site["token"]).action.datastore_search(
        resource_id=cities["id"], filters={"city": ["Oslo", "Trondheim"]}, q="o", sort="population"))
    assert [r["city"] for r in answer["records"]] == ["Trondheim", "Oslo"]
    assert events == [{"actor": site["researcher"], "action": "datastore_search", "object_type": "resource",
                       "object_id": cities["id"],
                       "detail": {"version_id": cities["version_id"], "version": 1, "limit": 100, "offset": 0,
                                  "rows": 2, "fields": ["_id", "city", "population"],
                                  "filters": {"city": ["Oslo", "Trondheim"]}, "q": "o", "sort": ["population"],
                                  "via": "level:open"}}]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_dump_of_a_resource_is_one_audit_event(mosu, site, method):
    cities = site["resources"]["cities"]
    url, params = f"{mosu.url}/datastore/dump/{cities['id']}", {"format": "tsv", "filters": '{"city": "Oslo"}'}
    headers = {"Authorization": site["token"]}
    answer, events = _audited(mosu, lambda: requests.request(
        method, url, headers=headers, timeout=60,
        **({"params": params} if method == "GET" else {"data": params})))
    assert answer.status_code == 200 and answer.text == "city\tpopulation\nOslo\t709037\n"
    assert events == [{"actor": site["researcher"], "action": "datastore_export", "object_type": "resource",
                       "object_id": cities["id"],
                       "detail": {"version_id": cities["version_id"], "version": 1, "format": "tsv",
                                  "fields": ["city", "population"], "filters": {"city": ["Oslo"]},
                                  "via": "level:open"}},
                      {"actor": site["researcher"], "action": "datastore_export_end", "object_type": "resource",
                       "object_id": cities["id"],
                       "detail": {"format": "tsv", "rows": 1, "bytes": len(answer.content), "complete": True}}]


def test_the_dump_of_a_query_is_one_audit_event_naming_every_resource_read(mosu, site):
    cities, stations = site["resources"]["cities"], site["resources"]["stations"]
    sql = (f'SELECT c.city, count(*) AS n FROM "{cities["id"]}" c JOIN "{stations["id"]}" s ON s.city = c.city '
           "GROUP BY c.city ORDER BY c.city")
    answer, events = _audited(mosu, lambda: requests.get(
        f"{mosu.url}/datastore/dump_sql", params={"sql": sql, "format": "csv"},
        headers={"X-CKAN-API-Key": site["token"]}, timeout=60))
    assert answer.status_code == 200 and answer.text == "city,n\r\nBergen,1\r\nOslo,2\r\n"
    assert events == [{"actor": site["researcher"], "action": "datastore_sql_export", "object_type": "resource",
                       "object_id": cities["id"],
                       "detail": {"sql": sql, "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(),
                                  "resources": [cities["id"], stations["id"]],
                                  "versions": [cities["version_id"], stations["version_id"]], "format": "csv",
                                  "columns_read": {cities["id"]: ["city"], stations["id"]: ["city"]},
                                  "readings": {cities["id"]: {"via": "level:open"},
                                               stations["id"]: {"via": "level:open"}}}},
                      {"actor": site["researcher"], "action": "datastore_sql_export_end", "object_type": "resource",
                       "object_id": cities["id"],
                       "detail": {"format": "csv", "rows": 2, "bytes": len(answer.content), "complete": True}}]


def test_a_researcher_query_is_one_audit_event_with_its_row_count(mosu, site):
    cities, stations = site["resources"]["cities"], site["resources"]["stations"]
    sql = f'SELECT s.station FROM "{stations["id"]}" s JOIN "{cities["id"]}" c USING (city) ORDER BY 1'
    answer, events = _audited(mosu, lambda: mosu.ckan(site["token"]).action.datastore_search_sql(sql=sql))
    assert [r["station"] for r in answer["records"]] == ["Blindern", "Florida", "Tryvann"]
    assert events == [{"actor": site["researcher"], "action": "datastore_search_sql", "object_type": "resource",
                       "object_id": stations["id"],
                       "detail": {"sql": sql, "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(),
                                  "resources": [stations["id"], cities["id"]],
                                  "columns_read": {stations["id"]: ["city", "station"], cities["id"]: ["city"]},
                                  "versions": [stations["version_id"], cities["version_id"]], "rows": 3,
                                  "truncated": False, "readings": {stations["id"]: {"via": "level:open"},
                                                                   cities["id"]: {"via": "level:open"}}}}]
