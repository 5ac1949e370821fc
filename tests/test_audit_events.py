"""Every event of the vocabulary that these calls make is recorded with its envelope and its ids.

Issue 13: "Each event has the actor, their role, UTC time, client address, user agent, request id,
the object ids, the grant and agreement version that allowed it, and the outcome." The calls go over
real HTTP to ``mosu up`` (the client address and the user agent come from the request), on SQLite
and SeaweedFS; the events are read back from the catalog database. The last test keeps the README's
"Audit events" table and :data:`catalog.records.events.EVENTS` in step, both ways.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import time
import uuid
from pathlib import Path

import ckanapi
import pytest
import requests
from sqlalchemy import func, select

from catalog.db.models import AuditEvent
from catalog.records import events as vocabulary
from tests.conftest import upload

UA = "audit-events-test/1.0 (+compliance)"
CSV = b"region,year,cases\nnorth,2024,10\nsouth,2024,20\nnorth,2025,30\n"
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def site(mosu):
    """A sysadmin, a provider (admin of an organization with a data use agreement), a researcher,
    each a client with a known user agent; and their user ids."""
    suffix = uuid.uuid4().hex[:6]
    names = {"admin": f"ae-admin-{suffix}", "provider": f"ae-provider-{suffix}", "researcher": f"ae-res-{suffix}"}
    tokens = {role: mosu.token(name, sysadmin=role == "admin") for role, name in names.items()}
    clients = {role: ckanapi.RemoteCKAN(mosu.url, apikey=token, user_agent=UA) for role, token in tokens.items()}
    ids = {role: clients["admin"].action.user_show(id=name)["id"] for role, name in names.items()}
    return {"suffix": suffix, "names": names, "tokens": tokens, "ids": ids, **clients}


def _last_seq(mosu) -> int:
    with mosu.inspect().read() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


def _since(mosu, seq: int, *actions: str) -> list[AuditEvent]:
    """Events after ``seq`` (of these ``actions``, if named), in order."""
    with mosu.inspect().read() as s:
        query = select(AuditEvent).where(AuditEvent.seq > seq)
        if actions:
            query = query.where(AuditEvent.action.in_(actions))
        found = list(s.scalars(query.order_by(AuditEvent.seq)))
        s.expunge_all()
        return found


def _audited(mosu, call, *actions: str):
    before = _last_seq(mosu)
    answer = call()
    return answer, _since(mosu, before, *actions)


def _wait_for(mosu, seq: int, action: str, object_id: str, timeout: float = 60) -> AuditEvent:
    """The first ``action`` event about ``object_id`` after ``seq``: a worker writes it on its own time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in _since(mosu, seq, action) if e.object_id == object_id]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {action} event about {object_id} within {timeout} s")


def _by_request(ev: AuditEvent, site, who: str) -> None:
    """The envelope of an event of a call ``who`` made over HTTP."""
    assert (ev.actor, ev.actor_id) == (site["names"][who], site["ids"][who]), ev.action
    assert ev.role == ("sysadmin" if who == "admin" else "user"), ev.action
    assert ev.client == "127.0.0.1" and ev.user_agent == UA, ev.action
    assert ev.request_id and re.fullmatch(r"[0-9a-f]{12}", ev.request_id), ev.action
    assert ev.outcome == "ok", ev.action
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)  # ts is naive UTC
    assert dt.timedelta(0) <= now - ev.ts < dt.timedelta(minutes=10), (ev.action, ev.ts, now)


def _refs(ev: AuditEvent) -> dict:
    return {k: getattr(ev, k) for k in ("package_id", "resource_id", "org_id", "grant_id", "agreement_version_id")}


def _refs_of(package_id=None, resource_id=None, org_id=None, grant_id=None, agreement_version_id=None) -> dict:
    return {"package_id": package_id, "resource_id": resource_id, "org_id": org_id, "grant_id": grant_id,
            "agreement_version_id": agreement_version_id}


def test_accounts_and_tokens(mosu, site):
    admin, suffix = site["admin"], site["suffix"]
    name = f"ae-new-{suffix}"
    user, made = _audited(mosu, lambda: admin.action.user_create(name=name, email=f"{name}@example.org"))
    token, issued = _audited(mosu, lambda: admin.action.api_token_create(user=name, name="laptop"))
    jti = admin.action.api_token_list(user_id=name)[0]["id"]
    _, revoked = _audited(mosu, lambda: admin.action.api_token_revoke(jti=jti))
    assert [e.action for e in made + issued + revoked] == ["user_create", "api_token_create", "api_token_revoke"]
    for ev in made + issued + revoked:
        _by_request(ev, site, "admin")
        assert (ev.object_type, ev.object_id) == ("user", user["id"]) and _refs(ev) == _refs_of()
    assert made[0].detail == {"name": name, "sysadmin": False, "auditor": False}
    assert issued[0].detail == {"token_id": jti, "name": "laptop", "expires": None}
    assert revoked[0].detail == {"token_id": jti}
    assert len({made[0].request_id, issued[0].request_id, revoked[0].request_id}) == 3, "one id per request"


def test_changes_name_the_dataset_resource_and_organization(mosu, site):
    admin, provider, suffix = site["admin"], site["provider"], site["suffix"]
    org, ev = _audited(mosu, lambda: admin.action.organization_create(name=f"ae-org-{suffix}"))
    assert [e.action for e in ev] == ["organization_create"]
    _by_request(ev[0], site, "admin")
    assert _refs(ev[0]) == _refs_of(org_id=org["id"]) and ev[0].detail == {"name": org["name"]}
    _, ev = _audited(mosu, lambda: admin.action.organization_member_create(
        id=org["id"], username=site["names"]["provider"], role="admin"))
    assert [(e.action, e.detail) for e in ev] == [("member_create", {"user_id": site["ids"]["provider"],
                                                                     "role": "admin"})]
    assert _refs(ev[0]) == _refs_of(org_id=org["id"])

    pkg, ev = _audited(mosu, lambda: provider.action.package_create(name=f"ae-ds-{suffix}", owner_org=org["id"]))
    assert [e.action for e in ev] == ["package_create"]
    _by_request(ev[0], site, "provider")
    assert _refs(ev[0]) == _refs_of(package_id=pkg["id"], org_id=org["id"])

    before = _last_seq(mosu)
    res = provider.action.resource_create(package_id=pkg["id"], upload=("t.csv", io.BytesIO(CSV)))
    created = _since(mosu, before, "resource_create")
    assert len(created) == 1 and created[0].object_id == res["id"]
    _by_request(created[0], site, "provider")
    assert _refs(created[0]) == _refs_of(package_id=pkg["id"], resource_id=res["id"], org_id=org["id"])
    assert set(created[0].detail) == {"version_id", "size", "sha256"}
    assert created[0].detail["sha256"] == hashlib.sha256(CSV).hexdigest()
    published = _wait_for(mosu, before, "resource_publish", res["id"])
    assert published.actor.startswith("worker:") and published.role == "worker" and published.outcome == "ok"
    assert (published.client, published.user_agent, published.actor_id) == (None, None, None)
    assert _refs(published) == _refs_of(package_id=pkg["id"], resource_id=res["id"], org_id=org["id"])
    assert published.detail["version_id"] == created[0].detail["version_id"] and published.detail["rows"] == 3

    for call, action in ((lambda: provider.action.package_patch(id=pkg["id"], title="Cases"), "package_update"),
                         (lambda: provider.action.resource_delete(id=res["id"]), "resource_delete"),
                         (lambda: provider.action.package_delete(id=pkg["id"]), "package_delete"),
                         (lambda: admin.action.dataset_purge(id=pkg["id"]), "dataset_purge")):
        _, ev = _audited(mosu, call)
        assert [e.action for e in ev] == [action]
        _by_request(ev[0], site, "admin" if action == "dataset_purge" else "provider")
        about_resource = action == "resource_delete"
        assert _refs(ev[0]) == _refs_of(package_id=pkg["id"], resource_id=res["id"] if about_resource else None,
                                        org_id=org["id"]), action
        assert "package_id" not in ev[0].detail, "a column, not repeated in the detail"


def test_versions_held_acknowledged_and_rejected(mosu, site):
    admin, suffix = site["admin"], site["suffix"]
    org = admin.action.organization_create(name=f"ae-vorg-{suffix}")
    pkg = admin.action.package_create(name=f"ae-versions-{suffix}", owner_org=org["id"])
    ids = _refs_of(package_id=pkg["id"], org_id=org["id"])
    first = upload(admin, b"id,city\n1,Oslo\n2,Bergen\n3,Bodo\n", "a.csv", dataset=pkg["id"])
    assert first["ingest_status"] == "ready", first["ingest_error"]
    ids["resource_id"] = first["id"]

    before = _last_seq(mosu)
    contacts = "id,city\n" + "".join(f"{i},person{i}@example.org\n" for i in range(4, 40))
    held = upload(admin, contacts.encode(), "b.csv", resource_id=first["id"])
    assert held["ingest_status"] == "held"
    ev = _wait_for(mosu, before, "resource_held", first["id"])
    assert ev.role == "worker" and ev.outcome == "ok" and _refs(ev) == ids and ev.detail["pii"]

    before = _last_seq(mosu)
    admin.action.quality_pii_acknowledge(id=first["id"], reason="public contact addresses")
    [ack] = _since(mosu, before, "quality_pii_acknowledge")
    _by_request(ack, site, "admin")
    assert _refs(ack) == ids and ack.detail["published"] is True and ack.detail["version_id"] == ev.detail["version_id"]

    before = _last_seq(mosu)
    rejected = upload(admin, b"id,town\n1,Oslo\n", "c.csv", resource_id=first["id"])  # a renamed column: blocking
    assert rejected["ingest_status"] == "failed"
    ev = _wait_for(mosu, before, "resource_rejected", first["id"])
    assert (ev.role, ev.outcome) == ("worker", "failed") and _refs(ev) == ids
    assert "Blocking quality checks failed" in ev.detail["error"]
    assert not [e for e in _since(mosu, before, "resource_ingest_failed") if e.object_id == first["id"]]


@pytest.fixture(scope="module")
def restricted(mosu, site):
    """A restricted dataset of the provider's organization under its agreement, a researcher's request
    for it approved: the grant, the agreement version, and the events of each step."""
    admin, provider, researcher, suffix = site["admin"], site["provider"], site["researcher"], site["suffix"]
    org = admin.action.organization_create(name=f"ae-rorg-{suffix}",
                                           users=[{"name": site["names"]["provider"], "capacity": "admin"}])
    steps: dict[str, list[AuditEvent]] = {}
    agreement, steps["agreement"] = _audited(mosu, lambda: provider.action.agreement_create(
        owner_org=org["id"], title="Use agreement", text="No re-identification."))
    pkg = provider.action.package_create(name=f"ae-restricted-{suffix}", owner_org=org["id"],
                                         access_level="restricted", agreement_id=agreement["id"])
    res = upload(provider, CSV, "cases.csv", dataset=pkg["id"])
    assert res["ingest_status"] == "ready", res["ingest_error"]
    req, steps["request"] = _audited(mosu, lambda: researcher.action.access_request_create(
        package_id=pkg["id"], purpose="a study"))
    approved, steps["approve"] = _audited(mosu, lambda: provider.action.access_request_approve(id=req["id"], days=30))
    return {"org": org["id"], "pkg": pkg["id"], "res": res["id"], "agreement": agreement["id"],
            "version_id": req["agreement_version_id"], "grant": approved["grant"]["id"], "steps": steps}


def test_agreements_requests_and_grants_name_the_agreement_version_and_the_grant(mosu, site, restricted):
    r, steps = restricted, restricted["steps"]
    [made] = steps["agreement"]
    _by_request(made, site, "provider")
    assert (made.action, made.object_id) == ("agreement_create", r["agreement"])
    assert _refs(made) == _refs_of(org_id=r["org"], agreement_version_id=r["version_id"])
    [asked] = steps["request"]
    _by_request(asked, site, "researcher")
    assert _refs(asked) == _refs_of(package_id=r["pkg"], org_id=r["org"], agreement_version_id=r["version_id"])
    assert [e.action for e in steps["approve"]] == ["access_request_approve"]
    [approved] = steps["approve"]
    _by_request(approved, site, "provider")
    assert _refs(approved) == _refs_of(package_id=r["pkg"], org_id=r["org"], grant_id=r["grant"],
                                       agreement_version_id=r["version_id"])
    assert approved.detail["user_id"] == site["ids"]["researcher"]
    assert not {"package_id", "grant_id", "agreement_version_id"} & set(approved.detail)


def test_reads_name_what_was_read_and_the_grant_that_allowed_it(mosu, site, restricted):
    r, researcher = restricted, site["researcher"]
    refs = _refs_of(package_id=r["pkg"], resource_id=r["res"], org_id=r["org"], grant_id=r["grant"],
                    agreement_version_id=r["version_id"])
    version = site["provider"].action.resource_version_list(id=r["res"])[0]

    page, ev = _audited(mosu, lambda: researcher.action.datastore_search(
        resource_id=r["res"], filters={"region": "north"}, fields=["year", "cases"]))
    assert [e.action for e in ev] == ["datastore_search"]
    _by_request(ev[0], site, "researcher")
    assert _refs(ev[0]) == refs
    assert ev[0].detail == {"version_id": version["id"], "version": 1, "fields": ["year", "cases"],
                            "filters": {"region": ["north"]}, "limit": 100, "offset": 0,
                            "rows": len(page["records"]), "via": "grant:full"}
    assert len(page["records"]) == 2

    sql = f'SELECT region, sum(cases) AS n FROM "{r["res"]}" WHERE year = 2024 GROUP BY region'
    answer, ev = _audited(mosu, lambda: researcher.action.datastore_search_sql(sql=sql))
    assert [e.action for e in ev] == ["datastore_search_sql"]
    _by_request(ev[0], site, "researcher")
    assert _refs(ev[0]) == refs
    assert ev[0].detail == {"sql": sql, "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(),
                            "resources": [r["res"]], "versions": [version["id"]],
                            "columns_read": {r["res"]: ["region", "year", "cases"]},
                            "readings": {r["res"]: {"via": "grant:full", "grant_id": r["grant"],
                                                    "agreement_version_id": r["version_id"]}},
                            "rows": 2, "truncated": False}

    headers = {"Authorization": site["tokens"]["researcher"], "User-Agent": UA}
    answer, ev = _audited(mosu, lambda: requests.get(f"{mosu.url}/datastore/dump/{r['res']}", headers=headers,
                                                     params={"format": "jsonl"}, timeout=60))
    assert answer.status_code == 200 and answer.content.count(b"\n") == 3
    assert [e.action for e in ev] == ["datastore_export", "datastore_export_end"]
    for e in ev:
        _by_request(e, site, "researcher")
        assert _refs(e) == refs
    assert ev[0].request_id == ev[1].request_id
    assert ev[0].detail == {"version_id": version["id"], "version": 1, "format": "jsonl",
                            "fields": ["region", "year", "cases"], "via": "grant:full"}
    assert ev[1].detail == {"format": "jsonl", "rows": 3, "bytes": len(answer.content), "complete": True}

    sql = f'SELECT cases FROM "{r["res"]}" ORDER BY cases'
    answer, ev = _audited(mosu, lambda: requests.post(f"{mosu.url}/datastore/dump_sql", headers=headers,
                                                      data={"sql": sql, "format": "csv"}, timeout=60))
    assert answer.status_code == 200 and answer.text == "cases\r\n10\r\n20\r\n30\r\n"
    assert [e.action for e in ev] == ["datastore_sql_export", "datastore_sql_export_end"]
    assert ev[0].detail["columns_read"] == {r["res"]: ["cases"]} and ev[0].detail["format"] == "csv"
    assert ev[1].detail == {"format": "csv", "rows": 3, "bytes": len(answer.content), "complete": True}
    assert [_refs(e) for e in ev] == [refs, refs]

    out, ev = _audited(mosu, lambda: researcher.action.resource_download(id=r["res"]))
    assert [e.action for e in ev] == ["resource_download"]
    _by_request(ev[0], site, "researcher")
    assert _refs(ev[0]) == refs
    assert ev[0].detail == {"version_id": version["id"], "version": 1, "format": "original",
                            "filename": out["filename"], "expires_in": out["expires_in"], "via": "grant:full"}


def test_an_export_refused_before_its_first_byte_records_no_read(mosu, site):
    """A format that cannot hold a column is a 400 before anything is read: no read event says otherwise."""
    sql = "SELECT 'x'::UNION(a INT, b VARCHAR) AS u, 1 AS n"
    headers = {"Authorization": site["tokens"]["researcher"], "User-Agent": UA}
    answer, ev = _audited(mosu, lambda: requests.get(f"{mosu.url}/datastore/dump_sql", headers=headers,
                                                     params={"sql": sql, "format": "parquet"}, timeout=60))
    assert answer.status_code == 400 and "Parquet cannot hold" in answer.json()["error"]["message"]
    assert [e for e in ev if vocabulary.EVENTS[e.action].category in ("read", "read_end")] == []
    answer, ev = _audited(mosu, lambda: requests.get(f"{mosu.url}/datastore/dump_sql", headers=headers,
                                                     params={"sql": sql, "format": "jsonl"}, timeout=60))
    assert answer.status_code == 200 and [e.action for e in ev] == ["datastore_sql_export", "datastore_sql_export_end"]
    assert ev[0].detail["resources"] == [] and ev[0].detail["columns_read"] == {}
    assert _refs(ev[0]) == _refs_of() and ev[1].detail["rows"] == 1


def test_a_revoked_grant_names_itself(mosu, site, restricted):
    # a grant of its own (to the sysadmin): the researcher's stays for the other tests, in any order
    r, provider = restricted, site["provider"]
    grant = provider.action.access_grant_create(package_id=r["pkg"], user_id=site["names"]["admin"], days=5)
    _, ev = _audited(mosu, lambda: provider.action.access_grant_revoke(id=grant["id"], reason="study over"))
    assert [e.action for e in ev] == ["access_grant_revoke"]
    _by_request(ev[0], site, "provider")
    assert _refs(ev[0]) == _refs_of(package_id=r["pkg"], org_id=r["org"], grant_id=grant["id"],
                                    agreement_version_id=r["version_id"])
    assert ev[0].detail == {"grantee_type": "user", "grantee_id": site["ids"]["admin"], "reason": "study over"}


def test_an_undefined_event_or_field_is_refused(platform):
    from catalog.records import audit

    with platform.write.begin() as s:
        with pytest.raises(ValueError, match="not defined"):
            audit.record(s, "site", "package_frobnicate", "package", None, {})
        with pytest.raises(ValueError, match=r"\['colour'\] not defined"):
            audit.record(s, "site", "package_create", "package", None, {"name": "x", "colour": "red"})


def _readme_table() -> dict[str, set[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Audit events\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            name = cells[0].strip("`")
            assert name not in table, f"{name} twice in the README"
            table[name] = set(re.findall(r"`([a-z0-9_]+)`", cells[3]))
    return table


def test_the_readme_lists_every_event_with_its_fields():
    table = _readme_table()
    defined = {name: set(t.fields) for name, t in vocabulary.EVENTS.items()}
    assert sorted(set(defined) - set(table)) == [], "defined but not in the README's table"
    assert sorted(set(table) - set(defined)) == [], "in the README's table but not defined"
    assert {n: f for n, f in table.items() if f != defined[n]} == {}, "fields differ"
