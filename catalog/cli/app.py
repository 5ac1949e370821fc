"""The web application: the API of :mod:`catalog.api` and the pages of :mod:`webui` on one Flask app."""
from __future__ import annotations

import logging

from flask import Flask

from catalog import api
from catalog.core.settings import Settings
from catalog.platform import Platform


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> Flask:
    """Build the web app; no work happens at import time."""
    if platform is None:
        platform = Platform.open(settings or Settings.from_env())
    import webui

    app = Flask("mosu", static_folder=None)
    app.json.sort_keys = False
    logging.getLogger("catalog").setLevel(platform.settings.log_level)
    api.register(app, platform)
    webui.install(app)
    return app
