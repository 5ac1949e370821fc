"""The README's claims about Mosu's processes, on real processes: ``mosu worker`` beside ``mosu up``
and its ``--concurrency``, what SIGTERM/SIGINT/Ctrl-C of ``mosu up`` leave behind, a catalog
database that goes away and comes back, search freshness across two web processes, and a 500 that
logs its cause and shows nothing.

Jobs are held in flight deterministically: the worker's S3 endpoint is a loopback proxy
(:mod:`tests.proxy`) that keeps the download of raw uploads waiting until the test releases it.
"""
from __future__ import annotations

import glob
import io
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests
from sqlalchemy import func, select

from catalog.core.settings import Settings
from catalog.db.models import AuditEvent, IngestJob, ResourceVersion
from catalog.storage.seaweed import free_port, running_endpoint
from tests.conftest import MOSU, RunningMosu, clean_env, kill_group, s3_settings, start_mosu
from tests.proxy import Proxy


def _raw_reads(method: str, target: str) -> bool:
    """A worker reading a raw upload (its stat and ranged GETs): where a held job waits."""
    return method in ("HEAD", "GET") and "/raw/" in target


def _csv(rows: int = 3) -> io.BytesIO:
    return io.BytesIO(b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(rows)))


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class WorkerProcess:
    """A ``mosu worker`` started by a test, with its log; stopped (SIGTERM) by :meth:`stop`."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen([*MOSU, "worker", *args], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker never logged {needle!r} (exit {self.proc.poll()}):\n{self.text()}")
            time.sleep(0.1)

    def wait_for_ingest(self, ckan, resource_id: str, timeout: float = 90) -> dict:
        """:func:`wait_for_ingest`, failing at once if this worker exits meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            res = ckan.action.resource_show(id=resource_id)
            if res["ingest_status"] in ("ready", "failed", "held"):
                return res
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{res['ingest_status']} (worker exit {self.proc.poll()}):\n{self.text()}")
            time.sleep(0.2)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
        return self.proc.returncode


def _upload(ckan, dataset: str, name: str) -> dict:
    return ckan.action.resource_create(package_id=dataset, name=name, upload=(f"{name}.csv", _csv()))


# -- mosu worker beside mosu up ----------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[RunningMosu]:
    """``mosu up --workers 0`` as a new user runs it (its own SeaweedFS, SQLite): jobs wait for a
    ``mosu worker`` started by the test."""
    data_dir = tmp_path_factory.mktemp("embedded") / "data"
    running = start_mosu(data_dir, {}, Settings(data_dir=data_dir), ("--workers", "0"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def embedded_admin(embedded):
    ckan = embedded.ckan(embedded.token("proc-admin", sysadmin=True))
    ckan.action.organization_create(name="proc-org")
    return ckan


def test_mosu_worker_beside_mosu_up_needs_nothing_else(embedded, embedded_admin, tmp_path):
    """README: ``mosu worker`` "beside a running ``mosu up`` on the same data directory it needs
    nothing else": no MOSU_* setting but the data directory, and it claims and finishes the job."""
    dataset = _name("beside")
    embedded_admin.action.package_create(name=dataset, owner_org="proc-org")
    res = _upload(embedded_admin, dataset, "beside")
    assert embedded_admin.action.resource_show(id=res["id"])["ingest_status"] == "queued", "mosu up has no worker"
    worker = WorkerProcess(clean_env(), tmp_path / "worker.log", "--data-dir", str(embedded.settings.data_dir))
    try:
        done = worker.wait_for_ingest(embedded_admin, res["id"])
    finally:
        status = worker.stop()
    assert done["ingest_status"] == "ready" and done["row_count"] == 3, (done, worker.text())
    assert status == 0, worker.text()
    with embedded.inspect().read() as s:
        job = s.scalars(select(IngestJob).where(IngestJob.resource_id == res["id"])).one()
    assert job.state == "done" and job.attempts == 1
    assert job.worker_id.split(":")[1] == str(worker.proc.pid), "the separate worker process did the job"


def test_mosu_worker_concurrency_runs_n_jobs_at_once(embedded, embedded_admin, tmp_path):
    """``mosu worker --concurrency 3``: three jobs in flight at once in one process (held at the
    object store, each claimed under its own lease), the fourth waits; all four finish."""
    dataset = _name("concurrent")
    embedded_admin.action.package_create(name=dataset, owner_org="proc-org")
    ids = [_upload(embedded_admin, dataset, f"part{i}")["id"] for i in range(4)]
    endpoint, creds = running_endpoint(embedded.settings.data_dir)
    proxy = Proxy(endpoint)
    proxy.hold(_raw_reads)
    env = {**clean_env(), "MOSU_DATA_DIR": str(embedded.settings.data_dir), "MOSU_S3_ENDPOINT": proxy.url,
           "MOSU_S3_ACCESS_KEY": creds.access_key, "MOSU_S3_SECRET_KEY": creds.secret_key}
    worker = WorkerProcess(env, tmp_path / "worker.log", "--concurrency", "3")
    try:
        proxy.wait_held(3, alive=worker.alive)
        with embedded.inspect().read() as s:
            jobs = s.scalars(select(IngestJob).where(IngestJob.resource_id.in_(ids))).all()
        running = [j for j in jobs if j.state == "running"]
        assert len(running) == 3 and [j.state for j in jobs].count("queued") == 1, [j.state for j in jobs]
        assert len({j.worker_id for j in running}) == 3, "three workers, each with its own claim"
        assert {j.worker_id.split(":")[1] for j in running} == {str(worker.proc.pid)}, "all in that one process"
        assert all(j.lease_until is not None for j in running)
        proxy.release()
        done = [worker.wait_for_ingest(embedded_admin, rid) for rid in ids]
    finally:
        proxy.close()
        worker.stop()
    assert [d["ingest_status"] for d in done] == ["ready"] * 4, worker.text()


# -- SIGTERM, SIGINT and Ctrl-C of mosu up -----------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 on), or None if no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str) -> bool:
    """Whether that process (same pid and start time) still runs; a zombie has stopped running."""
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] != "Z"


def _tree(root: int) -> dict[int, tuple[str, str]]:
    """Every descendant of ``root``, by pid: (start time, command line). From /proc, no extra package."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields is not None:
            found[pid] = (fields[19], cmd)
            todo.extend(children.get(pid, []))
    return found


def _in_session(sid: int) -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and (f := _stat(int(e))) is not None
            and f[3] == str(sid) and f[0] != "Z"]


@pytest.mark.parametrize(("how", "workers"), [("SIGTERM", 2), ("SIGINT", 1), ("Ctrl-C", 1)])
def test_a_signal_to_mosu_up_leaves_no_process_behind(tmp_path, how, workers):
    """README: ``mosu up`` "stops them all on Ctrl-C or SIGTERM": after SIGTERM or SIGINT to it, or
    Ctrl-C (SIGINT to its whole process group, as a terminal sends it), no worker, web server or
    SeaweedFS process it started runs any more, nothing listens on its port, and it exits 0."""
    data_dir = tmp_path / "data"
    running = start_mosu(data_dir, {}, Settings(data_dir=data_dir), ("--workers", str(workers)))
    port = int(running.url.rsplit(":", 1)[1])
    try:
        tree = _tree(running.proc.pid)
        children = [pid for pid, (_, cmd) in tree.items() if "catalog.cli worker" in cmd]
        weed = [pid for pid, (_, cmd) in tree.items() if "weed" in cmd and str(data_dir) in cmd]
        assert len(children) == workers and len(weed) == 1, tree
        if how == "Ctrl-C":
            os.killpg(running.proc.pid, signal.SIGINT)
        else:
            running.proc.send_signal(getattr(signal, how))
        status = running.proc.wait(60)
    finally:
        if running.proc.poll() is None:
            kill_group(running.proc)
    left = {pid: tree[pid][1] for pid, (started, _) in tree.items() if _alive(pid, started)}
    for pid in left:  # a failing run leaves nothing running either
        os.kill(pid, signal.SIGKILL)
    assert left == {} and _in_session(running.proc.pid) == [], "no process it started outlives mosu up"
    assert status == 0 and "Mosu stopped." in running.log.read_text(), running.log.read_text()[-3000:]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the web server is gone"


# -- a catalog database that goes away and comes back ------------------------------------------

def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: `make test` installs the postgresql package")
    return found


class PostgresCluster:
    """A PostgreSQL cluster of this module's own (the session's ``postgres`` is shared: never stopped),
    which a test stops and starts again on the same port. It runs as ``postgres`` when the tests
    run as root (initdb refuses root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mosu-pg-outage-"))
        self.data, self.port = self.root / "data", free_port()
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_pg, _pg_bin(tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run([*self.as_pg, _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="module")
def pg_mosu(s3, pg_cluster, tmp_path_factory) -> Iterator[RunningMosu]:
    """``mosu up --workers 0`` with its catalog on ``pg_cluster``."""
    data_dir = tmp_path_factory.mktemp("pg-outage") / "data"
    settings = s3_settings(s3, data_dir, database_url=pg_cluster.url)
    env = {k: v for k, v in settings.to_env().items() if k != "MOSU_DATA_DIR"}
    running = start_mosu(data_dir, env, settings, ("--workers", "0"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def pg_token(pg_mosu) -> str:
    return pg_mosu.token("outage-admin", sysadmin=True)


def _request_id(body: dict) -> str:
    """The request id of a 500's envelope, whose message must be exactly CKAN's words and that id."""
    found = re.fullmatch(r"Internal Server Error \(request ([0-9a-f]{12})\)", body["error"]["message"])
    assert found, body
    return found.group(1)


def _post(url: str, action: str, token: str | None = None, **data) -> requests.Response:
    headers = {"Authorization": token} if token else {}
    return requests.post(f"{url}/api/3/action/{action}", json=data, headers=headers, timeout=30)


def test_a_database_that_goes_away_and_comes_back(pg_mosu, pg_cluster, pg_token, tmp_path):
    """README: "an object store or database that goes away makes the job retry"; and the web server:
    while the catalog database is down a request gets the documented ``Internal Server Error`` 500 at
    once (no hang, the cause in the log, nothing of it in the answer); once it is back the same server
    answers again and the job, retried by the same worker, is published exactly once."""
    token = pg_token
    admin = pg_mosu.ckan(token)
    admin.action.organization_create(name="outage-org")
    admin.action.package_create(name="outage", owner_org="outage-org")
    res = _upload(admin, "outage", "outage")
    proxy = Proxy(pg_mosu.settings.s3_endpoint)
    proxy.hold(_raw_reads)
    env = {**clean_env(), **pg_mosu.env, "MOSU_S3_ENDPOINT": proxy.url, "MOSU_JOB_LEASE_SECONDS": "3"}
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        proxy.wait_held(1, alive=worker.alive)  # the job is claimed and in flight
        with pg_mosu.inspect().read() as s:
            job_id = s.scalars(select(IngestJob.id).where(IngestJob.resource_id == res["id"])).one()
        pg_mosu.opened.pop().close()  # its pool must not outlive the cluster's restart
        pg_cluster.stop()
        try:
            down = _post(pg_mosu.url, "package_show", token, id="outage")
            assert down.status_code == 500
            body = down.json()
            request_id = _request_id(body)
            assert body["success"] is False and body["error"] == {
                "__type": "Internal Server Error", "message": f"Internal Server Error (request {request_id})"}
            assert "Traceback" not in down.text and "psycopg" not in down.text.lower()
            search = _post(pg_mosu.url, "package_search", q="outage")
            assert search.status_code == 500 and search.json()["error"]["__type"] == "Internal Server Error"
            proxy.release()  # the worker goes on without its database: the job must be retried
            worker.wait_for_log(f"job {job_id} attempt 1:")
        finally:
            pg_cluster.start()
        log = pg_mosu.log.read_text()
        assert f"internal error in request {request_id}" in log and "OperationalError" in log, "the cause is logged"
        again = _post(pg_mosu.url, "package_show", token, id="outage")
        assert again.status_code == 200 and again.json()["result"]["name"] == "outage", "the same server answers"
        done = worker.wait_for_ingest(admin, res["id"])
    finally:
        proxy.close()
        worker.stop()
    assert done["ingest_status"] == "ready" and done["row_count"] == 3, worker.text()
    with pg_mosu.inspect().read() as s:
        job = s.get(IngestJob, job_id)
        assert (job.state, job.attempts) == ("done", 2), "retried once the database was back"
        versions = s.scalars(select(ResourceVersion.status).where(ResourceVersion.resource_id == res["id"])).all()
        assert versions == ["ready"]
        published = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "resource_publish", AuditEvent.object_id == res["id"]))
        assert published == 1, "published exactly once"
    pg_mosu.opened.pop().close()
    # A restart while the server is idle: its pooled connections are dead, and the first request
    # after it must not be the one that finds out (it gets a fresh connection, not a 500).
    pg_cluster.stop()
    pg_cluster.start()
    again = _post(pg_mosu.url, "package_show", token, id="outage")
    assert again.status_code == 200 and again.json()["result"]["num_resources"] == 1, again.text


# -- search freshness across two web processes -------------------------------------------------

def _second_web_process(first: RunningMosu, s3_env: dict[str, str]) -> RunningMosu:
    """Another ``mosu up --workers 0`` on the same catalog database and object store as ``first``
    (``MOSU_S3_ENDPOINT`` set, so it starts no SeaweedFS of its own)."""
    env = {k: v for k, v in first.env.items() if k != "MOSU_DATA_DIR"}
    env.update(s3_env)
    return start_mosu(first.settings.data_dir, env, first.settings, ("--workers", "0"))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_search_sees_a_write_of_another_web_process_at_once(request, database):
    """README: "every process sees a write at once, on SQLite or PostgreSQL alike": a dataset
    created, changed or deleted through one web process is found (or gone) by ``package_search`` on
    another at its very next search, without waiting."""
    if database == "sqlite":
        first, token = request.getfixturevalue("embedded"), request.getfixturevalue("embedded_admin").apikey
        endpoint, creds = running_endpoint(first.settings.data_dir)
        s3_env = {"MOSU_S3_ENDPOINT": endpoint, "MOSU_S3_ACCESS_KEY": creds.access_key,
                  "MOSU_S3_SECRET_KEY": creds.secret_key}
    else:
        first, token = request.getfixturevalue("pg_mosu"), request.getfixturevalue("pg_token")
        s3_env = {}
    second = _second_web_process(first, s3_env)
    try:
        writer = first.ckan(token)
        reader = second.ckan()
        org = _name("fresh-org")
        writer.action.organization_create(name=org)
        word = "zq" + uuid.uuid4().hex[:8]
        assert reader.action.package_search(q=word)["count"] == 0  # the second process's index is built
        writer.action.package_create(name=_name("fresh"), title=f"Kelp {word}", owner_org=org)
        found = reader.action.package_search(q=word)
        assert found["count"] == 1 and found["results"][0]["title"] == f"Kelp {word}"
        renamed = found["results"][0]["name"]
        writer.action.package_patch(id=renamed, title=f"Seagrass {word}")
        assert [d["title"] for d in reader.action.package_search(q=word)["results"]] == [f"Seagrass {word}"]
        writer.action.package_delete(id=renamed)
        assert reader.action.package_search(q=word)["count"] == 0
    finally:
        second.stop()


# -- a 500 logs its cause and shows nothing ----------------------------------------------------

def test_an_internal_error_is_logged_and_its_cause_never_shown(embedded, embedded_admin):
    """README: "``Internal Server Error`` 500 (the cause is logged, never shown)". A dataset row
    damaged on disk (its ``extras`` no longer JSON, which the code never writes) makes
    ``package_show`` fail unexpectedly: the answer is the bare envelope with a request id, the
    server's log has that id with the exception and its traceback."""
    name = _name("damaged")
    embedded_admin.action.package_create(name=name, owner_org="proc-org")
    database = embedded.settings.effective_database_url.removeprefix("sqlite:///")
    con = sqlite3.connect(database, timeout=30)
    try:
        with con:
            con.execute("UPDATE packages SET extras = ? WHERE name = ?", ("[{damaged", name))
        resp = requests.get(f"{embedded.url}/api/3/action/package_show", params={"id": name}, timeout=30)
    finally:
        with con:
            con.execute("UPDATE packages SET extras = '[]' WHERE name = ?", (name,))
        con.close()
    assert resp.status_code == 500
    body = resp.json()
    request_id = _request_id(body)
    assert body == {
        "help": f"{embedded.url}/api/3/action/help_show?name=package_show", "success": False,
        "error": {"__type": "Internal Server Error", "message": f"Internal Server Error (request {request_id})"}}
    for leak in ("Traceback", "JSON", "Expecting", "damaged", "extras", "sqlite", "File "):
        assert leak not in resp.text
    deadline = time.monotonic() + 10  # the log line is written as the answer goes out
    while f"internal error in request {request_id}" not in (log := embedded.log.read_text()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.05)
    after = log.split(f"internal error in request {request_id}", 1)[1]
    assert "Traceback (most recent call last)" in after and "JSONDecodeError" in after
    assert embedded_admin.action.package_show(id=name)["name"] == name, "repaired, it answers again"
