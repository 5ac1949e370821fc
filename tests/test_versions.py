"""Every upload is an immutable version; a failed one never changes what researchers see."""
from __future__ import annotations

import functools

import ckanapi
import pytest

from tests.conftest import upload


@pytest.fixture(scope="module")
def ckan(mosu):
    return mosu.admin_with_dataset("versioned")


_upload = functools.partial(upload, filename="v.csv", dataset="versioned")


def test_versions_accumulate_and_stay_readable(mosu, ckan):
    v1 = _upload(ckan, b"year,value\n2020,1\n2021,2\n")
    rid = v1["id"]
    v2 = _upload(ckan, b"year,value\n2020,1\n2021,2\n2022,3\n", resource_id=rid)
    assert v2["ingest_status"] == "ready" and v2["row_count"] == 3
    same = _upload(ckan, b"year,value\n2020,1\n2021,2\n2022,3\n", resource_id=rid)
    assert same["version_id"] == v2["version_id"], "identical bytes make no new version"
    broken = _upload(ckan, b"%PDF-1.4 not a table", resource_id=rid)
    assert broken["ingest_status"] == "failed" and "PDF" in broken["ingest_error"]
    assert broken["datastore_active"] is True and broken["version_id"] == v2["version_id"]

    versions = ckan.action.resource_version_list(id=rid)
    assert [(v["number"], v["status"], v["current"]) for v in versions] == \
        [(3, "failed", False), (2, "ready", True), (1, "ready", False)]
    assert versions[1]["row_count"] == 3 and len(versions[1]["sha256"]) == 64

    anon = mosu.ckan()
    assert anon.action.datastore_search(resource_id=rid)["total"] == 3, "the failed upload changed nothing"
    old = anon.action.datastore_search(resource_id=rid, version=1)
    assert old["total"] == 2 and old["version"] == 1 and "version=1" in old["_links"]["next"]
    with pytest.raises(ckanapi.ValidationError):
        anon.action.datastore_search(resource_id=rid, version=3)
    with pytest.raises(ckanapi.NotFound):
        anon.action.datastore_search(resource_id=rid, version=9)

    platform = mosu.inspect()
    from sqlalchemy import select

    from catalog.db.models import ResourceVersion

    with platform.read() as s:
        raw_keys = list(s.scalars(select(ResourceVersion.raw_key).where(ResourceVersion.resource_id == rid)))
    assert len(raw_keys) == 3 and all(platform.store.exists(k) for k in raw_keys), "every raw upload is kept"


def test_ingest_status_shows_stage_and_progress(mosu, ckan):
    content = b"n,square\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(5000))
    done = _upload(ckan, content)
    status = mosu.ckan().action.ingest_status_show(id=done["id"])
    assert status["state"] == "done" and status["stage"] == "done" and status["attempts"] == 1
    assert status["progress"]["bytes_total"] == len(content) == status["progress"]["bytes_read"]
    assert status["progress"]["rows"] == 5000 and status["progress"]["format"] == "csv"
    failed = _upload(ckan, b"")
    status = mosu.ckan().action.ingest_status_show(id=failed["id"])
    assert status["state"] == "failed" and "empty" in status["error"]
    link = ckan.action.resource_create(package_id="versioned", url="https://example.org/x.csv")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.ingest_status_show(id=link["id"])


def test_mosu_push_uploads_with_progress_and_follows_the_ingest(mosu, ckan, tmp_path):
    token = mosu.token("pusher", sysadmin=True)
    data = tmp_path / "measurements.csv"
    data.write_text("station,reading\n" + "".join(f"s{i % 7},{i * 0.5}\n" for i in range(20000)))
    out = mosu.cli("push", str(data), "--dataset", "versioned", "--resource", "measurements",
                   "--url", mosu.url, "--token", token, check=False)
    assert out.returncode == 0, out.stderr
    assert "uploading measurements.csv" in out.stderr and "100%" in out.stderr, "a progress bar"
    assert "ingest: done (" in out.stderr and "rows 20,000" in out.stderr
    assert out.stdout.strip().splitlines()[-1] == "published: version 1, 20,000 rows"
    data.write_text("station,reading\ns1,1.0\n")
    again = mosu.cli("push", str(data), "--dataset", "versioned", "--resource", "measurements",
                     "--url", mosu.url, "--token", token, check=False)
    assert again.stdout.strip().splitlines()[-1] == "published: version 2, 1 rows"
    names = [r["name"] for r in ckan.action.package_show(id="versioned")["resources"]]
    assert names.count("measurements") == 1, "a second push makes a new version, not a new resource"
    bad = tmp_path / "image.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    failed = mosu.cli("push", str(bad), "--dataset", "versioned", "--url", mosu.url, "--token", token, check=False)
    assert failed.returncode == 1 and "mosu: error: ingest failed: This file is a PNG image" in failed.stderr
    denied = mosu.cli("push", str(data), "--dataset", "versioned", "--url", mosu.url, "--token", "forged",
                      check=False)
    assert denied.returncode == 1 and "Access denied" in denied.stderr and "Traceback" not in denied.stderr
