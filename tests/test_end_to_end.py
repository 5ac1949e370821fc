"""The whole platform as a new user runs it: ``mosu up`` with its own SeaweedFS, the CLI, ckanapi."""
from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog.db.models import ResourceVersion
from catalog.storage.seaweed import free_port
from tests.conftest import MOSU, clean_env, wait_for_ingest

CSV = "city,year,population,area_km2\nZürich,2020,421878,87.88\nGenève,2020,203856,15.93\nBasel,2020,173863,23.91\n"


def _weed_processes(data_dir: Path) -> list[int]:
    """PIDs of weed processes serving ``data_dir`` (from /proc, no extra packages)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "weed" in cmd and str(data_dir) in cmd:
                pids.append(int(entry.name))
    return pids


def test_fresh_platform_upload_to_preview(mosu_factory, tmp_path):
    """mosu up (embedded SeaweedFS) -> CLI user+token -> ckanapi org, dataset, upload -> rows back."""
    data_dir = tmp_path / "mosu"
    before = subprocess.run([*MOSU, "user", "add", "alice", "--sysadmin", "--email", "alice@example.org"],
                            capture_output=True, text=True, timeout=60,
                            env={**clean_env(), "MOSU_DATA_DIR": str(data_dir)})
    assert before.returncode == 0, before.stderr  # the CLI works before the platform ever ran
    running = mosu_factory(store=None, data_dir=data_dir)
    try:
        creds = json.loads((data_dir / "s3" / "s3.json").read_text())
        assert oct((data_dir / "s3" / "s3.json").stat().st_mode & 0o777) == "0o600"
        assert creds["identities"][0]["credentials"][0]["secretKey"]
        assert _weed_processes(data_dir), "mosu up should run its own SeaweedFS"

        token = running.token("alice")
        assert token.startswith("mosu_")
        ckan = running.ckan(token)
        org = ckan.action.organization_create(name="swiss-stats", title="Swiss statistics")
        pkg = ckan.action.package_create(name="swiss-cities", title="Swiss cities", owner_org=org["id"],
                                         license_id="cc-by")
        res = ckan.action.resource_create(package_id=pkg["id"], name="cities",
                                          upload=("cities.csv", io.BytesIO(CSV.encode())))
        assert res["ingest_status"] in ("queued", "running", "ready")
        assert res["datastore_active"] is False or res["ingest_status"] == "ready"

        done = wait_for_ingest(ckan, res["id"])
        assert done["ingest_status"] == "ready", done["ingest_error"]
        assert done["datastore_active"] is True
        assert done["row_count"] == 3

        page = ckan.action.datastore_search(resource_id=res["id"], limit=10)
        assert page["total"] == 3
        assert [f["id"] for f in page["fields"]] == ["_id", "city", "year", "population", "area_km2"]
        assert page["records"][0]["city"] == "Zürich"
        assert page["records"][1]["population"] == 203856
        assert page["records"][2]["area_km2"] == pytest.approx(23.91)

        # The Parquet object itself, read straight from object storage.
        running.settings = running.settings.replace(
            s3_endpoint=(data_dir / "s3" / "endpoint").read_text(),
            s3_access_key=creds["identities"][0]["credentials"][0]["accessKey"],
            s3_secret_key=creds["identities"][0]["credentials"][0]["secretKey"])
        inspect = running.inspect()
        with inspect.read() as s:
            version = s.get(ResourceVersion, done["version_id"])
            parquet_key, raw_key = version.parquet_key, version.raw_key
        local = tmp_path / "check.parquet"
        inspect.store.download(parquet_key, str(local))
        table = pq.read_table(local)
        assert table.num_rows == 3
        assert table.schema.names == ["city", "year", "population", "area_km2"]
        assert str(table.schema.field("population").type) == "int64"
        assert pq.ParquetFile(local).metadata.row_group(0).column(0).compression == "ZSTD"
        raw = tmp_path / "raw"
        inspect.store.download(raw_key, str(raw))
        assert raw.read_bytes() == CSV.encode(), "the raw upload is kept byte for byte"
    finally:
        code = running.stop()
    assert code == 0
    assert _weed_processes(data_dir) == [], "no weed process may outlive mosu up"
    assert "Mosu stopped." in running.log.read_text()


def test_up_refuses_a_port_in_use(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run([*MOSU, "up", "--port", str(port), "--data-dir", str(tmp_path / "d")],
                             capture_output=True, text=True, timeout=60, env=clean_env())
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr
    assert _weed_processes(tmp_path / "d") == []


def test_the_test_servers_start_again_when_their_port_is_taken_first(s3, tmp_path, monkeypatch):
    """The suite's own helper: a port found free can be taken by another test process's server before
    ``mosu up`` binds it. The server already there, which answers ``status_show`` too, is not taken
    for the one started; the start is made again on another port."""
    import http.server
    import threading

    import tests.conftest as conftest

    class Impostor(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b'{"success": true, "result": {"site_title": "another server"}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    taken = other.server_address[1]
    try:
        ports = iter([taken, free_port()])
        monkeypatch.setattr(conftest, "free_port", lambda: next(ports))
        settings = conftest.s3_settings(s3, tmp_path / "data")
        running = conftest.start_mosu(tmp_path / "data", {k: v for k, v in settings.to_env().items()
                                                          if k != "MOSU_DATA_DIR"}, settings)
    finally:
        other.shutdown()
        other.server_close()
    try:
        assert running.url != f"http://127.0.0.1:{taken}"
        refused = (tmp_path / f"mosu-{taken}.log").read_text()
        assert f"cannot listen on 127.0.0.1:{taken}: Address already in use" in refused
        assert running.ckan().action.status_show()["site_title"] != "another server"
    finally:
        running.stop()


def test_up_refuses_an_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = subprocess.run([*MOSU, "up", "--port", str(free_port()), "--data-dir", str(blocker / "data")],
                         capture_output=True, text=True, timeout=60, env=clean_env())
    assert out.returncode == 1
    assert out.stderr.startswith("mosu: error: cannot write the data directory")
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr


def test_up_refuses_a_missing_seaweedfs_binary(tmp_path):
    env = {**clean_env(), "MOSU_WEED_BINARY": str(tmp_path / "no-such-weed")}
    out = subprocess.run([*MOSU, "up", "--port", str(free_port()), "--data-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1
    missing = tmp_path / "no-such-weed"
    assert out.stderr.strip() == f"mosu: error: SeaweedFS binary not found or not executable: {missing}"


def test_worker_without_object_storage_explains(tmp_path):
    out = subprocess.run([*MOSU, "worker", "--data-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=60, env=clean_env())
    assert out.returncode == 1
    assert "mosu worker needs object storage" in out.stderr and "Traceback" not in out.stderr
