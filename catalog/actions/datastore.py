"""The CKAN DataStore API over published Parquet, answered by DuckDB."""
from __future__ import annotations

import urllib.parse
from typing import Any

from catalog import audit, validate
from catalog.actions import action
from catalog.actions.resources import _resource_and_package
from catalog.context import Context
from catalog.errors import NotFound
from catalog.models import ResourceVersion

MAX_LIMIT = 32_000


@action
def datastore_search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Page through the published rows of ``resource_id`` (``limit`` default 100, max 32000; ``offset``).

    Each record carries CKAN's ``_id``: its 1-based row number in the file.
    """
    resource_id = validate.required_id(data, "resource_id")
    limit = validate.integer(data.get("limit"), "limit", 100, 0, MAX_LIMIT)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        res, _ = _resource_and_package(s, ctx, resource_id)
        version = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
        if version is None or version.parquet_key is None:
            raise NotFound(f"Resource \"{res.id}\" was not found in the datastore"
                           + (f" (ingest {res.ingest_status})" if res.ingest_status else ""))
    page = ctx.platform.query.page(version.parquet_key, limit, offset)
    with ctx.platform.write.begin() as s:
        audit.record(s, ctx.actor_name, "datastore_search", "resource", res.id,
                     {"version_id": version.id, "limit": limit, "offset": offset, "rows": len(page.records)})
    records = [{"_id": offset + i + 1, **row} for i, row in enumerate(page.records)]
    path, next_offset = "/api/3/action/datastore_search", offset + limit
    return {
        "resource_id": res.id, "include_total": True, "records_format": "objects",
        "limit": limit, "offset": offset,
        "fields": [{"id": "_id", "type": "int"}, *page.fields],
        "records": records, "total": version.row_count, "total_was_estimated": False,
        "_links": {
            "start": f"{path}?{urllib.parse.urlencode({'resource_id': res.id, 'limit': limit})}",
            "next": f"{path}?{urllib.parse.urlencode({'resource_id': res.id, 'limit': limit, 'offset': next_offset})}",
        },
    }
