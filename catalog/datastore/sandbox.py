"""DuckDB, opened only here: limits applied, the caller's tables registered, configuration locked.

The base database disables external access and locks its configuration before
any query runs, so no statement can read or write a file, attach a database,
load an extension or change a setting. Parquet is read from object storage by
pyarrow (ranged reads guided by a cached footer) and handed to DuckDB as a
registered Arrow table on a per-call cursor: the cursor sees only what that
call registered.
"""
from __future__ import annotations

import ctypes
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb.sqltypes import DuckDBPyType

from catalog.core.coltypes import ckan_type
from catalog.core.errors import QueryRejected
from catalog.core.settings import Settings
from catalog.core.sqltext import first_line
from catalog.datastore.resultcache import ResultCache
from catalog.datastore.searchspec import filter_params
from catalog.datastore.slots import QuerySlots, Slot
from catalog.datastore.sortcache import SortCache, filter_mask, filtered_order, mask_values, sortable, take_rows
from catalog.datastore.tablecache import ROW_ID, TableCache, scoped
from catalog.storage.objects import ObjectStore, missing
from quality.profile import json_value

_CACHE_SIZE = 1024
FETCH_ROWS = 2048
"""Rows fetched (and measured) at a time: DuckDB computes 2,048-row chunks, so a query's memory
before its size is checked is one chunk, not its whole result."""
_POLL_SECONDS = 0.05

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


def value_bytes(value: Any) -> int:
    """About how many bytes a fetched value holds (pure): its length for text and binary, 8 for
    any other scalar, the sum for lists and dicts."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return 8 + sum(value_bytes(v) for v in value)
    if isinstance(value, dict):
        return 8 + sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    return 8


def result_bytes(result: Result) -> int:
    """About how many bytes a query's answer holds (its values and field names), for the result cache."""
    return sum(value_bytes(v) for row in result.rows for v in row) + 8 * len(result.rows) + \
        sum(len(n) + 16 for n in result.names)


def _give_back_memory() -> None:
    """Return freed memory to the system: Arrow's pool and glibc's heap keep it otherwise (after a
    150 MB export the web process stayed 230 MB larger)."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # no glibc
        pass


_ARROW_AS_TEXT = frozenset({"uhugeint", "bit", "bignum", "varint", "time with time zone", "variant",
                            "geometry", "interval"})
"""DuckDB types whose Arrow form is wrong or unreadable in a file, exported as DuckDB's text instead:
UHUGEINT becomes a decimal128 that overflows (2**128-1 was written as ``-1``), BIT its internal bytes
(``'0101'`` as ``04f5``), BIGNUM and VARIANT opaque bytes, TIME WITH TIME ZONE loses its offset,
GEOMETRY is WKB bytes (text: WKT), and INTERVAL a ``[months, days, nanoseconds]`` triple that Parquet
cannot hold."""


def _needs_text(kind: DuckDBPyType) -> bool:
    """Whether a column of this DuckDB type, or anything nested in it, is in :data:`_ARROW_AS_TEXT`."""
    if kind.id in _ARROW_AS_TEXT:
        return True
    if kind.id in ("list", "array", "struct", "map", "union"):
        return any(isinstance(child, DuckDBPyType) and _needs_text(child) for _, child in kind.children)
    return False


def arrow_faithful(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """``rel`` with the columns Arrow would misrepresent cast to text (by position: names may repeat);
    ``rel`` itself when there are none. Still lazy: nothing is computed here."""
    if not any(_needs_text(kind) for kind in rel.types):
        return rel
    quoted = ['"' + name.replace('"', '""') + '"' for name in rel.columns]
    return rel.project(", ".join(f"CAST(#{i} AS VARCHAR) AS {name}" if _needs_text(kind) else f"#{i} AS {name}"
                                 for i, (name, kind) in enumerate(zip(quoted, rel.types), start=1)))


class _Watch:
    """One thread per query that interrupts its cursor when the current computation has run past
    ``compute`` seconds, the whole call past ``total`` seconds, or ``cancelled()`` says the client
    went away; :attr:`reason` says which."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, compute: float, total: float,
                 cancelled: Callable[[], bool] | None) -> None:
        self._cur, self.compute, self.total, self._cancelled = cur, compute, total, cancelled
        self.start = time.monotonic()
        self._since: float | None = self.start
        self._done = threading.Event()
        self.reason: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="query-watch")
        self._thread.start()

    def computing(self) -> None:
        self._since = time.monotonic()

    def idle(self) -> None:
        self._since = None

    def _run(self) -> None:
        while not self._done.wait(_POLL_SECONDS):
            now, since = time.monotonic(), self._since
            if since is not None and now - since > self.compute:
                self.reason = f"The query was stopped after its time limit of {self.compute:g} s"
            elif now - self.start > self.total:
                self.reason = f"The export was stopped after its time limit of {self.total:g} s"
            elif self._cancelled is not None and self._cancelled():
                self.reason = "The query was stopped: the client disconnected"
            if self.reason:
                self._cur.interrupt()
                return

    def stop(self) -> None:
        self._done.set()

    def error(self) -> QueryRejected:
        return QueryRejected(self.reason or "The query was interrupted")


class QueryService:
    """One locked DuckDB database per process; a fresh cursor per call."""

    def __init__(self, store: ObjectStore, settings: Settings) -> None:
        self._store = store
        self._fs = store.arrow_filesystem()
        self._db = duckdb.connect(":memory:", config={
            "threads": settings.query_threads, "memory_limit": settings.query_memory_limit,
            # give freed memory back to the system after each task rather than keep it cached
            "allocator_flush_threshold": "32MB", "allocator_background_threads": True,
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
        self.orders = SortCache(settings.query_sort_cache_bytes)
        self.results = ResultCache(settings.query_result_cache_bytes)
        self.tables.on_evict = lambda path: self.orders.drop(lambda key: self.tables.path(key) == path)
        self.slots = QuerySlots(settings.query_max_concurrent, settings.query_max_concurrent_per_caller,
                                settings.query_queue_length, settings.query_queue_seconds)

    def _metadata(self, key: str) -> pq.FileMetaData:
        """The Parquet footer of an object, read once per process (objects never change)."""
        with self._lock:
            meta = self._footers.get(key)
            if meta is not None:
                self._footers.move_to_end(key)
                return meta
        try:
            with self._fs.open_input_file(self._store.arrow_path(key)) as fh:
                meta = pq.ParquetFile(fh).metadata
        except FileNotFoundError as exc:
            raise missing(key, exc) from None
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

    def page(self, parquet_key: str, limit: int, offset: int, columns: frozenset[str] | None = None) -> Page:
        """Rows ``offset`` .. ``offset+limit`` of one Parquet object, in file order; with ``columns``
        (a reader's column scope), only those columns."""
        rows = scoped(self._rows(parquet_key, limit, offset), columns)
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

    def sorted_rows(self, parquet_key: str, column: str, descending: bool, limit: int, offset: int,
                    columns: frozenset[str] | None = None,
                    filters: dict[str, list[Any]] | None = None) -> tuple[pa.Table, int] | None:
        """Rows ``offset .. offset+limit`` of a cached version in ``ORDER BY column ASC|DESC NULLS LAST,
        _id`` order, taken by position from the column's row order (built in the background after the
        first such request, then kept: see :mod:`catalog.datastore.sortcache`); only ``columns`` with a
        column scope; with ``filters`` (a search's exact values: column IN values), only the rows they
        keep, found by a mask over the table taken in the order. With the rows, how many there are in
        all (the version's rows, or the rows the filters keep).
        None when this cannot answer (version not cached here, a type Arrow orders or compares
        differently, a filter value DuckDB cannot cast, an order too large to keep, or the order still
        being built): the caller sorts in SQL, which answers (or refuses) as always."""
        if not self.tables.ready(parquet_key):
            return None
        table = self.tables.table(parquet_key)
        index = table.schema.get_field_index(column)  # -1: absent, or a name that repeats
        if index < 0 or not sortable(table.schema.field(index).type) or not self.orders.fits(table.num_rows):
            return None
        wanted = typed = None
        if filters:
            typed = self._typed_filters(table, filters)
            wanted = None if typed is None else mask_values(table, typed)
            if wanted is None:
                return None
        order = self.orders.order(parquet_key, table.column(index), column, descending)
        if order is None:  # being built in the background: this page is sorted in SQL
            return None
        if wanted is not None and typed is not None:  # later pages of these filters: a slice of the kept
            kept, by = order, (parquet_key, column, descending,  # positions (values as DuckDB cast them)
                               tuple((name, tuple(map(repr, values))) for name, values in sorted(typed.items())))
            order = self.orders.selection(by, lambda: filtered_order(kept, filter_mask(table, wanted)))
        return take_rows(scoped(table, columns), order.slice(offset, limit)), len(order)

    def _typed_filters(self, table: pa.Table, filters: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
        """Each filter's values cast by DuckDB to its column's type, with the same parameters and
        casts as the SQL path's ``IN (CAST(? AS type), ...)``, so the values compared are the ones SQL
        compares; None when a cast fails (the SQL path then refuses the search with DuckDB's error)."""
        types = self.describe(table)
        out: dict[str, list[Any]] = {}
        cur = self._db.cursor()
        try:
            for name, values in filters.items():
                if name not in types:
                    return None
                marks = ", ".join(f"CAST(? AS {types[name]})" for _ in values)
                try:
                    out[name] = list(cur.execute(f"SELECT {marks}", filter_params(values)).fetchone())
                except duckdb.Error:
                    return None
        finally:
            cur.close()
        return out

    def _sandbox(self, tables: dict[str, pa.Table], compute: float, total: float | None = None,
                 cancelled: Callable[[], bool] | None = None) -> tuple[duckdb.DuckDBPyConnection, _Watch]:
        """A fresh cursor of the locked database that sees only ``tables``, and a started watch that
        interrupts it (see :class:`_Watch`; stop it when done)."""
        cur = self._db.cursor()
        for name, table in tables.items():
            cur.register(name, table)
        return cur, _Watch(cur, compute, compute if total is None else total, cancelled)

    def _rejected(self, exc: duckdb.Error, watch: _Watch) -> QueryRejected:
        """The user's error for what DuckDB raised."""
        if isinstance(exc, duckdb.InterruptException):
            return watch.error()
        if isinstance(exc, duckdb.OutOfMemoryException):
            return QueryRejected("The query needed more memory than a query may use "
                                 f"({self.settings.query_memory_limit})")
        if isinstance(exc, duckdb.PermissionException):
            return QueryRejected(f"Not allowed here: {first_line(exc)}")
        return QueryRejected(f"The query failed: {first_line(exc)}")

    def _too_large(self) -> QueryRejected:
        limit = self.settings.query_max_result_bytes
        return QueryRejected(f"The result is larger than the {limit / 2**20:g} MiB a query may return "
                             "(query_max_result_bytes): select fewer or shorter values, or aggregate")

    def run(self, tables: dict[str, pa.Table], sql: str, params: list[Any] | None = None,
            max_rows: int | None = None, timeout: float | None = None,
            cancelled: Callable[[], bool] | None = None) -> Result:
        """Run ``sql`` on a fresh cursor that sees only ``tables`` (registered Arrow, by name).

        The database has external access off and its configuration locked, so no
        statement can reach a file, the network, an extension or a setting; the query is
        interrupted after ``timeout`` seconds or when ``cancelled()`` turns true, at most
        ``max_rows`` rows are fetched (``truncated`` says whether more were there), and the
        rows fetched may hold at most ``query_max_result_bytes`` (measured chunk by chunk as
        DuckDB computes them, so a huge answer is stopped after one chunk, not built whole).
        """
        timeout = self.settings.query_timeout_seconds if timeout is None else timeout
        budget = self.settings.query_max_result_bytes
        cur, watch = self._sandbox(tables, timeout, cancelled=cancelled)
        rows: list[tuple] = []
        size = 0
        try:
            try:
                rel = cur.execute(sql, params or [])
                if rel.description is None:
                    raise QueryRejected("The statement returned no rows: only SELECT queries are answered")
                names = [d[0] for d in rel.description]
                types = [str(d[1]) for d in rel.description]
                while max_rows is None or len(rows) <= max_rows:
                    want = FETCH_ROWS if max_rows is None else min(FETCH_ROWS, max_rows + 1 - len(rows))
                    chunk = rel.fetchmany(want)
                    size += sum(value_bytes(v) for row in chunk for v in row)
                    if size > budget:
                        raise self._too_large()
                    rows.extend(chunk)
                    if len(chunk) < want:
                        break
            except duckdb.Error as exc:
                raise self._rejected(exc, watch) from None
        except QueryRejected:
            rows.clear()
            size = budget
            raise
        finally:
            watch.stop()
            cur.close()
            if size > budget // 8:
                _give_back_memory()
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
               cancelled: Callable[[], bool] | None = None, slot: Slot | None = None,
               batch_rows: int = FETCH_ROWS) -> pa.RecordBatchReader:
        """The rows of ``sql`` as Arrow batches, produced as they are read (for exports): the same
        locked database and registered tables as :meth:`run`.

        Computing is bounded as for :meth:`run`: the first batch is computed here, before anything
        is sent (a failure is still a 400), and each later one must come within
        ``query_timeout_seconds`` of being asked for; the whole export, streaming included, within
        ``export_timeout_seconds``. A batch (``batch_rows``, one DuckDB chunk) may hold at most
        ``query_max_result_bytes``. ``cancelled()`` turning true (the client left) interrupts it.
        Columns of a type Arrow would misrepresent come as DuckDB's text (:func:`arrow_faithful`).
        The cursor is closed and ``slot`` released when the reader is exhausted, closed or fails.
        """
        cur, watch = self._sandbox(tables, self.settings.query_timeout_seconds,
                                   self.settings.export_timeout_seconds, cancelled)

        closed = threading.Event()
        streamed = [0]

        def close() -> None:
            if not closed.is_set():
                closed.set()
                watch.stop()
                cur.close()
                if slot is not None:
                    slot.release()
                if streamed[0] > self.settings.query_max_result_bytes // 8:
                    _give_back_memory()

        def read(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
            watch.computing()
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return None
            except duckdb.Error as exc:
                raise self._rejected(exc, watch) from None
            except (pa.ArrowException, OSError) as exc:  # DuckDB's errors, wrapped by the Arrow stream
                raise (watch.error() if watch.reason else QueryRejected(f"The query failed: {first_line(exc)}")
                       ) from None
            finally:
                watch.idle()
            streamed[0] += batch.nbytes
            if batch.nbytes > self.settings.query_max_result_bytes:
                _give_back_memory()
                raise QueryRejected(f"{batch.num_rows:,} rows of this result hold more than the "
                                    f"{self.settings.query_max_result_bytes / 2**20:g} MiB an export batch may "
                                    "hold (query_max_result_bytes): select fewer or shorter values")
            return batch

        try:
            try:
                # A relation streams its chunks; execute()'s result would be materialized whole first.
                reader = arrow_faithful(cur.sql(sql, params=params or None)).to_arrow_reader(batch_rows)
            except duckdb.Error as exc:
                raise self._rejected(exc, watch) from None
            first = read(reader)
        except BaseException:
            close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                batch = first
                while batch is not None:
                    yield batch
                    batch = read(reader)
            finally:
                close()

        produced = batches()
        weakref.finalize(produced, close)  # also when the export is dropped before its first byte
        return pa.RecordBatchReader.from_batches(reader.schema, produced)

    def count(self, parquet_key: str, table: pa.Table, sql: str, params: list[Any],
              known: int | None = None) -> int:
        """A ``SELECT count(*)`` over one version, remembered: versions never change, and paging
        through a filtered result asks for the same total on every page. ``known``: the count as a
        row order's filter mask found it, remembered under the same key instead of running ``sql``
        (one cache of totals, whichever path counted)."""
        key = (parquet_key, sql, repr(params))
        with self._lock:
            found = self._counts.get(key)
            if found is not None:
                self._counts.move_to_end(key)
                return found
        total = known if known is not None else self.run({"t": table}, sql, params).rows[0][0]
        with self._lock:
            self._counts[key] = total
            while len(self._counts) > _CACHE_SIZE * 4:
                self._counts.popitem(last=False)
        return total
