"""Typed errors -> CKAN error envelopes, in one place for the whole action API."""
from __future__ import annotations

import logging

from catalog.core.errors import MosuError, ValidationError, http_status

log = logging.getLogger("catalog.api")


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
