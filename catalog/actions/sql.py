"""CKAN's ``datastore_search_sql``: a researcher's SELECT over the published resources they may read.

Three layers, each enough on its own for what it guards: :mod:`catalog.datastore.sqlcheck` refuses
anything but one SELECT over resource ids (before any data is touched); authorization here
admits only resources the caller may read, with one message for every refusal so that a
private, deleted or unpublished resource cannot be told from one that never existed; and
:meth:`catalog.datastore.sandbox.QueryService.run` runs the query in the locked DuckDB (no files, no
network, no settings) on a cursor that sees only those tables, under time, memory and row
limits.
"""
from __future__ import annotations

from typing import Any

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.core.errors import NotAuthorized
from catalog.datastore import exports, sqlcheck
from catalog.datastore.sandbox import json_value
from catalog.db import lookup
from catalog.db.models import ResourceVersion
from catalog.records import audit
from catalog.versions.resolve import NoPublishedVersion, Read, version_to_read


def _denied(resource_id: str) -> NotAuthorized:
    """The one refusal for a table the caller may not read, whatever the reason."""
    return NotAuthorized(f"Access denied: no table \"{resource_id}\" that you may read")


def _readable_versions(ctx: Context, resource_ids: list[str]) -> dict[str, ResourceVersion]:
    """The current published version of each resource, if the caller may read every one."""
    versions: dict[str, ResourceVersion] = {}
    if not resource_ids:
        policy.public("a query that reads no dataset (range, generate_series, literals)")
    with ctx.platform.read() as s:
        for rid in resource_ids:
            res = lookup.resource(s, rid)
            if res is None or not policy.allowed(s, ctx.actor, Permission.READ_DATA, res.package):
                raise _denied(rid)
            try:
                versions[rid] = version_to_read(s, res, None, Read.PUBLISHED)
            except NoPublishedVersion:
                raise _denied(rid) from None
    return versions


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
    versions = _readable_versions(ctx, checked.resource_ids)
    tables = {rid: ctx.platform.query.tables.table(v.parquet_key) for rid, v in versions.items()}
    with ctx.platform.query.slots.acquire(ctx.caller):
        result = ctx.platform.query.run(tables, checked.sql, max_rows=ctx.settings.query_max_rows,
                                        cancelled=ctx.disconnected)
    records = [{n: json_value(v) for n, v in zip(result.names, row)} for row in result.rows]
    with ctx.platform.write.begin() as s:
        audit.record(s, ctx.actor_name, "datastore_search_sql", "resource",
                     checked.resource_ids[0] if checked.resource_ids else None,
                     {"resources": checked.resource_ids,
                      "versions": [versions[r].id for r in checked.resource_ids],
                      "rows": len(records), "truncated": result.truncated})
    return {"sql": checked.sql, "fields": result.fields, "records": records,
            "records_truncated": result.truncated}


def datastore_sql_export(ctx: Context, data: dict[str, Any]) -> exports.Export:
    """The whole result of a researcher's ``sql`` (checked exactly as ``datastore_search_sql``) as
    ``format`` csv, tsv, jsonl or parquet, streamed with no row limit. Computing is bounded by the
    query time limit, the whole download by the export time limit; a client that disconnects stops it.
    Not an action: the ``/datastore/dump_sql`` route calls it."""
    fmt = exports.requested_format(data)
    checked = sqlcheck.check(data.get("sql"))
    versions = _readable_versions(ctx, checked.resource_ids)
    tables = {rid: ctx.platform.query.tables.table(v.parquet_key) for rid, v in versions.items()}
    reader = ctx.platform.query.stream(tables, checked.sql, cancelled=ctx.disconnected,
                                       slot=ctx.platform.query.slots.acquire(ctx.caller))
    with ctx.platform.write.begin() as s:
        audit.record(s, ctx.actor_name, "datastore_sql_export", "resource",
                     checked.resource_ids[0] if checked.resource_ids else None,
                     {"resources": checked.resource_ids, "versions": [versions[r].id for r in checked.resource_ids],
                      "format": fmt})
    return exports.export("query", fmt, reader)
