"""The platform on a real PostgreSQL catalog (MOSU_DATABASE_URL): the scale-out path works."""
from __future__ import annotations

import io

import ckanapi
import pytest

from catalog.db.models import AuditEvent, Package
from catalog.records import audit
from tests.conftest import wait_for_ingest


@pytest.fixture(scope="module")
def pg_site(mosu_factory, postgres):
    return mosu_factory("--workers", "2", database_url=postgres())


def test_upload_ingest_search_and_permissions_on_postgresql(pg_site):
    from sqlalchemy import func, select

    admin = pg_site.ckan(pg_site.token("pg-admin", sysadmin=True))
    org = admin.action.organization_create(name="pg-org", title="PG Org")
    pub = admin.action.package_create(name="pg-public", title="Tide gauges", owner_org=org["id"],
                                      tags=[{"name": "ocean"}], notes="Hourly tide heights")
    private = admin.action.package_create(name="pg-private", title="Tide secrets", owner_org=org["id"], private=True)
    res = admin.action.resource_create(package_id=pub["id"], upload=("t.csv", io.BytesIO(
        "station,height\n上海,3.2\n青岛,2.9\n".encode("gbk"))))
    done = wait_for_ingest(admin, res["id"])
    assert done["ingest_status"] == "ready", done["ingest_error"]
    anon = pg_site.ckan()
    assert anon.action.datastore_search(resource_id=res["id"])["records"][0]["station"] == "上海"
    found = anon.action.package_search(q="tide", **{"facet.field": '["tags"]'})
    assert [d["name"] for d in found["results"]] == ["pg-public"] and found["facets"]["tags"] == {"ocean": 1}
    with pytest.raises(ckanapi.NotFound):
        anon.action.package_show(id="pg-private")
    admin.action.package_patch(id="pg-public", title="Tide gauges of the coast")
    assert anon.action.package_search(q="coast")["count"] == 1
    with pytest.raises(ckanapi.ValidationError):
        admin.action.package_create(name="pg-public", owner_org=org["id"])
    # The activity and LIKE filters are SQL too: the same answers on PostgreSQL.
    reader = pg_site.ckan(pg_site.token("pg_reader"))
    admin.action.package_patch(id="pg-public", private=True)
    for client in (anon, reader):
        assert [a for a in client.action.organization_activity_list(id="pg-org") if a["object_id"] == pub["id"]] == []
    assert {a["object_id"] for a in admin.action.organization_activity_list(id="pg-org")} >= {pub["id"]}
    admin.action.package_patch(id="pg-public", private=False)
    assert anon.action.user_list(q="pg_", all_fields=False) == ["pg_reader"], "_ is not a wildcard"
    assert anon.action.user_list(q="%", all_fields=False) == []
    admin.action.dataset_purge(id="pg-private")
    with pytest.raises(ckanapi.NotFound):
        admin.action.package_show(id="pg-private")
    platform = pg_site.inspect()
    assert platform.engine.dialect.name == "postgresql"
    with platform.read() as s:
        assert s.scalar(select(func.count()).select_from(Package).where(Package.id == private["id"])) == 0
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert audit.verify(events) == (True, None)
    worker = "worker:"  # the ingest worker's actor name carries its host, pid and a random tag
    assert [("worker" if (e.actor or "").startswith(worker) else e.actor, e.action, e.object_type)
            for e in events] == [
        ("site", "user_create", "user"), ("site", "api_token_create", "user"),
        ("pg-admin", "organization_create", "organization"),
        ("pg-admin", "package_create", "package"), ("pg-admin", "package_create", "package"),
        ("pg-admin", "resource_create", "resource"), ("worker", "resource_publish", "resource"),
        (None, "datastore_search", "resource"),
        (None, "access_denied", "package"),  # the anonymous package_show of the private dataset (a hidden 404)
        ("pg-admin", "package_update", "package"),
        ("site", "user_create", "user"), ("site", "api_token_create", "user"),
        ("pg-admin", "package_update", "package"), ("pg-admin", "package_update", "package"),
        ("pg-admin", "dataset_purge", "package")]
    assert (events[-1].object_id, events[-1].detail) == (
        private["id"], {"name": "pg-private", "resources": [], "objects": 0, "grants": 0, "requests": 0,
                        "acceptances": 0})
