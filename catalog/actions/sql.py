"""CKAN's ``datastore_search_sql``: a researcher's SELECT over the published resources they may read.

Three layers, each enough on its own for what it guards: :mod:`catalog.datastore.sqlcheck` refuses
anything but one SELECT over resource ids (before any data is touched); authorization here
admits only resources the caller may read, with one message for every refusal so that a
private, deleted or unpublished resource cannot be told from one that never existed; and
:func:`catalog.datastore.answers.sql` runs the query in the locked DuckDB (no files, no
network, no settings) on a cursor that sees only those tables, under time, memory and row
limits. A reader whose grant covers some columns is given, under the resource's id, only the
projection onto those columns: the hidden ones do not exist in their cursor, whatever the SQL
(``*``, ``COLUMNS(*)``, ``to_json(t)``, a row as a struct, a CTE), and naming one is refused as
naming any unknown column is.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from catalog.access import policy
from catalog.access.context import Context
from catalog.actions import action
from catalog.core.errors import NotAuthorized, NotFound
from catalog.datastore import answers, exports, resultcache, sqlcheck
from catalog.datastore.sandbox import json_value
from catalog.datastore.tablecache import TableRef
from catalog.db import lookup
from catalog.db.models import ResourceVersion
from catalog.records import audit
from catalog.versions.resolve import NoPublishedVersion, Read, version_to_read


def _denied(resource_id: str) -> NotAuthorized:
    """The one refusal for a table the caller may not read, whatever the reason."""
    return NotAuthorized(f"Access denied: no table \"{resource_id}\" that you may read")


@dataclass(frozen=True)
class _Readable:
    """A table of the query: the version read, and how the caller reads it (its column scope)."""
    version: ResourceVersion
    reading: policy.Reading
    license_id: str  # its dataset's, named in an export's headers
    refs: dict[str, str | None]  # the ids its audit event is filed under


def _readable_versions(ctx: Context, resource_ids: list[str]) -> dict[str, _Readable]:
    """The current published version of each resource, if the caller may read every one."""
    found: dict[str, _Readable] = {}
    if not resource_ids:
        policy.public("a query that reads no dataset (range, generate_series, literals)")
    with ctx.platform.read() as s:
        for rid in resource_ids:
            res = lookup.resource(s, rid)
            if res is None:
                raise _denied(rid)
            try:
                reading = policy.require_data(s, ctx.actor, res.package)
                found[rid] = _Readable(version_to_read(s, res, None, Read.PUBLISHED), reading, res.package.license_id,
                                       reading.refs(res.package, rid))
            except (NotFound, NotAuthorized, NoPublishedVersion):
                raise _denied(rid) from None
    return found


def _tables(readable: dict[str, _Readable]) -> dict[str, TableRef]:
    """The tables the query's cursor sees, by resource id: for a column-scoped reader only the
    projection onto their columns is registered (never the whole table, under any name), so a hidden
    column does not exist for their SQL: naming it is an unknown column, ``*`` leaves it out."""
    return {rid: TableRef(r.version.parquet_key, r.reading.columns) for rid, r in readable.items()}


def _reading(reading: policy.Reading) -> dict[str, Any]:
    """How the caller read one table of a query: a query may join datasets read under different
    grants, so each table's grant and agreement version is named here (the event's columns hold the
    first table's)."""
    out = reading.audit()
    if reading.grant_id is not None:
        out["grant_id"] = reading.grant_id
    if reading.agreement_version_id is not None:
        out["agreement_version_id"] = reading.agreement_version_id
    return out


def _audit(checked: sqlcheck.CheckedQuery, readable: dict[str, _Readable],
           schemas: dict[str, pa.Schema]) -> dict[str, Any]:
    """What the audit event of a query records: its full text and hash, the resources and versions
    read, the columns of each that it reads (from DuckDB's plan: :func:`sqlcheck.columns_read`) and
    how the caller read each (grant, agreement version, column scope)."""
    rids = checked.resource_ids
    return {"sql": checked.sql, "sql_sha256": hashlib.sha256(checked.sql.encode()).hexdigest(),
            "resources": rids, "versions": [readable[r].version.id for r in rids],
            "columns_read": sqlcheck.columns_read(checked.sql, {r: schemas[r] for r in rids}),
            "readings": {r: _reading(readable[r].reading) for r in rids}}


def _refs(readable: dict[str, _Readable]) -> dict[str, str | None]:
    """The ids a query's event is filed under: its first table's (every table and the reading of each
    are in the event's detail)."""
    return next(iter(readable.values())).refs if readable else {}


@action
def datastore_search_sql(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Run one SELECT (``sql``) over resources, each a table named by its id in double quotes:
    ``SELECT * FROM "<resource id>"``; joins across resources the caller may read.

    Each table has CKAN's ``_id`` (the 1-based row number) as its first column. At most
    ``query_max_rows`` records are returned (``records_truncated`` says whether more were
    there); a query past ``query_timeout_seconds`` or ``query_memory_limit`` is stopped
    (400). Anything but a SELECT, file or URL reads, system catalogs and table functions
    other than range/generate_series/unnest are refused (400); a table the caller may not
    read is refused (403) with the same message whether it exists or not. An answer may hold
    at most ``query_max_result_bytes`` (400 past it), and a caller may run at most
    ``query_max_concurrent_per_caller`` queries and exports at once, the site
    ``query_max_concurrent`` (429 past either).
    """
    checked = sqlcheck.check(data.get("sql"))
    readable = _readable_versions(ctx, checked.resource_ids)
    tables = _tables(readable)
    query, max_rows = ctx.platform.query, ctx.settings.query_max_rows
    schemas = answers.schemas(query, tables)  # each version loaded into the table cache, before a slot is taken
    # An identical repeatable query over the same versions, read with the same column scopes: its kept
    # answer (authorization above and the audit event below are made on every call all the same, and
    # the call takes a query slot as any query does, so the 429 limits mean what they did).
    key = None if checked.normalized is None else resultcache.key_of(
        checked.normalized, max_rows, [(rid, r.version.id, r.reading.columns) for rid, r in readable.items()])
    with query.slots.acquire(ctx.caller):
        result = answers.sql(query, tables, checked.sql, max_rows=max_rows, cache_key=key, cancelled=ctx.disconnected)
    records = [{n: json_value(v) for n, v in zip(result.names, row)} for row in result.rows]
    audit.record_read(ctx, "datastore_search_sql", "resource",
                      checked.resource_ids[0] if checked.resource_ids else None,
                      {**_audit(checked, readable, schemas), "rows": len(records), "truncated": result.truncated},
                      **_refs(readable))
    return {"sql": checked.sql, "fields": result.fields, "records": records,
            "records_truncated": result.truncated}


def datastore_sql_export(ctx: Context, data: dict[str, Any]) -> exports.Export:
    """The whole result of a researcher's ``sql`` (checked exactly as ``datastore_search_sql``) as
    ``format`` csv, tsv, jsonl or parquet, streamed with no row limit. Computing is bounded by the
    query time limit, the whole download by the export time limit; a client that disconnects stops it.
    Not an action: the ``/datastore/dump_sql`` route calls it."""
    fmt = exports.requested_format(data)
    checked = sqlcheck.check(data.get("sql"))
    readable = _readable_versions(ctx, checked.resource_ids)
    tables, query = _tables(readable), ctx.platform.query
    schemas = answers.schemas(query, tables)
    reader = answers.export_sql(query, tables, checked.sql, slot=query.slots.acquire(ctx.caller),
                                cancelled=ctx.disconnected)
    first = checked.resource_ids[0] if checked.resource_ids else None
    refs = _refs(readable)
    # A format that cannot hold a column is refused (400) before the read is recorded: nothing is read.
    export = exports.export("query", fmt, reader, tuple(r.license_id for r in readable.values()),
                            ended=exports.Ended("datastore_sql_export_end", "resource", first, {"format": fmt}, refs))
    try:
        audit.record_read(ctx, "datastore_sql_export", "resource", first,
                          {**_audit(checked, readable, schemas), "format": fmt}, **refs)
    except BaseException:
        reader.close()  # its query slot and cursor go back now, not when the reader is collected
        raise
    return export
