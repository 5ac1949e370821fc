"""HTTP: CKAN's Action API, the streamed dumps, request bodies, callers' sessions and the one mapping
of typed errors to responses. :func:`register` puts them on an app; the app itself is built by
:func:`catalog.cli.app.create_app`, which adds the web pages."""
from __future__ import annotations

import json
from typing import Callable, Iterable

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from catalog.platform import Platform


def content_security_policy(connect: Iterable[str] = (), form_action: Iterable[str] = ()) -> str:
    """The site's Content-Security-Policy; ``connect`` adds origins scripts may send requests to
    besides the site itself (the browser upload page: the object store that presigned part URLs
    name, and nothing else: every other page keeps ``default-src 'self'`` for connections).
    ``form_action`` adds origins a form's answer may redirect to: a download form posts to the site,
    which answers with a presigned URL of the object store, and browsers check that redirect too."""
    extra, targets = " ".join(connect), " ".join(form_action)
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + (f"connect-src 'self' {extra}; " if extra else "")
            + f"object-src 'none'; base-uri 'none'; form-action 'self'{' ' + targets if targets else ''}; "
            + "frame-ancestors 'none'")


# Sent with every response. The pages load scripts and styles from /static only (no inline
# script, style or event handler), so the policy can forbid everything else; a `javascript:`
# URL that got stored before URL fields were checked does not run either.
SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
}


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


API_PATHS = ("/api/", "/datastore/")
"""Paths whose clients are programs: any answer there is JSON in CKAN's envelope."""
ERROR_PAGE = "mosu.error_page"
"""``app.extensions`` key of the function that renders an error as a page (set by the web pages)."""
ErrorPage = Callable[[int, str, str], Response]

_UNROUTED = {404: ("Not Found Error", "There is no page at this address."),
             405: ("Method Not Allowed", "This address does not take that method.")}


def _unrouted(exc: HTTPException) -> Response:
    """A URL no route answers (404) or a method its route does not take (405): CKAN's envelope on
    the API's paths, the site's error page elsewhere (Flask's bare page before)."""
    status = exc.code or 404
    ckan_type, message = _UNROUTED.get(status, (exc.name, exc.description or exc.name))
    page: ErrorPage | None = current_app.extensions.get(ERROR_PAGE)
    if request.path.startswith(API_PATHS) or page is None:
        response = current_app.response_class(json.dumps({"success": False, "error": {
            "__type": ckan_type, "message": f"{message[:-1]}: {request.method} {request.path[:200]}"}}),
            status=status, mimetype="application/json")
    else:
        response = page(status, exc.name, message)
    if getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def register(app: Flask, platform: Platform) -> None:
    """Body limits, security headers, the bad-token throttle and the API's blueprints, on ``app``."""
    from catalog.access.throttle import FailureCounter
    from catalog.api import body
    from catalog.api.action_api import bp as action_bp
    from catalog.api.dump import bp as dump_bp
    from catalog.api.errors import REFUSAL_CAP
    from catalog.api.session import FAILURES
    from catalog.records.refusals import RefusalCap

    # The small limit by default; body.set_limit raises it to the upload limit for file uploads.
    app.config["MAX_CONTENT_LENGTH"] = platform.settings.max_body_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = platform.settings.max_body_bytes
    app.extensions["mosu"] = platform
    app.extensions[FAILURES] = FailureCounter(platform.settings.token_failure_limit)
    app.extensions[REFUSAL_CAP] = RefusalCap(platform.settings.audit_refusals_per_second)
    app.before_request(body.set_limit)
    app.after_request(_security_headers)
    for status in _UNROUTED:
        app.register_error_handler(status, _unrouted)
    app.register_blueprint(action_bp)
    app.register_blueprint(dump_bp)
