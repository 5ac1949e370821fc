"""Notifications: an inbox entry per user, written in the transaction of the event it reports.

Access requests, decisions, grants and revocations tell the people concerned here (requesters,
and the organization's admins and editors who decide). Writing the entry with the event means a
decision is never made without its notice; the e-mail copy goes through the outbox
(:mod:`catalog.records.outbox`, sent by the worker with retries) so a mail failure never loses
the event.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.core.settings import Settings
from catalog.db.models import AccessGrant, Group, Member, Notification, Package, User, utcnow
from catalog.records import outbox

log = logging.getLogger(__name__)

EXPIRY_NOTICE_DAYS = 14
EXPIRING = "access_grant.expiring"
MANAGERS = ("admin", "editor")  # who decides on a dataset's access (Permission.MANAGE_ACCESS)


def notify(s: Session, user_ids: Iterable[str], kind: str, subject: str,
           data: dict[str, Any] | None = None, *, settings: Settings | None = None) -> list[str]:
    """Add one inbox entry per user (each user once), in the caller's transaction; their ids.

    ``kind`` is a dotted event name (``access_request.created``), ``subject`` a one-line summary a
    person reads, ``data`` the ids the entry points at. When e-mail is configured
    (``MOSU_SMTP_URL``; ``settings``, else the platform's, which every platform session carries)
    each active user with a usable address also gets an e-mail in the outbox, in the same
    transaction: the subject and a link to the site, never ``data``."""
    ids = []
    entries = []
    for user_id in dict.fromkeys(u for u in user_ids if u):
        entry = Notification(user_id=user_id, kind=kind, subject=subject[:500], data=dict(data or {}))
        s.add(entry)
        s.flush()
        ids.append(entry.id)
        entries.append(entry)
    settings = settings or s.info.get("settings")
    if entries and settings is not None and settings.smtp_url:
        users = {u.id: u for u in s.scalars(select(User).where(User.id.in_([e.user_id for e in entries])))}
        for entry in entries:
            user = users.get(entry.user_id)
            if user is None or user.state != "active" or not user.email:
                continue
            if not outbox.valid_address(user.email):
                log.warning("notification %s: user %s has no usable e-mail address; inbox only", entry.id, user.id)
                continue
            outbox.queue(s, entry.id, user.email, subject, settings.site_url)
        s.flush()
    return ids


def organization_users(s: Session, org_id: str | None, capacities: Iterable[str]) -> list[str]:
    """The active users holding one of ``capacities`` in active organization ``org_id`` (for example
    :data:`MANAGERS`, who decide on its datasets' access), in a stable order."""
    if not org_id:
        return []
    return list(s.scalars(
        select(User.id).join(Member, Member.table_id == User.id).join(Group, Group.id == Member.group_id)
        .where(Member.group_id == org_id, Member.table_name == "user", Member.capacity.in_(list(capacities)),
               Group.state == "active", User.state == "active")
        .order_by(User.name)))


def expiring_grants(s: Session, now: dt.datetime | None = None,
                    days: int = EXPIRY_NOTICE_DAYS) -> list[str]:
    """Tell both sides of each grant that ends within ``days`` (and has not ended, nor been
    revoked) that it is about to end, once: the grantee (the user, or the admins of a grantee
    organization) and the dataset's organization admins and editors. ``expiry_notified`` is set in
    the same transaction, by a conditional UPDATE, so two workers scanning at once tell each grant
    once. The worker calls this periodically; ``now`` is a parameter so that a test needs no
    clock. Returns the ids of the grants notified."""
    now = now or utcnow()
    horizon = now + dt.timedelta(days=days)
    candidates = s.scalars(
        select(AccessGrant).where(AccessGrant.expiry_notified.is_(False), AccessGrant.expires > now,
                                  AccessGrant.expires <= horizon, AccessGrant.revoked.is_(None))
        .order_by(AccessGrant.expires)).all()
    done = []
    for grant in candidates:
        taken = s.execute(update(AccessGrant).where(AccessGrant.id == grant.id,
                                                    AccessGrant.expiry_notified.is_(False))
                          .values(expiry_notified=True).execution_options(synchronize_session=False))
        if taken.rowcount != 1:
            continue  # another worker told them
        pkg = s.get(Package, grant.package_id)
        if pkg is None or pkg.state != "active":
            continue  # nothing left to read through it; marked, so it is not looked at again
        title = pkg.title or pkg.name
        ends = grant.expires.strftime("%Y-%m-%d %H:%M UTC")
        data = {"grant_id": grant.id, "package_id": pkg.id, "expires": grant.expires.isoformat()}
        if grant.grantee_type == "organization":
            org = s.get(Group, grant.grantee_id)
            grantees = organization_users(s, grant.grantee_id, ("admin",))
            label = f"organization {org.title or org.name}" if org is not None else "an organization"
            mine = f"Access of your {label} to {title} ends on {ends}"
        else:
            user = s.get(User, grant.grantee_id)
            grantees = [user.id] if user is not None and user.state == "active" else []
            label = user.fullname or user.name if user is not None else "a user"
            mine = f"Your access to {title} ends on {ends}"
        notify(s, grantees, EXPIRING, mine, data)
        managers = [u for u in organization_users(s, pkg.owner_org, MANAGERS) if u not in grantees]
        notify(s, managers, EXPIRING, f"Access of {label} to {title} ends on {ends}", data)
        done.append(grant.id)
    return done
