"""Who is calling: the API token of a request, turned into the action :class:`Context`."""
from __future__ import annotations

import logging
import uuid

from flask import current_app, g, request

from catalog.access import tokens
from catalog.access.context import Actor, Context
from catalog.access.throttle import FailureCounter, client_key
from catalog.core.errors import NotAuthorized, TooManyRequests
from catalog.db.models import utcnow

log = logging.getLogger("catalog.api")
FAILURES = "mosu.token_failures"  # the app's FailureCounter of bad tokens per client address


def request_token() -> str | None:
    """The API token from ``Authorization`` (raw or ``Bearer``) or ``X-CKAN-API-Key``."""
    value = request.headers.get("Authorization") or request.headers.get("X-CKAN-API-Key")
    if not value:
        return None
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None


def site_url() -> str:
    """The configured public URL without a trailing slash, or "" (relative links): never the Host
    header, which the client chooses."""
    return (current_app.extensions["mosu"].settings.site_url or "").rstrip("/")


def _actor_for(platform, token: str) -> Actor:
    """The token's actor; bad tokens are counted per client address and, past the limit, the
    address gets 429 without its token being looked at (see :mod:`catalog.access.throttle`)."""
    failures: FailureCounter = current_app.extensions[FAILURES]
    key = client_key(request.remote_addr)
    wait = failures.retry_after(key)
    if wait:
        raise TooManyRequests(f"Too many requests with an invalid API token from this address; "
                              f"retry in {wait} seconds", retry_after=wait, limit="bad_token")
    with platform.read() as s:
        try:
            row = tokens.verify(s, token)
        except NotAuthorized:  # InvalidToken: answered 403 and recorded as sign_in_failure where it is answered
            failures.fail(key)
            raise
        actor, token_id, last_used = Actor.of(row.user), row.id, row.last_used
    now = utcnow()
    if tokens.use_is_due(last_used, now):
        try:
            with platform.write.begin() as s:
                tokens.record_use(s, token_id, now)
        except Exception:  # noqa: BLE001 - recording the use must never fail the request
            log.warning("could not record the use of API token %s", token_id, exc_info=True)
    return actor


def request_context() -> Context:
    """The action context for this request; a bad token is refused, not ignored. Kept on ``g`` for
    the audit event of a refusal (:func:`catalog.api.errors.record_refusal`).

    An API token wins. Without one, a signed-in browser's session cookie names the caller: on pages,
    whose forms are checked for their CSRF token before any handler runs (:func:`web_auth.check_csrf`),
    and on the API and dumps only when the request carries the session's CSRF token in
    ``X-CSRF-Token`` (the pages' scripts send it). A cookie alone never signs an API call in, so a
    link or form on another site cannot act as the user there (CKAN's API accepts GET for any action)."""
    from catalog.api import web_auth

    platform = current_app.extensions["mosu"]
    g.request_id = g.get("request_id") or uuid.uuid4().hex[:12]
    token = request_token()
    if token is not None:
        actor = _actor_for(platform, token)
    else:
        actor = web_auth.session_actor(api=request.path.startswith(("/api/", "/datastore/")))
    g.mosu_context = _context(platform, actor)
    return g.mosu_context


def _context(platform, actor: Actor | None) -> Context:
    return Context(platform=platform, actor=actor, request_id=g.request_id,
                   client=request.remote_addr or "",
                   user_agent=(request.user_agent.string or "")[:300],
                   disconnected=request.environ.get("waitress.client_disconnected"))


def current_context() -> Context:
    """This request's context, or, when none was made (its token was refused), an anonymous one with
    its envelope: address, user agent, request id."""
    ctx = g.get("mosu_context")
    if ctx is None:
        g.request_id = g.get("request_id") or uuid.uuid4().hex[:12]
        ctx = _context(current_app.extensions["mosu"], None)
    return ctx
