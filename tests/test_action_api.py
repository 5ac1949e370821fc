"""The CKAN Action API of a running ``mosu up``: envelopes, permissions, uploads, bad input."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid

import ckanapi
import pytest
import requests
from sqlalchemy import func, select

from catalog.db.models import IngestJob, Resource, ResourceVersion
from tests.conftest import upload, wait_for_ingest

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def admin(mosu):
    return mosu.ckan(mosu.token("site-admin", sysadmin=True))


@pytest.fixture(scope="module")
def org(admin):
    return admin.action.organization_create(name="test-publisher", title="Test publisher")


@pytest.fixture
def dataset(admin, org, request):
    name = "ds-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60] + "-" + uuid.uuid4().hex[:6]
    return admin.action.package_create(name=name, title=request.node.name, owner_org=org["id"])


# -- envelope and routing ---------------------------------------------------------------------

def test_both_api_paths_get_and_post(mosu):
    for path in ("/api/3/action/status_show", "/api/action/status_show"):
        got = requests.get(mosu.url + path, timeout=10).json()
        posted = requests.post(mosu.url + path, json={}, timeout=10).json()
        for body in (got, posted):
            assert body["success"] is True
            assert body["help"].endswith("/api/3/action/help_show?name=status_show")
            assert body["result"]["site_title"] == "Mosu Open Data"


def test_unknown_action_and_bad_json_are_400(mosu):
    r = requests.post(mosu.url + "/api/3/action/no_such_thing", json={}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"] == {"__type": "Bad request - Action Error",
                                 "message": "Action name not known: no_such_thing"}
    r = requests.post(mosu.url + "/api/3/action/package_show", data=b"{not json",
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400
    assert r.json()["success"] is False
    assert r.json()["error"]["__type"] == "Bad request - JSON Error"


def test_help_show_returns_the_docstring(mosu):
    text = mosu.ckan().action.help_show(name="datastore_search")
    assert "Search the published rows" in text


# -- permissions -------------------------------------------------------------------------------

def test_anonymous_cannot_create(mosu, org):
    with pytest.raises(ckanapi.NotAuthorized):
        mosu.ckan().action.package_create(name="anon-try", owner_org=org["id"])
    with pytest.raises(ckanapi.NotAuthorized):
        mosu.ckan().action.organization_create(name="anon-org")


def test_forged_token_is_refused(mosu):
    r = requests.post(mosu.url + "/api/3/action/package_list", json={},
                      headers={"Authorization": "mosu_forged-token-value"}, timeout=10)
    assert r.status_code == 403
    assert r.json()["error"]["__type"] == "Authorization Error"
    assert r.json()["error"]["message"].startswith("Access denied")


def test_user_outside_the_organization_cannot_add_datasets_or_resources(mosu, org, dataset):
    outsider = mosu.ckan(mosu.token("outsider"))
    with pytest.raises(ckanapi.NotAuthorized):
        outsider.action.package_create(name="outsider-ds", owner_org=org["id"])
    with pytest.raises(ckanapi.NotAuthorized):
        upload(outsider, b"a,b\n1,2\n", dataset=dataset["id"], wait=False)


def test_private_dataset_is_invisible_to_others(mosu, admin, org):
    admin.action.package_create(name="secret-ds", owner_org=org["id"], private=True)
    for ckan in (mosu.ckan(), mosu.ckan(mosu.token("stranger"))):
        assert "secret-ds" not in ckan.action.package_list()
        with pytest.raises(ckanapi.NotFound):
            ckan.action.package_show(id="secret-ds")
    assert "secret-ds" not in admin.action.package_list(), "package_list lists public datasets, as in CKAN"
    assert "secret-ds" in admin.action.package_list(include_private=True)


RESOURCE_READS = [("resource_show", "id"), ("resource_view_list", "id"), ("ingest_status_show", "id"),
                  ("resource_version_list", "id"), ("resource_download", "id"), ("datastore_search", "resource_id"),
                  ("datastore_info", "id"), ("quality_report_show", "id"), ("quality_suite_show", "id")]
RESOURCE_WRITES = [("resource_patch", {}), ("resource_update", {}), ("resource_delete", {}),
                   ("quality_suite_update", {"suite": {}}), ("quality_pii_acknowledge", {}),
                   ("resource_upload_start", {"size": 10, "filename": "x.csv"})]


def test_a_private_resource_and_a_missing_one_get_the_same_answer(mosu, admin, org):
    """One 404, "Resource not found", whether the resource does not exist or may not be seen."""
    pkg = admin.action.package_create(name="private-res-ds", owner_org=org["id"], private=True,
                                      resources=[{"name": "hidden", "url": "https://example.org/h.csv"}])
    hidden, missing = pkg["resources"][0]["id"], str(uuid.uuid4())
    outsider = mosu.token("res-outsider")

    def answer(action: str, body: dict, token: str | None) -> tuple[int, dict]:
        r = requests.post(f"{mosu.url}/api/3/action/{action}", json=body, timeout=10,
                          headers={"Authorization": token} if token else {})
        return r.status_code, r.json()["error"]

    for token in (None, outsider):
        for action, key in RESOURCE_READS:
            assert answer(action, {key: hidden}, token) == answer(action, {key: missing}, token) == \
                (404, {"__type": "Not Found Error", "message": "Resource not found"}), (action, token)
        for path in (f"/datastore/dump/{hidden}", f"/datastore/dump/{missing}"):
            r = requests.get(mosu.url + path, timeout=10, headers={"Authorization": token} if token else {})
            assert (r.status_code, r.json()["error"]["message"]) == (404, "Resource not found"), path
    for action, extra in RESOURCE_WRITES:
        assert answer(action, {"id": hidden, **extra}, outsider) == answer(action, {"id": missing, **extra}, outsider) \
            == (404, {"__type": "Not Found Error", "message": "Resource not found"}), action
    assert admin.action.resource_show(id=hidden)["name"] == "hidden", "nothing was changed"


def test_editor_creates_datasets_in_own_organization(mosu, admin):
    editor = mosu.ckan(mosu.token("editor-eve"))
    with pytest.raises(ckanapi.NotAuthorized):  # organizations are made by sysadmins (the default)
        editor.action.organization_create(name="eve-lab")
    own = admin.action.organization_create(name="eve-lab", users=[{"name": "editor-eve", "capacity": "editor"}])
    members = admin.action.organization_show(id="eve-lab", include_users=True)["users"]
    assert {(u["name"], u["capacity"]) for u in members} == {("editor-eve", "editor")}
    pkg = editor.action.package_create(name="eve-data", owner_org=own["name"], tags=[{"name": "lab"}])
    assert pkg["organization"]["name"] == "eve-lab"
    assert pkg["tags"][0]["name"] == "lab"
    assert pkg["creator_user_id"]


# -- validation --------------------------------------------------------------------------------

def test_validation_errors_name_the_field(admin, org):
    with pytest.raises(ckanapi.ValidationError) as err:
        admin.action.package_create(name="Bad Name!", owner_org=org["id"])
    assert "name" in err.value.error_dict
    admin.action.package_create(name="taken-name", owner_org=org["id"])
    with pytest.raises(ckanapi.ValidationError) as err:
        admin.action.package_create(name="taken-name", owner_org=org["id"])
    assert err.value.error_dict["name"] == ["That URL is already in use."]
    with pytest.raises(ckanapi.ValidationError) as err:
        admin.action.package_create(name="no-org-here")
    assert "owner_org" in err.value.error_dict


def test_missing_dataset_is_not_found(mosu):
    with pytest.raises(ckanapi.NotFound):
        mosu.ckan().action.package_show(id="does-not-exist")
    with pytest.raises(ckanapi.NotFound):
        mosu.ckan().action.datastore_search(resource_id="00000000-0000-0000-0000-000000000000")


# -- upload, ingest, preview -------------------------------------------------------------------

def test_csv_upload_pages_through_rows(mosu, admin, dataset):
    rows = "\n".join(f"{i},item {i},{i * 0.5}" for i in range(1, 251))
    res = upload(admin, ("id,label,score\n" + rows + "\n").encode(), "items.csv", dataset=dataset["id"], wait=False)
    assert res["name"] == "items.csv" and res["format"] == "CSV" and res["url_type"] == "upload"
    done = wait_for_ingest(admin, res["id"])
    assert done["ingest_status"] == "ready", done["ingest_error"]
    page = mosu.ckan().action.datastore_search(resource_id=res["id"], limit=5, offset=100)
    assert page["total"] == 250
    assert [r["id"] for r in page["records"]] == [101, 102, 103, 104, 105]
    assert [r["_id"] for r in page["records"]] == [101, 102, 103, 104, 105]
    assert {f["id"]: f["type"] for f in page["fields"]} == {"_id": "int", "id": "int", "label": "text",
                                                           "score": "float"}
    assert "offset=105" in page["_links"]["next"]
    default = mosu.ckan().action.datastore_search(resource_id=res["id"])
    assert len(default["records"]) == 100 and default["limit"] == 100
    with pytest.raises(ckanapi.ValidationError):
        mosu.ckan().action.datastore_search(resource_id=res["id"], limit=32001)


def test_non_tabular_upload_fails_clearly_and_keeps_the_raw_file(mosu, admin, dataset):
    res = done = upload(admin, PNG, "photo.csv", dataset=dataset["id"])
    assert done["ingest_status"] == "failed"
    assert "PNG image" in done["ingest_error"] and "not a table Mosu can read" in done["ingest_error"]
    assert done["datastore_active"] is False
    with pytest.raises(ckanapi.NotFound):
        admin.action.datastore_search(resource_id=res["id"])
    # The server keeps serving, and the raw upload is kept byte for byte.
    assert mosu.ckan().action.status_show()["site_title"]
    platform = mosu.inspect()
    with platform.read() as s:
        version = s.scalar(select(ResourceVersion).where(ResourceVersion.resource_id == res["id"]))
        assert version.status == "failed" and version.parquet_key is None
        raw_key = version.raw_key
    assert platform.store.size(raw_key) == len(PNG)


@pytest.mark.parametrize("content,expected", [
    (b"", "The file is empty"),
    (b"name,age\n", "no data rows"),
    (b"a,b\n\x00\x01\x02,3\n" * 50, "binary data (NUL bytes)"),
])
def test_bad_tables_fail_with_a_specific_message(admin, dataset, content, expected):
    done = upload(admin, content, dataset=dataset["id"])
    assert done["ingest_status"] == "failed"
    assert expected in done["ingest_error"]
    assert len(done["ingest_error"]) < 600


def test_client_file_name_never_reaches_a_key(mosu, admin, dataset):
    res = upload(admin, b"a,b\n1,2\n", "../../etc/evil.csv", dataset=dataset["id"], wait=False)
    assert res["name"] == "evil.csv"
    platform = mosu.inspect()
    with platform.read() as s:
        version = s.scalar(select(ResourceVersion).where(ResourceVersion.resource_id == res["id"]))
    assert version.raw_key == f"raw/{res['id']}/{version.id}"
    assert version.original_filename == "evil.csv"


def test_oversized_upload_is_refused_and_leaves_nothing(mosu, admin, dataset):
    platform = mosu.inspect()
    with platform.read() as s:
        before = s.scalar(select(func.count()).select_from(Resource))
        jobs_before = s.scalar(select(func.count()).select_from(IngestJob))
    raw_before = set(platform.store.list("raw/"))
    big = b"x,y\n" + b"1,2\n" * (3 * 1024 * 1024 // 4)  # 3 MB against a 2 MB limit
    r = requests.post(mosu.url + "/api/3/action/resource_create", data={"package_id": dataset["id"]},
                      files={"upload": ("big.csv", big)}, headers={"Authorization": admin.apikey},
                      timeout=60)
    assert r.status_code == 413
    body = r.json()
    assert body["success"] is False and "upload limit" in body["error"]["message"]
    with platform.read() as s:
        assert s.scalar(select(func.count()).select_from(Resource)) == before
        assert s.scalar(select(func.count()).select_from(IngestJob)) == jobs_before
    assert set(platform.store.list("raw/")) == raw_before, "no partial upload may stay behind"


def test_form_and_get_parameters_work_like_json(mosu, admin, dataset):
    r = requests.post(mosu.url + "/api/3/action/package_show", data={"id": dataset["name"]}, timeout=10)
    assert r.json()["result"]["id"] == dataset["id"]
    r = requests.get(mosu.url + "/api/action/package_show", params={"id": dataset["id"]}, timeout=10)
    assert r.json()["result"]["name"] == dataset["name"]


def test_every_write_is_audited_in_a_verifiable_chain(mosu, admin, dataset):
    from catalog.db.models import AuditEvent
    from catalog.records import audit

    platform = mosu.inspect()
    with platform.read() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    actions = {e.action for e in events}
    assert {"user_create", "api_token_create", "organization_create", "package_create"} <= actions
    assert audit.verify(events) == (True, None)
    created = [e for e in events if e.action == "package_create" and e.object_id == dataset["id"]]
    assert len(created) == 1 and created[0].actor == "site-admin"
    assert created[0].object_type == "package"
    assert created[0].detail == {"name": dataset["name"]}


def test_a_killed_worker_is_replaced_and_ingest_goes_on(mosu, admin, dataset):
    workers = mosu.worker_pids()
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    assert upload(admin, b"k,v\na,1\nb,2\n", dataset=dataset["id"])["ingest_status"] == "ready"
    replacement = mosu.worker_pids()
    assert len(replacement) == 1 and replacement != workers


def test_the_web_process_never_imports_great_expectations(tmp_path):
    code = ("import sys; from catalog.cli.app import create_app; from catalog.core.settings import Settings; "
            f"app = create_app(Settings(data_dir=__import__('pathlib').Path({str(tmp_path)!r}))); "
            "app.test_client().get('/api/3/action/status_show'); "
            "print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
