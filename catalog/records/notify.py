"""Notifications: an inbox entry per user, written in the transaction of the event it reports.

Access requests, decisions, grants and revocations tell the people concerned here (requesters,
and the organization's admins and editors who decide). Writing the entry with the event means a
decision is never made without its notice; the e-mail copy goes through the outbox (sent by the
worker, with retries) so a mail failure never loses the event.
"""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy.orm import Session

from catalog.db.models import Notification


def notify(s: Session, user_ids: Iterable[str], kind: str, subject: str,
           data: dict[str, Any] | None = None) -> list[str]:
    """Add one inbox entry per user (each user once), in the caller's transaction; their ids.

    ``kind`` is a dotted event name (``access_request.created``), ``subject`` a one-line summary a
    person reads, ``data`` the ids the entry points at."""
    ids = []
    for user_id in dict.fromkeys(u for u in user_ids if u):
        entry = Notification(user_id=user_id, kind=kind, subject=subject[:500], data=dict(data or {}))
        s.add(entry)
        s.flush()
        ids.append(entry.id)
    return ids
