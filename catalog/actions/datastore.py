"""The CKAN DataStore API over published Parquet, answered by DuckDB."""
from __future__ import annotations

import csv
import io
import json
import urllib.parse
from typing import Any

from sqlalchemy import select

from catalog.access import columns, policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.core import coltypes, validate
from catalog.core.dictionary import DICTIONARY_KEY, field_info
from catalog.datastore import answers, exports, searchspec
from catalog.datastore.exports import neutralise
from catalog.datastore.sandbox import json_value
from catalog.datastore.searchspec import ROW_ID
from catalog.datastore.tablecache import TableRef
from catalog.db import dictize
from catalog.db.models import ResourceVersion
from catalog.records import audit
from catalog.versions.resolve import Read, version_to_read


@action
def resource_version_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every version of resource ``id``, newest first: number, status, sha256, size, rows, schema,
    times and whether it is the current one. Earlier versions stay readable with
    ``datastore_search(version=N)``."""
    with ctx.platform.read() as s:
        res, pkg = policy.require_resource(s, ctx.actor, validate.required_id(data))
        editor = policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, pkg)
        scope = policy.shown_columns(s, ctx.actor, pkg)
        versions = s.scalars(select(ResourceVersion).where(ResourceVersion.resource_id == res.id)
                             .order_by(ResourceVersion.number.desc()))
        out = [dictize.version(v, res.current_version_id, editor) for v in versions]
        for entry in out:
            entry["schema"] = columns.schema(entry["schema"], scope)
        return out


def _published(s, res, data: dict[str, Any]) -> ResourceVersion:
    """The version a datastore call reads: ``version`` (number or id) if published, or the current one."""
    return version_to_read(s, res, data.get("version"), Read.PUBLISHED)


def _read_detail(version: ResourceVersion, spec: searchspec.Spec, reading: policy.Reading) -> dict[str, Any]:
    """What the audit event of a preview or export records of what was read: the version, the columns
    returned, the filters, text query, sort and distinct that chose the rows, and how the caller read."""
    out: dict[str, Any] = {"version_id": version.id, "version": version.number, "fields": spec.fields}
    if spec.filters:
        out["filters"] = spec.filters
    if spec.q:
        out["q"] = spec.q
    if spec.sort:
        out["sort"] = [f"{name} desc" if descending else name for name, descending in spec.sort]
    if spec.distinct:
        out["distinct"] = True
    return {**out, **reading.audit()}


def _format_records(rows: list[list[Any]], names: list[str], fmt: str) -> Any:
    if fmt == "objects":
        return [dict(zip(names, row)) for row in rows]
    if fmt == "lists":
        return rows
    out = io.StringIO()
    writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
    for row in rows:  # CKAN's csv/tsv records: no header; text that a spreadsheet would run is defused
        writer.writerow(["" if v is None else neutralise(v) if isinstance(v, str)
                         else json.dumps(v) if isinstance(v, (dict, list)) else v for v in row])
    return out.getvalue()


@action
def datastore_search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Search the published rows of ``resource_id`` (CKAN's DataStore API).

    ``filters`` (column: value or [values]), ``q`` (text in any text column, or
    {column: text}), ``fields``, ``sort`` ("col desc, col2"), ``distinct``,
    ``limit`` (default 100, max 32000), ``offset``, ``include_total`` (default
    true), ``records_format`` (objects, lists, csv, tsv), ``version`` (an earlier
    version's number or id). Each record carries ``_id``, its 1-based row number in
    the file. A plain page is read from the row groups that hold it (a deep page
    costs what the first does); anything else runs in the locked DuckDB and takes a
    query slot (429 past ``query_max_concurrent_per_caller`` or ``query_max_concurrent``).
    At most 1,000 filter values in all (``searchspec.MAX_FILTER_VALUES``).
    """
    resource_id = validate.required_id(data, "resource_id")
    with ctx.platform.read() as s:
        res, pkg, reading = policy.require_resource_data(s, ctx.actor, resource_id)
        info = field_info((res.extras or {}).get(DICTIONARY_KEY))
        version = _published(s, res, data)
        names = columns.visible((c["id"] for c in version.schema or []), reading.columns)
    # A hidden column is not among the table's columns: naming it in fields, filters, q, sort or
    # distinct is refused as naming any unknown column is, and the default fields leave it out.
    spec = searchspec.parse(data, [ROW_ID, *names])
    query, ref = ctx.platform.query, TableRef(version.parquet_key, reading.columns)
    if spec.plain_page:
        page = answers.page(query, ref, spec.limit, spec.offset)
        types = {ROW_ID: "int", **{f["id"]: f["type"] for f in page.fields}}
        rows = [[spec.offset + i + 1 if f == ROW_ID else record.get(f) for f in spec.fields]
                for i, record in enumerate(page.records)]
        total = version.row_count
    else:
        # A query, like datastore_search_sql's: it takes one of the caller's and the site's slots
        # (eight filtered searches at once left status_show unanswered for 90 s).
        with query.slots.acquire(ctx.caller):
            result, total = answers.search(query, ref, spec, ctx.disconnected)
        types = {f["id"]: f["type"] for f in result.fields}
        rows = [[json_value(v) for v in row] for row in result.rows]
    audit.record_read(ctx, "datastore_search", "resource", res.id,
                      {**_read_detail(version, spec, reading), "limit": spec.limit, "offset": spec.offset,
                       "rows": len(rows)}, **reading.refs(pkg, res.id))
    echoed = {k: data[k] for k in ("filters", "q", "fields", "sort", "distinct", "version") if data.get(k) not in
              (None, "")}
    next_offset = spec.offset + spec.limit
    path, link = "/api/3/action/datastore_search", {"resource_id": res.id, **{
        k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in echoed.items()}}
    out = {
        "resource_id": res.id, **echoed, "version": version.number, "include_total": spec.include_total,
        "records_format": spec.records_format, "limit": spec.limit, "offset": spec.offset,
        "fields": [{"id": f, "type": types.get(f, "text"), **({"info": info[f]} if f in info else {})}
                   for f in spec.fields],
        "records": _format_records(rows, spec.fields, spec.records_format),
        "total_was_estimated": False,
        "_links": {
            "start": f"{path}?{urllib.parse.urlencode({**link, 'limit': spec.limit})}",
            "next": f"{path}?{urllib.parse.urlencode({**link, 'limit': spec.limit, 'offset': next_offset})}",
        },
    }
    if spec.include_total:
        out["total"] = total
    return out


@action
def datastore_info(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Resource ``id``'s columns (CKAN's ``datastore_info``: ``meta`` and ``fields`` with type and
    data-dictionary ``info``), each with its summary from the quality profile when there is one."""
    resource_id = validate.required_id(data)
    with ctx.platform.read() as s:
        res, _, reading = policy.require_resource_data(s, ctx.actor, resource_id)
        info = field_info((res.extras or {}).get(DICTIONARY_KEY))
        version = _published(s, res, data)
        profile = {c["name"]: c for c in ((version.quality or {}).get("profile") or {}).get("columns", [])}
        meta = {"id": res.id, "count": version.row_count, "version": version.number,
                "size": version.size, "table_type": "BASE TABLE", "aliases": []}
        fields = []
        for column in columns.schema(version.schema, reading.columns) or []:
            name, summary = column["id"], profile.get(column["id"])
            entry = {"id": name, "type": summary["type"] if summary else coltypes.of_arrow(column["type"]).ckan,
                     "schema": {"native_type": column["type"]}}
            if name in info:
                entry["info"] = info[name]
            if summary:
                entry["summary"] = {k: v for k, v in summary.items() if k not in ("name", "type")}
            fields.append(entry)
    return {"meta": meta, "fields": fields, "schema": {f["id"]: f["type"] for f in fields}}


def datastore_export(ctx: Context, data: dict[str, Any]) -> exports.Export:
    """Every row of ``resource_id`` matching ``filters``/``q`` (with ``fields``, ``sort``,
    ``distinct``, ``version``; ``limit``/``offset`` optional) as ``format`` csv, tsv, jsonl or
    parquet, streamed from the locked DuckDB: no whole result is held in memory.

    Not an action (its result is a stream): the ``/datastore/dump/<id>`` route calls it.
    The permission check and the audit event come before the first byte.
    """
    resource_id = validate.required_id(data, "resource_id")
    fmt = exports.requested_format(data)
    with ctx.platform.read() as s:
        res, pkg, reading = policy.require_resource_data(s, ctx.actor, resource_id)
        version = _published(s, res, data)
        names = columns.visible((c["id"] for c in version.schema or []), reading.columns)
        license_id = pkg.license_id
    spec = searchspec.parse({**data, "include_total": False}, [ROW_ID, *names], default_limit=None,
                                 default_fields=names)
    query = ctx.platform.query
    reader = answers.export_search(query, TableRef(version.parquet_key, reading.columns), spec,
                                   slot=query.slots.acquire(ctx.caller), cancelled=ctx.disconnected)
    refs = reading.refs(pkg, res.id)
    # A format that cannot hold a column is refused (400) before the read is recorded: nothing is read.
    export = exports.export(exports.file_stem(res.name, res.id, version.number), fmt, reader, (license_id,),
                            ended=exports.Ended("datastore_export_end", "resource", res.id, {"format": fmt}, refs))
    try:
        audit.record_read(ctx, "datastore_export", "resource", res.id,
                          {**_read_detail(version, spec, reading), "format": fmt,
                           **({"limit": spec.limit} if spec.limit is not None else {}),
                           **({"offset": spec.offset} if spec.offset else {})}, **refs)
    except BaseException:
        reader.close()  # its query slot and cursor go back now, not when the reader is collected
        raise
    return export
