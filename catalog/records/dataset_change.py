"""A change to a dataset, written to the catalog's three records at once.

Each write to a dataset or one of its resources leaves the same three traces, in the
transaction of the write, so they commit with it or not at all: an activity (CKAN's stream,
with a snapshot of the dataset as it now is), an audit event (who did what to which object)
and a search change (every index catches up with the dataset). Written in three places by
hand before, a new action could leave one out: a change that never reached the search index,
or an edit missing from the audit log.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from catalog.access.context import Actor, Context
from catalog.db.models import Package
from catalog.records import activity, audit
from catalog.search import changes


def record_dataset_change(s: Session, who: Context | Actor | None, pkg: Package, verb: str, snapshot: dict[str, Any],
                          event: str, about: tuple[str, str] | None = None,
                          detail: dict[str, Any] | None = None) -> None:
    """Record that ``who`` (the action's context, for the event's envelope, or an actor) changed dataset
    ``pkg``: the activity ``<verb> package`` (``verb`` one of new, changed, deleted) with ``snapshot``
    (the dataset's dict after the change), the audit event ``event`` about ``about`` (an (object type,
    id); the dataset by default) with ``detail``, filed under the dataset, its organization and the
    resource, and the dataset's search change. Call inside the writing session, after the change is flushed."""
    if verb not in activity.AUDIT_VERBS:
        raise ValueError(f"unknown activity verb {verb!r}")
    object_type, object_id = about or ("package", pkg.id)
    actor = who.actor if isinstance(who, Context) else who
    activity.record(s, actor, f"{verb} package", pkg.id, {"package": snapshot}, group_id=pkg.owner_org,
                    private=pkg.private)
    audit.record(s, who, event, object_type, object_id, detail, package_id=pkg.id, org_id=pkg.owner_org,
                 resource_id=object_id if object_type == "resource" else None)
    changes.mark(s, pkg.id)
