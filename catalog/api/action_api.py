"""CKAN's Action API: ``/api/3/action/<name>`` and ``/api/action/<name>``, GET or POST."""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from catalog.actions import call
from catalog.api import body
from catalog.api.errors import error_body, error_headers, record_refusal
from catalog.api.session import request_context, site_url
from catalog.core.errors import MosuError, NotAuthorized
from catalog.datastore.exports import Export

bp = Blueprint("action_api", __name__)
_ACTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # what the log keeps of the name in the URL


def _envelope(name: str, content: dict[str, Any], status: int = 200) -> Response:
    """CKAN's envelope; ``help`` is built on the configured site URL (relative without one),
    never on the request's Host header."""
    content = {"help": f"{site_url()}/api/3/action/help_show?name={name}", **content}
    return current_app.response_class(json.dumps(content, default=str), status=status,
                                      mimetype="application/json")


def _file(export: Export) -> Response:
    """An action's answer as a file: its bytes as they are, with its content type, as a download."""
    response = current_app.response_class(export.chunks, content_type=export.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@bp.route("/api/3/action/<name>", methods=["GET", "POST"])
@bp.route("/api/action/<name>", methods=["GET", "POST"])
def dispatch(name: str) -> Response:
    params: dict[str, Any] = {}
    try:
        ctx = request_context()
        if ctx.actor is None and body.takes_upload(request):  # before a byte of the form is read
            raise NotAuthorized("Access denied: you must be logged in to upload a file")
        params = body.params()
        result = call(ctx, name, params)
        if isinstance(result, Export):  # an answer asked for as a file (the audit reports' format=csv|jsonl)
            return _file(result)
        return _envelope(name, {"success": True, "result": result})
    except MosuError as err:
        exc: BaseException = err
    except Exception as err:  # noqa: BLE001 - mapped to a 500 that hides the cause
        exc = err
    status, error = error_body(exc, g.get("request_id", "-"))
    # the action's transaction is over: a refusal's event gets its own
    # (refused before its body was read, as for a bad token: the query string's ids, never the body)
    record_refusal(exc, status, call=name if _ACTION_NAME.fullmatch(name) else None,
                   params=params or request.args.to_dict())
    response = _envelope(name, {"success": False, "error": error}, status)
    response.headers.update(error_headers(exc))
    return response
