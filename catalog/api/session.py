"""Who is calling: the API token of a request, turned into the action :class:`Context`."""
from __future__ import annotations

import uuid

from flask import current_app, g, request

from catalog import tokens
from catalog.context import Actor, Context


def request_token() -> str | None:
    """The API token from ``Authorization`` (raw or ``Bearer``) or ``X-CKAN-API-Key``."""
    value = request.headers.get("Authorization") or request.headers.get("X-CKAN-API-Key")
    if not value:
        return None
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None


def request_context() -> Context:
    """The action context for this request; a bad token is refused, not ignored."""
    platform = current_app.extensions["mosu"]
    g.request_id = g.get("request_id") or uuid.uuid4().hex[:12]
    actor = None
    token = request_token()
    if token is not None:
        with platform.read() as s:
            actor = Actor.of(tokens.user_for_token(s, token))
    return Context(platform=platform, actor=actor, request_id=g.request_id, base_url=request.host_url,
                   client=request.remote_addr or "", disconnected=request.environ.get("waitress.client_disconnected"))
