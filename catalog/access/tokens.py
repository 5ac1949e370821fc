"""API tokens: 256-bit random secrets of which only a SHA-256 digest is stored.

A fast digest is right here (unlike passwords): the secret has full entropy, so
there is nothing to brute-force, and lookups stay O(1) by unique index.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from catalog.core.errors import InvalidToken
from catalog.db.models import ApiToken, User, utcnow

PREFIX = "mosu_"
# ``last_access`` is recorded at most this often per token: recording every use would turn every
# authenticated read into a write (on SQLite, one writer at a time for the whole site), and a
# minute is as precise as "when was this token last used" needs to be.
USE_RECORD_INTERVAL = dt.timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; the clear text is returned once and never stored."""
    clear = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=digest(clear))
    session.add(row)
    session.flush()
    return row, clear


def verify(session: Session, token: str) -> ApiToken:
    """The valid token row for ``token``; a forged, revoked or expired token, or one whose
    user is not active, is refused."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token.strip())))
    if row is None or row.revoked:
        raise InvalidToken("Access denied: the API token is not valid", "unknown" if row is None else "revoked",
                           *((row.id, row.user_id) if row is not None else ()))
    if row.expires is not None and row.expires <= utcnow():
        raise InvalidToken("Access denied: the API token has expired", "expired", row.id, row.user_id)
    if row.user.state != "active":
        raise InvalidToken("Access denied: the token's user is not active", "inactive_user", row.id, row.user_id)
    return row


def user_for_token(session: Session, token: str) -> User:
    """The active user owning ``token``; a forged, revoked or expired token is refused."""
    return verify(session, token).user


def use_is_due(last_used: dt.datetime | None, now: dt.datetime) -> bool:
    """Pure: whether a use at ``now`` should be recorded (see :data:`USE_RECORD_INTERVAL`)."""
    return last_used is None or now - last_used >= USE_RECORD_INTERVAL


def record_use(session: Session, token_id: str, now: dt.datetime) -> None:
    """Set the token's ``last_used`` to ``now`` unless another request recorded a use within
    the interval meanwhile (the condition is in the UPDATE, so concurrent requests write once)."""
    session.execute(update(ApiToken).where(
        ApiToken.id == token_id,
        or_(ApiToken.last_used.is_(None), ApiToken.last_used <= now - USE_RECORD_INTERVAL)).values(last_used=now))
