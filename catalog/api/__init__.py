"""The Flask application: the CKAN Action API and the web pages."""
from __future__ import annotations

import logging

from flask import Flask

from catalog.platform import Platform
from catalog.settings import Settings

FORM_OVERHEAD = 1024 * 1024  # multipart boundaries and fields around the file


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> Flask:
    """Build the web app; no work happens at import time."""
    if platform is None:
        platform = Platform.open(settings or Settings.from_env())
    app = Flask("mosu", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = platform.settings.max_upload_bytes + FORM_OVERHEAD
    app.json.sort_keys = False
    app.extensions["mosu"] = platform
    logging.getLogger("catalog").setLevel(platform.settings.log_level)

    from catalog.api.action_api import bp as action_bp
    from catalog.api.dump import bp as dump_bp
    from webui import bp as web_bp

    app.register_blueprint(action_bp)
    app.register_blueprint(dump_bp)
    app.register_blueprint(web_bp)
    return app
