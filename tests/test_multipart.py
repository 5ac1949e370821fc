"""Large uploads in parts straight to object storage: presigned URLs, resume, complete, ingest."""
from __future__ import annotations

import math

import ckanapi
import pytest
import requests

from tests.conftest import s3_settings, start_mosu, wait_for_ingest

PART = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def mosu(s3, tmp_path_factory):
    """This module's own server: a 1 GB upload limit instead of the usual 2 MB."""
    data_dir = tmp_path_factory.mktemp("parts") / "data"
    settings = s3_settings(s3, data_dir, max_upload_bytes=1024 ** 3)
    running = start_mosu(data_dir, {k: v for k, v in settings.to_env().items() if k != "MOSU_DATA_DIR"}, settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ckan(mosu):
    return mosu.admin_with_dataset("parts")


def _body(rows: int) -> bytes:
    return b"id,label\n" + b"".join(b"%d,row %d with some padding text\n" % (i, i) for i in range(rows))


def test_upload_in_parts_resume_and_complete(mosu, ckan):
    body = _body(1_100_000)  # ~40 MB: three 16 MB parts
    assert len(body) > 2 * PART
    up = ckan.action.resource_upload_start(package_id="parts", name="big table", filename="big.csv",
                                           size=len(body))
    assert up["part_size"] == PART and up["part_count"] == math.ceil(len(body) / PART)
    # Upload the first part only, as if the connection broke.
    url = ckan.action.resource_upload_part(upload_id=up["upload_id"], part_number=1)["url"]
    assert requests.put(url, data=body[:PART], timeout=60).status_code == 200
    with pytest.raises(ckanapi.ValidationError) as err:
        ckan.action.resource_upload_complete(upload_id=up["upload_id"])
    assert "missing: [2, 3]" in str(err.value.error_dict)
    # Resume: ask what is there, send the rest.
    shown = ckan.action.resource_upload_show(upload_id=up["upload_id"])
    assert [p["part_number"] for p in shown["parts"]] == [1]
    for number in range(2, up["part_count"] + 1):
        url = ckan.action.resource_upload_part(upload_id=up["upload_id"], part_number=number)["url"]
        chunk = body[(number - 1) * PART:number * PART]
        assert requests.put(url, data=chunk, timeout=60).status_code == 200
    res = ckan.action.resource_upload_complete(upload_id=up["upload_id"])
    assert res["name"] == "big table" and res["ingest_status"] == "queued"
    done = wait_for_ingest(ckan, res["id"], timeout=180)
    assert done["ingest_status"] == "ready" and done["row_count"] == 1_100_000 and done["size"] == len(body)
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.resource_upload_complete(upload_id=up["upload_id"])  # completed already


def test_uploads_belong_to_their_starter_and_respect_limits(mosu, ckan):
    up = ckan.action.resource_upload_start(package_id="parts", filename="x.csv", size=100)
    stranger = mosu.ckan(mosu.token("part-stranger"))
    with pytest.raises(ckanapi.NotFound):
        stranger.action.resource_upload_part(upload_id=up["upload_id"], part_number=1)
    with pytest.raises(ckanapi.NotAuthorized):
        stranger.action.resource_upload_start(package_id="parts", filename="x.csv", size=100)
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.resource_upload_part(upload_id=up["upload_id"], part_number=2)
    ckan.action.resource_upload_abort(upload_id=up["upload_id"])
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.resource_upload_part(upload_id=up["upload_id"], part_number=1)
    too_big = requests.post(mosu.url + "/api/3/action/resource_upload_start",
                            json={"package_id": "parts", "filename": "huge.csv", "size": 10 ** 12},
                            headers={"Authorization": ckan.apikey}, timeout=10)
    assert too_big.status_code == 413 and "exceeds the limit" in too_big.json()["error"]["message"]


def test_mosu_push_sends_large_files_in_parts(mosu, ckan, tmp_path):
    data = tmp_path / "large.csv"
    data.write_bytes(_body(600_000))  # ~22 MB: two parts
    out = mosu.cli("push", str(data), "--dataset", "parts", "--url", mosu.url, "--multipart-over", "1000000",
                   "--token", mosu.token("part-pusher", sysadmin=True), check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "published: version 1, 600,000 rows"
    platform = mosu.inspect()
    from sqlalchemy import select

    from catalog.models import MultipartUpload

    with platform.read() as s:
        states = list(s.scalars(select(MultipartUpload.state).where(MultipartUpload.filename == "large.csv")))
    assert states == ["completed"], "it went through the multipart path"
