"""Site status and action help."""
from __future__ import annotations

import inspect
from typing import Any

from catalog.access import policy
from catalog.access.context import Context
from catalog.actions import action, get_action
from catalog.core.validate import required_id

VERSION = "0.1.0"


@action
def status_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return the site's version and settings that clients may rely on."""
    policy.public("site status")
    return {
        "site_title": "Mosu Open Data", "site_description": "Open data sharing platform",
        "site_url": ctx.settings.site_url or "", "ckan_version": "2.10.0",
        "mosu_version": VERSION, "locale_default": "en", "extensions": ["datastore"],
    }


@action
def help_show(ctx: Context, data: dict[str, Any]) -> str:
    """Return the help string (docstring) of the action named ``name``."""
    policy.public("action help")
    return inspect.getdoc(get_action(required_id(data, "name"))) or ""
