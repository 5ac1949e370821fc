"""DuckDB, opened only here: limits applied, the caller's tables registered, configuration locked.

The base database disables external access and locks its configuration before
any query runs, so no statement can read or write a file, attach a database,
load an extension or change a setting. Parquet is read from object storage by
pyarrow (ranged reads guided by a cached footer) and handed to DuckDB as a
registered Arrow table on a per-call cursor: the cursor sees only what that
call registered.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.errors import QueryRejected
from catalog.settings import Settings
from catalog.storage import ObjectStore
from catalog.tablecache import ROW_ID, TableCache
from quality.profile import classify, json_value

_CACHE_SIZE = 1024

def ckan_type(duckdb_type: str) -> str:
    """The CKAN DataStore type name of a DuckDB column type (pure; one table, in quality.profile)."""
    return classify(duckdb_type)[0]


@dataclass(frozen=True)
class Page:
    fields: list[dict[str, str]]
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class Result:
    """Rows of a query in the sandbox: CKAN fields, rows as tuples, and whether a limit cut them."""
    fields: list[dict[str, str]]
    names: list[str]
    rows: list[tuple]
    truncated: bool


def _clean_error(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]


class QueryService:
    """One locked DuckDB database per process; a fresh cursor per call."""

    def __init__(self, store: ObjectStore, settings: Settings) -> None:
        self._store = store
        self._fs = store.arrow_filesystem()
        self._db = duckdb.connect(":memory:", config={
            "threads": settings.query_threads, "memory_limit": settings.query_memory_limit,
        })
        self._db.execute("SET enable_external_access = false")
        self._db.execute("SET python_enable_replacements = false")  # no table name resolves to a Python variable
        self._db.execute("SET lock_configuration = true")
        self._footers: OrderedDict[str, pq.FileMetaData] = OrderedDict()
        self._lock = threading.Lock()
        self.settings = settings
        self._types: dict[pa.Schema, dict[str, str]] = {}
        self._counts: OrderedDict[tuple, int] = OrderedDict()
        self.tables = TableCache(store, settings.data_dir / "cache" / "tables", settings.query_cache_bytes)

    def _metadata(self, key: str) -> pq.FileMetaData:
        """The Parquet footer of an object, read once per process (objects never change)."""
        with self._lock:
            meta = self._footers.get(key)
            if meta is not None:
                self._footers.move_to_end(key)
                return meta
        with self._fs.open_input_file(self._store.arrow_path(key)) as fh:
            meta = pq.ParquetFile(fh).metadata
        with self._lock:
            self._footers[key] = meta
            while len(self._footers) > _CACHE_SIZE:
                self._footers.popitem(last=False)
        return meta

    def _rows(self, key: str, limit: int, offset: int) -> pa.Table:
        """Only the row groups that hold rows ``offset .. offset+limit``, fetched by ranged reads.

        A deep page costs the same as the first: the footer says where each row
        group starts, so nothing before it is read.
        """
        if self.tables.ready(key):  # this node has the version mapped: a zero-copy slice
            table = self.tables.table(key)
            return table.slice(offset, limit).drop_columns([ROW_ID])
        self.tables.warm(key)  # later pages and queries of this version will not need storage
        meta = self._metadata(key)
        groups, start, first_start = [], 0, None
        for i in range(meta.num_row_groups):
            n = meta.row_group(i).num_rows
            if start + n > offset and start < offset + limit:
                groups.append(i)
                first_start = start if first_start is None else first_start
            start += n
        with self._fs.open_input_file(self._store.arrow_path(key)) as fh:
            pf = pq.ParquetFile(fh, metadata=meta, pre_buffer=True)
            if not groups:
                return pf.schema_arrow.empty_table()
            table = pf.read_row_groups(groups)
        return table.slice(offset - first_start, limit)

    def page(self, parquet_key: str, limit: int, offset: int) -> Page:
        """Rows ``offset`` .. ``offset+limit`` of one Parquet object, in file order."""
        rows = self._rows(parquet_key, limit, offset)
        cur = self._db.cursor()
        try:
            cur.register("t", rows)
            rel = cur.execute("SELECT * FROM t")
            names = [d[0] for d in rel.description]
            types = [str(d[1]) for d in rel.description]
            rows = rel.fetchall()
        finally:
            cur.close()
        fields = [{"id": n, "type": ckan_type(t)} for n, t in zip(names, types)]
        records = [{n: json_value(v) for n, v in zip(names, row)} for row in rows]
        return Page(fields, records)

    def _sandbox(self, tables: dict[str, pa.Table], timeout: float) -> tuple[duckdb.DuckDBPyConnection,
                                                                             threading.Timer]:
        """A fresh cursor of the locked database that sees only ``tables``, and a started timer
        that interrupts it after ``timeout`` seconds (cancel it when done)."""
        cur = self._db.cursor()
        for name, table in tables.items():
            cur.register(name, table)
        timer = threading.Timer(timeout, cur.interrupt)
        timer.start()
        return cur, timer

    def run(self, tables: dict[str, pa.Table], sql: str, params: list[Any] | None = None,
            max_rows: int | None = None, timeout: float | None = None) -> Result:
        """Run ``sql`` on a fresh cursor that sees only ``tables`` (registered Arrow, by name).

        The database has external access off and its configuration locked, so no
        statement can reach a file, the network, an extension or a setting; a timer
        interrupts the query after ``timeout`` seconds, and at most ``max_rows`` rows
        are fetched (``truncated`` says whether more were there).
        """
        timeout = self.settings.query_timeout_seconds if timeout is None else timeout
        cur, timer = self._sandbox(tables, timeout)
        try:
            try:
                rel = cur.execute(sql, params or [])
                if rel.description is None:
                    raise QueryRejected("The statement returned no rows: only SELECT queries are answered")
                names = [d[0] for d in rel.description]
                types = [str(d[1]) for d in rel.description]
                rows = rel.fetchmany(max_rows + 1) if max_rows is not None else rel.fetchall()
            except duckdb.InterruptException:
                raise QueryRejected(f"The query was stopped after its time limit of {timeout:g} s") from None
            except duckdb.OutOfMemoryException:
                raise QueryRejected("The query needed more memory than a query may use "
                                    f"({self.settings.query_memory_limit})") from None
            except duckdb.PermissionException as exc:
                raise QueryRejected(f"Not allowed here: {_clean_error(exc)}") from None
            except duckdb.Error as exc:
                raise QueryRejected(f"The query failed: {_clean_error(exc)}") from None
        finally:
            timer.cancel()
            cur.close()
        truncated = max_rows is not None and len(rows) > max_rows
        return Result([{"id": n, "type": ckan_type(t)} for n, t in zip(names, types)], names,
                      rows[:max_rows] if truncated else rows, truncated)

    def describe(self, table: pa.Table) -> dict[str, str]:
        """Column name -> DuckDB type of an Arrow table, as DuckDB sees it (for typed parameters);
        remembered per schema, since every version of a resource usually shares one."""
        key = table.schema
        cached = self._types.get(key)
        if cached is not None:
            return cached
        cur = self._db.cursor()
        try:
            cur.register("t", table.slice(0, 0))
            types = {row[0]: row[1] for row in cur.execute("DESCRIBE SELECT * FROM t").fetchall()}
        finally:
            cur.close()
        with self._lock:
            if len(self._types) > 1024:
                self._types.clear()
            self._types[key] = types
        return types

    def stream(self, tables: dict[str, pa.Table], sql: str, params: list[Any] | None = None,
               timeout: float | None = None, batch_rows: int = 65_536) -> pa.RecordBatchReader:
        """The rows of ``sql`` as Arrow batches, produced as they are read (for exports): the same
        locked database and registered tables as :meth:`run`, with a longer time limit, and the
        cursor closed when the reader is exhausted or dropped."""
        timeout = self.settings.export_timeout_seconds if timeout is None else timeout
        cur, timer = self._sandbox(tables, timeout)
        try:
            reader = cur.execute(sql, params or []).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            timer.cancel()
            cur.close()
            raise QueryRejected(f"The query failed: {_clean_error(exc)}") from None

        def batches():
            try:
                yield from reader
            finally:
                timer.cancel()
                cur.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def count(self, parquet_key: str, table: pa.Table, sql: str, params: list[Any]) -> int:
        """A ``SELECT count(*)`` over one version, remembered: versions never change, and paging
        through a filtered result asks for the same total on every page."""
        key = (parquet_key, sql, repr(params))
        with self._lock:
            found = self._counts.get(key)
            if found is not None:
                self._counts.move_to_end(key)
                return found
        total = self.run({"t": table}, sql, params).rows[0][0]
        with self._lock:
            self._counts[key] = total
            while len(self._counts) > _CACHE_SIZE * 4:
                self._counts.popitem(last=False)
        return total
