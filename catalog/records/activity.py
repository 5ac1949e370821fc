"""CKAN's activity stream: written with each change, read back filtered by visibility."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Select, insert, select, true
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.context import Actor
from catalog.access.policy import Permission
from catalog.core import validate
from catalog.db.models import Activity, Package, new_id, utcnow

# The activity types that describe a dataset (a resource change is a "changed package").
PACKAGE_TYPES = ("new package", "changed package", "deleted package")

# Activity verbs (CKAN's "new package") and the action names the audit log uses for them.
AUDIT_VERBS = {"new": "create", "changed": "update", "deleted": "delete"}


def record(session: Session, actor: Actor | None, activity_type: str, object_id: str,
           data: dict[str, Any], group_id: str | None = None, private: bool = False) -> None:
    """Append an activity such as ``new package`` with a snapshot of the object in ``data``.

    ``private`` marks activities recorded while the dataset was private: see :func:`visible_to`.
    """
    session.connection().execute(insert(Activity).values(
        id=new_id(), timestamp=utcnow(), user_id=actor.id if actor else None, object_id=object_id,
        group_id=group_id, private=private, activity_type=activity_type, data=data))


def visible_to(actor: Actor | None):
    """A WHERE clause on Activity: what ``actor`` may see of any activity stream.

    A dataset's activity follows the dataset's *current* visibility, not the one it had when the
    activity was recorded: once a dataset is made private (or deleted, or purged), its earlier
    "new package" snapshot (name, notes) disappears from public streams. An activity recorded
    while the dataset was private stays for those who could read it while private (members,
    collaborators, sysadmins) even after it goes public. Organization and group activities are
    public, as their pages are.
    """
    if actor is not None and actor.sysadmin:
        return true()
    readable = select(Package.id).where(policy.datasets_where(actor, Permission.VIEW_DATASET))
    insiders = select(Package.id).where(policy.datasets_where(actor, Permission.VIEW_DATASET, public_grant=False))
    return (Activity.activity_type.not_in(PACKAGE_TYPES)
            | (Activity.object_id.in_(readable) & (Activity.private.is_(False) | Activity.object_id.in_(insiders))))


def as_dict(act: Activity) -> dict[str, Any]:
    return {"id": act.id, "timestamp": act.timestamp.isoformat(), "user_id": act.user_id,
            "object_id": act.object_id, "activity_type": act.activity_type, "data": act.data}


def filtered(query: Select, data: dict[str, Any]) -> Select:
    """Apply CKAN's ``activity_types`` / ``exclude_activity_types`` filters, newest first."""
    wanted = validate.strings(data.get("activity_types"), "activity_types")
    excluded = validate.strings(data.get("exclude_activity_types"), "exclude_activity_types")
    if wanted:
        query = query.where(Activity.activity_type.in_(wanted))
    if excluded:
        query = query.where(Activity.activity_type.not_in(excluded))
    return query.order_by(Activity.timestamp.desc(), Activity.id)
