"""Streamed downloads of data: CKAN's ``/datastore/dump/<resource id>`` (filtered) and
``/datastore/dump_sql`` (a researcher's query), in four formats.

Outside the Action API because the answer is a file, not a JSON envelope; errors
before the first byte still get the envelope and the status of ``catalog.errors``.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, g, request, stream_with_context

from catalog import jsoninput, validate
from catalog.actions.datastore import datastore_export
from catalog.actions.sql import datastore_sql_export
from catalog.api import body
from catalog.api.errors import error_body, error_headers
from catalog.api.session import request_context
from catalog.context import Context
from catalog.errors import BadRequest, QueryRejected

bp = Blueprint("dump", __name__)
log = logging.getLogger("catalog.api")


def _params() -> dict:
    """The query string, updated by a POST's form or JSON body (read under the small body limit)."""
    data = request.args.to_dict()
    if request.method == "POST":
        data.update(body.form(decode_json=False) if request.mimetype in body.FORM_TYPES else body.json_object())
    for key in ("filters", "q", "fields"):  # CKAN's dump takes these JSON-encoded in the query string
        value = data.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                data[key] = jsoninput.loads(value)
            except BadRequest:
                pass
    return data


def _sent(chunks: Iterator[bytes], ctx: Context, path: str) -> Iterator[bytes]:
    """``chunks``, except that a query stopped because its client left ends the stream with one INFO
    line: nobody is there to answer, and it is no server error (each was an ERROR with a traceback).
    Any other failure after the first byte still aborts the response, so the client sees it cut."""
    try:
        yield from chunks
    except QueryRejected as exc:
        if ctx.disconnected is None or not ctx.disconnected():
            raise
        log.info("export %s (request %s) stopped: %s", path, ctx.request_id, exc.message)


def _stream(export_of, extra: dict | None = None) -> Response:
    try:
        ctx = request_context()
        data = {**_params(), **(extra or {})}
        validate.unicode_text(data)
        export = export_of(ctx, data)
    except Exception as exc:  # noqa: BLE001 - typed errors map to their status, the rest to a logged 500
        status, error = error_body(exc, g.get("request_id", "-"))
        return current_app.response_class(json.dumps({"success": False, "error": error}), status=status,
                                          mimetype="application/json", headers=error_headers(exc))
    response = Response(stream_with_context(_sent(export.chunks, ctx, request.path)), mimetype=export.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@bp.route("/datastore/dump_sql", methods=["GET", "POST"])
def dump_sql() -> Response:
    """A researcher's SQL result (``sql``) as csv (default), tsv, jsonl or parquet (``format``), streamed."""
    return _stream(datastore_sql_export)


@bp.route("/datastore/dump/<resource_id>", methods=["GET", "POST"])
def dump(resource_id: str) -> Response:
    """Every matching row as csv (default), tsv, jsonl or parquet (``format``), streamed."""
    return _stream(datastore_export, {"resource_id": resource_id})
