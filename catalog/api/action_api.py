"""CKAN's Action API: ``/api/3/action/<name>`` and ``/api/action/<name>``, GET or POST."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from catalog.actions import call
from catalog.api.errors import error_body
from catalog.api.session import request_context
from catalog.errors import BadRequest, MosuError, PayloadTooLarge
from catalog.uploads import Upload

bp = Blueprint("action_api", __name__)
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def _params() -> dict[str, Any]:
    """The action's data dict from the query string, a JSON body, or a form."""
    if request.method == "GET":
        return request.args.to_dict()
    if request.mimetype not in FORM_TYPES:  # CKAN reads any other body as JSON
        raw = request.get_data(cache=False)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Bad request - JSON Error: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("Bad request - JSON Error: the request body must be a JSON object")
        return body
    data: dict[str, Any] = request.form.to_dict()
    for key, value in list(data.items()):  # ckanapi JSON-encodes nested values in forms
        if isinstance(value, str) and value[:1] in "[{":
            try:
                data[key] = json.loads(value)
            except ValueError:
                pass
    upload = request.files.get("upload")
    if upload is not None:
        data["upload"] = Upload(upload.stream, upload.filename or "", upload.mimetype)
    return data


def _envelope(name: str, body: dict[str, Any], status: int = 200) -> Response:
    base = request.host_url.rstrip("/")
    body = {"help": f"{base}/api/3/action/help_show?name={name}", **body}
    return current_app.response_class(json.dumps(body, default=str), status=status,
                                      mimetype="application/json")


@bp.route("/api/3/action/<name>", methods=["GET", "POST"])
@bp.route("/api/action/<name>", methods=["GET", "POST"])
def dispatch(name: str) -> Response:
    try:
        ctx = request_context()
        result = call(ctx, name, _params())
        return _envelope(name, {"success": True, "result": result})
    except RequestEntityTooLarge:
        exc: BaseException = PayloadTooLarge(
            f"The request exceeds the upload limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes")
    except MosuError as err:
        exc = err
    except Exception as err:  # noqa: BLE001 - mapped to a 500 that hides the cause
        exc = err
    status, error = error_body(exc, g.get("request_id", "-"))
    return _envelope(name, {"success": False, "error": error}, status)
