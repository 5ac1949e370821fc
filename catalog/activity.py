"""CKAN's activity stream: written with each change, read back filtered by visibility."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Select, insert
from sqlalchemy.orm import Session

from catalog import validate
from catalog.context import Actor
from catalog.models import Activity, new_id, utcnow


# Activity verbs (CKAN's "new package") and the action names the audit log uses for them.
AUDIT_VERBS = {"new": "create", "changed": "update", "deleted": "delete"}


def record(session: Session, actor: Actor | None, activity_type: str, object_id: str,
           data: dict[str, Any], group_id: str | None = None, private: bool = False) -> None:
    """Append an activity such as ``new package`` with a snapshot of the object in ``data``.

    ``private`` marks activities of private datasets: they are shown only to
    callers who may read the dataset, so they never leak through a public stream.
    """
    session.connection().execute(insert(Activity).values(
        id=new_id(), timestamp=utcnow(), user_id=actor.id if actor else None, object_id=object_id,
        group_id=group_id, private=private, activity_type=activity_type, data=data))


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
