"""A read whose audit event cannot be written is refused, never served unrecorded (issue 13).

Against a running ``mosu up`` (SQLite catalog, the session's SeaweedFS) whose write-lock wait
(``MOSU_DATABASE_BUSY_TIMEOUT_SECONDS``) is 0.3 s, so a refusal takes 0.3 s, not the default 30 s:

- the catalog locked by another connection (``BEGIN EXCLUSIVE``) past that wait: a preview, a
  query, an export and a download URL are each refused with a 503 that says why, holding no row
  and no URL; once the lock is released the same calls are served, each with exactly one event;
- the catalog's files made read-only (as root, whom file modes do not stop, the immutable
  attribute: ``chattr +i``; as another user ``chmod 0444``): the same reads are refused, none served;
- 20 clients reading at once while the catalog is locked for a while: every answer that was
  served has exactly one event, none that was refused has one, and the chain verifies.
"""
from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests
from sqlalchemy import select

from catalog.core.errors import AuditUnavailable
from catalog.db.models import AuditEvent
from catalog.records import audit
from tests.conftest import wait_for_ingest

ROWS = 400
CSV = "city,population\n" + "".join(f"Town{i:04d},{1000 + i}\n" for i in range(ROWS))
MARK = "Town0007"  # a value of the table: in any answer that served data, in no refusal
READS = ("datastore_search", "datastore_search_sql", "datastore_export", "resource_download")
AT_ONCE = {"datastore_search_sql": 2, "datastore_export": 2}  # a caller's queries and exports at once (the limit)


@pytest.fixture(scope="module")
def server(mosu_factory):
    """``mosu up`` with a 0.3 s write-lock wait, an open dataset with one published table, and a
    researcher's token."""
    mosu = mosu_factory(database_busy_timeout_seconds=0.3)
    suffix = uuid.uuid4().hex[:8]
    admin = mosu.ckan(mosu.token(f"durable-admin-{suffix}", sysadmin=True))
    org = admin.action.organization_create(name=f"durable-org-{suffix}")
    pkg = admin.action.package_create(name=f"durable-{suffix}", owner_org=org["id"])
    res = admin.action.resource_create(package_id=pkg["id"], upload=("towns.csv", io.BytesIO(CSV.encode())))
    res = wait_for_ingest(admin, res["id"])
    assert res["ingest_status"] == "ready", res["ingest_error"]
    researcher = f"durable-researcher-{suffix}"
    return {"mosu": mosu, "rid": res["id"], "researcher": researcher, "token": mosu.token(researcher),
            "db": Path(mosu.settings.data_dir) / "catalog.sqlite"}


def read(server, kind: str, offset: int = 0) -> tuple[int, str]:
    """One read of ``kind`` over HTTP as the researcher: (status, body). A download URL is fetched
    too, and its body appended, so "served" means the data left, not only its address."""
    url, rid = server["mosu"].url, server["rid"]
    headers = {"Authorization": server["token"]}
    if kind == "datastore_search":
        r = requests.post(f"{url}/api/3/action/datastore_search", headers=headers, timeout=60,
                          json={"resource_id": rid, "limit": 10, "offset": offset})
    elif kind == "datastore_search_sql":
        r = requests.post(f"{url}/api/3/action/datastore_search_sql", headers=headers, timeout=60,
                          json={"sql": f'SELECT * FROM "{rid}" LIMIT 10 OFFSET {offset}'})
    elif kind == "datastore_export":
        r = requests.get(f"{url}/datastore/dump/{rid}", headers=headers, timeout=60,
                         params={"format": "csv", "limit": 10, "offset": offset})
    else:
        r = requests.post(f"{url}/api/3/action/resource_download", headers=headers, timeout=60, json={"id": rid})
        if r.status_code == 200:
            return 200, r.text + requests.get(r.json()["result"]["url"], timeout=60).text
    return r.status_code, r.text


def log_tail(server, lines: int = 60) -> str:
    """The end of the server's log: why a read was refused, when a test fails."""
    return "\n".join(server["mosu"].log.read_text(errors="replace").splitlines()[-lines:])


def events(server, after: int = 0) -> list[AuditEvent]:
    with server["mosu"].inspect().read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.seq > after, AuditEvent.actor ==
                                                       server["researcher"]).order_by(AuditEvent.seq)))


def last_seq(server) -> int:
    with server["mosu"].inspect().read() as s:
        return s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0


@contextmanager
def locked(db: Path) -> Iterator[None]:
    """Another connection holds the catalog's write lock (``BEGIN EXCLUSIVE``; in WAL mode readers
    go on, writers wait) until the block ends."""
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@contextmanager
def read_only(db: Path) -> Iterator[str]:
    """The catalog's files (the database, its WAL and shared memory) unwritable for the server,
    whose connections are already open: what a disk that went read-only looks like to it. Root
    ignores file modes, so as root the immutable attribute (``chattr +i``, which stops root too);
    otherwise mode 0444. Yields the method used."""
    files = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, files)], check=True)
        try:
            yield "chattr +i"
        finally:
            subprocess.run(["chattr", "-i", *map(str, files)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in files}
        for p in files:
            p.chmod(0o444)
        try:
            yield "chmod 0444"
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


def assert_refused(status: int, body: str, kind: str, read_only: bool = False) -> None:
    """A 503 that says why and holds no data. While the files are read-only, a request that needs a
    new database connection is refused before the read is even tried: the catalog cannot be written."""
    reasons = ["The access log cannot be written"] + (["The catalog's database cannot be written"] if read_only else [])
    assert status == 503, f"{kind}: {status} {body[:300]}"
    assert any(r in body for r in reasons) and "Service Unavailable" in body, f"{kind}: {body[:300]}"
    assert MARK not in body and "X-Amz-" not in body, f"{kind} leaked data or a URL: {body[:300]}"


def test_a_read_is_refused_while_the_catalog_is_locked_and_served_with_its_event_after(server):
    before = last_seq(server)
    with locked(server["db"]):
        for kind in READS * 2:  # twice: a refused export or query must give back its query slot (2 a caller)
            assert_refused(*read(server, kind), kind)
    assert events(server, before) == [], "a refused read left an event"
    for kind in READS:
        # The server's busy timeout is 0.3 s: a write of its own workers (a checkpoint, an ingest) can
        # still refuse a read just after the lock; such a refusal leaves no event, so try for a while.
        deadline = time.monotonic() + 20
        status, body = read(server, kind)
        while status == 503 and time.monotonic() < deadline:
            assert_refused(status, body, kind)
            time.sleep(0.2)
            status, body = read(server, kind)
        assert status == 200 and MARK in body, (f"{kind} after the lock: {status} {body[:300]}\n"
                                                f"server log:\n{log_tail(server)}")
    # The export's end is written when its stream closes, which may be just after the client has the
    # last byte (and is tried again for a few seconds if the catalog is busy): wait for it a while.
    deadline = time.monotonic() + 15
    recorded = [e.action for e in events(server, before)]
    while "datastore_export_end" not in recorded and time.monotonic() < deadline:
        time.sleep(0.2)
        recorded = [e.action for e in events(server, before)]
    assert [a for a in recorded if not a.endswith("_end")] == list(READS), "one event per read, in order"
    assert recorded.count("datastore_export_end") == 1, "the export's end, once the file went out"


def test_a_read_is_refused_while_the_catalog_files_are_read_only_and_served_at_once_after(server):
    """Refused while read-only, each kind by several clients at once, so the server opens several
    database connections while the files are read-only. SQLite opens such a connection read-only for
    good; once the files are writable again every read is served on its first try, as many at once."""
    at_once = {kind: AT_ONCE.get(kind, 8) for kind in READS}
    before = last_seq(server)
    with read_only(server["db"]):
        for kind in READS:
            for status, body in run_together(at_once[kind], read, server, kind):
                assert_refused(status, body, kind, read_only=True)
    assert events(server, before) == [], "a refused read left an event"
    for kind in READS:
        for status, body in run_together(at_once[kind], read, server, kind):
            assert status == 200 and MARK in body, (f"{kind} once the files are writable: {status} {body[:300]}\n"
                                                    f"server log:\n{log_tail(server)}")
    recorded = [e.action for e in events(server, before)]
    assert sorted(a for a in recorded if not a.endswith("_end")) == sorted(k for k in READS for _ in range(at_once[k]))


def run_together(n: int, call, *args):
    """``call(*args)`` from ``n`` threads at once; their answers."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(*args), range(n)))


def test_concurrent_reads_each_have_one_event_and_the_chain_verifies(server):
    """20 clients, 15 pages each at offsets no other call uses (an event names its page by its
    offset); the catalog is locked once, after the first reads were served, until three were refused."""
    clients, calls = 20, 15
    before = last_seq(server)
    outcome: dict[int, int] = {}
    refused = threading.Semaphore(0)
    served = threading.Semaphore(0)
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(calls):
            offset = n * calls + i
            status, body = read(server, "datastore_search", offset)
            assert status in (200, 503), body[:300]
            if status == 200:
                assert f"Town{offset:04d}" in body
            with lock:
                outcome[offset] = status
            (served if status == 200 else refused).release()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for _ in range(clients):  # some reads were served ...
        assert served.acquire(timeout=60)
    with locked(server["db"]):  # ... then the catalog is locked until a few were refused
        for _ in range(3):
            assert refused.acquire(timeout=60)
    for t in threads:
        t.join(120)
    assert len(outcome) == clients * calls
    ok = sorted(o for o, status in outcome.items() if status == 200)
    assert len(ok) < len(outcome), "some reads were refused while locked"
    recorded = sorted(e.detail["offset"] for e in events(server, before))
    assert recorded == ok, "every served read has exactly one event, and no refused one has any"
    with server["mosu"].inspect().read() as s:
        chain = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert audit.verify(chain) == (True, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def two_writers(request, tmp_path):
    """Two platforms on one catalog (as the web process and a worker are): SQLite in ``tmp_path``,
    or a new PostgreSQL database."""
    from catalog.core.settings import Settings
    from catalog.platform import Platform

    url = request.getfixturevalue("postgres")() if request.param == "postgresql" else None
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    web, worker = Platform.open(settings), Platform.open(settings)
    yield web, worker
    web.close()
    worker.close()


def test_group_commit_interleaves_with_events_of_changes_and_the_chain_holds(two_writers):
    """20 threads record reads through one platform's group commit while another platform writes
    events of changes inside its own transactions: every read's returned hash is one stored event
    of its own, seq has no gap, and the chain verifies, on SQLite and on PostgreSQL."""
    from catalog.access.context import Actor, Context

    web, worker = two_writers
    ctx = Context(platform=web, actor=Actor.site())
    digests: dict[int, str] = {}
    lock = threading.Lock()
    go = threading.Barrier(21)

    def reader(n: int) -> None:
        go.wait()
        for i in range(10):
            offset = n * 10 + i
            digest = audit.record_read(ctx, "datastore_search", "resource", "r", {"offset": offset, "rows": 1})
            with lock:
                digests[offset] = digest

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    go.wait()
    for i in range(30):
        with worker.write.begin() as s:
            audit.record(s, "worker:test", "user_update", "user", f"u{i}", {})
    for t in threads:
        t.join(120)
    with web.read() as s:
        chain = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    reads = {e.detail["offset"]: e.hash for e in chain if e.action == "datastore_search"}
    assert len(digests) == 200 and reads == digests, "each read's event is stored once, with the hash it returned"
    assert [e.seq for e in chain] == list(range(1, 231))
    assert audit.verify(chain) == (True, None)
    web.close()
    with pytest.raises(AuditUnavailable):  # a closed platform serves no read unrecorded
        audit.record_read(ctx, "datastore_search", "resource", "r", {"offset": -1, "rows": 1})
