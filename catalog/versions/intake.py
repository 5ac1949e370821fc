"""A new upload becomes a version: recorded, its ingest queued, the resource shown as queued; or,
when nothing refers to stored bytes after all, the bytes removed. Used by every action that takes
a file (``resource_create``/``_update``/``_patch`` and a completed multipart upload)."""
from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.db.models import Resource, ResourceVersion
from catalog.storage.objects import ObjectStore, StoredObject
from catalog.versions import jobs, lifecycle
from catalog.versions.lifecycle import State

log = logging.getLogger(__name__)


def add_version(s: Session, res: Resource, version_id: str, stored: StoredObject, display_name: str,
                uploader_id: str | None) -> bool:
    """Record a new version of ``res`` from ``stored`` bytes and queue its ingest, in the caller's
    transaction; False (nothing recorded) when the bytes equal the current version's."""
    current = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
    if current is not None and current.sha256 == stored.sha256 and current.size == stored.size:
        return False
    number = (s.scalar(select(func.max(ResourceVersion.number)).where(ResourceVersion.resource_id == res.id))
              or 0) + 1
    s.add(ResourceVersion(id=version_id, resource_id=res.id, number=number, sha256=stored.sha256,
                          size=stored.size, raw_key=stored.key, original_filename=display_name,
                          uploader_id=uploader_id, status=State.QUEUED.value))
    s.flush()
    jobs.enqueue(s, res.id, version_id)
    res.url_type, res.url = "upload", ""
    lifecycle.show(res, State.QUEUED)
    return True


def discard(store: ObjectStore, stored: StoredObject | None) -> None:
    """Remove bytes nothing refers to (a refused or duplicate upload); best effort, after the fact."""
    if stored is None:
        return
    try:
        store.remove(stored.key)
    except Exception:  # noqa: BLE001 - best effort: nothing refers to it
        log.warning("could not remove unreferenced upload %s", stored.key)
