"""Large uploads in parts straight to object storage: presigned URLs, resume, complete, ingest."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import ckanapi
import pytest
import requests

from catalog.cli.client import ApiError, Client, UploadInterrupted
from catalog.cli.client import push as client_push
from catalog.cli.resume import UploadState
from catalog.core.errors import StoredDataMissing
from catalog.storage.objects import MIB, ObjectStore
from tests.conftest import RunningMosu, s3_settings, wait_for_ingest

PART = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def mosu(mosu_factory):
    """This module's own server: a 1 GB upload limit instead of the usual 2 MB."""
    return mosu_factory(max_upload_bytes=1024 ** 3)


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

    from catalog.db.models import MultipartUpload

    with platform.read() as s:
        states = list(s.scalars(select(MultipartUpload.state).where(MultipartUpload.filename == "large.csv")))
    assert states == ["completed"], "it went through the multipart path"


def test_mosu_push_reports_a_held_version_as_held_not_published(mosu, ckan, tmp_path):
    """A version of a public dataset held for a personal-information acknowledgement is not
    published: push says so, with the reason and what to do, and exits 3 (not 0, nor failure's 1)."""
    data = tmp_path / "people.csv"
    data.write_text("id,email\n" + "".join(f"{i},person{i}@example.org\n" for i in range(200)))
    out = mosu.cli("push", str(data), "--dataset", "parts", "--resource", "people", "--url", mosu.url,
                   "--token", mosu.token("held-pusher", sysadmin=True), check=False)
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "published" not in out.stdout.replace("not published", "")
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("held: version 1, 200 rows, not published: Personal information found: email in "
                           "column 'email'"), last
    assert "quality_pii_acknowledge" in last, "the pusher is an editor: the detail and what to do"
    res = next(r for r in ckan.action.package_show(id="parts")["resources"] if r["name"] == "people")
    assert res["ingest_status"] == "held" and res["datastore_active"] is False


def test_push_without_permission_is_refused_before_a_byte_of_the_file_is_sent(mosu, ckan, tmp_path):
    """An anonymous push, or one by a user who may not edit the dataset, is refused by a permission
    check before the upload: the file is never read, nothing reaches object storage."""
    data = tmp_path / "big.csv"
    data.write_bytes(_body(250_000))  # ~9 MB: one request, under --multipart-over
    inspect = mosu.inspect()
    try:
        raw_before = set(inspect.store.list("raw/"))
        for token, message in ((None, "Access denied: you must be logged in"),
                               (mosu.token("parts-stranger"), "Access denied: you may not edit dataset parts")):
            sent: list[int] = []
            with pytest.raises(ApiError) as err:
                client_push(Client(mosu.url, token), data, "parts", "new table", on_progress=sent.append)
            assert err.value.status == 403 and message in str(err.value)
            assert sent == [], "not a byte of the file was read for sending"
        out = mosu.cli("push", str(data), "--dataset", "parts", "--url", mosu.url, check=False)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "mosu: error: Access denied: you must be logged in to upload files (HTTP 403)" in out.stderr
        assert "uploading big.csv:   0%" in out.stderr and "100%" not in out.stderr, "the bar never moved"
        assert set(inspect.store.list("raw/")) == raw_before
    finally:
        inspect.close()
    names = [r["name"] for r in ckan.action.package_show(id="parts")["resources"]]
    assert "new table" not in names and "big.csv" not in names
    allowed = ckan.action.resource_upload_check(package_id="parts", size=data.stat().st_size)
    assert allowed["resource_id"] is None and allowed["max_upload_bytes"] == 1024 ** 3
    too_big = requests.post(f"{mosu.url}/api/3/action/resource_upload_check", json={
        "package_id": "parts", "size": 1024 ** 3 + 1}, headers={"Authorization": ckan.apikey}, timeout=30)
    assert too_big.status_code == 413 and "exceeds the limit" in too_big.json()["error"]["message"]


# -- mosu push resumes ----------------------------------------------------------------------

_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade"}


class _Proxy:
    """A real forwarding HTTP proxy between ``mosu push`` and the servers (catalog and object
    storage): it records each request, and hangs up without an answer on the first
    ``drop_puts`` part PUTs, as a broken connection does."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.drop_puts = 0
        self.upstream = requests.Session()
        self.upstream.trust_env = False  # straight to the servers, whatever this process's environment says
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append((self.command, self.path))
                if self.command == "PUT" and proxy.drop_puts > 0:
                    proxy.drop_puts -= 1
                    self.close_connection = True
                    return
                resp = proxy.upstream.request(self.command, self.path, data=body, timeout=120,
                                              headers={k: v for k, v in self.headers.items()
                                                       if k.lower() not in _HOP},
                                              allow_redirects=False)
                self.send_response(resp.status_code)
                for name, value in resp.headers.items():
                    if name.lower() not in _HOP | {"content-length", "content-encoding"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = do_PUT = do_DELETE = forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def part_puts(self) -> list[int]:
        return [int(parse_qs(urlsplit(url).query)["partNumber"][0]) for method, url in self.seen if method == "PUT"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy():
    running = _Proxy()
    yield running
    running.close()


def _push_env(mosu: RunningMosu, state_dir: Path, proxy: _Proxy | None = None) -> RunningMosu:
    """``mosu`` whose CLI runs remember uploads in ``state_dir`` (and go through ``proxy``)."""
    env = {k: v for k, v in mosu.env.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    env["MOSU_STATE_DIR"] = str(state_dir)
    if proxy is not None:
        env["HTTP_PROXY"] = env["http_proxy"] = proxy.url
    return dataclasses.replace(mosu, env=env)


def _remembered(state_dir: Path) -> list[str]:
    path = state_dir / "uploads.json"
    return [e["upload_id"] for e in json.loads(path.read_text())["uploads"].values()] if path.exists() else []


class _Stop(Exception):
    pass


def _broken_first_run(mosu: RunningMosu, token: str, path: Path, state_dir: Path, resource: str) -> str:
    """A first ``mosu push`` stopped right after its first part is stored, as by Ctrl-C: the same
    client code and state directory as the CLI, in this process, stopped from its progress callback."""

    def stop(_sent: int) -> None:
        raise _Stop

    with pytest.raises(_Stop):
        client_push(Client(mosu.url, token), path, "parts", resource, on_progress=stop, multipart_over=1000,
                    state=UploadState(state_dir))
    [upload_id] = _remembered(state_dir)
    return upload_id


def _push(mosu: RunningMosu, path: Path, resource: str, token: str):
    return mosu.cli("push", str(path), "--dataset", "parts", "--resource", resource, "--url", mosu.url,
                    "--multipart-over", "1000", "--token", token, check=False)


def test_mosu_push_resumes_a_broken_upload_and_retries_a_dropped_part(mosu, ckan, tmp_path, proxy):
    data, state_dir = tmp_path / "resumed.csv", tmp_path / "state"
    data.write_bytes(_body(1_100_000))  # ~40 MB: three parts
    token = mosu.token("resumer", sysadmin=True)
    upload_id = _broken_first_run(mosu, token, data, state_dir, "resumed table")
    shown = ckan.action.resource_upload_show(upload_id=upload_id)
    assert [p["part_number"] for p in shown["parts"]] == [1] and shown["part_count"] == 3

    proxy.drop_puts = 1  # and the connection breaks once more, on the first part of this run
    out = _push(_push_env(mosu, state_dir, proxy), data, "resumed table", token)
    assert out.returncode == 0, out.stderr
    assert f"resuming upload {upload_id}: 1 of 3 parts already stored" in out.stderr
    assert "part 2 of 3: connection failed: ProxyError; retrying in 1 s" in out.stderr
    assert proxy.part_puts() == [2, 2, 3], "only the missing parts were sent, part 2 twice"
    assert out.stdout.strip().splitlines()[-1] == "published: version 1, 1,100,000 rows"
    assert _remembered(state_dir) == [], "a completed upload is forgotten"
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.resource_upload_show(upload_id=upload_id)  # completed


def test_push_gives_up_on_a_dead_link_and_the_next_run_resumes(mosu, ckan, tmp_path, proxy, monkeypatch):
    data, state_dir = tmp_path / "flaky.csv", tmp_path / "state"
    data.write_bytes(_body(3000))  # one part
    token = mosu.token("flaky-pusher", sysadmin=True)
    proxy.drop_puts = 99
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    target = {"package_id": ckan.action.package_show(id="parts")["id"], "name": "flaky"}
    from catalog.cli.client import push_parts

    with pytest.raises(UploadInterrupted) as err:
        push_parts(Client(mosu.url, token), data, target, state=UploadState(state_dir), retry_delays=(0, 0))
    [upload_id] = _remembered(state_dir)
    assert str(err.value) == (f"part 1 of 1 could not be stored after 3 attempts (connection failed: ProxyError); "
                              f"upload {upload_id} stays open: run the same command again to resume it")
    assert proxy.part_puts() == [1, 1, 1]
    monkeypatch.delenv("HTTP_PROXY")
    out = _push(_push_env(mosu, state_dir), data, "flaky", token)
    assert out.returncode == 0, out.stderr
    assert f"resuming upload {upload_id}: 0 of 1 parts already stored" in out.stderr
    assert out.stdout.strip().splitlines()[-1] == "published: version 1, 3,000 rows"
    assert _remembered(state_dir) == []


@pytest.mark.parametrize("ended", ["aborted", "completed"])
def test_push_forgets_an_upload_that_ended_on_the_server(mosu, ckan, tmp_path, ended):
    data, state_dir = tmp_path / f"{ended}.csv", tmp_path / "state"
    data.write_bytes(_body(2000))  # one part: quick
    token = mosu.token(f"{ended}-pusher", sysadmin=True)
    pushed = _push_env(mosu, state_dir)
    if ended == "completed":  # the resource exists first, so every run below targets it by id
        first = tmp_path / "first.csv"
        first.write_bytes(_body(10))
        created = mosu.cli("push", str(first), "--dataset", "parts", "--resource", ended, "--url", mosu.url,
                           "--token", token, check=False)
        assert created.returncode == 0, created.stderr
    upload_id = _broken_first_run(mosu, token, data, state_dir, ended)
    if ended == "aborted":
        ckan.action.resource_upload_abort(upload_id=upload_id)
    else:
        wait_for_ingest(ckan, ckan.action.resource_upload_complete(upload_id=upload_id)["id"])

    out = _push(pushed, data, ended, token)
    assert out.returncode == 0, out.stderr
    assert f"upload {upload_id} cannot be resumed (upload_id: This upload is {ended}); starting a new one" \
        in out.stderr
    assert "resuming" not in out.stderr
    # A completed upload already published these bytes: the fresh one is identical and adds no version.
    version = 1 if ended == "aborted" else 2
    assert out.stdout.strip().splitlines()[-1] == f"published: version {version}, 2,000 rows"
    assert _remembered(state_dir) == []


# -- the worker's own transfers: ranged parallel download and multipart server-side copy --------

@pytest.fixture
def store(s3, tmp_path):
    """An ObjectStore on a fresh bucket of the session's SeaweedFS."""
    settings = s3_settings(s3, tmp_path / "data")
    st = ObjectStore.from_settings(settings)
    st.ensure_bucket()
    return st


def _random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_download_in_parallel_ranges_is_byte_exact(store, tmp_path):
    # 5 MiB ranges of a 13 MiB + 7 byte object: three threads, and a short last range.
    data = _random_file(tmp_path / "src", 13 * MIB + 7)
    store.put_file("raw/x", str(tmp_path / "src"), part_size=5 * MIB, threads=2)
    for threads in (1, 3):
        out = tmp_path / f"out{threads}"
        store.download("raw/x", str(out), threads=threads, range_size=5 * MIB, read_size=64 * 1024)
        assert out.read_bytes() == data
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    store.put_file("raw/empty", str(empty))
    store.download("raw/empty", str(tmp_path / "out-empty"))
    assert (tmp_path / "out-empty").read_bytes() == b""


def test_download_of_a_missing_object_raises_and_leaves_no_file(store, tmp_path):
    with pytest.raises(StoredDataMissing, match="^The stored data of this version is missing from object storage"):
        store.download("raw/none", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_copy_over_the_single_copy_limit_goes_part_by_part(store, tmp_path):
    """S3's CopyObject stops at 5 GiB; lowering the limit sends a 12 MiB object through UploadPartCopy."""
    data = _random_file(tmp_path / "src", 12 * MIB + 3)
    store.put_file("staging/p", str(tmp_path / "src"), content_type="application/vnd.apache.parquet")
    store.copy("staging/p", "versions/p", single_max=MIB, part_size=5 * MIB, threads=2)
    stat = store.client.stat_object(store.bucket, "versions/p")
    assert stat.size == len(data) and stat.content_type == "application/vnd.apache.parquet"
    assert stat.etag.endswith("-3"), "three parts: a multipart copy, not CopyObject"
    store.download("versions/p", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data
