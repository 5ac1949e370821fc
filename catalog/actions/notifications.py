"""The caller's inbox: notifications of access requests, decisions, grants and their expiry.

Each user sees and marks only their own entries; there is no parameter naming another user, and
another user's entry id is answered as one that does not exist (it changes nothing and reveals
nothing). Entries are written by the events themselves (:mod:`catalog.records.notify`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.core import validate
from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from catalog.db.models import Notification, User, utcnow
from catalog.records import audit

MAX_LIMIT = 1000
MAX_IDS = 1000


def _owner(s, ctx: Context, what: str) -> User:
    """The signed-in caller's user record, checked as the account it manages."""
    actor = policy.require_user(ctx.actor, what)
    user = s.get(User, actor.id) if actor.id else None
    if user is None:  # the site operator (the CLI) has no account, hence no inbox
        raise NotAuthorized(f"Access denied: only a signed-in user may {what}")
    return policy.require(s, actor, Permission.MANAGE_ACCOUNT, user)


def notification_dict(n: Notification) -> dict[str, Any]:
    return {"id": n.id, "kind": n.kind, "subject": n.subject, "data": n.data or {},
            "created": n.created.isoformat(), "read": n.read.isoformat() if n.read else None,
            "is_read": n.read is not None}


def _unread(s, user_id: str) -> int:
    return s.scalar(select(func.count(Notification.id)).where(Notification.user_id == user_id,
                                                             Notification.read.is_(None))) or 0


@action
def notification_list(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """The caller's notifications, newest first: ``{"count", "unread_count", "results"}``;
    ``unread_only`` keeps the unread ones (``count`` then counts those), ``limit`` (default 20, at
    most 1,000) and ``offset`` page through them."""
    errors = validate.Errors()
    unread_only = validate.boolean(data.get("unread_only"), errors, "unread_only")
    errors.raise_if_any()
    limit = validate.integer(data.get("limit"), "limit", 20, 0, MAX_LIMIT)
    offset = validate.integer(data.get("offset"), "offset", 0, 0)
    with ctx.platform.read() as s:
        user = _owner(s, ctx, "read notifications")
        where = [Notification.user_id == user.id]
        if unread_only:
            where.append(Notification.read.is_(None))
        count = s.scalar(select(func.count(Notification.id)).where(*where)) or 0
        rows = s.scalars(select(Notification).where(*where)
                         .order_by(Notification.created.desc(), Notification.id.desc())
                         .limit(limit).offset(offset))
        return {"count": count, "unread_count": _unread(s, user.id),
                "results": [notification_dict(n) for n in rows]}


@action
def notification_mark_read(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Mark the caller's notifications ``ids`` (one id or a list) read, or every one with
    ``all=true``. An id that is not the caller's (another user's, or none at all) is Not Found and
    nothing is marked. Returns ``{"marked", "unread_count"}``; marking a read entry again is a no-op."""
    errors = validate.Errors()
    everything = validate.boolean(data.get("all"), errors, "all")
    errors.raise_if_any()
    ids = list(dict.fromkeys(validate.strings(data.get("ids", data.get("id")), "ids")))
    if not everything and not ids:
        raise ValidationError({"ids": ["Give the notification ids to mark read, or all=true"]})
    if len(ids) > MAX_IDS:
        raise ValidationError({"ids": [f"At most {MAX_IDS} ids at once"]})
    now = utcnow()
    with ctx.platform.write.begin() as s:
        user = _owner(s, ctx, "mark notifications read")
        where = [Notification.user_id == user.id, Notification.read.is_(None)]
        if not everything:
            mine = set(s.scalars(select(Notification.id).where(Notification.user_id == user.id,
                                                               Notification.id.in_(ids))))
            if len(mine) != len(ids):
                raise NotFound("Notification not found")
            where.append(Notification.id.in_(ids))
        marked = s.execute(update(Notification).where(*where).values(read=now)
                           .execution_options(synchronize_session=False)).rowcount
        audit.record(s, ctx, "notification_mark_read", "user", user.id,
                     {"all": True, "marked": marked} if everything else {"ids": ids, "marked": marked})
        return {"marked": marked, "unread_count": _unread(s, user.id)}
