"""Only the S3 gateway of the embedded SeaweedFS answers: its filer, master and volume ports
refuse anyone without the store's keys, and everything ``mosu up`` writes is private to its user.

The attack, as it was reported: any local user read a private upload with
``curl http://127.0.0.1:<filer port>/buckets/mosu/raw/<resource>/<version>``, wrote and deleted
through the filer, and got answers from master ``/dir/assign`` and volume ``/status``.
"""
from __future__ import annotations

import io
import os
import stat
import time
import uuid
from pathlib import Path

import minio
import pytest
import requests

from catalog.core.errors import StartupError
from catalog.storage.seaweed import SeaweedServer
from tests.conftest import wait_for_ingest

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def _client(server: SeaweedServer) -> minio.Minio:
    return minio.Minio(server.endpoint.removeprefix("http://"), server.credentials.access_key,
                       server.credentials.secret_key, secure=False, region="us-east-1")


def _needle_fid(data_dir: Path, payload: bytes) -> str:
    """The volume file id of the needle holding ``payload``, read from the volume files on disk.

    A needle is ``cookie(4) id(8) size(4) data_size(4) data``; its file id is
    ``<volume>,<id without leading zero bytes><cookie>`` in hex. This is what an attacker who
    once saw a file id (logs, a filer listing) would hold.
    """
    for dat in data_dir.rglob("*.dat"):
        blob = dat.read_bytes()
        at = blob.find(payload)
        if at >= 20:
            cookie, needle_id = blob[at - 20:at - 16], blob[at - 16:at - 8]
            volume = dat.stem.rsplit("_", 1)[-1]
            return f"{volume},{(needle_id.lstrip(bytes(1)) + cookie).hex()}"
    raise AssertionError("payload not found in any volume file")


def _answers(method: str, url: str, **kwargs) -> requests.Response | None:
    """The response to a request without any credentials, over HTTP and HTTPS; None if refused
    before any HTTP answer (closed port, TLS handshake refused for lack of a client certificate).

    Only the status line is read (``stream=True``): a server that answers with a status and then
    resets the connection mid-body (weed does, under load) has still answered."""
    try:
        resp = requests.request(method, url, timeout=5, verify=False, allow_redirects=False,
                                stream=True, **kwargs)
    except (requests.ConnectionError, requests.exceptions.SSLError):
        return None
    resp.close()
    return resp


def _refused(method: str, url: str, **kwargs) -> bool:
    for scheme in ("http", "https"):
        resp = _answers(method, url.replace("http://", f"{scheme}://"), **kwargs)
        if resp is not None and resp.status_code < 400:
            return False
    return True


def _unix_socket_status(path: str, method: str, target: str) -> int | None:
    """The HTTP status the filer's Unix socket answers (weed makes it beside the TCP port)."""
    import socket

    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(f"{method} {target} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n".encode())
            return int(sock.recv(64).split(b" ", 2)[1])
    except (OSError, IndexError, ValueError):
        return None


def test_filer_master_and_volume_refuse_requests_without_credentials(s3):
    bucket = "sec" + uuid.uuid4().hex[:10]
    client = _client(s3)
    client.make_bucket(bucket)
    secret = b"PRIVATE-UPLOAD-" + os.urandom(64 * 1024)
    key = "raw/private-resource/1"
    client.put_object(bucket, key, io.BytesIO(secret), len(secret))
    fid = _needle_fid(s3.data_dir, secret)

    host = s3.host
    filer = f"http://{host}:{s3.ports['filer.port']}"
    master = f"http://{host}:{s3.ports['master.port']}"
    volume = f"http://{host}:{s3.ports['volume.port']}"
    refused = {
        "filer read": _refused("GET", f"{filer}/buckets/{bucket}/{key}"),
        "filer listing": _refused("GET", f"{filer}/buckets/{bucket}/raw/private-resource/",
                                  headers={"Accept": "application/json"}),
        "filer PUT": _refused("PUT", f"{filer}/buckets/{bucket}/raw/planted", data=b"evil"),
        "filer POST": _refused("POST", f"{filer}/buckets/{bucket}/raw/planted2", files={"f": ("f", b"evil")}),
        "filer DELETE": _refused("DELETE", f"{filer}/buckets/{bucket}/{key}"),
        "filer UI": _refused("GET", f"{filer}/"),
        "master assign": _refused("GET", f"{master}/dir/assign"),
        "master lookup": _refused("GET", f"{master}/dir/lookup?fileId={fid}"),
        "master status": _refused("GET", f"{master}/dir/status"),
        "volume status": _refused("GET", f"{volume}/status"),
        "volume read": _refused("GET", f"{volume}/{fid}"),
        "volume PUT": _refused("PUT", f"{volume}/{fid}", data=b"evil"),
        "volume DELETE": _refused("DELETE", f"{volume}/{fid}"),
    }
    sock = f"/tmp/seaweedfs-filer-{s3.ports['filer.port']}.sock"
    for method in ("GET", "DELETE"):
        status = _unix_socket_status(sock, method, f"/buckets/{bucket}/{key}")
        refused[f"filer socket {method}"] = status is None or status >= 400
    assert [name for name, ok in refused.items() if not ok] == []

    # The S3 gateway with credentials still sees the object intact, and nothing was planted.
    assert client.get_object(bucket, key).read() == secret
    assert [o.object_name for o in client.list_objects(bucket, recursive=True)] == [key]


def test_grpc_ports_refuse_clients_without_the_certificate(s3):
    """gRPC without mutual TLS lets any local client read files through the filer API: a plain
    (certificate-less) TLS or cleartext connection must not get an HTTP/2 answer."""
    import socket
    import ssl

    for flag in ("filer.port.grpc", "master.port.grpc", "volume.port.grpc", "s3.port.grpc"):
        port = s3.ports[flag]
        # Cleartext HTTP/2 preface: an open gRPC server answers with a SETTINGS frame.
        with socket.create_connection((s3.host, port), timeout=5) as sock:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            sock.settimeout(2)
            try:
                reply = sock.recv(9)
            except (TimeoutError, ConnectionResetError):
                reply = b""
        assert not (len(reply) >= 4 and reply[3] == 4), f"{flag} answers gRPC in cleartext"
        # TLS without a client certificate is refused during or right after the handshake.
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, TimeoutError)):
            with socket.create_connection((s3.host, port), timeout=5) as raw:
                with ctx.wrap_socket(raw) as tls:
                    tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
                    tls.settimeout(2)
                    if not tls.recv(9):
                        raise ConnectionResetError("closed")


class _OpenSeaweed(SeaweedServer):
    """SeaweedFS as it ran before: no security configuration at all (test only)."""

    def write_security_config(self, store_dir: Path) -> Path:
        empty = store_dir / "no-security"
        empty.mkdir(exist_ok=True)
        (empty / "security.toml").write_text("")
        return empty


def test_start_up_refuses_a_store_whose_internal_ports_answer_anyone(tmp_path):
    server = _OpenSeaweed(tmp_path / "open")
    try:
        with pytest.raises(StartupError, match="answers without credentials"):
            server.start()
    finally:
        proc = server.proc
        server.stop()
    assert proc is None, "SeaweedFS must be stopped when start-up is refused"
    assert not (tmp_path / "open" / "s3" / "endpoint").exists()


def _loose(root: Path) -> list[str]:
    """Every path under ``root`` that its group or other users may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
            continue
        if mode & 0o077:
            found.append(f"{oct(mode & 0o777)} {path.relative_to(root.parent)}")
    return found


def _cache_built(cache: Path, seconds: float = 60) -> None:
    """Wait until the Arrow table cache holds a table and no build is under way: a build writes a
    ``.build-*`` file and renames it, so a walk of the directory meanwhile may meet a vanished path."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            names = [p.name for p in cache.rglob("*")]
        except FileNotFoundError:  # a build file renamed under the walk
            names = [".build-"]
        if any(n.endswith(".arrow") for n in names) and not any(n.startswith(".build-") for n in names):
            return
        assert time.monotonic() < deadline, f"the table cache was not built: {names}"
        time.sleep(0.05)


def test_mosu_up_keeps_its_data_dir_private(mosu_factory, tmp_path):
    data_dir = tmp_path / "mosu"
    data_dir.mkdir(mode=0o755)  # an existing directory others could enter
    os.chmod(data_dir, 0o755)
    running = mosu_factory(store=None, data_dir=data_dir)
    try:
        ckan = running.ckan(running.token("owner", sysadmin=True))
        ckan.action.organization_create(name="private-org")
        ckan.action.package_create(name="private-data", owner_org="private-org", private=True)
        res = ckan.action.resource_create(package_id="private-data", name="people",
                                          upload=("people.csv", io.BytesIO(b"name,age\nann,41\nbob,37\n")))
        assert wait_for_ingest(ckan, res["id"])["ingest_status"] == "ready"
        assert ckan.action.datastore_search(resource_id=res["id"])["total"] == 2  # fills the Arrow cache
        _cache_built(data_dir / "cache")
        files = {p.name for p in data_dir.rglob("*") if p.is_file()}
        assert "catalog.sqlite" in files and any(n.endswith(".dat") for n in files)
        assert any(p.suffix == ".arrow" for p in (data_dir / "cache").rglob("*")), "the Arrow cache was filled"
        # weed writes each volume's .vif (volume metadata, no object data) 0644 whatever its
        # umask: unreachable through the 0700 directories, and tightened at every stop and start.
        assert [p for p in _loose(data_dir) if not p.endswith(".vif")] == []
        assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    finally:
        assert running.stop() == 0
    assert _loose(data_dir) == []
