"""Database engine and sessions for the catalog (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Engine, create_engine, event, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.core.errors import CatalogUnavailable, StartupError
from catalog.db.models import Base, Counter, SchemaInfo


def make_engine(url: str, busy_timeout: float = 30.0) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout (seconds a writer waits for the write
    lock before "database is locked") and foreign keys on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})

        database = engine.url.database
        if database not in (None, "", ":memory:"):

            @event.listens_for(engine, "do_connect")
            def _refuse_unwritable(*_args) -> None:
                # SQLite opens a file it cannot write read-only, silently, and such a connection stays
                # read-only for its life; worse, the first one to open the shared memory file makes it
                # read-only for every connection of this process until all of them close. A pooled
                # connection opened while the disk or the files were read-only kept the server failing
                # every write long after they were writable again. So none is opened then.
                if not writable(database):
                    raise CatalogUnavailable("The catalog's database cannot be written at the moment, so "
                                             "nothing is served; try again later")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MB of page cache: the catalog's indexes stay hot
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()
            # SQLAlchemy emits BEGIN itself (below), so pysqlite must not.
            dbapi_conn.isolation_level = None

        lock_path = f"{engine.url.database}.writelock" if engine.url.database not in (None, "", ":memory:") else None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # pragma: no cover - trivial
            immediate = conn.get_execution_options().get("sqlite_immediate", False)
            if immediate and lock_path:
                _writer_lock(conn.connection._connection_record.info, lock_path, busy_timeout)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        @event.listens_for(engine.pool, "checkin")
        def _release(_dbapi_conn, record) -> None:  # pragma: no cover - trivial
            fd = record.info.get("writelock_fd") if record is not None else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

        @event.listens_for(engine.pool, "close")
        def _close_lock_file(_dbapi_conn, record) -> None:  # pragma: no cover - trivial
            fd = record.info.pop("writelock_fd", None) if record is not None else None
            if fd is not None:
                os.close(fd)  # which releases its lock too

        return engine
    return create_engine(url, pool_pre_ping=True)


WRITER_WAIT_SECONDS = 30


def writable(database: str) -> bool:
    """Whether this process may write SQLite database file ``database``, its write-ahead log and its
    shared memory file, those that exist (and their directory, for those that do not). ``access``
    answers for file modes, a read-only mount and the immutable attribute (which stops root too)."""
    files = [database, f"{database}-wal", f"{database}-shm"]
    present = [f for f in files if os.path.exists(f)]
    return all(os.access(f, os.W_OK) for f in present) and (
        len(present) == len(files) or os.access(os.path.dirname(os.path.abspath(database)), os.W_OK | os.X_OK))


def _writer_lock(info: dict, path: str, wait: float = WRITER_WAIT_SECONDS) -> None:
    """Queue writers on a file lock before BEGIN IMMEDIATE.

    SQLite's own busy handler backs off with sleeps of up to 100 ms, so two
    writing processes hand the lock back and forth slowly; polling a ``flock``
    every half millisecond gives the lock to the next writer almost as soon as it
    is released (when the connection returns to the pool, after commit or rollback).
    """
    fd = info.get("writelock_fd")
    if fd is None:
        fd = info["writelock_fd"] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:  # a short fixed poll rather than a blocking call: a stuck writer times out, never hangs
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {wait:g} s for the catalog's write lock") from None
            time.sleep(0.0005)


@contextmanager
def sqlite_write(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A write transaction on one pooled SQLite connection, driven directly: the writer lock and
    ``BEGIN IMMEDIATE`` as a writing session takes them, ``COMMIT`` when the block ends, ``ROLLBACK``
    if it raises. For the one writer too hot for SQLAlchemy's per-statement work (the group commit of
    read events): the statements are the caller's, in the driver's own parameter style."""
    proxied = engine.raw_connection()
    try:
        conn = proxied.driver_connection
        database = engine.url.database
        if database not in (None, "", ":memory:"):
            info = proxied.info
            if "busy_timeout" not in info:  # asked once per connection: each statement costs a GIL hand-off
                info["busy_timeout"] = conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
            _writer_lock(info, f"{database}.writelock", info["busy_timeout"])
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        proxied.close()  # back to the pool, whose checkin releases the writer lock


SCHEMA_VERSION = 6


def init_schema(engine: Engine) -> None:
    """Create the tables of a new database, or check that an existing one has this schema.

    A database from another schema version is refused with a clear message
    rather than used half-compatibly (migrations will upgrade it once released).
    """
    tables = set(inspect(engine).get_table_names())
    if tables and "schema_info" not in tables:
        found: int | None = 1
    elif tables:
        with engine.connect() as conn:
            found = conn.execute(select(SchemaInfo.version)).scalar()
    else:
        found = None
    if found is not None and found != SCHEMA_VERSION:
        raise StartupError(f"the catalog database {engine.url.render_as_string(hide_password=True)} has "
                           f"schema version {found}, this Mosu needs {SCHEMA_VERSION}: use a new data "
                           "directory (or MOSU_DATABASE_URL)")
    Base.metadata.create_all(engine)
    if found is None:
        try:
            with engine.begin() as conn:
                conn.execute(insert(SchemaInfo).values(id=1, version=SCHEMA_VERSION))
                conn.execute(insert(Counter).values(name="search", value=0))
        except IntegrityError:  # another process initialised it at the same moment
            pass


def session_factory(engine: Engine, *, write: bool = False,
                    info: dict | None = None) -> sessionmaker[Session]:
    """Sessions for reading, or (``write=True``) for writing.

    On SQLite a writing session starts with ``BEGIN IMMEDIATE`` so that two
    writers queue on the busy timeout instead of failing with "database is
    locked" when a read lock cannot be upgraded. PostgreSQL ignores the option.
    ``info`` is copied into each session's ``Session.info`` (the platform puts its settings there,
    for code that is handed only a session, such as :func:`catalog.records.notify.notify`).
    """
    bind = engine.execution_options(sqlite_immediate=True) if write else engine
    return sessionmaker(bind, expire_on_commit=False, info=dict(info or {}))
