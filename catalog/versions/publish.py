"""Making a version current: the one step researchers see, shared by the worker and the actions."""
from __future__ import annotations

from sqlalchemy.orm import Session

from catalog.db.models import Resource, ResourceVersion, utcnow
from catalog.search import changes
from catalog.versions import lifecycle
from catalog.versions.lifecycle import State


def publish_version(s: Session, res: Resource, version: ResourceVersion) -> None:
    """Make ``version`` the one researchers see (inside the caller's transaction): a ``queued``
    version the worker finished, or a ``held`` one an editor acknowledged."""
    lifecycle.move_version(version, State.READY)
    version.published = utcnow()
    res.current_version_id = version.id
    lifecycle.show(res, State.READY)
    res.last_modified = utcnow()
    changes.mark(s, res.package_id)
