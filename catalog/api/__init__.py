"""The Flask application: the CKAN Action API and the web pages."""
from __future__ import annotations

import logging

from flask import Flask, Response

from catalog.platform import Platform
from catalog.settings import Settings

# Sent with every response. The pages load scripts and styles from /static only (no inline
# script, style or event handler), so the policy can forbid everything else; a `javascript:`
# URL that got stored before URL fields were checked does not run either.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
}


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> Flask:
    """Build the web app; no work happens at import time."""
    if platform is None:
        platform = Platform.open(settings or Settings.from_env())
    from catalog.api import body
    from catalog.api.session import FAILURES
    from catalog.throttle import FailureCounter

    app = Flask("mosu", static_folder=None)
    # The small limit by default; body.set_limit raises it to the upload limit for file uploads.
    app.config["MAX_CONTENT_LENGTH"] = platform.settings.max_body_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = platform.settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["mosu"] = platform
    app.extensions[FAILURES] = FailureCounter(platform.settings.token_failure_limit)
    logging.getLogger("catalog").setLevel(platform.settings.log_level)

    from catalog.api.action_api import bp as action_bp
    from catalog.api.dump import bp as dump_bp
    from webui import bp as web_bp

    app.before_request(body.set_limit)
    app.after_request(_security_headers)
    app.register_blueprint(action_bp)
    app.register_blueprint(dump_bp)
    app.register_blueprint(web_bp)
    return app
