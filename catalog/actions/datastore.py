"""The CKAN DataStore API over published Parquet, answered by DuckDB."""
from __future__ import annotations

import urllib.parse
from typing import Any

from sqlalchemy import select

from catalog import audit, dictize, validate
from catalog.actions import action
from catalog.actions.resources import _resource_and_package
from catalog.context import Context
from catalog.dictionary import DICTIONARY_KEY, field_info
from catalog.errors import NotFound, ValidationError
from catalog.models import ResourceVersion

MAX_LIMIT = 32_000


def _version(s, resource_id: str, key: str) -> ResourceVersion:
    """A published version of the resource by number or id."""
    query = select(ResourceVersion).where(ResourceVersion.resource_id == resource_id)
    query = query.where(ResourceVersion.number == int(key)) if key.isdigit() else query.where(ResourceVersion.id == key)
    version = s.scalar(query)
    if version is None:
        raise NotFound(f"Version {key} of this resource not found")
    if version.parquet_key is None:
        raise ValidationError({"version": [f"Version {version.number} is {version.status}, not published"]})
    return version


@action
def resource_version_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every version of resource ``id``, newest first: number, status, sha256, size, rows, schema,
    times and whether it is the current one. Earlier versions stay readable with
    ``datastore_search(version=N)``."""
    with ctx.platform.read() as s:
        res, _ = _resource_and_package(s, ctx, validate.required_id(data))
        versions = s.scalars(select(ResourceVersion).where(ResourceVersion.resource_id == res.id)
                             .order_by(ResourceVersion.number.desc()))
        return [dictize.version(v, res.current_version_id) for v in versions]


@action
def datastore_search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Page through the published rows of ``resource_id`` (``limit`` default 100, max 32000; ``offset``;
    ``version``: an earlier version's number or id, default the current one).

    Each record carries CKAN's ``_id``: its 1-based row number in the file.
    """
    resource_id = validate.required_id(data, "resource_id")
    limit = validate.integer(data.get("limit"), "limit", 100, 0, MAX_LIMIT)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        res, _ = _resource_and_package(s, ctx, resource_id)
        info = field_info((res.extras or {}).get(DICTIONARY_KEY))
        if data.get("version") not in (None, ""):
            version = _version(s, res.id, str(data["version"]))
        else:
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
    link = {"resource_id": res.id, **({"version": data["version"]} if data.get("version") not in (None, "") else {})}
    return {
        "resource_id": res.id, "version": version.number, "include_total": True, "records_format": "objects",
        "limit": limit, "offset": offset,
        "fields": [{"id": "_id", "type": "int"},
                   *({**f, "info": info[f["id"]]} if f["id"] in info else f for f in page.fields)],
        "records": records, "total": version.row_count, "total_was_estimated": False,
        "_links": {
            "start": f"{path}?{urllib.parse.urlencode({**link, 'limit': limit})}",
            "next": f"{path}?{urllib.parse.urlencode({**link, 'limit': limit, 'offset': next_offset})}",
        },
    }
