"""Request bodies: the upload limit for file uploads, a small limit for everything else.

A 30 MiB JSON body to ``status_show`` raised the web process's peak RSS from 169 to 1,005 MiB
(``bench/body.py``): ``json.loads`` turns each byte of ``[{},{},…]`` into ~28 bytes of Python
objects. Only multipart uploads to the three actions that take a file need the upload limit;
every other body (JSON, forms, the dump routes' POST) is refused past ``max_body_bytes``,
from its ``Content-Length`` or, for a chunked body, while it is read (werkzeug's limited
stream), and JSON deeper than :data:`catalog.core.jsoninput.MAX_DEPTH` is a bad request.
"""
from __future__ import annotations

from typing import Any

from flask import Request, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from catalog.core import jsoninput
from catalog.core.errors import BadRequest, PayloadTooLarge
from catalog.versions.uploads import Upload

FORM_OVERHEAD = 1024 * 1024  # multipart boundaries and fields around the file
UPLOAD_ACTIONS = frozenset({"resource_create", "resource_update", "resource_patch"})
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
MAX_FORM_PARTS = 32
"""Fields of one form, the file included: a resource has about fifteen. Each text field is held in
memory (up to ``max_body_bytes``), so an upload form of werkzeug's default 1,000 fields of 1 MiB
each could hold a gigabyte before any action ran (60 fields took the web process to 1.9 GB)."""


def takes_upload(req: Request) -> bool:
    """Whether this request may carry a file: multipart, to an action that takes one."""
    return (req.endpoint == "action_api.dispatch" and (req.view_args or {}).get("name") in UPLOAD_ACTIONS
            and req.mimetype == "multipart/form-data")


def set_limit() -> None:
    """``before_request``: the largest body this request may have (werkzeug enforces it on read)."""
    settings = current_app.extensions["mosu"].settings
    request.max_content_length = (settings.max_upload_bytes + FORM_OVERHEAD if takes_upload(request)
                                  else settings.max_body_bytes)
    request.max_form_parts = MAX_FORM_PARTS


def _too_large() -> PayloadTooLarge:
    if takes_upload(request):
        return PayloadTooLarge(f"The request exceeds the upload limit of {request.max_content_length} bytes "
                               f"or has more than {MAX_FORM_PARTS} form fields")
    return PayloadTooLarge(f"The request body exceeds the limit of {request.max_content_length} bytes "
                           "(uploads: multipart/form-data to resource_create, resource_update or resource_patch)")


def json_object() -> dict[str, Any]:
    """The JSON object in the body ({} for an empty body); anything else is a bad request."""
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise _too_large() from None
    if not raw.strip():
        return {}
    body = jsoninput.loads(raw)
    if not isinstance(body, dict):
        raise BadRequest("Bad request - JSON Error: the request body must be a JSON object")
    return body


def form(decode_json: bool = True) -> dict[str, Any]:
    """A form's fields (ckanapi JSON-encodes nested values; those are decoded) and its ``upload``."""
    try:
        data: dict[str, Any] = request.form.to_dict()
        upload = request.files.get("upload")
    except RequestEntityTooLarge:
        raise _too_large() from None
    limit = current_app.extensions["mosu"].settings.max_body_bytes
    if sum(len(k) + len(v) for k, v in data.items()) > limit:  # the fields beside a file: no more than a body
        raise PayloadTooLarge(f"The form's fields exceed the limit of {limit} bytes (the file itself may be larger)")
    if decode_json:
        for key, value in list(data.items()):
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    data[key] = jsoninput.loads(value)
                except BadRequest:
                    pass  # not JSON after all: kept as text, as before
    if upload is not None:
        data["upload"] = Upload(upload.stream, upload.filename or "", upload.mimetype)
    return data


def params() -> dict[str, Any]:
    """The data dict of an action: the query string (GET), a form, or a JSON body (CKAN reads
    any other content type as JSON)."""
    if request.method == "GET":
        return request.args.to_dict()
    if request.mimetype in FORM_TYPES:
        return form()
    return json_object()
