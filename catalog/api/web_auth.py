"""Web sign-in: user name and password, a server-side session cookie, CSRF tokens for forms.

Browsers are signed in by :mod:`catalog.access.web_sessions`; this module is its HTTP edge. The
rules, in one place:

- The session cookie is ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the site is served over
  https, and has a new value at every sign-in (a value planted before sign-in is worth nothing).
- Every form a page posts carries a CSRF token (``csrf_token``), checked before any handler runs
  (:func:`check_csrf`): the session's own token when signed in, else a random ``mosu_csrf`` cookie
  the form repeats (so the sign-in form itself cannot be posted from another site either).
- The API and dumps accept the cookie only with the session's token in ``X-CSRF-Token``.
- Wrong passwords are counted per account and per client address (in each web process's memory,
  like the bad-token counter); past either limit sign-in waits 15 minutes and answers 429. An
  unknown user name costs the same argon2 verification as a known one, and gets the same message.
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from flask import Response, current_app, g, request
from sqlalchemy import select

from catalog.access import passwords, web_sessions
from catalog.access.context import Actor, Context
from catalog.access.throttle import FailureCounter, client_key
from catalog.core.errors import CsrfRefused, TooManyRequests, WrongPassword
from catalog.db.models import User, utcnow
from catalog.records import audit

log = logging.getLogger("catalog.api")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANON_CSRF = "mosu_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SIGN_IN_WINDOW = 15 * 60.0  # seconds over which failed sign-ins are counted, and the wait past the limit
COUNTERS = "mosu.sign_in_failures"  # app.extensions: (per account, per address) FailureCounters
# What an unknown user name is checked against, so that it costs what a wrong password costs.
_DUMMY_HASH = passwords.hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Signed:
    """The signed-in session of this request: its id (the SHA-256 of the cookie), CSRF token, actor."""

    session_id: str
    csrf: str
    actor: Actor


def install(app, settings) -> None:
    """The counters of failed sign-ins and the hook that sets a new anonymous CSRF cookie."""
    app.extensions[COUNTERS] = (FailureCounter(settings.sign_in_failures_per_account, window=SIGN_IN_WINDOW),
                                FailureCounter(settings.sign_in_failures_per_address, window=SIGN_IN_WINDOW))
    app.after_request(_set_anonymous_csrf)


def lifetime() -> web_sessions.Lifetime:
    settings = current_app.extensions["mosu"].settings
    return web_sessions.Lifetime(settings.web_session_hours, settings.web_session_idle_minutes)


def _secure() -> bool:
    return (current_app.extensions["mosu"].settings.site_url or "").lower().startswith("https:")


def current() -> Signed | None:
    """The request's live session, looked up once per request; its ``last_seen`` moves at most once a
    minute (a failed write of it never fails the request)."""
    if "mosu_signed" in g:
        return g.mosu_signed
    signed, due = None, False
    value = request.cookies.get(web_sessions.COOKIE)
    if value:
        platform = current_app.extensions["mosu"]
        now = utcnow()
        with platform.read() as s:
            row = web_sessions.find(s, value, lifetime(), now)
            if row is not None:
                signed = Signed(row.id, row.csrf, Actor.of(row.user))
                due = web_sessions.seen_is_due(row, now)
        if due:
            try:
                with platform.write.begin() as s:
                    web_sessions.record_seen(s, signed.session_id, now)
            except Exception:  # noqa: BLE001 - see above
                log.warning("could not record the use of a web session", exc_info=True)
    g.mosu_signed = signed
    return signed


def session_actor(api: bool) -> Actor | None:
    """The signed-in actor of this request for the policy, or None: on the API only with the
    session's CSRF token in the header."""
    signed = current()
    if signed is None:
        return None
    if api and not web_sessions.csrf_matches(signed.csrf, request.headers.get(HEADER)):
        return None
    return signed.actor


def csrf_token() -> str:
    """The token this request's forms carry: the session's, or the browser's anonymous one (made
    now, and set as a cookie with the response, when it has none)."""
    signed = current()
    if signed is not None:
        return signed.csrf
    token = request.cookies.get(ANON_CSRF, "")
    if not (20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()):
        token = g.get("mosu_new_csrf") or secrets.token_urlsafe(32)
        g.mosu_new_csrf = token
    return token


def _set_anonymous_csrf(response: Response) -> Response:
    token = g.get("mosu_new_csrf")
    if token:
        response.set_cookie(ANON_CSRF, token, httponly=True, samesite="Strict", secure=_secure(), path="/")
    return response


def check_csrf() -> None:
    """Refuse a page's form post (any method but GET, HEAD, OPTIONS) without the token of its page."""
    if request.method in SAFE_METHODS:
        return
    signed = current()
    expected = signed.csrf if signed is not None else request.cookies.get(ANON_CSRF)
    given = request.headers.get(HEADER) or request.form.get(FIELD)
    if not web_sessions.csrf_matches(expected, given):
        from catalog.api.session import request_context

        request_context()  # the refusal's audit event names the signed-in user it was aimed at
        raise CsrfRefused("This form has expired or did not come from this site (its security token is "
                          "missing or wrong): reload the page and try again")


def _context(actor: Actor | None) -> Context:
    return Context(platform=current_app.extensions["mosu"], actor=actor, request_id=g.get("request_id", "-"),
                   client=request.remote_addr or "", user_agent=(request.user_agent.string or "")[:300])


def sign_in(name: str, password: str) -> tuple[str, Actor]:
    """Check ``name`` and ``password`` and start a session: (cookie value, actor). A wrong pair raises
    :class:`WrongPassword` (403, recorded as ``sign_in_failure`` where it is answered); too many raise
    :class:`TooManyRequests` (429) without checking the password at all."""
    platform = current_app.extensions["mosu"]
    per_account, per_address = current_app.extensions[COUNTERS]
    account, address = "user:" + name.strip().lower()[:100], client_key(request.remote_addr)
    wait = max(per_account.retry_after(account), per_address.retry_after(address))
    if wait:
        raise TooManyRequests(f"Too many failed sign-ins: try again in {max(1, round(wait / 60))} minutes",
                              retry_after=wait, limit="sign_in")
    with platform.read() as s:
        user = s.scalar(select(User).where(User.name == name.strip())) if name.strip() else None
        if user is None:
            passwords.check_password(_DUMMY_HASH, password)
            reason, user_id = "unknown_user", None
        else:
            user_id = user.id
            reason = ("wrong_password" if not passwords.check_password(user.password_hash, password)
                      else "inactive_user" if user.state != "active" else None)
    if reason is not None:
        per_account.fail(account)
        per_address.fail(address)
        raise WrongPassword("Wrong username or password", reason, None, user_id)
    with platform.write.begin() as s:
        web_sessions.prune(s, lifetime())  # sessions that ended by time: each sign-in sweeps them
        user = s.get(User, user_id)
        actor = Actor.of(user)
        row, value = web_sessions.start(s, user, lifetime(), request.remote_addr or "",
                                        request.user_agent.string or "")
        audit.record(s, _context(actor), "sign_in", "user", user.id,
                     {"method": "password", "session": row.id[:12]})
    g.mosu_signed = Signed(row.id, row.csrf, actor)
    return value, actor


def sign_out() -> None:
    """End this browser's session, if it has one, and record it."""
    value = request.cookies.get(web_sessions.COOKIE)
    signed = current()
    if not value or signed is None:
        return
    with current_app.extensions["mosu"].write.begin() as s:
        if web_sessions.end(s, value) is not None:
            audit.record(s, _context(signed.actor), "sign_out", "user", signed.actor.id,
                         {"session": signed.session_id[:12]})
    g.mosu_signed = None


def set_session_cookie(response: Response, value: str) -> None:
    response.set_cookie(web_sessions.COOKIE, value, max_age=int(dt.timedelta(hours=lifetime().hours).total_seconds()),
                        httponly=True, samesite="Lax", secure=_secure(), path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(web_sessions.COOKIE, path="/", httponly=True, samesite="Lax", secure=_secure())
