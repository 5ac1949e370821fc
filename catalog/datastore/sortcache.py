"""Row orders of cached versions, so a sorted page is a ``take`` instead of a sort of every row.

Sorting 10M rows for each page of ``datastore_search(sort="price desc")`` cost about 110 ms
of CPU on a quiet machine and 450 ms under load: the web grid's sort click and "next page
while sorted" missed the 100 ms page-change goal. Versions never change, so the order of
one column is computed once (``pyarrow.compute.sort_indices``, about 0.5 s for 2M floats)
and every later page in that order, at any depth, takes ``limit`` rows by position.

The order is the one the SQL path's ``ORDER BY col ASC|DESC NULLS LAST, _id`` gives
(:func:`catalog.datastore.searchspec.build`): nulls last in both directions, and rows with
equal keys in file order (ascending ``_id``) in both directions, so a page is the same
whichever path answers it, and paging through ties is stable. Arrow's sort is stable,
which gives the ties; where Arrow and DuckDB differ (a float NaN, which DuckDB ranks above
every number, comes first in a descending order) it is put right here.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

Key = tuple[str, str, bool]  # (parquet key, column, descending)


def sortable(kind: pa.DataType) -> bool:
    """Whether Arrow orders values of ``kind`` exactly as DuckDB's ORDER BY does (numbers, text
    compared byte by byte, booleans, dates, times and timestamps); other types stay on SQL."""
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind)
            or pa.types.is_large_string(kind) or pa.types.is_boolean(kind) or pa.types.is_date(kind)
            or pa.types.is_timestamp(kind) or pa.types.is_time(kind) or pa.types.is_decimal(kind))


def maskable(kind: pa.DataType) -> bool:
    """Whether an Arrow ``is_in`` over a column of ``kind`` matches exactly the rows DuckDB's
    ``column IN (CAST(? AS type), ...)`` does, once the values are cast by DuckDB (integers, text,
    booleans, dates; floats too, but see :func:`filter_mask` for NaN and zero). Timestamps (time
    zones), decimals and the rest stay on SQL."""
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind)
            or pa.types.is_large_string(kind) or pa.types.is_boolean(kind) or pa.types.is_date32(kind))


def mask_values(table: pa.Table, typed: dict[str, list]) -> dict[int, pa.Array] | None:
    """For each filter, its column's position in ``table`` and its values as an Arrow array of the
    column's type (pure): ``typed[column]`` holds them as DuckDB cast them to that type. None when
    Arrow might not match as DuckDB does: then the caller filters in SQL.

    As in SQL, a null value matches nothing (it is left out here). A float value that is NaN or zero
    stays on SQL: DuckDB holds NaN equal to NaN and -0.0 equal to 0.0, which Arrow's hashing need not."""
    out: dict[int, pa.Array] = {}
    for name, values in typed.items():
        index = table.schema.get_field_index(name)
        if index < 0 or not maskable(kind := table.schema.field(index).type):
            return None
        present = [v for v in values if v is not None]
        if pa.types.is_floating(kind) and any(v != v or v == 0 for v in present):
            return None
        try:
            out[index] = pa.array(present, type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return None
    return out or None


def filter_mask(table: pa.Table, wanted: dict[int, pa.Array]) -> pa.Array:
    """Which rows of ``table`` the filters keep (pure): each column ``index`` holding one of
    ``wanted[index]`` (from :func:`mask_values`), every filter at once; a null in a column is never
    kept, as in SQL."""
    mask = None
    for index, values in wanted.items():
        kept = pc.is_in(table.column(index), value_set=values, skip_nulls=True)
        mask = kept if mask is None else pc.and_(mask, kept)
    mask = pc.fill_null(mask, False)
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def filtered_order(order: pa.Array, mask: pa.Array) -> pa.Array:
    """The positions of the rows ``mask`` keeps, in ``order``'s order (pure): the mask taken in
    the order, its true places picked, and the order at those places."""
    return order.take(pc.indices_nonzero(mask.take(order)))


def row_order(column: pa.ChunkedArray, descending: bool) -> pa.Array:
    """Row positions of ``column`` in ``ORDER BY column ASC|DESC NULLS LAST, position`` order
    (pure), as uint32 when the rows allow (half the memory of Arrow's uint64)."""
    order = pc.sort_indices(column, sort_keys=[("x", "descending" if descending else "ascending", "at_end")])
    if descending and pa.types.is_floating(column.type):
        nans = pc.sum(pc.is_nan(column)).as_py() or 0
        if nans:  # Arrow puts NaN after the numbers (before nulls); DuckDB ranks NaN highest: first
            numbers = len(column) - column.null_count
            order = pa.concat_arrays([order.slice(numbers - nans, nans), order.slice(0, numbers - nans),
                                      order.slice(numbers)])
    return order.cast(pa.uint32()) if len(column) < 2**32 else order


def take_rows(table: pa.Table, positions: pa.Array) -> pa.Table:
    """``table.take(positions)`` for a few positions of a table of many chunks, touching only the
    chunks that hold them: pyarrow's take over a chunked table cost 10 ms for 100 rows of 2M (it
    grows with the table), this under 2 ms."""
    wanted = np.asarray(positions.to_numpy(zero_copy_only=False), dtype=np.int64)
    if not len(wanted) or table.num_columns == 0:
        return table.take(positions)
    batches = table.to_batches()
    starts = np.cumsum([0] + [b.num_rows for b in batches])
    chunk = np.searchsorted(starts, wanted, side="right") - 1
    parts, placed = [], []
    for c in np.unique(chunk):
        picked = np.nonzero(chunk == c)[0]
        parts.append(batches[c].take(pa.array(wanted[picked] - starts[c])))
        placed.append(picked)
    gathered = pa.Table.from_batches(parts, schema=table.schema)
    back = np.empty(len(wanted), dtype=np.int64)
    back[np.concatenate(placed)] = np.arange(len(wanted))
    return gathered.take(pa.array(back))


class SortCache:
    """Row orders by (version, column, direction), least recently used dropped past ``max_bytes``.

    An order is built in the background, once per key, the first time a page asks for it; that
    page and any asked for while it builds are sorted in SQL (a top-N, ~110 ms at 10M rows),
    so the first sort click never waits for the whole order (seconds at 10M rows). Orders are
    dropped with their version when the table cache evicts it (:meth:`drop`).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._orders: OrderedDict[Key, pa.Array] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._building: dict[Key, threading.Thread] = {}
        self.builds = 0  # orders computed since start (how tests see that a repeat reused one)
        self.hits = 0  # pages taken from a kept order
        # Orders of the rows some filters keep (a kept order's positions those filters pass), so the
        # next page of the same filtered sort is a slice, not a mask over every row again (about 30 ms
        # at 2M rows). A quarter of the budget, least recently used dropped.
        self._selections: OrderedDict[tuple, pa.Array] = OrderedDict()
        self._selection_bytes = 0
        self.selection_hits = 0

    def fits(self, rows: int) -> bool:
        """Whether an order of ``rows`` rows may be kept at all (else the caller sorts in SQL)."""
        return rows < 2**32 and rows * 4 <= self.max_bytes

    def kept(self, parquet_key: str, name: str, descending: bool) -> bool:
        """Whether the order of column ``name`` of ``parquet_key`` in this direction is built and kept."""
        with self._lock:
            return (parquet_key, name, descending) in self._orders

    def order(self, parquet_key: str, column: pa.ChunkedArray, name: str, descending: bool) -> pa.Array | None:
        """The kept row order of column ``name`` of version ``parquet_key`` (its values: ``column``),
        or None while it is not built yet: then its build is started, once, in the background."""
        key = (parquet_key, name, descending)
        with self._lock:
            found = self._orders.get(key)
            if found is not None:
                self._orders.move_to_end(key)
                self.hits += 1
                return found
            if key in self._building:
                return None
            thread = threading.Thread(target=self._build, args=(key, column), daemon=True,
                                      name=f"sort-order-{name}")
            self._building[key] = thread
        thread.start()
        return None

    def selection(self, key: tuple, compute: Callable[[], pa.Array]) -> pa.Array:
        """The kept positions under ``key`` (its first item the version's parquet key), else
        ``compute()``'d and kept while they fit a quarter of the budget."""
        with self._lock:
            found = self._selections.get(key)
            if found is not None:
                self._selections.move_to_end(key)
                self.selection_hits += 1
                return found
        positions = compute()
        limit = self.max_bytes // 4
        if positions.nbytes <= limit:
            with self._lock:
                if key not in self._selections:
                    self._selections[key] = positions
                    self._selection_bytes += positions.nbytes
                while self._selection_bytes > limit:
                    _, dropped = self._selections.popitem(last=False)
                    self._selection_bytes -= dropped.nbytes
        return positions

    def _build(self, key: Key, column: pa.ChunkedArray) -> None:
        try:
            order = row_order(column, key[2])
        except Exception:  # noqa: BLE001 - an order is only a speed-up: the SQL path keeps answering
            log.exception("could not build the row order of %s %s", key[0], key[1])
            with self._lock:
                self._building.pop(key, None)
            return
        with self._lock:
            self.builds += 1
            self._orders[key] = order
            self._bytes += order.nbytes
            while self._bytes > self.max_bytes and len(self._orders) > 1:
                _, dropped = self._orders.popitem(last=False)
                self._bytes -= dropped.nbytes
            self._building.pop(key, None)

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until the orders being built are kept (tests and benchmarks: what a later page sees)."""
        with self._lock:
            threads = list(self._building.values())
        for thread in threads:
            thread.join(timeout)

    def drop(self, evicted: Callable[[str], bool]) -> None:
        """Forget the orders of the versions ``evicted(parquet_key)`` names (the table cache
        dropped their files): the orders stay bounded with the tables they index."""
        with self._lock:
            for key in [k for k in self._orders if evicted(k[0])]:
                self._bytes -= self._orders.pop(key).nbytes
            for key in [k for k in self._selections if evicted(k[0])]:
                self._selection_bytes -= self._selections.pop(key).nbytes
