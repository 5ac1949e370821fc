"""Making a version current: the one step researchers see, shared by the worker and the actions."""
from __future__ import annotations

from sqlalchemy.orm import Session

from catalog.db.models import Resource, ResourceVersion, utcnow
from catalog.search import changes


def publish_version(s: Session, res: Resource, version: ResourceVersion) -> None:
    """Make ``version`` the one researchers see (inside the caller's transaction)."""
    version.status, version.published, version.error = "ready", utcnow(), None
    res.current_version_id = version.id
    res.ingest_status, res.ingest_error = "ready", None
    res.last_modified = utcnow()
    changes.mark(s, res.package_id)
