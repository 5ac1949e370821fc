"""What query execution answers, for requests that name versions by :class:`TableRef`.

The actions (:mod:`catalog.actions.datastore`, :mod:`catalog.actions.sql`) authorize, record the read
and render JSON or CSV; everything that touches a version's rows goes through these functions: a
search's page and total, a researcher's SQL (and its result cache), the schemas a query is checked
against, and exports as streams of Arrow batches. A request carries the version's object key and the
reader's column scope, never rows, so the process holding the table cache and the locked DuckDB
(:class:`~catalog.datastore.sandbox.QueryService`, in the web process today) is the only one that
loads data — the seam along which query execution moves to query nodes.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace

import pyarrow as pa

from catalog.datastore import searchspec
from catalog.datastore.sandbox import Page, QueryService, Result, result_bytes
from catalog.datastore.slots import Slot
from catalog.datastore.tablecache import TableRef, scoped

Cancelled = Callable[[], bool] | None


def table(query: QueryService, ref: TableRef) -> pa.Table:
    """The version ``ref`` names as its reader sees it (only their columns), from the table cache."""
    return scoped(query.tables.table(ref.key), ref.columns)


def schemas(query: QueryService, refs: Mapping[str, TableRef]) -> dict[str, pa.Schema]:
    """Each named table's schema as its reader sees it (what a query's columns are resolved against)."""
    return {name: table(query, ref).schema for name, ref in refs.items()}


def page(query: QueryService, ref: TableRef, limit: int, offset: int) -> Page:
    """Rows ``offset .. offset+limit`` in file order, read from the row groups that hold them."""
    return query.page(ref.key, limit, offset, ref.columns)


def search(query: QueryService, ref: TableRef, spec: searchspec.Spec,
           cancelled: Cancelled = None) -> tuple[Result, int | None]:
    """The page ``spec`` asks for (filters, text query, fields, sort, distinct) and, when it wants
    one, the total: taken from a column's kept row order when one answers it (:func:`_sorted`), else
    computed by DuckDB (:func:`_queried`). Either way the page is the same."""
    return _sorted(query, ref, spec, cancelled) or _queried(query, ref, spec, cancelled)


def _queried(query: QueryService, ref: TableRef, spec: searchspec.Spec,
             cancelled: Cancelled) -> tuple[Result, int | None]:
    """The page and total of ``spec`` computed by DuckDB over the version's (scoped) table."""
    rows = table(query, ref)
    sql, params, total_sql, total_params = searchspec.build(spec, query.describe(rows))  # q: the text columns shown
    result = query.run({"t": rows}, sql, params, cancelled=cancelled)
    total = query.count(ref.key, rows, total_sql, total_params) if spec.include_total else None
    return result, total


def _sorted(query: QueryService, ref: TableRef, spec: searchspec.Spec,
            cancelled: Cancelled) -> tuple[Result, int | None] | None:
    """A page sorted by one column, of every row or of the rows ``filters`` keep, taken from the
    column's kept row order rather than sorted again (:meth:`QueryService.sorted_rows`); None when
    that cannot answer it. The taken rows go through the same SELECT of ``fields`` and the same
    rendering as :func:`_queried`'s, in the same order (nulls last, ties by ``_id``), so a page is the
    same whichever answers it; a filtered total is remembered under the SQL path's key."""
    if len(spec.sort) != 1 or spec.q or spec.distinct or not spec.limit:
        return None
    (column, descending), = spec.sort
    found = query.sorted_rows(ref.key, column, descending, spec.limit, spec.offset, ref.columns, spec.filters or None)
    if found is None:
        return None
    rows, matched = found
    sql, params, _, _ = searchspec.build(replace(spec, sort=[], offset=0, filters={}), query.describe(rows))
    result = query.run({"t": rows}, sql, params, cancelled=cancelled)  # rows kept in the order taken
    if not spec.include_total:
        return result, None
    if not spec.filters:
        return result, matched
    whole = table(query, ref)
    _, _, total_sql, total_params = searchspec.build(spec, query.describe(whole))
    return result, query.count(ref.key, whole, total_sql, total_params, known=matched)


def sql(query: QueryService, refs: Mapping[str, TableRef], text: str, *, max_rows: int | None,
        cache_key: Hashable | None = None, cancelled: Cancelled = None) -> Result:
    """A researcher's checked SELECT over the tables ``refs`` names (each under its name, as its
    reader sees it). With ``cache_key`` (an identical repeatable query over the same versions and
    scopes: :func:`catalog.datastore.resultcache.key_of`), a kept answer is given again."""
    result = None if cache_key is None else query.results.get(cache_key)
    if result is None:
        result = query.run({name: table(query, ref) for name, ref in refs.items()}, text, max_rows=max_rows,
                           cancelled=cancelled)
        if cache_key is not None:
            query.results.put(cache_key, result, result_bytes(result))
    return result


def export_search(query: QueryService, ref: TableRef, spec: searchspec.Spec, *, slot: Slot | None,
                  cancelled: Cancelled = None) -> pa.RecordBatchReader:
    """Every row ``spec`` selects, as Arrow batches computed while they are read; ``slot`` is given
    back when the stream ends, or now if it cannot start."""
    try:
        rows = table(query, ref)
        text, params, _, _ = searchspec.build(spec, query.describe(rows))
    except BaseException:
        _give_back(slot)
        raise
    return query.stream({"t": rows}, text, params, cancelled=cancelled, slot=slot)


def export_sql(query: QueryService, refs: Mapping[str, TableRef], text: str, *, slot: Slot | None,
               cancelled: Cancelled = None) -> pa.RecordBatchReader:
    """A researcher's whole result, as Arrow batches computed while they are read (no row limit)."""
    try:
        tables = {name: table(query, ref) for name, ref in refs.items()}
    except BaseException:
        _give_back(slot)
        raise
    return query.stream(tables, text, cancelled=cancelled, slot=slot)


def _give_back(slot: Slot | None) -> None:
    if slot is not None:
        slot.release()

