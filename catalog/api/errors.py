"""Typed errors -> CKAN error envelopes, in one place for the whole action API."""
from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request

from catalog.access.throttle import client_key
from catalog.core.errors import MosuError, ValidationError, http_status
from catalog.records import refusals

log = logging.getLogger("catalog.api")
REFUSAL_CAP = "mosu.refusal_cap"
"""``app.extensions`` key of the :class:`~catalog.records.refusals.RefusalCap` of refusal events."""


def error_body(exc: BaseException, request_id: str) -> tuple[int, dict]:
    """The HTTP status and the CKAN ``error`` object for ``exc``.

    Unknown errors are logged with the request id and never shown to the caller.
    """
    status, ckan_type = http_status(exc)
    if status == 500:
        log.exception("internal error in request %s", request_id, exc_info=exc)
        return 500, {"__type": ckan_type, "message": f"Internal Server Error (request {request_id})"}
    error: dict = {"__type": ckan_type, "message": exc.message if isinstance(exc, MosuError) else str(exc)}
    if isinstance(exc, ValidationError):
        error.update(exc.field_errors)
    return status, error


def error_headers(exc: BaseException) -> dict[str, str]:
    """HTTP headers an error answer carries: ``Retry-After`` when the error says when to retry."""
    retry_after = getattr(exc, "retry_after", None)
    return {"Retry-After": str(int(retry_after))} if retry_after else {}


def record_refusal(exc: BaseException, status: int, *, call: str | None = None,
                   params: dict[str, Any] | None = None) -> None:
    """The audit event of a refused call (:mod:`catalog.records.refusals`), for every place that
    answers an error: call it after the action's transaction rolled back. Anything that is no
    refusal (a validation error, an unknown id) records nothing; a failure to write is logged, never
    raised. ``call``: the action's name; a web page is named by its route's pattern."""
    if refusals.kind(exc, (params or {}).get("sql")) is None:
        return
    from catalog.api import API_PATHS
    from catalog.api.session import current_context

    rule = request.url_rule
    page = rule.rule if rule is not None and not request.path.startswith(API_PATHS) else None
    refusals.refused(current_context(), exc, status, call=call or getattr(exc, "action", None), page=page,
                     params=params, cap=current_app.extensions.get(REFUSAL_CAP),
                     client_key=client_key(request.remote_addr))
