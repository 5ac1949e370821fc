"""API tokens: 256-bit random secrets of which only a SHA-256 digest is stored.

A fast digest is right here (unlike passwords): the secret has full entropy, so
there is nothing to brute-force, and lookups stay O(1) by unique index.
"""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import NotAuthorized
from catalog.models import ApiToken, User, utcnow

PREFIX = "mosu_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; the clear text is returned once and never stored."""
    clear = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=digest(clear))
    session.add(row)
    session.flush()
    return row, clear


def user_for_token(session: Session, token: str) -> User:
    """The active user owning ``token``; a forged, revoked or expired token is refused."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token.strip())))
    if row is None or row.revoked:
        raise NotAuthorized("Access denied: the API token is not valid")
    if row.expires is not None and row.expires <= utcnow():
        raise NotAuthorized("Access denied: the API token has expired")
    if row.user.state != "active":
        raise NotAuthorized("Access denied: the token's user is not active")
    return row.user
