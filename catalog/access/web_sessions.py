"""Signed-in browsers: server-side sessions behind a random cookie.

The cookie holds 256 random bits; the database keeps only their SHA-256 (as for API tokens), so
reading the catalog database signs nobody in, and signing out, revoking a user or an operator's
``DELETE`` ends a session at once, which a signed client-side cookie could not do. Each session has
its own CSRF token for the forms it is shown. A session ends ``hours`` after sign-in or after
``idle`` minutes without a request, whichever comes first; its ``last_seen`` is written at most once
a minute (the same reasoning as :data:`catalog.access.tokens.USE_RECORD_INTERVAL`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from catalog.access.tokens import use_is_due
from catalog.db.models import User, WebSession, utcnow

COOKIE = "mosu_session"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: ``hours`` after sign-in at most, ``idle_minutes`` between requests."""

    hours: int
    idle_minutes: int

    def alive(self, row: WebSession, now: dt.datetime) -> bool:
        """Pure: whether ``row`` is still a session at ``now``."""
        return now < row.expires and now - row.last_seen < dt.timedelta(minutes=self.idle_minutes)


def start(session: Session, user: User, lifetime: Lifetime, client: str, user_agent: str) -> tuple[WebSession, str]:
    """A new session for ``user``: its row and the cookie value (returned once, never stored). A new
    one at every sign-in, so a session id planted before sign-in is worth nothing after (fixation)."""
    value = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(id=digest(value), user_id=user.id, csrf=secrets.token_urlsafe(32), created=now,
                     last_seen=now, expires=now + dt.timedelta(hours=lifetime.hours), client=client[:64],
                     user_agent=user_agent[:300])
    session.add(row)
    session.flush()
    return row, value


def find(session: Session, value: str, lifetime: Lifetime, now: dt.datetime | None = None) -> WebSession | None:
    """The live session of cookie ``value`` whose user is active, or None (unknown, ended, expired,
    idle too long, or its user deactivated)."""
    if not value or len(value) > 100:
        return None
    row = session.scalar(select(WebSession).where(WebSession.id == digest(value)))
    now = now or utcnow()
    if row is None or not lifetime.alive(row, now) or row.user.state != "active":
        return None
    return row


def seen_is_due(row: WebSession, now: dt.datetime) -> bool:
    """Pure: whether a request at ``now`` should move ``last_seen``."""
    return use_is_due(row.last_seen, now)


def record_seen(session: Session, session_id: str, now: dt.datetime) -> None:
    session.execute(update(WebSession).where(WebSession.id == session_id).values(last_seen=now))


def end(session: Session, value: str) -> str | None:
    """End the session of cookie ``value`` (sign-out); its user id, or None if there was none."""
    row = session.scalar(select(WebSession).where(WebSession.id == digest(value)))
    if row is None:
        return None
    session.delete(row)
    return row.user_id


def end_all(session: Session, user_id: str) -> int:
    """End every session of a user (password changed, user deleted); how many ended."""
    return session.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount or 0


def prune(session: Session, lifetime: Lifetime, now: dt.datetime | None = None) -> int:
    """Delete sessions that can no longer be used; how many."""
    now = now or utcnow()
    idle = now - dt.timedelta(minutes=lifetime.idle_minutes)
    return session.execute(delete(WebSession).where((WebSession.expires <= now) |
                                                    (WebSession.last_seen <= idle))).rowcount or 0


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Pure: whether a form's or header's CSRF token is the expected one (constant time)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
