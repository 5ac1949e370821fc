"""Streamed downloads of data: CKAN's ``/datastore/dump/<resource id>`` (filtered) and
``/datastore/dump_sql`` (a researcher's query), in four formats.

Outside the Action API because the answer is a file, not a JSON envelope; errors
before the first byte still get the envelope and the status of ``catalog.core.errors``.

Each export leaves two audit events with the same request id: the read (``datastore_export``,
``datastore_sql_export``), durable before the first byte, and its end (``..._end``: rows read, bytes
sent, whether it finished), written when the stream ends and, when it finishes, before the final
chunk, so a client that received the whole file can already find it.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, g, request, stream_with_context

from catalog.access.context import Context
from catalog.actions import run_checked
from catalog.actions.datastore import datastore_export
from catalog.actions.sql import datastore_sql_export
from catalog.api import body
from catalog.api.errors import error_body, error_headers, record_refusal
from catalog.api.session import request_context
from catalog.core import jsoninput, licenses, validate
from catalog.core.errors import BadRequest, MosuError, QueryRejected
from catalog.datastore.exports import Export
from catalog.records import audit

try:  # the WSGI server's way to end a response unfinished, without a traceback in its log
    from waitress.channel import ClientDisconnected as _Abort
except ImportError:  # another server: it logs the exception its own way, and still closes the connection
    _Abort = ConnectionAbortedError

log = logging.getLogger(__name__)

bp = Blueprint("dump", __name__)


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


def _stream(name: str, export_of, extra: dict | None = None) -> Response:
    export: Export | None = None
    data: dict = dict(extra or {})
    try:
        ctx = request_context()
        data = {**_params(), **(extra or {})}
        validate.unicode_text(data)
        export = run_checked(ctx, name, export_of, data)  # refused, as an action is, without a permission check
        first = next(export.chunks, b"")  # an error up to here still gets its status and envelope
    except Exception as exc:  # noqa: BLE001 - typed errors map to their status, the rest to a logged 500
        if export is not None:  # its read was recorded: so is its end, with nothing sent
            _ended(ctx, export, exc.message if isinstance(exc, MosuError) else "internal error")
        return _error(exc, name, data)
    # content_type, not mimetype: Flask appends "; charset=utf-8" to a text mimetype that already has one
    response = Response(stream_with_context(_rest(first, export, ctx, request.path)),
                        content_type=export.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    for link in licenses.link_headers(export.license_ids):
        response.headers.add("Link", link)
    return response


def _error(exc: Exception, name: str, data: dict) -> Response:
    """The error answered before the first byte; a refusal's audit event is written here (an error
    after the headers went out is no refusal: the read was allowed, and recorded, and then stopped)."""
    status, error = error_body(exc, g.get("request_id", "-"))
    record_refusal(exc, status, call=name, params=data)
    return current_app.response_class(json.dumps({"success": False, "error": error}), status=status,
                                      mimetype="application/json", headers=error_headers(exc))


END_RETRIES = (0.2, 0.5, 1.0, 2.0)  # seconds between tries of an export's end event: ~4 s in all


def _ended(ctx: Context, export: Export, error: str | None) -> None:
    """Record the end of ``export`` (finished when ``error`` is None). The data has left by now, so a
    failure to write this event is logged, not raised: there is nothing left to refuse. A write the
    catalog refuses for a moment (its lock held past the busy timeout by a checkpoint or an ingest) is
    tried again for a few seconds, so a brief lock does not leave a read without its end."""
    end = export.ended
    if end is None:
        return
    detail = {**end.detail, "rows": export.tally.rows, "bytes": export.tally.bytes, "complete": error is None,
              **({"error": error} if error else {})}
    for attempt, pause in enumerate((*END_RETRIES, None)):
        try:
            with ctx.platform.write.begin() as s:
                audit.record(s, ctx, end.action, end.object_type, end.object_id, detail,
                             outcome="ok" if error is None else "failed", **end.refs)
            return
        except Exception:  # noqa: BLE001 - see above
            if pause is None:
                log.exception("the end of export %s (request %s) could not be recorded after %d tries",
                              end.action, ctx.request_id, attempt + 1)
                return
            time.sleep(pause)


def _rest(first: bytes, export: Export, ctx: Context, path: str) -> Iterator[bytes]:
    """``first``, then the rest of the export. An error after the headers went out is logged here, once,
    and ends the download *unfinished*: the connection is closed without the final empty chunk, so the
    client sees a broken transfer (requests: ``ChunkedEncodingError``), never a file that looks whole.
    Waitress would log any other exception with a traceback as "Exception while serving"; its
    ``ClientDisconnected`` is the one it takes as "stop here, close the connection" with one info line.
    A query stopped because its client left ends with one INFO line: nobody is there to answer.
    The export's end is recorded (:func:`_ended`) however it ends; bytes count once the server took them."""
    chunks, tally = export.chunks, export.tally
    error: str | None = "the client went away"  # unless it finishes or fails otherwise
    try:
        if first:
            yield first
            tally.bytes += len(first)
        for chunk in chunks:
            yield chunk
            tally.bytes += len(chunk)
        error = None
    except Exception as exc:  # the status is sent: all that is left is to log and abort
        error = exc.message if isinstance(exc, MosuError) else "internal error"
        if isinstance(exc, QueryRejected) and ctx.disconnected is not None and ctx.disconnected():
            # nobody is there to answer, and it is no server error: one INFO line, no traceback
            log.info("export %s (request %s) stopped: %s", path, ctx.request_id, exc.message)
            return
        request_id = g.get("request_id", "-")
        if isinstance(exc, MosuError):
            log.warning("export %s stopped after the headers: %s", request_id, exc)
        else:
            log.exception("export %s failed after the headers", request_id)
        raise _Abort(f"export {request_id} stopped") from None
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        _ended(ctx, export, error)


@bp.route("/datastore/dump_sql", methods=["GET", "POST"])
def dump_sql() -> Response:
    """A researcher's SQL result (``sql``) as csv (default), tsv, jsonl or parquet (``format``), streamed."""
    return _stream("datastore_sql_export", datastore_sql_export)


@bp.route("/datastore/dump/<resource_id>", methods=["GET", "POST"])
def dump(resource_id: str) -> Response:
    """Every matching row as csv (default), tsv, jsonl or parquet (``format``), streamed."""
    return _stream("datastore_export", datastore_export, {"resource_id": resource_id})
